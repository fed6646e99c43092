"""xmlio.needs_escape, the one check a listing page makes over all its text, agrees with esc()
on every code point (a false "no" would put markup or an invalid character into a listing)."""

from __future__ import annotations

from s3gw.xmlio import esc, needs_escape


def test_needs_escape_agrees_with_esc_on_every_code_point() -> None:
    for cp in range(0x110000):
        c = chr(cp)
        assert needs_escape(c) == (esc(c) != c), hex(cp)
        assert needs_escape(f"plain{c}text") == (esc(c) != c), hex(cp)


def test_needs_escape_on_long_text() -> None:
    page = "dir00/obj0000123" * 5000
    assert not needs_escape(page)
    assert needs_escape(page + "&")
    assert needs_escape("<" + page)
    assert needs_escape(page[:100] + "\x1f" + page)
    assert not needs_escape(page + "\t\n ключ €")
    assert needs_escape(page + "\r")  # a parser would read it back as LF

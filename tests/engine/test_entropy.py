"""The write path's random bytes (engine/entropy.py): never repeated, the lengths asked for, and
never shared between a process and a child it forks."""

from __future__ import annotations

import os

from appliance.engine import entropy


def test_draws_have_their_length_and_never_repeat() -> None:
    seen = set()
    for n in (12, 16, 24, 32, entropy.PAGE_BYTES // 4, entropy.PAGE_BYTES // 4 + 1, 3 * entropy.PAGE_BYTES):
        for _ in range(300):
            b = entropy.token_bytes(n)
            assert len(b) == n
            seen.add(b)
    assert len(seen) == 7 * 300  # across page refills too
    assert len(entropy.token_hex(16)) == 32 and int(entropy.token_hex(16), 16) >= 0
    url = entropy.token_urlsafe(24)
    assert len(url) == 32 and set(url) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_forked_child_draws_other_bytes_than_its_parent() -> None:
    entropy.token_bytes(16)  # the parent's page holds bytes not yet handed out
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next draw
        try:
            os.write(w, entropy.token_bytes(64))
        finally:
            os._exit(0)
    os.close(w)
    child = b""
    while len(child) < 64:
        chunk = os.read(r, 64)
        if not chunk:
            break
        child += chunk
    os.close(r)
    os.waitpid(pid, 0)
    assert len(child) == 64 and child != entropy.token_bytes(64)

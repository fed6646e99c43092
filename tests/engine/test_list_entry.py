"""ListEntry (what ListObjects shows of an object, decoded without an ObjectVersion) and
PosixEntry (what the mount's listing shows of a file) agree with ObjectVersion on every record
format, and a damaged record fails as ObjectVersion's does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.engine import keys, listing
from appliance.engine.errors import FormatError
from appliance.engine.listing import FAST_FORMATS, ListEntry, PosixEntry
from appliance.engine.records import ObjectVersion

GOLDEN = Path(__file__).parent / "golden"
KINDS = [ListEntry, PosixEntry]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", sorted(ObjectVersion.decoders()))
def test_list_entry_matches_object_version_on_every_format(version: int, kind: type[ListEntry | PosixEntry]) -> None:
    raw = (GOLDEN / f"object_version.v{version}").read_bytes()
    assert kind.decode(raw) == kind.of(ObjectVersion.decode(raw))


def test_posix_entry_of_a_mount_written_file() -> None:
    """What the mount reads of a file: its user metadata, trust, link identity (and the format-1
    default: trusted, as ObjectVersion decodes it)."""
    v = ObjectVersion("b", "d/f", "null", 7, 1_700_000_000_123_456_789, size=4096,
                      user_meta={"mode": "33188", "uid": "1000", "mtime": "1700000000.5"},
                      posix_trusted=False, inode="abc")
    e = PosixEntry.decode(v.encode())
    assert e == PosixEntry.of(v)
    assert (e.user_meta, e.posix_trusted, e.inode, e.size, e.seq) == (v.user_meta, False, "abc", 4096, 7)
    v1 = json.loads((GOLDEN / "object_version.v1").read_bytes()[1:].decode())
    assert "posix_trusted" not in v1
    assert PosixEntry.decode((GOLDEN / "object_version.v1").read_bytes()).posix_trusted is True


def test_list_entry_of_a_current_record_with_checksums() -> None:
    v = ObjectVersion("b", "k<&>", "null", 1, 1_700_000_000_123_456_789, size=5, etag="e" * 32,
                      checksums={"CRC32": "AAAAAA=="}, checksum_type="FULL_OBJECT", storage_class="", owner="o")
    assert ListEntry.decode(v.encode()) == ListEntry.of(v)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("raw", [b"", b"\x05", b"\x05[1]", b"\x05{\"key\": 5", b"\x09{}", b"\x05{\"bucket\":\"b\"}"])
def test_damaged_records_raise_format_error(raw: bytes, kind: type[ListEntry | PosixEntry]) -> None:
    with pytest.raises(FormatError):
        kind.decode(raw)


def test_fast_formats_are_checked_formats() -> None:
    """A new ObjectVersion format is read by ListEntry's decoder only once someone has checked
    that it keeps the listed fields under the same names and types and added it to FAST_FORMATS;
    this fails until then (its records would list correctly meanwhile, through ObjectVersion)."""
    assert set(ObjectVersion.decoders()) == FAST_FORMATS


@pytest.mark.parametrize("kind", KINDS)
def test_a_field_of_another_type_goes_through_object_version(kind: type[ListEntry | PosixEntry]) -> None:
    """msgspec checks types; ObjectVersion.decode does not: such a record lists as it did."""
    body = json.loads((GOLDEN / "object_version.v5").read_bytes()[1:].decode())
    body["size"] = "5"
    raw = b"\x05" + json.dumps(body).encode()
    assert kind.decode(raw) == kind.of(ObjectVersion.decode(raw))
    assert kind.decode(raw).size == 5


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_format_byte_is_never_read_by_the_fast_decoder(kind: type[ListEntry | PosixEntry]) -> None:
    """A record of a format byte outside FAST_FORMATS goes to ObjectVersion.decode even when its
    JSON would decode (here: refused, as ObjectVersion has no format 6)."""
    body = (GOLDEN / "object_version.v5").read_bytes()[1:]
    with pytest.raises(FormatError):
        kind.decode(b"\x06" + body)


@pytest.mark.parametrize("version", sorted(ObjectVersion.decoders()))
async def test_records_of_every_format_list_identically(store, version: int) -> None:  # type: ignore[no-untyped-def]
    """A bucket holding records of one format: list_entries (the fast decoder) shows exactly
    what list_objects (ObjectVersion) does, page by page, with and without a delimiter."""
    golden = (GOLDEN / f"object_version.v{version}").read_bytes()
    body = json.loads(golden[1:].decode())
    b = store.db.batch()
    names = [f"{d}/{n}-{body['key']}" for d in ("x", "y") for n in range(5)] + ["top"]
    for name in names:
        # the golden record's own layout and format byte, under another key
        raw = golden[:1] + json.dumps({**body, "key": name}, separators=(",", ":"), ensure_ascii=False).encode()
        b.put(keys.latest("bkt", name), raw)
    store.db.commit_now(b)
    for delimiter in ("", "/"):
        marker = ""
        while True:
            full = listing.list_objects(store.db, "bkt", "", delimiter, marker, 3)
            fast = listing.list_entries(store.db, "bkt", "", delimiter, marker, 3)
            posix = listing.list_posix_entries(store.db, "bkt", "", delimiter, marker, 3)
            assert fast.entries == [ListEntry.of(v) for v in full.entries]
            assert posix.entries == [PosixEntry.of(v) for v in full.entries]
            for page in (fast, posix):
                assert (page.common_prefixes, page.is_truncated, page.next_marker) == (
                    full.common_prefixes, full.is_truncated, full.next_marker)
            if not full.is_truncated:
                break
            marker = full.next_marker
    assert [e.key for e in listing.list_entries(store.db, "bkt").entries] == sorted(names, key=str.encode)


async def test_version_entries_match_list_versions(store) -> None:  # type: ignore[no-untyped-def]
    """ListObjectVersions' pages (ListEntry, with delete markers) show what list_versions does."""
    await store.set_versioning("bkt", "Enabled")
    for name in ("a/1", "a/2", "b", "c&<"):
        for body in (b"one", b"two"):
            await store.put_object("bkt", name, body)
    await store.delete_object("bkt", "a/2")
    await store.delete_object("bkt", "b")
    for delimiter in ("", "/"):
        key_marker = vid_marker = ""
        seen = 0
        while True:
            full = store.list_versions("bkt", "", delimiter, key_marker, vid_marker, 3)
            fast = store.list_version_entries("bkt", "", delimiter, key_marker, vid_marker, 3)
            assert fast.entries == [(ListEntry.of(v), latest) for v, latest in full.entries]
            assert (fast.common_prefixes, fast.is_truncated, fast.next_key_marker, fast.next_version_id_marker) == (
                full.common_prefixes, full.is_truncated, full.next_key_marker, full.next_version_id_marker)
            seen += sum(1 for v, _ in fast.entries if v.delete_marker)
            if not full.is_truncated:
                break
            key_marker, vid_marker = full.next_key_marker, full.next_version_id_marker
        assert seen == (2 if not delimiter else 1)  # with "/", a/2's marker is under the a/ prefix

"""ListEntry (what ListObjects shows of an object, decoded without an ObjectVersion) agrees with
ObjectVersion on every record format, and a damaged record fails as ObjectVersion's does."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.engine.errors import FormatError
from appliance.engine.listing import ListEntry
from appliance.engine.records import ObjectVersion

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("version", sorted(ObjectVersion.decoders()))
def test_list_entry_matches_object_version_on_every_format(version: int) -> None:
    raw = (GOLDEN / f"object_version.v{version}").read_bytes()
    assert ListEntry.decode(raw) == ListEntry.of(ObjectVersion.decode(raw))


def test_list_entry_of_a_current_record_with_checksums() -> None:
    v = ObjectVersion("b", "k<&>", "null", 1, 1_700_000_000_123_456_789, size=5, etag="e" * 32,
                      checksums={"CRC32": "AAAAAA=="}, checksum_type="FULL_OBJECT", storage_class="", owner="o")
    assert ListEntry.decode(v.encode()) == ListEntry.of(v)


@pytest.mark.parametrize("raw", [b"", b"\x05", b"\x05[1]", b"\x05{\"key\": 5", b"\x09{}", b"\x05{\"bucket\":\"b\"}"])
def test_damaged_records_raise_format_error(raw: bytes) -> None:
    with pytest.raises(FormatError):
        ListEntry.decode(raw)

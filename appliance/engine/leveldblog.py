"""Finding a zeroed block in the middle of LevelDB's write-ahead log, before LevelDB opens it.

LevelDB's log reader skips a block that reads as zeros without a word: its header is that of a
`kZeroType` record, which LevelDB takes for a preallocated region and drops silently (a flipped
bit, by contrast, is reported in its info LOG: metadb.py). The commits in that block are lost to
the DB while every later commit is applied, so the DB's journal position is current and nothing
replays them. A power cut cannot leave such a hole: an acknowledged commit was synced with
everything before it in the log, and a torn tail is zeros or garbage up to the end of the file,
never followed by an intact record. So zeros followed by an intact record are damage (a failing
SSD, a bad block reading back as zeros), and the DB must be rebuilt from the journal.

Read by hand because LevelDB offers no API for it. The format is LevelDB's doc/log_format.md,
unchanged since 2011: 32 KiB blocks of records `u32 masked CRC32C(type + data) | u16 length | u8
type | data`; fewer than 7 bytes left in a block are a zero trailer. Only `*.log` files are read
(the newest memtables'; a few MiB), once per open, a block at a time.
"""

from __future__ import annotations

import struct
from pathlib import Path

from awscrt.checksums import crc32c

BLOCK = 32768
HEADER = 7
_ZERO_HEADER = bytes(HEADER)
_MASK_DELTA = 0xA282EAD8


def _unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def _intact(block: bytes, pos: int, checked: bool) -> tuple[bool, int]:
    """(is the record at `pos` whole, with a matching checksum when `checked`, its length)."""
    masked, length, rtype = struct.unpack_from("<IHB", block, pos)
    end = pos + HEADER + length
    if rtype == 0 or end > len(block):
        return False, length
    return not checked or crc32c(block[pos + HEADER - 1:end]) == _unmask(masked), length


def zeroed_hole(log: Path) -> str | None:
    """Where `log` has a zeroed record header followed later by an intact record, as LevelDB
    would report a drop ("000003.log: 32768 zeroed bytes at offset N skipped, intact records
    after them"); None when it has none."""
    hole: int | None = None
    offset = 0
    with open(log, "rb") as f:
        while block := f.read(BLOCK):
            pos = 0
            while pos + HEADER <= len(block):
                if block[pos:pos + HEADER] == _ZERO_HEADER:
                    if hole is None:
                        hole = offset + pos
                    break  # LevelDB drops the rest of the block, as this does
                # checksums only past a hole: before it, a damaged record is LevelDB's to
                # report, and walking by lengths alone is ~10x faster (a 4 MiB log at each open)
                ok, length = _intact(block, pos, checked=hole is not None)
                if not ok:
                    break  # torn or damaged: LevelDB reports that one in its info LOG
                if hole is not None:
                    return (f"{log.name}: {offset + pos - hole} zeroed bytes at offset {hole} skipped, "
                            "intact records after them")
                pos += HEADER + length
            offset += len(block)
    return None


def first_zeroed_hole(db_path: Path) -> str | None:
    """The first zeroed hole among the DB's log files (see zeroed_hole)."""
    for log in sorted(db_path.glob("*.log")):
        try:
            found = zeroed_hole(log)
        except OSError:
            continue  # unreadable: the open reports it
        if found is not None:
            return found
    return None

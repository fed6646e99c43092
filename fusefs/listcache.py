"""What a directory listing shows of each file, kept between listings.

A readdir answers with every entry's attributes (readdirplus), and building them from whole
ObjectVersion records is most of an `ls -l`'s cost (decoding a record is ~10x the cost of the
listing's light ListEntry). So a listing reads the light entries first and takes each file's
attributes from here when the entry's `seq` is the one they were computed from: every new version
of a key has a new seq, and the store's listener drops a key on any change (in-place ones
included), so an entry here is never older than what the store holds. A listing with many keys
not here reads the whole records as before and fills this in.

Bounded (MAX_ENTRIES, oldest dropped first; ~430 bytes an entry with its key, ~14 MB at most): a
directory larger than that is listed from whole records, as without it.
"""

from __future__ import annotations

import msgspec

from .attrs import Posix, Version

MAX_ENTRIES = 32_768


class Listed(msgspec.Struct, frozen=True, gc=False):
    """A file as a listing shows it: its kind, attributes (attrs.Posix's, flat) and size, and the
    engine's identity of its hard links ("" for a file with one name). Not tracked by the cyclic
    GC (ints and strings only): a full collection need not walk the thousands kept."""

    seq: int
    kind: str
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    atime_ns: int
    ctime_ns: int
    rdev: int
    size: int
    inode_id: str = ""

    @classmethod
    def of(cls, seq: int, kind: str, p: Posix, size: int, inode_id: str = "") -> Listed:
        return cls(seq, kind, p.mode, p.uid, p.gid, p.mtime_ns, p.atime_ns, p.ctime_ns, p.rdev, size, inode_id)


class ListCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._items: dict[tuple[str, str], Listed] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, bucket: str, key: str, seq: int) -> Listed | None:
        item = self._items.get((bucket, key))
        return item if item is not None and item.seq == seq else None

    def put(self, v: Version, item: Listed) -> None:
        """Keep `item`, computed from v; files with hard links are not kept (their identity can
        change with no new version of this key)."""
        if v.inode or item.inode_id:
            return
        k = (v.bucket, v.key)
        self._items.pop(k, None)
        if len(self._items) >= self.max_entries:
            del self._items[next(iter(self._items))]
        self._items[k] = item

    def drop(self, bucket: str, key: str) -> None:
        self._items.pop((bucket, key), None)

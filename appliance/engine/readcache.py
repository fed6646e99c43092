"""The metadata DB's read cache: recently read LevelDB values (and misses), kept in memory.

Why: plyvel releases the GIL for every `get`, and a worker thread waiting for the GIL (one back
from an fsync, a read, a journal write) then takes it and runs until it blocks again, so a get
of one microsecond cost the event loop 55 us on average under 16 concurrent small PUTs (~9
gets each: the bucket record several times over, the key's latest version, ...), and up to the
interpreter's 5 ms switch interval. A dict lookup does not release the GIL.

Correctness: every LevelDB write of the MetaDB goes through `MetaDB._leveldb_write`, which calls
`written(keys)` once the write is done; a value read from LevelDB is only stored if no write
completed between the read's start and the store (`generation`, checked under the lock that
`written` takes), so a reader in a worker thread racing a write can never leave the old value
behind. The writes of staged commits, which one drain at a time applies in commit order, are
kept as written (`written_through`): the next PUT of a key, or a GET after a PUT, reads the
version and pointers its last write left without going to LevelDB (an overwrite's three reads
missed the cache each time, ~45 us of loop time apiece under 16 concurrent PUTs).
Staged commits are read from MetaDB's overlay before this cache, so what a commit wrote is
seen from the moment it is staged. Bounded by bytes (FIFO eviction, no reordering on a hit: a
hit takes no lock).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

DEFAULT_BYTES = 8 << 20
MAX_VALUE = 16 << 10  # larger values are read from LevelDB each time
ENTRY_OVERHEAD = 100  # dict slot, key and bytes object headers: a rough per-entry cost


def _keepable(value: bytes | None) -> bool:
    return value is None or len(value) <= MAX_VALUE


def _entry_bytes(key: bytes, value: bytes | None) -> int:
    return len(key) + (len(value) if value is not None else 0) + ENTRY_OVERHEAD


class ReadCache:
    def __init__(self, max_bytes: int = DEFAULT_BYTES) -> None:
        self.max_bytes = max_bytes
        self._values: dict[bytes, bytes | None] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.generation = 0  # bumped by every completed write

    def lookup(self, key: bytes) -> tuple[bool, bytes | None]:
        """(found, value): value None with found=True is a cached miss (no such key)."""
        try:
            return True, self._values[key]
        except KeyError:
            return False, None

    def store(self, key: bytes, value: bytes | None, generation: int) -> None:
        """Keep what LevelDB returned for `key` in a read that began at `generation`."""
        if not _keepable(value):
            return
        with self._lock:
            if generation != self.generation or key in self._values:
                return
            self._add(key, value)
            self._evict()

    def written(self, keys: Iterable[bytes]) -> None:
        """These keys were just written to LevelDB: forget them, and any read in flight."""
        with self._lock:
            self.generation += 1
            for key in keys:
                if key in self._values:
                    self._drop(key)

    def written_through(self, pairs: Iterable[tuple[bytes, bytes | None]]) -> None:
        """These writes were just applied to LevelDB, in this order, by the only writer at the
        time: keep what each key now holds (a deletion as a cached miss)."""
        with self._lock:
            self.generation += 1
            for key, value in pairs:
                if key in self._values:
                    self._drop(key)
                if _keepable(value):
                    self._add(key, value)
            self._evict()

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._values.clear()
            self._bytes = 0

    # the three below: under the lock
    def _add(self, key: bytes, value: bytes | None) -> None:
        self._values[key] = value
        self._bytes += _entry_bytes(key, value)

    def _drop(self, key: bytes) -> None:
        self._bytes -= _entry_bytes(key, self._values.pop(key))

    def _evict(self) -> None:
        """Oldest entries out until the cache is within its bound."""
        while self._bytes > self.max_bytes and self._values:
            self._drop(next(iter(self._values)))

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._values)

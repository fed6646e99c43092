"""The metadata DB's read cache (readcache.py): a value read from LevelDB is served from memory
until that key is written again, whichever way it is written (a staged commit, a blocking
commit, recovery's load, the journal applied at start-up); a read racing a write never leaves
the old value behind; memory stays bounded."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from appliance.engine.metadb import MetaDB
from appliance.engine.readcache import MAX_VALUE, ReadCache


def _commit(db: MetaDB, key: bytes, value: bytes) -> None:
    b = db.batch()
    b.put(key, value)
    db.commit_now(b)


def test_a_stored_read_is_served_until_its_key_is_written() -> None:
    cache = ReadCache()
    cache.store(b"a", b"1", cache.generation)
    cache.store(b"missing", None, cache.generation)
    assert cache.lookup(b"a") == (True, b"1")
    assert cache.lookup(b"missing") == (True, None)  # a cached "no such key"
    assert cache.lookup(b"other") == (False, None)
    cache.written([b"a"])
    assert cache.lookup(b"a") == (False, None)
    assert cache.lookup(b"missing") == (True, None)  # another key's entry stays


def test_a_read_that_began_before_a_write_is_not_kept() -> None:
    """The race a worker thread's get can lose: it reads the old value, a write completes, then
    it stores what it read. The write's generation turns that store away."""
    cache = ReadCache()
    began = cache.generation
    # ... LevelDB returns the old value here, then a write of the key completes:
    cache.written([b"k"])
    cache.store(b"k", b"old", began)
    assert cache.lookup(b"k") == (False, None)
    # and a store that landed first is dropped by the write that follows it
    began = cache.generation
    cache.store(b"k", b"old", began)
    cache.written([b"k"])
    assert cache.lookup(b"k") == (False, None)


def test_memory_is_bounded_and_large_values_are_not_kept() -> None:
    cache = ReadCache(max_bytes=64 << 10)
    for i in range(10_000):
        cache.store(b"key%05d" % i, os.urandom(100), cache.generation)
        assert cache.size_bytes <= 64 << 10
    assert 0 < len(cache) < 10_000
    assert cache.lookup(b"key09999")[0] and not cache.lookup(b"key00000")[0]  # oldest out first
    cache.store(b"big", os.urandom(MAX_VALUE + 1), cache.generation)
    assert cache.lookup(b"big") == (False, None)
    cache.clear()
    assert len(cache) == 0 and cache.size_bytes == 0


def test_metadb_reads_every_kind_of_write_at_once(tmp_path: Path) -> None:
    db = MetaDB(tmp_path / "meta")
    try:
        _commit(db, b"k", b"v1")
        assert db.get(b"k") == b"v1" and db.get(b"k") == b"v1"  # the second from the cache
        assert db.cache.lookup(b"k") == (True, b"v1")
        assert db.get(b"absent") is None and db.cache.lookup(b"absent") == (True, None)

        lsn = db.stage({b"k": b"v2", b"absent": b"now here"})  # staged: read at once
        assert db.get(b"k") == b"v2" and db.get(b"absent") == b"now here"
        trio.run(db.flushed, lsn)  # written to LevelDB: the cache forgot the old values
        assert db.cache.lookup(b"k") == (False, None)
        assert db.get(b"k") == b"v2" and db.get(b"absent") == b"now here"

        db.load([(b"k", b"v3"), (b"absent", None)])  # recovery's writes
        assert db.get(b"k") == b"v3" and db.get(b"absent") is None

        d = db.batch()
        d.delete(b"k")
        db.commit_now(d)
        assert db.get(b"k") is None
    finally:
        db.close()


class _WriteDuringGet:
    """plyvel's DB, except that its next `get` of `key` lets a commit of `key` complete between
    reading the old value and returning it: the window of a get in a worker thread (plyvel
    releases the GIL) racing the loop's write."""

    def __init__(self, db: MetaDB, key: bytes, new: bytes) -> None:
        self.real, self.meta, self.key, self.new = db.db, db, key, new
        self.raced = False

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.real.get(key)
        if key == self.key and not self.raced:
            self.raced = True
            _commit(self.meta, key, self.new)
        return value

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


def test_a_get_racing_a_write_returns_the_old_value_once_and_never_caches_it(tmp_path: Path) -> None:
    db = MetaDB(tmp_path / "meta")
    try:
        _commit(db, b"k", b"old")
        racer = _WriteDuringGet(db, b"k", b"new")
        db.db = racer  # type: ignore[assignment]
        assert db.get(b"k") == b"old"  # read before the write completed: fine for that read
        assert racer.raced
        assert db.get(b"k") == b"new"  # but never kept: every later read sees the write
        db.db = racer.real
    finally:
        db.close()

"""The metadata DB's read cache (readcache.py): a value read from LevelDB is served from memory
until that key is written again, whichever way it is written (a staged commit, a blocking
commit, recovery's load, the journal applied at start-up); what the drain writes is kept as
written; a read racing a write never leaves the old value behind; memory stays bounded."""

from __future__ import annotations

import os
import random
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
        trio.run(db.flushed, lsn)  # written to LevelDB: the cache holds what was written
        assert db.cache.lookup(b"k") == (True, b"v2")
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

    def get(self, key: bytes, **options: bool) -> bytes | None:
        value: bytes | None = self.real.get(key, **options)
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
        db.cache.clear()  # the commit left its value cached: this read must go to LevelDB
        racer = _WriteDuringGet(db, b"k", b"new")
        db.db = racer  # type: ignore[assignment]
        assert db.get(b"k") == b"old"  # read before the write completed: fine for that read
        assert racer.raced
        assert db.get(b"k") == b"new"  # but never kept: every later read sees the write
        db.db = racer.real
    finally:
        db.close()


def test_written_through_keeps_the_last_write_of_each_key_and_stays_bounded() -> None:
    cache = ReadCache(max_bytes=64 << 10)
    cache.store(b"a", b"old", cache.generation)
    began = cache.generation
    cache.written_through([(b"a", b"1"), (b"b", b"x"), (b"a", b"2"), (b"gone", None),
                           (b"big", os.urandom(MAX_VALUE + 1))])
    assert cache.lookup(b"a") == (True, b"2")  # the later write of a batch wins
    assert cache.lookup(b"b") == (True, b"x")
    assert cache.lookup(b"gone") == (True, None)  # a deletion: a cached "no such key"
    assert cache.lookup(b"big") == (False, None)  # too large to keep, read from LevelDB
    cache.store(b"a", b"old", began)  # a read that began before the write is turned away
    assert cache.lookup(b"a") == (True, b"2")
    for i in range(5_000):
        cache.written_through([(b"key%05d" % i, os.urandom(100))])
        assert cache.size_bytes <= 64 << 10
    assert cache.lookup(b"key04999")[0] and not cache.lookup(b"key00000")[0]


def test_the_cache_agrees_with_leveldb_through_interleaved_writes(tmp_path: Path) -> None:
    """Staged commits (written through), blocking commits, recovery's load and deletions of the
    same few keys, in random order: every read, from the cache or not, is what LevelDB holds."""
    rng = random.Random(7)
    db = MetaDB(tmp_path / "meta")
    try:
        model: dict[bytes, bytes | None] = {}
        for step in range(600):
            key = b"k%d" % rng.randrange(8)
            value = None if rng.random() < 0.2 else b"v%d" % step
            how = rng.randrange(3)
            if how == 0:
                trio.run(db.flushed, db.stage({key: value}))
            elif how == 1:
                b = db.batch()
                if value is None:
                    b.delete(key)
                else:
                    b.put(key, value)
                db.commit_now(b)
            else:
                db.load([(key, value)])
            model[key] = value
            probe = b"k%d" % rng.randrange(8)
            assert db.get(probe) == model.get(probe) == db.db.get(probe), (step, probe)
    finally:
        db.close()

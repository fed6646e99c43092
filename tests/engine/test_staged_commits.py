"""Staged commits (MetaDB.stage, StoreCore.txn(staged=True)): a small PUT's commit is staged under
the commit lock and written to LevelDB by the grouped thread call that makes it durable. What was
staged is read at once by get/scan (the next transaction's reads), never by LevelDB's iterators
before it is written; a transaction that may scan LevelDB directly has every staged commit
written first; a failed write fails every commit it held and leaves none readable."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from appliance.engine import keys
from appliance.engine.errors import BucketNotEmpty, MetadataUnavailable
from appliance.engine.metadb import Batch, MetaDB, _merged

from .conftest import open_store, read_all


def test_merged_overlay_wins_and_deletes() -> None:
    base = [(b"a", b"1"), (b"c", b"3"), (b"e", b"5")]
    extra: list[tuple[bytes, bytes | None]] = [(b"0", b"z"), (b"c", None), (b"d", b"4"), (b"e", b"6"), (b"f", b"7")]
    assert list(_merged(iter(base), extra)) == [(b"0", b"z"), (b"a", b"1"), (b"d", b"4"), (b"e", b"6"),
                                                (b"f", b"7")]
    assert list(_merged(iter(base), [])) == base
    assert list(_merged(iter([]), [(b"x", None), (b"y", b"2")])) == [(b"y", b"2")]


def test_staged_commit_is_read_by_get_and_scan_before_leveldb_has_it(tmp_path: Path) -> None:
    db = MetaDB(tmp_path / "meta")
    try:
        db.commit_now(_batch(db, {b"p/a": b"old", b"p/b": b"gone"}))
        lsn = db.stage({b"p/a": b"new", b"p/b": None, b"p/c": b"added"})
        assert lsn == db.lsn and db.has_staged
        assert db.get(b"p/a") == b"new" and db.get(b"p/b") is None and db.get(b"p/c") == b"added"
        assert list(db.scan(b"p/")) == [(b"p/a", b"new"), (b"p/c", b"added")]
        assert db.db.get(b"p/a") == b"old"  # LevelDB itself: not yet
        trio.run(db.flushed, lsn)
        assert not db.has_staged and db.written == lsn
        assert db.db.get(b"p/a") == b"new" and db.db.get(b"p/b") is None and db.db.get(b"p/c") == b"added"
        assert db.get(b"p/a") == b"new" and list(db.scan(b"p/")) == [(b"p/a", b"new"), (b"p/c", b"added")]
    finally:
        db.close()


def test_durable_writes_what_was_staged_and_syncs_it(tmp_path: Path) -> None:
    db = MetaDB(tmp_path / "meta")
    try:
        lsns = [db.stage({f"k{i}".encode(): b"v"}) for i in range(5)]
        trio.run(db.durable, lsns[2])
        assert db.written >= lsns[2] and db.log_sync.synced >= lsns[2]
        assert db.db.get(b"k2") == b"v"
    finally:
        db.close()


def test_a_failed_write_fails_its_commits_and_leaves_none_readable(tmp_path: Path) -> None:
    db = MetaDB(tmp_path / "meta")
    try:
        db.commit_now(_batch(db, {b"k": b"before"}))

        def broken(writes: object, sync: bool, through: bool = False) -> None:
            db.failed = "injected"
            raise MetadataUnavailable("injected")

        db._leveldb_write = broken  # type: ignore[method-assign]
        first = db.stage({b"k": b"lost"})
        second = db.stage({b"k2": b"lost too"})
        with pytest.raises(MetadataUnavailable):
            trio.run(db.durable, first)
        with pytest.raises(MetadataUnavailable):
            trio.run(db.flushed, second)
        assert db.get(b"k") == b"before" and db.get(b"k2") is None
        with pytest.raises(MetadataUnavailable):  # and later commits are refused
            db.stage({b"k3": b"x"})
    finally:
        db.close()


async def test_a_transaction_that_scans_leveldb_sees_every_staged_commit(tmp_path: Path) -> None:
    """delete_bucket checks emptiness with a LevelDB iterator: a version staged just before it
    (a PUT's commit, not yet written) is written first, so the bucket is not deleted under it."""
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        async with store.lock:  # stage a version as a PUT's transaction does, and stop there
            lsn = store.db.stage({keys.version("bkt", "k", store.next_seq()): b"{}"})
        assert store.db.has_staged and store.db.written < lsn
        with pytest.raises(BucketNotEmpty):
            await store.delete_bucket("bkt")
        assert not store.db.has_staged and store.db.written >= lsn
        assert store.get_bucket("bkt").name == "bkt"
    finally:
        store.db.close()


async def test_concurrent_small_puts_share_thread_calls_and_read_back(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")

        async def put(i: int) -> None:
            await store.put_object("bkt", f"k{i % 8}", f"body {i}".encode())

        async with trio.open_nursery() as n:
            for i in range(64):
                n.start_soon(put, i)
        assert not store.db.has_staged
        for i in range(8):
            v = store.head_object("bkt", f"k{i}")
            assert (await read_all(store, "bkt", f"k{i}")).startswith(b"body ")
            assert store.db.db.get(keys.latest("bkt", f"k{i}")) is not None
            assert v.size == len(await read_all(store, "bkt", f"k{i}"))
        usage = store.db.get(keys.usage("bkt"))
        assert usage is not None and b'"STANDARD"' in usage
    finally:
        store.db.close()


def _batch(db: MetaDB, writes: dict[bytes, bytes | None]) -> Batch:
    b = db.batch()
    b.writes.update(writes)
    return b

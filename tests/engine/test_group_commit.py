"""Group commit (groupsync.py, fssync.py, volumes.py, MetaDB.durable) keeps every guarantee of a
commit made alone: kill -9 under 16 concurrent small PUTs loses no acknowledged write and leaves
no torn object, and any m lost disks still read back; with shard files and with packed volumes."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trio

from appliance.engine import journal
from appliance.engine.errors import NoSuchKey
from appliance.engine.groupsync import GroupSync

from .conftest import open_store, read_all

REPO = Path(__file__).resolve().parents[2]


def run_and_kill(root: Path, group_sync: str, want: int, mixed: bool = False) -> dict[str, list[str]]:
    """Start the writer, SIGKILL it once `want` ACKs were read; every ACKed md5 per key, in
    order ("" for an acknowledged delete)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.engine.small_writer", str(root), group_sync,
                             *(["mixed"] if mixed else [])], cwd=REPO, stdout=subprocess.PIPE, text=True)
    acked: dict[str, list[str]] = {}

    def note(line: str) -> None:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ACK":
            acked.setdefault(parts[1], []).append(parts[2])
        elif len(parts) == 2 and parts[0] == "DEL":
            acked.setdefault(parts[1], []).append("")

    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    n = 0
    while n < want and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        note(line)
        n += 1
    os.kill(proc.pid, signal.SIGKILL)
    for line in proc.stdout.read().splitlines():  # printed before the kill: acknowledged too
        note(line)
    proc.stdout.close()
    proc.wait()
    return acked


@pytest.mark.parametrize(("group_sync", "mixed"), [("on", False), ("auto", False), ("auto", True)])
async def test_kill_9_under_16_small_puts(tmp_path: Path, group_sync: str, mixed: bool) -> None:
    root = tmp_path / "app"
    acked = run_and_kill(root, group_sync, 300, mixed)
    assert sum(len(v) for v in acked.values()) >= 50, "the writer made too little progress"
    store = open_store(root)
    try:
        packed = [p for d in store.disks for p in (Path(d.path) / "volumes").glob("*.vol")]
        assert bool(packed) == (group_sync == "auto"), packed  # the path meant was the path taken
        deleted = 0
        for key, md5s in acked.items():
            if md5s[-1] == "":  # deleted once acknowledged: gone, whatever was staged around it
                deleted += 1
                with pytest.raises(NoSuchKey):
                    store.head_object("bkt", key)
                continue
            # the last ACKed body, or the un-ACKed overwrite or delete that may have committed after it
            overwrite_pending = int(key.split("/obj")[1]) % 3 == 0 and len(md5s) == 1
            delete_pending = mixed and int(key[1:].split("/")[0]) % 4 == 3  # key "w<writer>/obj<i>"
            try:
                v = store.head_object("bkt", key)
            except NoSuchKey:
                assert delete_pending, key
                continue
            data = await read_all(store, "bkt", key)
            assert hashlib.md5(data).hexdigest() == v.etag
            assert v.etag == md5s[-1] or overwrite_pending, key
        assert deleted or not mixed, "no delete was acknowledged"
        listed = store.list_objects("bkt", max_keys=100_000).entries
        for v in listed:  # nothing torn: every listed object reads back whole with its own ETag
            assert hashlib.md5(await read_all(store, "bkt", v.key)).hexdigest() == v.etag
        m = store.geometry().m
        for d in list(store.disks)[:m]:  # any m disks lost: every object still reads back
            shutil.rmtree(d.shards_dir)
            shutil.rmtree(Path(d.path) / "volumes", ignore_errors=True)
        for v in listed:
            assert hashlib.md5(await read_all(store, "bkt", v.key)).hexdigest() == v.etag
    finally:
        store.db.close()


def test_group_sync_covers_every_write_made_before_it_began() -> None:
    """Writers acknowledged by a shared sync: each returns only after a sync that began after
    its write completed, and fewer syncs run than writes (with writers arriving meanwhile)."""
    lock = threading.Lock()
    written = 0
    durable = 0  # what the last completed sync covered
    release = threading.Event()
    first_sync_started = threading.Event()

    def sync() -> None:
        nonlocal durable
        with lock:
            covered = written
        first_sync_started.set()
        release.wait()
        durable = covered

    group = GroupSync(sync, lambda: written)
    results: list[tuple[int, int]] = []

    def writer() -> None:
        nonlocal written
        with lock:
            written += 1
            ticket = written
        group.wait(ticket)
        results.append((ticket, durable))

    first = threading.Thread(target=writer)
    first.start()
    first_sync_started.wait()
    others = [threading.Thread(target=writer) for _ in range(8)]
    for t in others:
        t.start()
    deadline = time.monotonic() + 30
    while written < 9 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for t in [first, *others]:
        t.join()
    assert len(results) == 9
    assert all(ticket <= covered for ticket, covered in results)
    assert group.syncs == 2  # the first writer's sync, then one for the eight that waited


def test_group_sync_failure_reaches_every_writer_it_covered() -> None:
    calls = 0

    def sync() -> None:
        nonlocal calls
        calls += 1
        raise OSError(5, "EIO")

    group = GroupSync(sync, lambda: 1)
    with pytest.raises(OSError):
        group.wait(1)
    with pytest.raises(OSError):  # a later writer tries again, and fails again
        group.wait(1)
    assert calls == 2 and group.synced == 0


async def test_deferred_commit_is_visible_at_once_and_durable_at_make_durable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mount's close: durability_deferred() commits are readable when they return, counted
    as not yet durable, and make_durable() syncs them (LevelDB's log sync covers their lsn, the
    journal's disks have them: until then they are lazy records, no fsync of their own)."""
    monkeypatch.setattr(journal, "LAZY_SECONDS", 3600.0)
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        assert not store.has_undurable
        with store.durability_deferred():
            await store.put_object("bkt", "k", b"x" * 100)
        assert await read_all(store, "bkt", "k") == b"x" * 100
        assert store.has_undurable
        lsn = store.db.written
        assert store.db.journal is not None
        logs = store.db.journal.logs.values()
        assert logs and all(dl.durable < lsn for dl in logs)
        await store.make_durable()
        assert not store.has_undurable
        assert store.db.log_sync.synced >= lsn
        assert sum(dl.durable >= lsn for dl in logs) >= store.db.journal.quorum
        await store.put_object("bkt", "k2", b"y")  # outside: durable on return, nothing deferred
        assert not store.has_undurable and store.db.log_sync.synced >= store.db.written
    finally:
        store.db.close()


def test_durability_interval_must_be_positive(tmp_path: Path) -> None:
    from appliance.config import ConfigError, load_config

    cfg = tmp_path / "stowage.toml"
    cfg.write_text("[mount]\ndurability_seconds = 0\n")
    with pytest.raises(ConfigError, match="durability_seconds"):
        load_config(cfg)
    cfg.write_text("[mount]\ndurability_seconds = 0.5\n")
    assert load_config(cfg).mount.durability_seconds == 0.5


async def test_deferred_commits_announce_durability_only_at_make_durable(tmp_path: Path) -> None:
    """Txn.on_durable (notifications, replication) of a deferred commit runs at make_durable,
    not when the commit returns: they act only on durable versions."""
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        fired: list[str] = []
        store.txn_hooks.append(lambda t: t.on_durable.append(lambda: fired.append("durable")))
        with store.durability_deferred():
            await store.put_object("bkt", "k", b"x")
        assert fired == []
        await store.make_durable()
        assert fired == ["durable"]
        await store.put_object("bkt", "k2", b"y")  # not deferred: announced when it returns
        assert fired == ["durable", "durable"]
    finally:
        store.db.close()


async def test_staged_commits_reach_the_journal_with_their_group_in_one_write_per_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A staged commit wakes no journal writer: its record waits for the group that makes it
    durable (MetaDB.durable), so a burst of commits costs each quorum disk one write and one
    fsync, and the spares none (their records are lazy)."""
    monkeypatch.setattr(journal, "LAZY_SECONDS", 3600.0)
    store = open_store(tmp_path / "app")
    try:
        await store.create_bucket("bkt")
        db = store.db
        j = db.journal
        assert j is not None
        before = j.batches.total, sum(j.batches.counts)
        lsns = []
        for i in range(8):
            b = db.batch()
            b.put(f"test-key-{i}".encode(), b"v")
            lsns.append(db.stage(b.writes))
        await trio.sleep(0.2)  # what a writer woken at staging would have written by now
        assert j.batches.total == before[0]
        assert all(not dl.items or dl.durable < lsns[0] for dl in j.logs.values())
        await db.durable(lsns[-1])
        live = [dl for dl in j.logs.values() if not dl.failed]
        assert sum(dl.durable >= lsns[-1] for dl in live) >= j.quorum
        writes = sum(j.batches.counts) - before[1]
        assert writes == min(j.quorum, len(live))  # one write per quorum disk, all 8 records in it
        assert j.batches.total - before[0] == 8 * writes
    finally:
        store.db.close()

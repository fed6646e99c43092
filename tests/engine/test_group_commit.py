"""Group commit (groupsync.py, fssync.py, MetaDB.durable) keeps every guarantee of a commit
made alone: kill -9 under 16 concurrent small PUTs loses no acknowledged write and leaves no
torn object, and any m lost disks still read back."""

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

from appliance.engine.groupsync import GroupSync

from .conftest import open_store, read_all

REPO = Path(__file__).resolve().parents[2]


def run_and_kill(root: Path, group_sync: str, want: int) -> dict[str, list[str]]:
    """Start the writer, SIGKILL it once `want` ACKs were read; every ACKed md5 per key."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.engine.small_writer", str(root), group_sync],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    acked: dict[str, list[str]] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    n = 0
    while n < want and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        _, key, md5 = line.split()
        acked.setdefault(key, []).append(md5)
        n += 1
    os.kill(proc.pid, signal.SIGKILL)
    for line in proc.stdout.read().splitlines():  # printed before the kill: acknowledged too
        parts = line.split()
        if len(parts) == 3:
            acked.setdefault(parts[1], []).append(parts[2])
    proc.stdout.close()
    proc.wait()
    return acked


@pytest.mark.parametrize("group_sync", ["on", "auto"])
async def test_kill_9_under_16_small_puts(tmp_path: Path, group_sync: str) -> None:
    root = tmp_path / "app"
    acked = run_and_kill(root, group_sync, 300)
    assert sum(len(v) for v in acked.values()) >= 50, "the writer made too little progress"
    store = open_store(root)
    try:
        for key, md5s in acked.items():
            # the last ACKed body, or the un-ACKed overwrite that may have committed after it
            v = store.head_object("bkt", key)
            data = await read_all(store, "bkt", key)
            assert hashlib.md5(data).hexdigest() == v.etag
            overwrite_pending = int(key.split("/obj")[1]) % 3 == 0 and len(md5s) == 1
            assert v.etag == md5s[-1] or overwrite_pending, key
        listed = store.list_objects("bkt", max_keys=100_000).entries
        for v in listed:  # nothing torn: every listed object reads back whole with its own ETag
            assert hashlib.md5(await read_all(store, "bkt", v.key)).hexdigest() == v.etag
        m = store.geometry().m
        for d in list(store.disks)[:m]:  # any m disks lost: every object still reads back
            shutil.rmtree(d.shards_dir)
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

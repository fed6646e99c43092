"""`stowage recover-metadata` as an operator runs it: refused while a daemon owns the disks (even
one it cannot reach over the control socket), progress lines while it works, a report of what it
restored and what it could not with the reason; and interrupted at any step, it finishes when run
again, with the same result as an uninterrupted run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import trio
from botocore.exceptions import ClientError

from appliance.engine import keys, recover
from appliance.engine.metasnap import stored_snapshots, take_snapshot
from appliance.engine.recover import RecoveryError, RecoveryStep, recover_metadata
from tests.engine.conftest import open_store, read_all
from tests.healing.helpers import Shard, all_shards

from .recovery_world import db_dump, describe_diff


def _shards_of(data_dir: Path, bucket: str, key: str) -> list[Shard]:
    for shards in all_shards(data_dir).values():
        ident = shards[0].header.identity
        if (ident.get("bucket"), ident.get("key")) == (bucket, key):
            return shards
    raise AssertionError(f"no shards for {bucket}/{key}")


def test_refused_while_the_daemon_owns_the_disks_then_progress_and_report(daemon: Any) -> None:
    s3 = daemon.s3()
    s3.create_bucket(Bucket="bkt")
    bodies = {f"k{i}": bytes([i]) * (i * 1000) for i in range(6)}  # k0 is empty
    for key, body in bodies.items():
        s3.put_object(Bucket="bkt", Key=key, Body=body, Metadata={"i": key})
    s3.put_object(Bucket="bkt", Key="lost", Body=b"x" * 5000)
    meta = daemon.data_dir / "meta"

    assert "metadata journal: on 6 disks" in daemon.cli("status").stdout
    r = daemon.cli("recover-metadata", check=False)
    assert r.returncode != 0 and "daemon is running" in r.stderr
    # a daemon the CLI cannot reach (its control socket gone) still owns its disks
    Path(daemon.info["control_socket"]).unlink()
    meta.rename(daemon.data_dir / "meta.old")
    r = daemon.cli("recover-metadata", check=False)
    assert r.returncode != 0 and "in use by another process" in r.stderr, r.stderr
    assert f"pid {daemon.proc.pid}" in r.stderr
    assert not meta.exists()  # refused before writing anything

    daemon.kill()  # SIGKILL: the kernel drops its locks
    for shard in _shards_of(daemon.data_dir, "bkt", "lost"):
        shard.remove()  # its data gone with more disks than the geometry survives
    r = daemon.cli("recover-metadata")
    for line in ("data disks", "reading the header of every shard file", "replaying the metadata journal",
                 "reconciling with the shard headers", "metadata DB rebuilt"):
        assert line in r.stderr, r.stderr
    assert "journal: " in r.stdout and ": complete" in r.stdout, r.stdout
    assert "restored: " in r.stdout and "7 object versions" not in r.stdout and "6 object versions" in r.stdout
    assert "NOT RESTORED (1)" in r.stdout and "bkt/lost (null): its data is on none of the disks found" in r.stdout

    daemon.start()
    s3 = daemon.s3()
    for key, body in bodies.items():
        got = s3.get_object(Bucket="bkt", Key=key)
        assert got["Body"].read() == body and got["Metadata"] == {"i": key}
    with pytest.raises(ClientError, match="NoSuchKey"):
        s3.get_object(Bucket="bkt", Key="lost")


async def _populate(root: Path) -> None:
    store = open_store(root, k=2, m=1)
    try:
        await store.create_bucket("bkt")
        await store.set_versioning("bkt", "Enabled")
        for i in range(8):
            await store.put_object("bkt", f"early/{i}", b"e" * i)
        await take_snapshot(store, 3)
        for i in range(12):
            await store.put_object("bkt", f"late/{i}", b"l" * i)
        damaged = store.head_object("bkt", "late/5").segments[0].segment_id
        store.seg.on_damage(damaged, [1], "read")  # a heal-queue entry (a hint, journaled unwaited)
        await store.delete_object("bkt", "early/3")  # durable, and so is everything before it
    finally:
        store.db.close()


class Interrupted(BaseException):
    """What Ctrl-C would raise."""


@pytest.mark.parametrize(("phase", "nth"), [("snapshot", 1), ("journal", 2), ("reconcile", 4)])
def test_an_interrupted_recovery_finishes_when_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         phase: str, nth: int) -> None:
    root = tmp_path / "app"
    trio.run(_populate, root)
    store = open_store(root, k=2, m=1)
    cfg = store.cfg
    store.db.close()
    lost = db_dump(cfg.meta_path)
    shutil.rmtree(cfg.meta_path)
    monkeypatch.setattr(recover, "LOAD_BATCH", 3)  # a LevelDB batch (and a progress line) every 3 writes

    seen: list[RecoveryStep] = []

    def interrupt(step: RecoveryStep) -> None:
        seen.append(step)
        if sum(1 for s in seen if s.phase == phase) == nth:
            raise Interrupted

    with pytest.raises(Interrupted):
        recover_metadata(cfg, interrupt)
    with pytest.raises(Exception, match="unfinished `stowage recover-metadata`"):
        open_store(root, k=2, m=1)  # the daemon would refuse it too
    steps: list[RecoveryStep] = []
    report = recover_metadata(cfg, steps.append)
    messages = " / ".join(s.message for s in steps)
    assert ("started over" if phase == "snapshot" else f"resuming an unfinished recovery at its {phase}") in messages
    assert report.journal and report.journal["complete"] and report.not_restored == []
    assert [k for k in lost if k.startswith(keys.HEAL)]  # the heal queue is compared too
    diff = describe_diff(lost, db_dump(cfg.meta_path))
    assert not diff, "\n".join(diff[:20])
    with pytest.raises(RecoveryError, match="not empty"):
        recover_metadata(cfg)  # finished: nothing left to resume

    async def check() -> None:
        s = open_store(root, k=2, m=1)
        try:
            assert await read_all(s, "bkt", "late/11") == b"l" * 11
            assert [v.key for v in s.list_objects("bkt").entries if v.key.startswith("early/3")] == []
        finally:
            s.db.close()

    trio.run(check)


def test_a_damaged_newest_snapshot_falls_back_to_the_previous_with_the_journal_complete(tmp_path: Path) -> None:
    root = tmp_path / "app"

    async def populate() -> list[str]:
        store = open_store(root, k=2, m=1)
        try:
            await store.create_bucket("bkt")
            for phase in ("a", "b", "c"):
                for i in range(5):
                    await store.put_object("bkt", f"{phase}/{i}", phase.encode() * i)
                await store.delete_object("bkt", f"{phase}/0")
                if phase != "c":
                    await take_snapshot(store, 3)
            return [s.segment_id for s in stored_snapshots(store.db)]
        finally:
            store.db.close()

    older, newest = trio.run(populate)
    store = open_store(root, k=2, m=1)
    cfg = store.cfg
    store.db.close()
    lost = db_dump(cfg.meta_path)
    shutil.rmtree(cfg.meta_path)
    for shard in all_shards(root)[newest][:2]:  # more than m shards: it cannot be decoded
        shard.remove()

    report = recover_metadata(cfg)
    assert report.snapshot and report.snapshot["segment_id"] == older
    assert report.journal and report.journal["complete"], report.journal_gaps
    assert [n for n in report.not_restored if newest in n and "unusable" in n]
    rebuilt = db_dump(cfg.meta_path)
    diff = describe_diff({k: v for k, v in lost.items() if newest.encode() not in k}, rebuilt)
    assert not diff, "\n".join(diff[:20])


def test_a_damaged_leveldb_log_stops_the_start_and_recovery_brings_everything_back(daemon_factory: Any) -> None:
    """A flipped byte in LevelDB's log: LevelDB skipped the damaged block of commits and the
    daemon served without them, then swept their shards as orphans (found by fuzzing). The
    start is refused, naming recover-metadata, which rebuilds every object from the journal."""
    import os

    d = daemon_factory(["--no-mount"])
    s3 = d.s3()
    s3.create_bucket(Bucket="bkt")
    bodies = {f"k{i:02d}": os.urandom(4096 if i % 2 else (1 << 20) + 7) for i in range(40)}
    for key, body in bodies.items():
        s3.put_object(Bucket="bkt", Key=key, Body=body)
    d.stop()
    meta = d.data_dir / "meta"
    log = max(meta.glob("*.log"), key=lambda p: p.stat().st_size)
    raw = bytearray(log.read_bytes())
    assert len(raw) > 30_000, "the commits should still be in LevelDB's log"
    raw[len(raw) // 3] ^= 0x01
    log.write_bytes(bytes(raw))
    shards = sorted(d.data_dir.glob("disks/*/shards/*/*"))
    for _ in range(2):  # the second start as well: the first one's open deleted the damaged log
        with pytest.raises(RuntimeError) as exc:
            d.start()
        assert d.proc is not None and d.proc.returncode == 78
        assert "dropping" in str(exc.value) and "recover-metadata" in str(exc.value)
    assert sorted(d.data_dir.glob("disks/*/shards/*/*")) == shards  # no orphan sweep ran
    meta.rename(d.data_dir / "meta.broken")
    d.cli("recover-metadata")
    d.start()
    s3 = d.s3()
    for key, body in bodies.items():
        assert s3.get_object(Bucket="bkt", Key=key)["Body"].read() == body, key

"""The healing components on an in-process store (real directory disks, real LevelDB): degraded
writes healed once a disk is available, snapshot retention and read-back, the disk monitor's
transitions (persisted to the DiskRecord)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

from appliance.engine import keys
from appliance.engine.disks import Disk
from appliance.engine.gc import collect_once
from appliance.engine.metasnap import list_snapshots, read_stream
from appliance.engine.records import DiskRecord, SegmentRecord
from appliance.services.diskmon import DiskMonitor
from appliance.services.heal import Healer
from appliance.services.snapshot import Snapshotter
from tests.engine.conftest import open_store, read_all


async def test_degraded_writes_are_healed_when_a_disk_is_available(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app", ndisks=6, k=4, m=2)
    try:
        await store.create_bucket("bkt")
        out = list(store.disks)[5]
        out.state = "offline"
        bodies = {f"k{i}": bytes([i]) * (300_000 * (i + 1)) for i in range(5)}
        for k, v in bodies.items():
            await store.put_object("bkt", k, v)
        queued = [k for k, _ in store.db.scan(keys.HEAL)]
        assert len(queued) == 5  # committed degraded => queued in the same batch

        healer = Healer(store)
        await healer.run_pass()
        assert healer.progress.pending == 5  # no sixth writable disk: waits, loses nothing

        new = Disk("new-disk", tmp_path / "new")
        new.path.mkdir()
        new.initialise()
        store.disks.add(new)
        await healer.run_pass()
        assert healer.progress.pending == 0
        for _, raw in store.db.scan(keys.SEGMENT):
            rec = SegmentRecord.decode(raw)
            assert None not in rec.shards and rec.damaged == []
            assert len(set(rec.shards)) == 6 and out.disk_id not in rec.shards
            assert Path(new.shard_path(rec.segment_id, rec.shards.index("new-disk"))).exists()
        out.state = "ok"
        for k, v in bodies.items():
            assert await read_all(store, "bkt", k) == v
    finally:
        store.db.close()


async def test_snapshots_are_kept_and_collected(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app", ndisks=6, grace=0)
    store.cfg = replace(store.cfg, snapshot=replace(store.cfg.snapshot, keep=2))
    try:
        await store.create_bucket("bkt")
        snap = Snapshotter(store)
        taken = []
        for i in range(4):
            await store.put_object("bkt", f"k{i}", b"x" * 1000)
            info = await snap.take()
            assert info is not None
            taken.append(info)
        assert await snap.take() is None  # nothing changed: no new snapshot
        kept = list_snapshots(store)
        assert [s.segment_id for s in kept] == [t.segment_id for t in taken[-2:]]
        await collect_once(store, 0)
        for old in taken[:2]:
            assert store.db.get(keys.segment(old.segment_id)) is None
            assert not list(tmp_path.glob(f"app/disks/*/shards/*/{old.segment_id}.*"))
        manifest = json.loads((next(iter(store.disks)).path / "meta-snapshots" / "manifest.json").read_text())
        assert [s["segment_id"] for s in manifest["snapshots"]] == [s.segment_id for s in kept]

        # the newest snapshot reads back (erasure-coded, verified) and holds the DB as it was
        rec = store.get_segment(kept[-1].segment_id)
        raw = b"".join([p async for p in store.seg.read(rec, 0, rec.length)])
        meta, records = read_stream(io.BytesIO(raw))
        items = dict(records)
        assert meta["appliance_id"] == store.db.appliance_id
        assert keys.latest("bkt", "k3") in items and keys.bucket("bkt") in items
    finally:
        store.db.close()


async def test_disk_monitor_transitions_are_persisted(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app", ndisks=6)
    try:
        healer = Healer(store)
        mon = DiskMonitor(store, healer, {str(d.path) for d in store.disks})
        await mon.check_all()
        assert {d.state for d in store.disks} == {"ok"}
        d0, d1, d2 = list(store.disks)[:3]
        # vanished (moved away whole: the journal's disk threads may be writing in it right now,
        # which made an rmtree fail with ENOTEMPTY on a loaded machine)
        d0.path.rename(tmp_path / "vanished-disk0")
        (d1.path / ".stowage-disk.json").write_text(
            (d1.path / ".stowage-disk.json").read_text().replace(store.db.appliance_id, "0123456789abcdef"))
        d2.counters.checksum_failures = 3  # a few bad chunks: warning, still writable
        await mon.check_all()
        assert d0.state == "offline" and "vanished" in d0.reasons[0]
        assert d1.state == "offline" and "belongs to appliance" in d1.reasons[0]
        assert d2.state == "warning" and d2.writable
        for d in (d0, d1, d2):
            assert store.db.get_record(DiskRecord, keys.disk(d.disk_id)).state == d.state
        assert healer._full_scan  # the failure woke the healer for a full scan
        d2.counters.io_errors = 150
        await mon.check_all()
        assert d2.state == "failed" and not d2.readable
    finally:
        store.db.close()

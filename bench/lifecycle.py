"""Lifecycle benchmark: transitions and expirations on an embedded 6-disk appliance.

    python -m bench.lifecycle [--dir DIR] [--objects N] [--quick]

Prints, beside the raw disk speed measured in the same run:
- transition throughput: MiB/s of data re-encoded from STANDARD (4+2) into STANDARD_IA (5+1)
  by the engine's transition (what the lifecycle worker calls), unpaced;
- expiration rate: versions/s the lifecycle worker removes in one pass over a bucket of N
  objects whose Expiration is due (empty objects: the metadata path alone), unpaced;
- the latency of a 4 KiB GET (median and 99th percentile) idle and while transitions run;
- rebalance throughput: MiB/s of shard files moved onto two disks added to a six-disk pool
  (services/rebalance.py, unpaced; each move reads the segment's k+m shards).
The worker's pacing (lifecycle.max_actions_per_second, transition_bytes_per_second) is lifted
for the measurement: those settings are what an operator would then choose between.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import trio

from appliance.config import DiskConfig, LifecycleConfig, RebalanceConfig, embedded_config
from appliance.engine.diskload import load_disks
from appliance.engine.lifecycle_rules import Rule, RuleFilter
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import RebalanceCursor
from appliance.services.heal import Healer
from appliance.services.lifecycle import LifecycleWorker
from appliance.services.rebalance import Rebalancer
from bench.raw import MIB, measure

DAY = 0.01  # a lifecycle day in seconds: every rule below is due at once


def open_store(root: Path, ndisks: int = 6) -> ObjectStore:
    cfg = embedded_config(root)
    cfg = replace(cfg, disks=[DiskConfig(path=str(root / "disks" / f"disk{i}")) for i in range(ndisks)],
                  lifecycle=LifecycleConfig(debug_day_seconds=DAY, max_actions_per_second=1e9,
                                            transition_bytes_per_second=1 << 50),
                  rebalance=RebalanceConfig(rate_bytes_per_sec=1 << 50))
    db = MetaDB(cfg.meta_path)
    return ObjectStore(cfg, db, load_disks(cfg, db))


async def transitions(store: ObjectStore, size: int, count: int, during: list[float]) -> float:
    await store.create_bucket("trans")
    body = bytes(range(256)) * (size // 256)
    versions = [await store.put_object("trans", f"o{i}", body) for i in range(count)]
    small = await store.put_object("trans", "small", b"s" * 4096)
    done = trio.Event()

    async def reader() -> None:
        while not done.is_set():
            t = time.perf_counter()
            async for _ in store.read_object(small):
                pass
            during.append(time.perf_counter() - t)
            await trio.sleep(0.005)

    moved = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        t = time.perf_counter()
        for v in versions:
            res = await store.transition(v, "STANDARD_IA")
            moved += res.moved_bytes if res else 0
        elapsed = time.perf_counter() - t
        done.set()
    return moved / MIB / elapsed


async def idle_gets(store: ObjectStore, n: int) -> list[float]:
    v = store.head_object("trans", "small")
    out = []
    for _ in range(n):
        t = time.perf_counter()
        async for _ in store.read_object(v):
            pass
        out.append(time.perf_counter() - t)
    return out


async def expirations(store: ObjectStore, count: int) -> tuple[float, int]:
    await store.create_bucket("expire")
    for i in range(count):
        await store.put_object("expire", f"k{i:07d}", b"")
    await store.put_lifecycle("expire", [Rule("all", True, RuleFilter("empty"), expiration_days=1)])
    await trio.sleep(3 * DAY)
    worker = LifecycleWorker(store, store.cfg)
    t = time.perf_counter()
    await worker.run_pass()
    elapsed = time.perf_counter() - t
    return worker.cur.expired / elapsed, worker.cur.expired


async def rebalance(root: Path, size: int, count: int) -> tuple[float, int]:
    """Fill a six-disk pool, add two disks, and time the rebalance: (MiB/s moved, shards moved)."""
    store = open_store(root)
    try:
        await store.create_bucket("grow")
        body = bytes(range(256)) * (size // 256)
        for i in range(count):
            await store.put_object("grow", f"o{i}", body)
        six = sorted(d.disk_id for d in store.disks)
    finally:
        store.db.close()
    store = open_store(root, 8)
    try:
        worker = Rebalancer(store, Healer(store))
        t = time.perf_counter()
        await worker.balance("default", RebalanceCursor("default", disks=six))
        elapsed = time.perf_counter() - t
        p = worker.pools["default"]
        return p.moved_bytes / MIB / elapsed, p.moved_shards
    finally:
        store.db.close()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000


async def main(directory: Path, objects: int, quick: bool) -> None:
    raw = await trio.to_thread.run_sync(measure, directory, (256 if quick else 1024) * MIB)
    store = open_store(directory / "app")
    try:
        during: list[float] = []
        size, count = (4 * MIB, 8) if quick else (16 * MIB, 32)
        rate = await transitions(store, size, count, during)
        idle = await idle_gets(store, 200)
        exp_rate, expired = await expirations(store, objects)
    finally:
        store.db.close()
    reb_rate, reb_shards = await rebalance(directory / "grow", size, count)
    print("lifecycle benchmark (6 directory disks on one filesystem; other work may share the machine)")
    for line in raw.lines():
        print("  " + line)
    print(f"  transition STANDARD 4+2 -> STANDARD_IA 5+1: {rate:8.1f} MiB/s ({count} x {size // MIB} MiB)")
    print(f"  expiration (one worker pass, unpaced):     {exp_rate:8.1f} versions/s ({expired} expired)")
    print(f"  4 KiB GET idle:            median {statistics.median(idle) * 1000:6.2f} ms, "
          f"p99 {pct(idle, 0.99):6.2f} ms")
    print(f"  4 KiB GET during transits: median {statistics.median(during) * 1000:6.2f} ms, "
          f"p99 {pct(during, 0.99):6.2f} ms ({len(during)} reads)")
    print(f"  rebalance 6 -> 8 disks (unpaced):         {reb_rate:8.1f} MiB/s of shards moved ({reb_shards} shards, "
          f"{count} x {size // MIB} MiB stored)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--dir", type=Path, default=None, help="where to build the appliance (default: a temp dir)")
    ap.add_argument("--objects", type=int, default=100_000, help="objects expired in the expiration run")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = ap.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="stowage-bench-lc-"))
    try:
        trio.run(main, base, args.objects, args.quick)
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)

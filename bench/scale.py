"""How cost grows with the number of objects: the facade at 0, 100,000 and 1,000,000 objects,
and HEAD/listing at 10,000,000 metadata records.

    python -m bench.scale [--dir DIR] [--steps 0,100000,1000000] [--records 10000000] [--puts 800]

At each step the bucket is topped up to the step's object count, then measured through the
object-store facade: PUT rate (4 KiB, 16 concurrent tasks, durable commits), HEAD and GET
latency (p50/p99 over random existing keys), a full paginated listing of the first 100,000 keys
(pages of 1,000, keys/s) and one delimiter page over the whole bucket (a seek per prefix, not a
scan: its time must not grow with the object count). Objects beyond the measured PUTs are
inserted straight into the metadata DB (filling a bucket with a million PUTs would measure
those PUTs, for an hour): real version records under real keys, all pointing at one real
segment, so GETs read data. The final step inserts `--records` records and measures HEAD and
listing only. Sizes are configurable; run it small on a shared machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import trio

from appliance.engine import keys as K
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import ObjectVersion
from bench.engine import open_store

BUCKET = "scale"
PREFIXES = 1000
INSERT_BATCH = 20_000


def name(i: int) -> str:
    return f"d{i % PREFIXES:04d}/obj{i:09d}"


def insert(store: ObjectStore, seed: ObjectVersion, start: int, stop: int) -> None:
    """Version records for objects start..stop-1, written straight into LevelDB."""
    seq = store.next_seq()
    for lo in range(start, stop, INSERT_BATCH):
        pairs: list[tuple[bytes, bytes | None]] = []
        for i in range(lo, min(stop, lo + INSERT_BATCH)):
            v = dataclasses.replace(seed, key=name(i), seq=seq + i)
            raw = v.encode()
            pairs += [(K.latest(BUCKET, v.key), raw), (K.version(BUCKET, v.key, v.seq), raw)]
        store.db.load(pairs)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[max(0, int(len(values) * p) - 1)] * 1000


async def put_rate(store: ObjectStore, n: int, step: int) -> float:
    body = os.urandom(4096)
    per = max(1, n // 16)

    async def worker(w: int) -> None:
        for j in range(per):
            await store.put_object(BUCKET, f"put{step}/{w}/{j}", body)

    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for w in range(16):
            nursery.start_soon(worker, w)
    return per * 16 / (time.perf_counter() - t)


async def latencies(store: ObjectStore, count: int, samples: int) -> tuple[list[float], list[float]]:
    heads, gets = [], []
    rnd = random.Random(count)
    for _ in range(samples):
        key = name(rnd.randrange(count))
        t = time.perf_counter()
        v = store.head_object(BUCKET, key)
        heads.append(time.perf_counter() - t)
        t = time.perf_counter()
        async for _ in store.read_object(v):
            pass
        gets.append(time.perf_counter() - t)
    return heads, gets


def listing(store: ObjectStore, limit: int) -> tuple[float, float]:
    """(keys/s of a paginated listing of up to `limit` keys, ms of one delimiter page)."""
    t = time.perf_counter()
    marker, total = "", 0
    while total < limit:
        page = store.list_entries(BUCKET, start_after=marker, max_keys=1000)
        total += len(page.entries)
        if not page.is_truncated:
            break
        marker = page.next_marker
    rate = total / (time.perf_counter() - t) if total else 0.0
    t = time.perf_counter()
    store.list_entries(BUCKET, delimiter="/", max_keys=1000)
    return rate, (time.perf_counter() - t) * 1000


async def main(directory: Path, steps: list[int], records: int, puts: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="scale-", dir=directory))
    store = open_store(root)
    try:
        await store.create_bucket(BUCKET)
        seed = await store.put_object(BUCKET, name(0), os.urandom(4096))
        print(f"Stowage scale benchmark — facade, embedded 6 disks, dir {directory}")
        print(f"  {'objects':>12} {'PUT/s':>8} {'HEAD p50/p99 ms':>17} {'GET p50/p99 ms':>16} "
              f"{'list keys/s':>12} {'delimiter page ms':>18}")
        have = 1
        for step in steps:
            if step > have:
                await trio.to_thread.run_sync(insert, store, seed, have, step)
                have = step
            rate = await put_rate(store, puts, step)
            heads, gets = await latencies(store, have, 300)
            keys_s, delim_ms = await trio.to_thread.run_sync(listing, store, 100_000)
            print(f"  {have:>12,} {rate:8.0f} {statistics.median(heads) * 1000:8.3f}/{pct(heads, 0.99):<8.3f}"
                  f"{statistics.median(gets) * 1000:7.3f}/{pct(gets, 0.99):<8.3f} {keys_s:12,.0f} {delim_ms:18.1f}")
        if records > have:
            t = time.perf_counter()
            await trio.to_thread.run_sync(insert, store, seed, have, records)
            print(f"  ({records - have:,} records inserted in {time.perf_counter() - t:.0f} s)")
            heads, _ = await latencies(store, records, 300)
            keys_s, delim_ms = await trio.to_thread.run_sync(listing, store, 100_000)
            print(f"  {records:>12,} {'-':>8} {statistics.median(heads) * 1000:8.3f}/{pct(heads, 0.99):<8.3f}"
                  f"{'-':>16} {keys_s:12,.0f} {delim_ms:18.1f}   (metadata records only: HEAD and listing)")
    finally:
        store.db.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="cost against object count")
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp/stowage-bench"))
    ap.add_argument("--steps", default="0,100000,1000000", help="object counts, comma-separated")
    ap.add_argument("--records", type=int, default=10_000_000, help="records for the HEAD/listing-only step")
    ap.add_argument("--puts", type=int, default=800, help="4 KiB PUTs measured per step")
    args = ap.parse_args()
    trio.run(main, args.dir, [int(s) for s in args.steps.split(",")], args.records, args.puts)

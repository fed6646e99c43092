"""How cost grows with the number of objects: the facade at 0, 100,000 and 1,000,000 objects,
and HEAD/listing at 10,000,000 metadata records.

    python -m bench.scale [--dir DIR] [--steps 0,100000,1000000] [--records 10000000] [--puts 800]

At each step the bucket is topped up to the step's object count, then measured through the
object-store facade: PUT rate (4 KiB, 16 concurrent tasks, durable commits), HEAD and GET
latency (p50/p99 over random existing keys), a full paginated listing of the first 100,000 keys
(pages of 1,000, keys/s) and one delimiter page over the whole bucket (a seek per prefix, not a
scan: its time must not grow with the object count; timed first, when its seeks open and read
LevelDB's files, and warm). Objects beyond the measured PUTs are inserted straight into the
metadata DB (filling a bucket with a million PUTs would measure those PUTs, for an hour): the
record of a real PUT under other keys, all pointing at one real segment, so GETs read data;
inserted in key order and compacted, as a bucket filled over time would be. The final step
inserts `--records` records and measures HEAD and listing only. Each row also gives the insert
time and the process's peak RSS (the inserts are batched: memory stays bounded). Sizes are
configurable; on a shared machine run it small or niced.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio

from appliance.engine import keys as K
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import ObjectVersion
from bench.engine import open_store

BUCKET = "scale"
PREFIXES = 1000
INSERT_BATCH = 40_000
KEY_MARK = "@@key@@"
SEQ_MARK = 987_654_321_987_654


def name(i: int) -> str:
    return f"d{i % PREFIXES:04d}/obj{i:09d}"


def record_maker(seed: ObjectVersion) -> Callable[[str, int], bytes]:
    """The seed's encoded record with another key and seq: what `seed` with those fields
    encodes to (checked once below), made by two byte replacements instead of a dataclass copy
    and a JSON encoding (~40 us a record: 10,000,000 of them would take the benchmark's hour)."""
    template = dataclasses.replace(seed, key=KEY_MARK, seq=SEQ_MARK).encode()
    assert template.count(KEY_MARK.encode()) == 1 and template.count(str(SEQ_MARK).encode()) == 1

    def make(key: str, seq: int) -> bytes:
        return template.replace(KEY_MARK.encode(), key.encode()).replace(str(SEQ_MARK).encode(), str(seq).encode())

    sample = dataclasses.replace(seed, key=name(7), seq=seed.seq + 7)
    assert make(sample.key, sample.seq) == sample.encode()
    return make


def insert(store: ObjectStore, seed: ObjectVersion, start: int, stop: int, versions: bool = True) -> None:
    """Version records (latest and version keys) for objects start..stop-1, written straight
    into LevelDB in key order (prefix by prefix), then the bucket's range compacted: the
    steady state of a bucket filled over time, not a pile of fresh level-0 files.
    `versions=False`: the latest keys alone, which are all HEAD and the listing read (the
    records-only step: half the writes, and LevelDB's compaction of two interleaved ranges
    was most of an insert's time)."""
    seq0 = store.next_seq()
    make = record_maker(seed)
    pairs: list[tuple[bytes, bytes | None]] = []
    for p in range(PREFIXES):
        for i in range(start + (p - start) % PREFIXES, stop, PREFIXES):
            key, seq = name(i), seq0 + i
            raw = make(key, seq)
            pairs.append((K.latest(BUCKET, key), raw))
            if versions:
                pairs.append((K.version(BUCKET, key, seq), raw))
            if len(pairs) >= INSERT_BATCH:
                store.db.load(pairs)
                pairs = []
    store.db.load(pairs)
    store.db.compact(K.latest_prefix(BUCKET))


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


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def latencies(store: ObjectStore, count: int, samples: int,
                    head_only: bool = False) -> tuple[list[float], list[float]]:
    heads: list[float] = []
    gets: list[float] = []
    rnd = random.Random(count)
    for _ in range(samples):
        key = name(rnd.randrange(count))
        t = time.perf_counter()
        v = store.head_object(BUCKET, key)
        heads.append(time.perf_counter() - t)
        if head_only:
            continue
        t = time.perf_counter()
        async for _ in store.read_object(v):
            pass
        gets.append(time.perf_counter() - t)
    return heads, gets


def listing(store: ObjectStore, limit: int) -> tuple[float, str]:
    """(keys/s of a paginated listing of up to `limit` keys, ms of one delimiter page: the first,
    whose seeks open and read LevelDB's files of the bucket, and the best of three more)."""
    t = time.perf_counter()
    marker, total = "", 0
    while total < limit:
        page = store.list_entries(BUCKET, start_after=marker, max_keys=1000)
        total += len(page.entries)
        if not page.is_truncated:
            break
        marker = page.next_marker
    rate = total / (time.perf_counter() - t) if total else 0.0
    times = []
    for _ in range(4):
        t = time.perf_counter()
        store.list_entries(BUCKET, delimiter="/", max_keys=1000)
        times.append((time.perf_counter() - t) * 1000)
    return rate, f"{times[0]:.1f}/{min(times[1:]):.1f}"


async def main(directory: Path, steps: list[int], records: int, puts: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="scale-", dir=directory))
    store = open_store(root)
    try:
        await store.create_bucket(BUCKET)
        seed = await store.put_object(BUCKET, name(0), os.urandom(4096))
        print(f"Stowage scale benchmark — facade, embedded 6 disks, dir {directory}")
        print(f"  {'objects':>12} {'PUT/s':>8} {'HEAD p50/p99 ms':>17} {'GET p50/p99 ms':>16} "
              f"{'list keys/s':>12} {'delimiter page ms, first/warm':>30} {'insert s':>9} {'peak RSS MiB':>13}")
        have = 1
        for step in [*steps, records]:
            records_only = step == records and step not in steps
            if step <= have and records_only:
                continue
            t = time.perf_counter()
            if step > have:
                await trio.to_thread.run_sync(insert, store, seed, have, step, not records_only)
                have = step
            inserted = time.perf_counter() - t
            put = "-" if records_only else f"{await put_rate(store, puts, step):.0f}"
            heads, gets = await latencies(store, have, 300, head_only=records_only)
            keys_s, delim_ms = await trio.to_thread.run_sync(listing, store, 100_000)
            get = "-" if records_only else f"{statistics.median(gets) * 1000:.3f}/{pct(gets, 0.99):.3f}"
            print(f"  {have:>12,} {put:>8} {statistics.median(heads) * 1000:8.3f}/{pct(heads, 0.99):<8.3f}"
                  f"{get:>16} {keys_s:12,.0f} {delim_ms:>30} {inserted:9.0f} {peak_rss_mib():13.0f}"
                  + ("   (metadata records only: HEAD and listing)" if records_only else ""), flush=True)
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

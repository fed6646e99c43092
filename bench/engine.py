"""Engine benchmark: the object-store facade on an embedded 6-disk (4+2) appliance.

    python -m bench.engine [--dir DIR] [--quick]

Prints put/get throughput for 1 MiB, 64 MiB and 1 GiB objects, 4 KiB puts/gets per second at
1 and 16 concurrent tasks, each unencrypted and with SSE-S3 (a fresh data key per object,
wrapped by the master key; AES-256-GCM per block), and a delimiter listing of a large bucket,
beside the raw sequential disk speed and memory speed of the same filesystem measured in the
same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import trio

from appliance.config import DiskConfig, embedded_config
from appliance.engine.diskload import load_disks
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore
from appliance.engine.volumes import volume_numbers, volume_path
from appliance.iam.kms import Kms
from appliance.iam.masterkey import load_or_create
from bench.raw import MIB, drop_cache, measure
from bench.readme import readme


def open_store(root: Path) -> ObjectStore:
    cfg = replace(embedded_config(root), disks=[DiskConfig(path=str(root / "disks" / f"disk{i}")) for i in range(6)])
    db = MetaDB(cfg.meta_path)
    return ObjectStore(cfg, db, load_disks(cfg, db))


def drop_store_cache(store: ObjectStore) -> None:
    """Shard files and volumes (packed small objects) out of the page cache: cold reads."""
    for d in store.disks:
        for _s, _i, path in d.iter_shard_files():
            drop_cache(Path(path))
        for n in volume_numbers(d.path):
            drop_cache(Path(volume_path(d.path, n)))


async def throughput(store: ObjectStore, size: int, count: int, kms: Kms | None = None) -> tuple[float, float]:
    piece = os.urandom(min(size, 4 * MIB))

    async def body():
        left = size
        while left > 0:
            n = min(left, len(piece))
            yield piece[:n]
            left -= n

    resolve = kms.resolver() if kms else None
    t = time.perf_counter()
    versions = [await store.put_object("bench", f"tp{size}-{i}", body(),
                                       encrypt_with=kms.sse_s3_key() if kms else None) for i in range(count)]
    put = size * count / MIB / (time.perf_counter() - t)
    await trio.to_thread.run_sync(drop_store_cache, store)
    t = time.perf_counter()
    for v in versions:
        async for _ in store.read_object(v, decrypt_with=resolve):
            pass
    get = size * count / MIB / (time.perf_counter() - t)
    for v in versions:
        await store.delete_object("bench", v.key)
    return put, get


async def small_ops(store: ObjectStore, n: int, concurrency: int, kms: Kms | None = None) -> tuple[float, float]:
    body = os.urandom(4096)
    per = n // concurrency
    resolve = kms.resolver() if kms else None
    prefix = "small-sse" if kms else "small"

    async def putter(w: int) -> None:
        for i in range(per):
            await store.put_object("bench", f"{prefix}/{w}/{i}", body, encrypt_with=kms.sse_s3_key() if kms else None)

    async def getter(w: int) -> None:
        for i in range(per):
            v = store.head_object("bench", f"{prefix}/{w}/{i}")
            async for _ in store.read_object(v, decrypt_with=resolve):
                pass

    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for w in range(concurrency):
            nursery.start_soon(putter, w)
    puts = per * concurrency / (time.perf_counter() - t)
    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for w in range(concurrency):
            nursery.start_soon(getter, w)
    gets = per * concurrency / (time.perf_counter() - t)
    return puts, gets


async def listing(store: ObjectStore, keys: int, prefixes: int) -> tuple[float, float]:
    from appliance.engine import keys as K
    from appliance.engine.records import ObjectVersion

    batch = store.db.batch()
    for p in range(prefixes):
        for i in range(keys // prefixes):
            name = f"d{p:05d}/f{i:06d}"
            batch.put(K.latest("listing", name), ObjectVersion("listing", name, "null", 1, 0, size=1, etag="e"))
    await store.create_bucket("listing")
    store.db.commit_now(batch)
    t = time.perf_counter()
    page = store.list_objects("listing", delimiter="/", max_keys=1000)
    one_page = (time.perf_counter() - t) * 1000
    assert len(page.common_prefixes) == min(prefixes, 1000)
    t = time.perf_counter()
    marker, total = "", 0
    while True:
        page = store.list_objects("listing", start_after=marker, max_keys=1000)
        total += len(page.entries)
        if not page.is_truncated:
            break
        marker = page.next_marker
    full = total / (time.perf_counter() - t)
    return one_page, full


async def main(directory: Path, quick: bool) -> None:
    raw = await trio.to_thread.run_sync(measure, directory, (256 if quick else 1024) * MIB)
    root = Path(tempfile.mkdtemp(prefix="engine-", dir=directory))
    store = open_store(root)
    kms = Kms(store.db, load_or_create(root / "keys" / "master.key"))
    try:
        await store.create_bucket("bench")
        geo = store.geometry()
        print(f"Stowage engine benchmark — {geo.k}+{geo.m}, block {geo.block_size // MIB} MiB, dir {directory}")
        for line in raw.lines():
            print("  " + line)
        ideal = raw.seq_write_mib_s * geo.k / geo.n
        print(f"  ideal object write at {geo.k}+{geo.m} (raw write x k/n): {ideal:8.1f} MiB/s")
        print(f"  issue 15 targets: 64 MiB put >= {0.9 * ideal:.0f} MiB/s (90% of the ideal), get >= "
              f"{0.8 * raw.seq_read_mib_s:.0f} MiB/s (80% of the raw cold read); 4 KiB x16 put >= 1,000 ops/s, "
              f"get >= 2,500 ops/s; a delimiter page stays a seek (its time flat in the key count)")
        sizes = [(MIB, 64), (64 * MIB, 4), (1024 * MIB, 1)] if not quick else [(MIB, 16), (64 * MIB, 2)]
        for size, count in sizes:
            label = f"{size // MIB} MiB" if size < 1024 * MIB else "1 GiB"
            for name, sse in (("plain ", None), ("SSE-S3", kms)):
                put, get = await throughput(store, size, count, sse)
                print(f"  {label:>7} objects x{count:<3} {name} put {put:8.1f} MiB/s   get (cold) {get:8.1f} MiB/s"
                      f"   ({readme('engine put')}; get {readme('engine get')[8:]})")
        for conc in (1, 16):
            for name, sse in (("plain ", None), ("SSE-S3", kms)):
                puts, gets = await small_ops(store, 400 if quick else 2000, conc, sse)
                print(f"  4 KiB objects, {conc:>2} concurrent, {name}: put {puts:8.1f} ops/s   get {gets:8.1f} ops/s"
                      f"   ({readme('engine 4 KiB')}, 16 concurrent)")
        n = 100_000 if quick else 1_000_000
        one_page, full = await listing(store, n, 1000)
        print(f"  listing {n:,} keys under 1,000 prefixes: delimiter page of 1,000 in {one_page:.1f} ms; "
              f"full paginated listing {full:,.0f} keys/s   ({readme('delimiter listing')})")
    finally:
        store.db.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp/stowage-bench"))
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = ap.parse_args()
    trio.run(main, args.dir, args.quick)

"""What the metadata journal costs small writes: 4 KiB PUTs through the engine in-process, with
the journal (each commit appended to the data disks and fsync'd on m+1 of them before it is
acknowledged) and without it (StoreCore(journal=False), which exists for this measurement).

    python -m bench.journal [--dir /var/tmp/stowage-bench] [--rounds 4] [--puts 800]

Each round measures both, in alternating order, on fresh stores; the difference is the median
of the rounds' own ratios, so drift of the machine (other load) cancels out. With 16 concurrent
writers concurrent commits share the journal's fsyncs (group commit); with 1 every commit waits
for its own, the worst case.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import trio

from appliance.config import DiskConfig, embedded_config
from appliance.engine.diskload import load_disks
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore


def open_store(root: Path, journal: bool) -> ObjectStore:
    cfg = replace(embedded_config(root), disks=[DiskConfig(path=str(root / "disks" / f"disk{i}")) for i in range(6)])
    db = MetaDB(cfg.meta_path)
    return ObjectStore(cfg, db, load_disks(cfg, db), journal=journal)


async def put_rate(store: ObjectStore, n: int, concurrency: int) -> float:
    body = os.urandom(4096)
    per = max(1, n // concurrency)
    await store.create_bucket("bench")

    async def putter(w: int) -> None:
        for i in range(per):
            await store.put_object("bench", f"small/{w}/{i}", body)

    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for w in range(concurrency):
            nursery.start_soon(putter, w)
    return per * concurrency / (time.perf_counter() - t)


def one(work: Path, journal: bool, n: int, concurrency: int) -> float:
    root = Path(tempfile.mkdtemp(prefix="journal-" if journal else "nojournal-", dir=work))
    store = open_store(root, journal)
    try:
        return trio.run(put_rate, store, n, concurrency)
    finally:
        store.db.close()
        shutil.rmtree(root, ignore_errors=True)


def main(directory: Path, rounds: int, puts: int, concurrencies: list[int]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="journalbench-", dir=directory))
    try:
        print(f"metadata journal cost, engine in-process, 4 KiB PUT ({rounds} paired rounds, dir {directory})")
        for c in concurrencies:
            on: list[float] = []
            off: list[float] = []
            for r in range(rounds):
                order = (True, False) if r % 2 == 0 else (False, True)
                for journal in order:
                    (on if journal else off).append(one(work, journal, puts if c > 1 else puts // 4, c))
            ratios = [a / b - 1 for a, b in zip(on, off, strict=True)]
            print(f"  {c:2d} writers: without journal {statistics.median(off):8.1f} PUT/s   with journal "
                  f"{statistics.median(on):8.1f} PUT/s   (journal {statistics.median(ratios) * 100:+.1f}%, "
                  "median of paired rounds)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="metadata journal cost on small writes")
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp/stowage-bench"))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--puts", type=int, default=800, help="PUTs per measurement with 16 writers (a quarter with 1)")
    ap.add_argument("--concurrency", default="16,1", help="comma-separated numbers of concurrent writers")
    args = ap.parse_args()
    main(args.dir, args.rounds, args.puts, [int(c) for c in args.concurrency.split(",")])

"""Soak: a bounded mixed workload on fault disks, with faults injected on a schedule.

    python -m bench.soak [--seconds 600] [--dir /var/tmp/stowage-soak] [--seed 1] [--raw-mib 256]
    python -m bench.soak --power-cuts 20 [--seed 1]

A real daemon whose six data disks and metadata directory are fault-injecting FUSE disks
(tests/faultfs) takes S3 PUT/GET/DELETE/multipart/copy from two threads and, when FUSE is usable,
mount writes + fsync + renames from a third (tests/faultmatrix/appliance.py: the fault matrix's
workload), while a scheduler injects one fault at a time, every few seconds: EIO on a data disk
(all operations, or 30 % of them), a full data disk, 50 ms of latency on every operation of a
data disk, a data disk whose every operation hangs for a few seconds, and a power cut of every disk at once
(the daemon is killed with them and restarted). At the end every write acknowledged in the run
is read back: the figures are the operations done, the faults injected and the writes lost
(must be 0), beside the raw disk speed of the machine (bench/raw.py) measured in the same run.
Needs root and /dev/fuse (as the fault matrix does).

`--power-cuts N` runs N power cuts of every disk instead, at the named moments of the write,
multipart, mount rename, GC, heal, lifecycle transition, replication and metadata snapshot paths
(each at least once when N >= 9) and at random moments of the workload
(tests/faultmatrix/powercuts.py; the fault matrix runs 20 cuts), the daemon restarted after each, and checks every
write acknowledged in any round at the end.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.raw import measure
from tests.faultfs import usable
from tests.faultmatrix.appliance import BUCKET, FaultAppliance, Workload, fault_appliance
from tests.faultmatrix.powercuts import MOMENTS, nothing, plan, power_cut_run

CONFIG = "[gc]\ngrace_seconds = 0\ninterval_seconds = 0.5\n[snapshot]\ninterval_seconds = 10\n[stall]\nseconds = 3\n"
FAULT_SECONDS = (2.0, 6.0)  # how long one fault lasts
QUIET_SECONDS = (1.0, 4.0)  # between two faults


def _disk_fault(a: FaultAppliance, rnd: random.Random, kind: str) -> Callable[[], None]:
    """Inject one fault on a random data disk; returns how to end it."""
    disk = rnd.choice(a.data)
    c = disk.control
    if kind == "eio":
        c.eio("all")
    elif kind == "eio-30%":
        c.eio(["reads", "writes"], probability=0.3, seed=rnd.randrange(1 << 30))
    elif kind == "full":
        c.fill()
    elif kind == "latency":
        c.latency(0.05)
    elif kind == "stall":
        c.hang("all")
    else:
        raise ValueError(kind)
    return c.clear


def soak(seconds: float, work: Path, seed: int) -> int:
    rnd = random.Random(seed)
    faults: Counter[str] = Counter()
    workloads: list[Workload] = []
    kinds = ["eio", "eio-30%", "full", "latency", "stall", "power-cut"]
    with fault_appliance(work, mount=True, config=CONFIG) as a:
        a.daemon.s3().create_bucket(Bucket=BUCKET)

        def new_workload() -> Workload:
            mount = a.daemon.info.get("mount")
            w = Workload(a.daemon.s3, Path(mount) if mount else None, seed=len(workloads)).start()
            workloads.append(w)
            return w

        w = new_workload()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(rnd.uniform(*QUIET_SECONDS), max(0.0, end - time.monotonic())))
            if time.monotonic() >= end:
                break
            kind = rnd.choice(kinds)
            faults[kind] += 1
            if kind == "power-cut":
                w.stop.set()
                a.power_cut()
                w.finish()
                w = new_workload()
                continue
            undo = _disk_fault(a, rnd, kind)
            time.sleep(min(rnd.uniform(*FAULT_SECONDS), max(0.0, end - time.monotonic())))
            undo()
        w.finish()
        s3 = a.daemon.s3()
        problems = [p for wl in workloads for p in wl.problems(s3)]
        acked = sum(len(wl.acked) for wl in workloads)
        print(f"soak: {seconds:.0f} s, seed {seed}, mount {'on' if a.daemon.info.get('mount') else 'off'}")
        print(f"operations done:         {sum(wl.ops for wl in workloads):8d}"
              f"  (failed under faults: {sum(wl.failures for wl in workloads)},"
              f" reads checked during the run: {sum(wl.reads for wl in workloads)})")
        why = sum((wl.why_failed for wl in workloads), Counter[str]())
        print(f"failures by error:       {', '.join(f'{k} {n}' for k, n in why.most_common()) or '-'}")
        kinds_done = ", ".join(f"{k} {n}" for k, n in sorted(faults.items()))
        print(f"faults injected:         {sum(faults.values()):8d}  ({kinds_done})")
        print(f"acknowledged writes:     {acked:8d}  (every one read back at the end)")
        print(f"writes lost:             {len(problems):8d}")
        for p in problems[:20]:
            print(f"  {p}")
    return 1 if problems else 0


def power_cuts(cuts: int, work: Path, seed: int) -> int:
    print(f"power cuts: {cuts}, seed {seed}")
    with power_cut_run(work, seed) as run:
        for point in plan(run.rnd, cuts):
            run.cut_at(point, MOMENTS[point] if point else nothing)
        run.check_all()
        acked = sum(len(w.acked) for w in run.workloads) + len(run.acked)
    print(f"acknowledged writes: {acked} (every one read back after its cut and at the end); writes lost: 0")
    return 0


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=600.0, help="how long the workload runs (default 600)")
    p.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--raw-mib", type=int, default=256, help="size of the raw disk speed test file")
    p.add_argument("--power-cuts", type=int, default=0, help="run this many power cuts at named and random moments")
    args = p.parse_args()
    if not usable():
        sys.exit("bench.soak needs root and /dev/fuse (the fault disks are FUSE mounts)")
    work = Path(tempfile.mkdtemp(prefix="stowage-soak-", dir=args.dir))
    if args.power_cuts:
        try:
            sys.exit(power_cuts(args.power_cuts, work, args.seed))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    try:
        raw = measure(work / "raw", size=args.raw_mib << 20)
        for line in raw.lines():
            print(line)
        rc = soak(args.seconds, work / "run", args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()

"""Before/after, side by side in one run: the S3 figures of issue 15 for two source trees.

    python -m bench.compare --before /path/to/old/tree [--dir DIR] [--rounds 2] [--quick] [--sse-s3]
                            [--client wrk|threads]

Other work on the machine moves absolute figures from minute to minute, so a before/after table
is only fair when both sides share the minutes: each round starts a daemon from each tree in
turn (alternating which goes first), runs the same workload against it, and stops it; the table
shows each side's median over the rounds. Beside each figure: the issue's target, and the raw
figure of this machine it is judged against (bench.raw, measured at the start of the run).

Per side: 4 KiB and 256 KiB PUT/GET ops/s at 16 clients with p99, 64 MiB PUT/GET MiB/s at 4
clients, a full ListObjectsV2 (pages of 1,000) keys/s (the first after the daemon's start, beside
its start-up passes, and the next), the daemon's CPU time per small op
(user + system, from /proc) and its peak PSS summed over its process tree. Buckets have no
default encryption, unless `--sse-s3`: the shipped default, every new bucket SSE-S3. The small
objects' load comes from wrk's 16 connections when wrk is installed (bench.wrkload), else from
16 client threads (`--client threads`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

from bench import wrkload
from bench.pss import PssWatch
from bench.raw import MIB, RawSpeeds, measure
from bench.s3 import (
    KIB,
    Client,
    full_listing,
    populate_listing,
    small_ops,
    small_ops_wrk,
    start_daemon,
    stop_daemon,
    throughput,
)

K, M = 4, 2  # the bench daemons' geometry (6 disks)


@dataclass
class Side:
    name: str
    code: Path | None
    figures: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.figures.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.figures[name]) if name in self.figures else float("nan")


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


T = TypeVar("T")


def measured(pid: int, fn: Callable[[], T]) -> tuple[T, float]:
    c0 = cpu_seconds(pid)
    out = fn()
    return out, cpu_seconds(pid) - c0


def one_round(side: Side, work: Path, quick: bool, list_keys: int, sse_s3: bool, use_wrk: bool) -> None:
    data = work / f"{side.name}-data"
    proc, d = start_daemon(data, side.code, sse_s3)
    try:
        watch = PssWatch(proc.pid)
        Client(d["endpoint"], d["access_key"], d["secret_key"]).call("PUT", "/bench")
        per = 30 if quick else 100
        prefix = f"r{time.monotonic_ns()}-"
        if use_wrk:
            res, cpu = measured(proc.pid, lambda: small_ops_wrk(d, work, 4 * KIB, 16, quick, prefix))
        else:
            res, cpu = measured(proc.pid, lambda: small_ops(d, 4 * KIB, 16, per, prefix))
        for method in ("PUT", "GET"):
            ops, _p50, p99, _n = res[method]
            side.add(f"4 KiB {method} ops/s", ops)
            side.add(f"4 KiB {method} p99 ms", p99)
        side.add("daemon CPU ms per 4 KiB op", cpu * 1000 / (res["PUT"][3] + res["GET"][3]))
        if use_wrk:
            res = small_ops_wrk(d, work, 256 * KIB, 16, quick)
        else:
            res = small_ops(d, 256 * KIB, 16, 8 if quick else 25)
        for method in ("PUT", "GET"):
            side.add(f"256 KiB {method} ops/s", res[method][0])
        big = os.urandom(64 * MIB)
        put, get = throughput(d, 4, 1 if quick else 2, big)
        del big
        side.add("64 MiB PUT MiB/s (4 clients)", put)
        side.add("64 MiB GET MiB/s (4 clients)", get)
        side.add("daemon peak PSS MiB", watch.stop() / MIB)
    finally:
        stop_daemon(proc)
    populate_listing(data, list_keys)
    proc, d = start_daemon(data, side.code, sse_s3)
    try:
        # the first listing after a start shares the daemon with its start-up passes (the sweep
        # of the volume the last run appended to, the compactor's survey); the second is the
        # listing's own speed
        (listed, secs), _ = measured(proc.pid, lambda: full_listing(d))
        side.add("ListObjectsV2 keys/s after start", listed / secs)
        (listed, secs), cpu = measured(proc.pid, lambda: full_listing(d))
        side.add("ListObjectsV2 keys/s", listed / secs)
        side.add("daemon CPU us per listed key", cpu * 1e6 / listed)
    finally:
        stop_daemon(proc)
        shutil.rmtree(data, ignore_errors=True)


def targets(raw: RawSpeeds) -> dict[str, tuple[str, str]]:
    """figure -> (target, the raw figure it is judged against)."""
    ceiling = raw.seq_write_mib_s * K / (K + M)
    return {
        "4 KiB PUT ops/s": (">= 1,000", f"durable small files {raw.durable_files_per_s:,.0f}/s"),
        "4 KiB PUT p99 ms": ("<= 50", ""),
        "4 KiB GET ops/s": (">= 2,500", ""),
        "4 KiB GET p99 ms": ("<= 50", ""),
        "256 KiB PUT ops/s": (">= 400", ""),
        "256 KiB GET ops/s": (">= 1,200", ""),
        "64 MiB PUT MiB/s (4 clients)": (f">= {0.9 * ceiling:,.0f}", f"{K}+{M} ceiling {ceiling:,.0f} MiB/s"),
        "64 MiB GET MiB/s (4 clients)": (f">= {0.8 * raw.seq_read_mib_s:,.0f}",
                                         f"cold read {raw.seq_read_mib_s:,.0f} MiB/s"),
        "ListObjectsV2 keys/s after start": ("", ""),
        "ListObjectsV2 keys/s": (">= 100,000", ""),
        "daemon peak PSS MiB": ("<= 300", ""),
        "daemon CPU ms per 4 KiB op": ("", ""),
        "daemon CPU us per listed key": ("", ""),
    }


def main(before: Path, directory: Path, rounds: int, quick: bool, list_keys: int, sse_s3: bool = False,
         use_wrk: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    raw = measure(directory, (256 if quick else 1024) * MIB)
    sides = [Side("before", before.resolve()), Side("after", None)]
    work = Path(tempfile.mkdtemp(prefix="compare-", dir=directory))
    try:
        for r in range(rounds):
            for side in (sides if r % 2 == 0 else sides[::-1]):
                one_round(side, work, quick, list_keys, sse_s3, use_wrk)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"Stowage before/after, side by side — {rounds} rounds alternating, medians; dir {directory}"
          f"{' (quick)' if quick else ''}{'; buckets SSE-S3 (the shipped default)' if sse_s3 else ''}"
          f"; before = {before}; small objects from {'wrk' if use_wrk else 'the threaded client'}")
    for line in raw.lines():
        print("  " + line)
    print(f"  {'figure':<32} {'before':>10} {'after':>10} {'change':>8}   target (raw figure)")
    for name, (target, rawfig) in targets(raw).items():
        b, a = sides[0].median(name), sides[1].median(name)
        change = f"{(a / b - 1) * 100:+.0f}%" if b else ""
        note = f"{target}" + (f" ({rawfig})" if rawfig else "")
        print(f"  {name:<32} {b:10.1f} {a:10.1f} {change:>8}   {note}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="before/after S3 figures side by side")
    ap.add_argument("--before", type=Path, required=True, help="the source tree to compare with")
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp/stowage-bench"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--list-keys", type=int, default=100_000)
    ap.add_argument("--sse-s3", action="store_true", help="buckets SSE-S3 by default, as shipped")
    wrkload.add_client_option(ap)
    args = ap.parse_args()
    main(args.before, args.dir, args.rounds, args.quick, args.list_keys, args.sse_s3, wrkload.chose_wrk(ap, args))

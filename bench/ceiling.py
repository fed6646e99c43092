"""What spreading the request work over more than one process could give on this machine.

    python -m bench.ceiling [--processes 2] [--rounds 3] [--per-client 100] [--unencrypted] [--wrk] [--dir DIR]

The 4 KiB figures of issue 15 are bound by the daemon's one event loop (bench/README.md, rounds
13-15). Before building a multi-process gateway, this measures its ceiling: the same 16 clients
of 4 KiB PUTs then GETs against one daemon, and against `--processes` independent daemons (each
its own data dir, LevelDB, journal and disks; client i talks to daemon i mod N), alternating
which goes first in each round. A real multi-process design shares one namespace and pays for
it, so this is an upper bound, not a promise. The clients run in this process (the benchmark's
threaded client, as bench.s3 and bench.compare), sharing the machine's cores with the daemons;
with `--wrk`, wrk (a C load generator: `apt-get install wrk`) replays requests signed in advance
for --seconds per phase instead, the low-overhead generator issue 15's own figures came from (the
Python client spends ~0.2-0.35 ms of CPU per request, which the daemons then cannot use).

Printed beside the machine's raw figures measured in the same run (bench.raw): ops/s (median
over rounds), p99 ms, and the daemons' CPU time per op (user + system, summed over them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
from pathlib import Path

from bench import wrkload
from bench.compare import cpu_seconds
from bench.raw import work_dir
from bench.s3 import KIB, Client, phase, start_daemon, stop_daemon

CLIENTS = 16
SIZE = 4 * KIB
TARGETS = {"PUT": ">= 1,000 /s", "GET": ">= 2,500 /s"}


def wrk_phase(infos: list[dict[str, str]], reqs: list[Path], seconds: int) -> tuple[list[int], float, float]:
    """One wrk per daemon (16/n connections each), side by side: (requests answered by each
    daemon, ops/s, worst p99 ms)."""
    runs = [wrkload.start(d["endpoint"], r, CLIENTS // len(infos), seconds) for d, r in zip(infos, reqs, strict=True)]
    got = [wrkload.parse(run.communicate()[0]) for run in runs]
    return [g.answered for g in got], sum(g.per_s for g in got), max(g.p99_ms for g in got)


def one_round(n: int, work: Path, per_client: int, sse_s3: bool,
              wrk_seconds: int = 0) -> dict[str, tuple[float, float, float]]:
    """(ops/s, p99 ms, daemon CPU ms per op) for PUT and GET, 16 clients over n daemons (wrk's
    connections when `wrk_seconds`, else the threaded client)."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        infos: list[dict[str, str]] = []
        admins: list[Client] = []  # one connection per daemon: its bucket, and wrk's signatures
        for i in range(n):
            base = work / f"d{n}-{i}"
            base.mkdir(parents=True)
            proc, d = start_daemon(base / "data", None, sse_s3)
            procs.append(proc)
            infos.append(d)
            admins.append(Client(d["endpoint"], d["access_key"], d["secret_key"]))
            admins[-1].call("PUT", "/bench")
        body = os.urandom(SIZE)
        out: dict[str, tuple[float, float, float]] = {}
        if wrk_seconds:
            per_daemon = per_client * CLIENTS // n
            # the GETs read what the PUT phase surely stored (wrkload.landed), over and over
            stored = [range(per_daemon)] * n
            for method in ("PUT", "GET"):
                reqs = []
                for i, c in enumerate(admins):
                    path = work / f"d{n}-{i}" / f"{method}.reqs"
                    path.write_bytes(b"".join(wrkload.signed(c, method, f"/bench/w{j}",
                                                             body if method == "PUT" else b"") for j in stored[i]))
                    reqs.append(path)
                cpu0 = sum(cpu_seconds(p.pid) for p in procs)
                answered, rate, p99 = wrk_phase(infos, reqs, wrk_seconds)
                cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
                out[method] = (rate, p99, cpu * 1000 / max(sum(answered), 1))
                if method == "PUT":
                    stored = [wrkload.landed(per_daemon, a, CLIENTS // n) for a in answered]
                    if min(len(r) for r in stored) < 1:
                        raise RuntimeError(f"the PUT phase stored too little to read back: {answered}")
            return out
        conns = [Client(infos[c % n]["endpoint"], infos[c % n]["access_key"], infos[c % n]["secret_key"])
                 for c in range(CLIENTS)]
        for method in ("PUT", "GET"):
            cpu0 = sum(cpu_seconds(p.pid) for p in procs)
            wall, flat = phase(conns, method, lambda c, j: f"/bench/c{c}/{j}", body, per_client)
            cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
            out[method] = (len(flat) / wall, flat[int(len(flat) * 0.99) - 1] * 1000, cpu * 1000 / len(flat))
        return out
    finally:
        for proc in procs:
            stop_daemon(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=2, help="daemons on the spread side (>= 2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-client", type=int, default=100, help="4 KiB PUTs (then GETs) per client per round")
    ap.add_argument("--unencrypted", action="store_true", help="buckets without the shipped SSE-S3 default")
    ap.add_argument("--wrk", action="store_true", help="load from wrk (apt-get install wrk)")
    ap.add_argument("--seconds", type=int, default=6, help="with --wrk: seconds per phase")
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    if not 2 <= args.processes <= CLIENTS or args.rounds < 1 or args.per_client < 1 or args.seconds < 1:
        ap.error("--processes must be 2..16; --rounds, --per-client and --seconds at least 1")
    if args.wrk and not wrkload.available():
        ap.error("--wrk needs wrk on the PATH (apt-get install wrk)")
    sides = (1, args.processes)
    results: dict[int, dict[str, list[tuple[float, float, float]]]] = {n: {"PUT": [], "GET": []} for n in sides}
    with work_dir(args.dir, "stowage-ceiling-", 256 << 20) as (work, raw):
        for r in range(args.rounds):
            for n in (sides if r % 2 == 0 else sides[::-1]):
                got = one_round(n, work / f"r{r}", args.per_client, not args.unencrypted,
                                args.seconds if args.wrk else 0)
                for method, fig in got.items():
                    results[n][method].append(fig)
                print(f"round {r + 1}, {n} daemon(s): " + ", ".join(
                    f"{m} {f[0]:.0f}/s p99 {f[1]:.1f} ms cpu {f[2]:.2f} ms/op" for m, f in got.items()), flush=True)
            shutil.rmtree(work / f"r{r}", ignore_errors=True)
    load = f"wrk, {args.seconds} s per phase" if args.wrk else "threaded Python client"
    print(f"\n4 KiB, {CLIENTS} clients ({load}), median of {args.rounds} rounds "
          f"({'unencrypted' if args.unencrypted else 'SSE-S3'}; raw durable small files "
          f"{raw.durable_files_per_s:.0f}/s, fsync write {raw.seq_write_mib_s:.0f} MiB/s)")
    print(f"{'figure':28s} {'1 daemon':>10s} {f'{args.processes} daemons':>11s} {'ratio':>7s}  target")
    for method in ("PUT", "GET"):
        one = [statistics.median(f[i] for f in results[1][method]) for i in range(3)]
        many = [statistics.median(f[i] for f in results[args.processes][method]) for i in range(3)]
        print(f"{method + ' ops/s':28s} {one[0]:10.0f} {many[0]:11.0f} {many[0] / one[0]:7.2f}  {TARGETS[method]}")
        print(f"{method + ' p99 ms':28s} {one[1]:10.1f} {many[1]:11.1f} {'':7s}  <= 50")
        print(f"{method + ' daemon CPU ms/op':28s} {one[2]:10.2f} {many[2]:11.2f}")


if __name__ == "__main__":
    main()

"""Where a 64 MiB GET's time goes, beside what one event loop can send at all on this machine.

    python -m bench.largeget [--rounds 3] [--seconds 6] [--clients 4] [--unencrypted] [--dir DIR]

Issue 15's target for large GETs is >= 80% of the disk's cold sequential read. The data of a GET
also crosses loopback TCP to a client on the same two cores, so each round measures, with wrk
(`apt-get install wrk`; the low-overhead generator) and the same connections, one after the
other in alternating order:

- the *send ceiling*: a bare trio server (this module, `--send-server`) answering every request
  with the same 64 MiB of memory in 1 MiB `send_all`s, as the gateway sends a body: nothing
  read, checked or decrypted; what one event loop can push through loopback with wrk receiving;
- the daemon: four 64 MiB objects (SSE-S3, the shipped default, unless --unencrypted) read over
  and over, its CPU split between the event loop's thread and the worker threads (shard reads,
  CRC checks, decryption), wrk's own CPU, and the machine's idle share (/proc/stat).

Printed beside the raw figures measured in the same run (bench.raw: cold sequential read).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.raw import work_dir
from bench.s3 import Client, start_daemon, stop_daemon
from bench.wrkload import WRK_SCRIPT, signed

MIB = 1 << 20
OBJECT_MIB = 64
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    mib_s: float
    loop_busy: float  # share of one core: the process's main thread (the event loop)
    workers_busy: float  # share of one core: every other thread of the process, summed
    client_busy: float  # wrk's CPU, share of one core
    idle: float  # the machine's idle share of all its cores


def _thread_cpu(pid: int) -> tuple[float, float]:
    """(main thread, all other threads) CPU seconds of `pid`."""
    main = other = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a worker thread that just ended
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        if tid == str(pid):
            main += cpu
        else:
            other += cpu
    return main, other


def _machine() -> list[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def wrk_get(pid: int, endpoint: str, reqs: Path | None, clients: int, seconds: int) -> Run:
    """wrk GETs for `seconds` (replaying `reqs`, or plain GETs of / when None), measured."""
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s"]
    if reqs is not None:
        cmd += ["-s", str(WRK_SCRIPT), endpoint, "--", str(reqs)]
    else:
        cmd += [endpoint + "/"]
    m0, t0, r0, w0 = _machine(), _thread_cpu(pid), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - w0
    m1, t1, r1 = _machine(), _thread_cpu(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = re.search(r"(\d+) requests in", out)
    if done is None or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    dm = [b - a for a, b in zip(m0, m1, strict=True)]
    client = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    return Run(int(done.group(1)) * OBJECT_MIB / wall, (t1[0] - t0[0]) / wall, (t1[1] - t0[1]) / wall,
               client / wall, dm[3] / max(sum(dm), 1))


def send_server(port_file: Path) -> None:
    """The send ceiling's server: each request answered with OBJECT_MIB MiB from memory."""
    import trio

    # 64 MiB of distinct bytes, as a GET's are: a 1 MiB block sent over and over would stay in
    # the CPU's caches and make every copy cheaper than the daemon's
    body = memoryview(os.urandom(OBJECT_MIB * MIB))
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (OBJECT_MIB * MIB)

    async def handle(stream: trio.SocketStream) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buf += data
                _, buf = buf.split(b"\r\n\r\n", 1)  # wrk's GETs carry no body
                await stream.send_all(head)
                for i in range(OBJECT_MIB):
                    await stream.send_all(body[i * MIB:(i + 1) * MIB])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def serve() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        part = trio.Path(str(port_file) + ".part")  # renamed whole: never read half written
        await part.write_text(str(listeners[0].socket.getsockname()[1]))
        await part.rename(port_file)
        await trio.serve_listeners(handle, listeners)

    trio.run(serve)


def ceiling_round(work: Path, clients: int, seconds: int) -> Run:
    port_file = work / "send.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "bench.largeget", "--send-server", str(port_file)],
                            cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the send server did not start")
            time.sleep(0.05)
        return wrk_get(proc.pid, f"http://127.0.0.1:{port_file.read_text()}", None, clients, seconds)
    finally:
        proc.terminate()
        proc.wait(30)


def daemon_round(work: Path, clients: int, seconds: int, sse_s3: bool) -> Run:
    shutil.rmtree(work / "daemon", ignore_errors=True)
    (work / "daemon").mkdir(parents=True)
    proc, d = start_daemon(work / "daemon" / "data", None, sse_s3)
    try:
        c = Client(d["endpoint"], d["access_key"], d["secret_key"])
        c.call("PUT", "/bench")
        for i in range(4):
            c.call("PUT", f"/bench/o{i}", os.urandom(OBJECT_MIB * MIB))
        reqs = work / "daemon" / "GET.reqs"
        reqs.write_bytes(b"".join(signed(c, "GET", f"/bench/o{i}") for i in range(4)))
        return wrk_get(proc.pid, d["endpoint"], reqs, clients, seconds)
    finally:
        stop_daemon(proc)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--send-server":
        send_server(Path(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=6, help="seconds of wrk per measurement")
    ap.add_argument("--clients", type=int, default=4, help="wrk connections (issue 15: 4 for large objects)")
    ap.add_argument("--unencrypted", action="store_true", help="a bucket without the shipped SSE-S3 default")
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    if args.rounds < 1 or args.seconds < 1 or not 1 <= args.clients <= 64:
        ap.error("--rounds and --seconds must be at least 1, --clients 1..64")
    if shutil.which("wrk") is None:
        ap.error("this benchmark needs wrk on the PATH (apt-get install wrk)")
    runs: dict[str, list[Run]] = {"send ceiling": [], "daemon GET": []}
    with work_dir(args.dir, "stowage-largeget-", 1 << 30) as (work, raw):
        for r in range(args.rounds):
            order = list(runs) if r % 2 == 0 else list(runs)[::-1]
            for name in order:
                run = (ceiling_round(work, args.clients, args.seconds) if name == "send ceiling"
                       else daemon_round(work, args.clients, args.seconds, not args.unencrypted))
                runs[name].append(run)
                print(f"round {r + 1}, {name}: {run.mib_s:,.0f} MiB/s, event loop {run.loop_busy:.0%}, "
                      f"worker threads {run.workers_busy:.0%}, wrk {run.client_busy:.0%}, machine idle {run.idle:.0%}",
                      flush=True)
    print(f"\n{OBJECT_MIB} MiB GET, {args.clients} wrk connections, median of {args.rounds} rounds "
          f"({'unencrypted' if args.unencrypted else 'SSE-S3'}); cold sequential read {raw.seq_read_mib_s:,.0f} MiB/s, "
          f"target >= {0.8 * raw.seq_read_mib_s:,.0f} MiB/s")
    print(f"{'':14s} {'MiB/s':>8s} {'loop (cores)':>13s} {'workers':>8s} {'wrk':>6s} {'idle':>6s}")
    for name, got in runs.items():
        def med(attr: str, got: list[Run] = got) -> float:
            return float(statistics.median(getattr(g, attr) for g in got))
        print(f"{name:14s} {med('mib_s'):8,.0f} {med('loop_busy'):13.2f} {med('workers_busy'):8.2f} "
              f"{med('client_busy'):6.2f} {med('idle'):6.0%}")


if __name__ == "__main__":
    main()

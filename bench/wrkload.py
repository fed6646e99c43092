"""Load from wrk: the low-overhead generator issue 15's own figures came from.

The benchmarks' threaded Python client spends ~0.2-0.35 ms of CPU per request on the same two
cores as the daemon (bench/README.md, round 15), so at 16 clients it measures itself as much as
the gateway. wrk (a C load generator, `apt-get install wrk`; `make bench` installs it) replays
requests signed in advance (wrk_replay.lua), in order, cycling, over keep-alive connections.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from bench.s3 import Client

WRK_SCRIPT = Path(__file__).with_name("wrk_replay.lua")


def available() -> bool:
    return shutil.which("wrk") is not None


def add_client_option(ap: argparse.ArgumentParser) -> None:
    """`--client wrk|threads` for the small objects' load: wrk by default when installed."""
    ap.add_argument("--client", choices=("wrk", "threads"), default="wrk" if available() else "threads",
                    help="small objects' load: wrk (the default when installed: `make bench` installs it) "
                         "or the threaded Python client")


def chose_wrk(ap: argparse.ArgumentParser, args: argparse.Namespace) -> bool:
    """Whether `--client` chose wrk (a usage error if it did and wrk is not installed)."""
    if args.client == "wrk" and not available():
        ap.error("--client wrk needs wrk on the PATH (apt-get install wrk)")
    return bool(args.client == "wrk")


def landed(keys: int, answered: int, connections: int) -> range:
    """Which of a PUT list's `keys` (by index) a replay surely stored, given the requests wrk
    answered. wrk sends a list's requests in order, cycling, after drawing one it does not send
    (the first), and may stop with `connections` still in flight: the whole list once it
    wrapped, else the objects after the first, less what may still have been in flight."""
    return range(keys) if answered >= keys + connections else range(1, answered - connections)


def signed(c: Client, method: str, path: str, body: bytes = b"") -> bytes:
    """One request for wrk_replay.lua: signed now (valid for the 15 minutes SigV4 allows)."""
    h = c._headers(method, path, "")
    if method == "PUT":
        h["content-length"] = str(len(body))
    head = f"{method} {quote(path)} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    raw = head.encode() + body
    return b"%d\n" % len(raw) + raw


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if m is None:
        raise RuntimeError(f"wrk printed a latency this benchmark cannot read: {text!r}")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


@dataclass(frozen=True)
class WrkResult:
    answered: int  # requests answered
    per_s: float
    p50_ms: float
    p99_ms: float


def parse(out: str) -> WrkResult:
    """wrk's report (run with --latency); RuntimeError if it failed or saw an error status."""
    done = re.search(r"(\d+) requests in", out)
    per_s = re.search(r"Requests/sec:\s+([\d.]+)", out)
    # the latency distribution's lines
    p50 = re.search(r"^\s+50%\s+(\S+)$", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)$", out, re.MULTILINE)
    if done is None or per_s is None or p50 is None or p99 is None:
        raise RuntimeError(f"wrk failed:\n{out}")
    if "Non-2xx" in out:
        raise RuntimeError(f"the daemon refused requests wrk replayed:\n{out}")
    return WrkResult(int(done.group(1)), float(per_s.group(1)), _ms(p50.group(1)), _ms(p99.group(1)))


def start(endpoint: str, reqs: Path, connections: int, seconds: int) -> subprocess.Popen[str]:
    """One wrk (one thread) replaying `reqs` over `connections` connections; read with `parse`."""
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(WRK_SCRIPT),
                             endpoint, "--", str(reqs)], stdout=subprocess.PIPE, text=True)


def put_then_get(c: Client, endpoint: str, work: Path, keys: list[str], body: bytes, connections: int,
                 seconds: int) -> tuple[WrkResult, WrkResult]:
    """PUTs of `body` to `keys` (paths, cycling) for `seconds`, then GETs of what surely landed
    (`landed`), over and over."""
    put_reqs = work / "wrk-PUT.reqs"
    put_reqs.write_bytes(b"".join(signed(c, "PUT", k, body) for k in keys))
    run = start(endpoint, put_reqs, connections, seconds)
    put = parse(run.communicate()[0])
    stored = [keys[i] for i in landed(len(keys), put.answered, connections)]
    if not stored:
        raise RuntimeError(f"the PUT phase stored too little to read back: {put.answered} answered")
    get_reqs = work / "wrk-GET.reqs"
    get_reqs.write_bytes(b"".join(signed(c, "GET", k) for k in stored))
    run = start(endpoint, get_reqs, connections, seconds)
    return put, parse(run.communicate()[0])

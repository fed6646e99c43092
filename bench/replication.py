"""Replication and notification benchmark: two real daemons on this machine.

    python -m bench.replication [--dir /var/tmp/stowage-bench-repl] [--full] [--lag-only]

Measures, in one run:
- replication throughput from box A to box B: a backlog is queued on A while B is stopped, then
  B starts (on the same port) and the time until A's queue is empty gives MiB/s for 64 MiB
  objects and objects/s for 4 KiB objects;
- replication lag at a steady 100 PUT/s of 4 KiB objects: the age of the oldest queued version
  on A, sampled every 0.2 s (p50, p99, max); the same through site replication (the two boxes
  joined with `stowage site add`, sharing a master key: every versioned bucket replicates);
- beside them, the single-box PUT figures of the same run (64 MiB MiB/s with 1 client, 4 KiB
  PUT/s with 16 clients) to a bucket without replication;
- notification delivery rate to a local webhook (a threaded http.server in this process): a
  backlog of events is queued while the webhook refuses, then the time to deliver it.

Both daemons and the client share the machine: the figures are for comparing runs, not boxes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from appliance.control import call

MIB = 1 << 20
REPO = Path(__file__).resolve().parent.parent


class Box:
    """One `stowage serve --data DIR` subprocess."""

    def __init__(self, data: Path, listen: str = "127.0.0.1:0") -> None:
        self.data, self.listen = data, listen
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def start(self) -> Box:
        run = self.data / "run" / "daemon.json"
        run.unlink(missing_ok=True)
        log = open(self.data.parent / f"{self.data.name}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "--data", str(self.data),
                                      "--listen", self.listen, "--no-mount"], stdout=log, stderr=log, cwd=REPO)
        wait(lambda: run.exists() and json.loads(run.read_text() or "{}").get("pid") == self.proc.pid, 120)  # type: ignore[union-attr]
        self.endpoint = json.loads(run.read_text())["s3_endpoint"]
        self.listen = self.endpoint.removeprefix("http://")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(120)

    def creds(self) -> dict[str, str]:
        return tomllib.loads((self.data / "credentials.toml").read_text())

    def s3(self) -> Any:
        c = self.creds()
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=c["access_key"],
                            aws_secret_access_key=c["secret_key"], region_name="us-east-1",
                            config=BotoConfig(s3={"addressing_style": "path", "payload_signing_enabled": False},
                                              max_pool_connections=32, retries={"max_attempts": 2}))

    def control(self, op: str, args: dict[str, Any] | None = None) -> Any:
        return call(self.data / "control.sock", op, args or {})

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "appliance", *args, "--data", str(self.data)], check=True,
                       capture_output=True, cwd=REPO)


def wait(cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def queued(a: Box, target: str) -> int:
    return int(a.control("replication.status")["targets"][target]["queued"])


def versioned(s3: Any, bucket: str) -> None:
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def put_many(s3: Any, bucket: str, n: int, size: int, clients: int, prefix: str) -> float:
    """Seconds to PUT n objects of `size` bytes with `clients` concurrent requests."""
    body = os.urandom(size)
    t0 = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"{prefix}{i:06d}", Body=body), range(n)))
    return time.monotonic() - t0


def replication_backlog(a: Box, b: Box, n: int, size: int, clients: int, bucket: str) -> float:
    """Seconds for A to replicate a backlog of n objects once B is back."""
    b.stop()
    put_many(a.s3(), bucket, n, size, clients, f"{size}-")
    b.start()
    t0 = time.monotonic()
    wait(lambda: queued(a, "b") == 0, 1800)
    return time.monotonic() - t0


def steady_lag(a: Box, bucket: str, rate: float, seconds: float, target: str = "b") -> dict[str, float]:
    s3 = a.s3()
    body = os.urandom(4096)
    stop = threading.Event()
    lags: list[float] = []

    def sample() -> None:
        while not stop.is_set():
            lags.append(float(a.control("replication.status")["targets"][target]["lag_seconds"]))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.monotonic()
    sent = 0
    with ThreadPoolExecutor(32) as pool:  # enough in flight to hold the rate on a busy machine
        futures = []
        while time.monotonic() - t0 < seconds:
            due = t0 + sent / rate
            if time.monotonic() < due:
                time.sleep(due - time.monotonic())
            futures.append(pool.submit(s3.put_object, Bucket=bucket, Key=f"steady/{sent:06d}", Body=body))
            sent += 1
        for f in futures:
            f.result()
    achieved = sent / (time.monotonic() - t0)
    wait(lambda: queued(a, target) == 0, 600)
    stop.set()
    sampler.join()
    lags.sort()
    return {"put_per_sec": round(achieved, 1), "lag_p50_s": round(statistics.median(lags), 3),
            "lag_p99_s": round(lags[int(len(lags) * 0.99) - 1], 3), "lag_max_s": round(lags[-1], 3)}


class Webhook:
    def __init__(self) -> None:
        self.count = 0
        self.refusing = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = not outer.refusing
                if ok:
                    outer.count += 1
                self.send_response(200 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def notification_rate(a: Box, n: int) -> float:
    hook = Webhook()
    a.cli("notify", "target", "add", "bench", "--url", hook.url)
    s3 = a.s3()
    s3.create_bucket(Bucket="notes")
    s3.put_bucket_notification_configuration(Bucket="notes", NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": "arn:stowage:sqs::bench:webhook", "Events": ["s3:ObjectCreated:*"]}]})
    put_many(s3, "notes", n, 1024, 16, "n")
    hook.refusing = False
    t0 = time.monotonic()
    wait(lambda: hook.count >= n + 1, 1800)  # the test event too
    elapsed = time.monotonic() - t0
    hook.server.shutdown()
    return (n + 1) / elapsed


def site_lag(root: Path, rate: float, seconds: float) -> dict[str, float]:
    """The steady lag through site replication: two fresh boxes sharing a master key, joined."""
    a = Box(root / "site-a").start()
    b = Box(root / "site-b")
    (b.data / "keys").mkdir(parents=True, mode=0o700)
    shutil.copy2(a.data / "keys" / "master.key", b.data / "keys" / "master.key")
    b.start()
    try:
        c = b.creds()
        peer = a.control("site.add", {"url": b.endpoint, "access_key": c["access_key"], "secret_key": c["secret_key"],
                                      "self_url": a.endpoint})["name"]
        versioned(a.s3(), "site")
        wait(lambda: "site" in [x["Name"] for x in b.s3().list_buckets()["Buckets"]], 60)
        return steady_lag(a, "site", rate, seconds, target=f"site:{peer}")
    finally:
        a.stop()
        b.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="", help="where the data directories go (default: a temp dir)")
    p.add_argument("--full", action="store_true", help="large counts and a 60 s steady run (the default is short)")
    p.add_argument("--lag-only", action="store_true", help="only the lag figures at a steady 100 PUT/s")
    args = p.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="stowage-bench-repl-"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    big_n, small_n, lag_s, notes_n = (16, 5000, 60.0, 10000) if args.full else (4, 500, 10.0, 1000)
    a, b = Box(root / "a").start(), Box(root / "b").start()
    out: dict[str, Any] = {}
    try:
        sa, sb = a.s3(), b.s3()
        if not args.lag_only:
            versioned(sa, "plain")
            out["single_box_put_64MiB_MiB_s"] = round(big_n * 64 / put_many(sa, "plain", big_n, 64 * MIB, 1, "b"), 1)
            out["single_box_put_4KiB_per_s"] = round(small_n / put_many(sa, "plain", small_n, 4096, 16, "s"), 1)
        versioned(sa, "src")
        versioned(sb, "dst")
        c = b.creds()
        a.cli("replication", "target", "add", "b", "--endpoint", b.endpoint, "--access-key", c["access_key"],
              "--secret-key", c["secret_key"])
        sa.put_bucket_replication(Bucket="src", ReplicationConfiguration={"Role": "", "Rules": [{
            "ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
            "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": "arn:stowage:s3::b:dst"}}]})
        if not args.lag_only:
            out["replication_64MiB_MiB_s"] = round(big_n * 64 / replication_backlog(a, b, big_n, 64 * MIB, 1, "src"),
                                                   1)
            out["replication_4KiB_objects_s"] = round(small_n / replication_backlog(a, b, small_n, 4096, 16, "src"),
                                                      1)
        out["replication_lag_at_100_put_s"] = steady_lag(a, "src", 100.0, lag_s)
        if not args.lag_only:
            out["notification_events_s"] = round(notification_rate(a, notes_n), 1)
    finally:
        a.stop()
        b.stop()
    out["site_replication_lag_at_100_put_s"] = site_lag(root, 100.0, lag_s)
    print(json.dumps(out, indent=2))
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

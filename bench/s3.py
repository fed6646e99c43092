"""S3 gateway benchmark: the real daemon, driven over HTTP, beside the raw disk and the engine.

    python -m bench.s3 [--dir /var/tmp/stowage-bench] [--quick] [--client wrk|threads]

Measures, in one run: raw disk speed (bench.raw: dd-style write+fsync, cold read); the engine
in-process (bench.engine: 64 MiB put/get, 4 KiB ops at 16 tasks); and through the gateway of a
`stowage serve` subprocess: 64 MiB PUT/GET MiB/s with 1 and 8 concurrent clients, 4 KiB and
256 KiB PUT/GET ops/s with p50/p99 at 16 concurrent clients, and a full paginated ListObjectsV2
of a 100,000-key bucket. The client is deliberately lean (http.client, keep-alive, SigV4 with
UNSIGNED-PAYLOAD) so the figures show the gateway, not boto3's own hashing. The 4 KiB and
256 KiB figures come from wrk's 16 connections when wrk is installed (bench.wrkload: the
low-overhead generator issue 15's figures came from; the threaded client spends CPU the daemon
then cannot use), else from 16 client threads (`--client threads`).

Authorization's cost: 4 KiB PUT/GET ops/s of the root user beside an IAM user with a realistic
policy set (3 attached managed policies of 10 statements each, and a bucket policy with
conditions on the bucket), in back-to-back rounds of the same run, alternating which goes
first; the difference is the median of the rounds' own ratios, so drift of the machine cancels.

Encryption's cost the same way: 64 MiB PUT/GET MiB/s (1 client) and 4 KiB PUT/GET ops/s (16
clients) in a bucket without default encryption beside one with SSE-S3. (The daemon runs with
`default_bucket_encryption = "none"`, so every other figure is of unencrypted objects, as in
earlier runs.)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import trio

from bench import wrkload
from bench.pss import PssWatch
from bench.raw import MIB, measure
from bench.readme import readme
from s3gw.sigv4 import canonical_headers, canonical_query, sign, signing_key, string_to_sign, uri_encode

KIB = 1024


class Client:
    """One keep-alive connection speaking just enough S3."""

    def __init__(self, endpoint: str, access_key: str, secret: str) -> None:
        u = urlsplit(endpoint)
        self.netloc = u.netloc
        self.conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=300)
        self.ak, self.sk = access_key, secret
        self.sink = memoryview(bytearray(4 * MIB))  # GET bodies are read into it and dropped

    def _headers(self, method: str, path: str, query: str) -> dict[str, str]:
        amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        h = {"host": self.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
        names = sorted(h)
        scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
        creq = (f"{method}\n{uri_encode(path, keep_slash=True)}\n{canonical_query(query, drop_signature=False)}\n"
                f"{canonical_headers(h, names)}\n{';'.join(names)}\nUNSIGNED-PAYLOAD")
        sig = sign(signing_key(self.sk, amz_date[:8], "us-east-1", "s3"), string_to_sign(amz_date, scope, creq))
        h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.ak}/{scope}, SignedHeaders={';'.join(names)}, "
                              f"Signature={sig}")
        return h

    def call(self, method: str, path: str, body: bytes | None = None, query: str = "") -> tuple[int, bytes]:
        target = quote(path) + (f"?{query}" if query else "")
        self.conn.request(method, target, body=body, headers=self._headers(method, path, query))
        r = self.conn.getresponse()
        if method == "GET" and r.status == 200 and "list-type" not in query:
            # into one reused buffer: a load generator that allocates 4 MiB per read spends its
            # CPU on page faults, and shares the two cores with the daemon it measures
            while r.readinto(self.sink):
                pass
            return r.status, b""
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return r.status, data


def start_daemon(data: Path, code: Path | None = None,
                 sse_s3: bool = False) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """`code`: the source tree to run the daemon from (bench.compare's "before"); default this one.
    `sse_s3`: the shipped default (new buckets SSE-S3), else buckets without default encryption."""
    runfile = data / "run" / "daemon.json"
    if runfile.exists():
        runfile.unlink()
    config = data.parent / "stowage.toml"
    config.write_text("" if sse_s3 else '[s3]\ndefault_bucket_encryption = "none"\n')
    log = open(data.parent / "daemon.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "--data", str(data), "--config", str(config),
                             "--listen", "127.0.0.1:0", "--no-mount"], stdout=log, stderr=subprocess.STDOUT,
                            cwd=code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited: see {data.parent / 'daemon.log'}")
        if runfile.exists():
            try:
                info = json.loads(runfile.read_text())
                if info.get("pid") == proc.pid:
                    creds = tomllib.loads((data / "credentials.toml").read_text())
                    WATCHES[proc.pid] = PssWatch(proc.pid)
                    return proc, {"endpoint": info["s3_endpoint"], **creds}
            except ValueError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("daemon did not become ready")


# the peak PSS of every daemon a run starts (issue 15: <= 300 MiB through every benchmark)
WATCHES: dict[int, PssWatch] = {}
PEAKS: list[int] = []


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    watch = WATCHES.pop(proc.pid, None)
    if watch is not None:
        PEAKS.append(watch.stop())
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parallel(n: int, fn) -> float:
    """Run fn(i) in n threads; return the wall time."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            fn(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t


def throughput(d: dict[str, str], clients: int, per_client: int, body: bytes,
               bucket: str = "bench") -> tuple[float, float]:
    conns = [Client(d["endpoint"], d["access_key"], d["secret_key"]) for _ in range(clients)]
    total = clients * per_client * len(body) / MIB
    put = total / parallel(clients, lambda i: [conns[i].call("PUT", f"/{bucket}/big-{clients}-{i}-{j}", body)
                                               for j in range(per_client)])
    get = total / parallel(clients, lambda i: [conns[i].call("GET", f"/{bucket}/big-{clients}-{i}-{j}")
                                               for j in range(per_client)])
    for i in range(clients):
        for j in range(per_client):
            conns[i].call("DELETE", f"/{bucket}/big-{clients}-{i}-{j}")
    return put, get


def phase(conns: list[Client], method: str, path_of: Callable[[int, int], str], body: bytes,
          per_client: int) -> tuple[float, list[float]]:
    """One PUT or GET phase, each connection in a thread of its own making `per_client` requests
    to path_of(connection, n): (wall seconds, every latency in seconds, sorted)."""
    lat: list[list[float]] = [[] for _ in conns]

    def work(i: int) -> None:
        for j in range(per_client):
            t = time.perf_counter()
            conns[i].call(method, path_of(i, j), body if method == "PUT" else None)
            lat[i].append(time.perf_counter() - t)

    wall = parallel(len(conns), work)
    return wall, sorted(x for per in lat for x in per)


def small_ops(d: dict[str, str], size: int, clients: int, per_client: int,
              prefix: str = "", bucket: str = "bench") -> dict[str, tuple[float, float, float, int]]:
    """PUTs then GETs of `size` bytes from `clients` threads: per method (ops/s, p50 ms, p99 ms,
    requests)."""
    conns = [Client(d["endpoint"], d["access_key"], d["secret_key"]) for _ in range(clients)]
    body = os.urandom(size)
    out = {}
    for method in ("PUT", "GET"):
        wall, flat = phase(conns, method, lambda i, j: f"/{bucket}/{prefix}s{size}/{i}/{j}", body, per_client)
        out[method] = (len(flat) / wall, statistics.median(flat) * 1000, flat[int(len(flat) * 0.99) - 1] * 1000,
                       len(flat))
    return out


def small_ops_wrk(d: dict[str, str], work: Path, size: int, clients: int, quick: bool,
                  prefix: str = "", bucket: str = "bench") -> dict[str, tuple[float, float, float, int]]:
    """small_ops' figures with wrk's connections as the clients (bench.wrkload): 1,600 objects of
    4 KiB or less, 640 larger ones, PUT for 8 s (3 when quick, cycling), then read back for as
    long."""
    c = Client(d["endpoint"], d["access_key"], d["secret_key"])
    paths = [f"/{bucket}/{prefix}w{size}/{j}" for j in range(1600 if size <= 4 * KIB else 640)]
    put, get = wrkload.put_then_get(c, d["endpoint"], work, paths, os.urandom(size), clients, 3 if quick else 8)
    return {m: (r.per_s, r.p50_ms, r.p99_ms, r.answered) for m, r in (("PUT", put), ("GET", get))}


# --- authorization: root beside a user with a realistic policy set ------------------------------

AUTHZ_USER = "bench-user"
V = "2012-10-17"


def user_policies() -> list[dict[str, object]]:
    """Three managed policies of 10 statements: other teams' buckets, wildcards, a policy
    variable, conditions, a Deny that does not apply; one statement grants the bench bucket."""
    docs = []
    for n in range(3):
        statements: list[dict[str, object]] = []
        for i in range(10):
            bucket = f"team{n}-data{i}"
            statements.append({
                "Sid": f"S{n}x{i}",
                "Effect": "Deny" if i == 9 else "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:List*"] if i % 2 else ["s3:Put*", "s3:Get*"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*",
                             f"arn:aws:s3:::home/${{aws:username}}/{bucket}/*"],
                **({"Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "shared/*"]}}}
                   if i % 3 == 0 and i != 9 else {}),
            })
        if n == 2:
            statements[4] = {"Sid": "Bench", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                             "Resource": "arn:aws:s3:::bench/user*",
                             "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}}
        docs.append({"Version": V, "Statement": statements})
    return docs


def bench_bucket_policy() -> dict[str, object]:
    return {"Version": V, "Statement": [
        {"Sid": "SigV4Only", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::bench", "arn:aws:s3:::bench/*"],
         "Condition": {"StringNotEquals": {"s3:signatureversion": "AWS4-HMAC-SHA256"}}},
        {"Sid": "LocalDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:Delete*",
         "Resource": "arn:aws:s3:::bench/*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}},
        {"Sid": "PublicNothing", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::bench/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": ["public-read", "public-read-write"]}}},
        {"Sid": "Readers", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/reader"},
         "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::bench", "arn:aws:s3:::bench/*"],
         "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}},
    ]}


def stowage(data: Path, *args: str) -> dict[str, object]:
    r = subprocess.run([sys.executable, "-m", "appliance", *args, "--json", "--data", str(data)], capture_output=True,
                       text=True, check=True)
    out: dict[str, object] = json.loads(r.stdout) if r.stdout.strip() else {}
    return out


def setup_authz_user(data: Path, d: dict[str, str]) -> dict[str, str]:
    """The user with its policies (through the running daemon), and the bench bucket's policy."""
    created = stowage(data, "user", "add", AUTHZ_USER)
    for n, doc in enumerate(user_policies()):
        path = data.parent / f"policy{n}.json"
        path.write_text(json.dumps(doc))
        stowage(data, "policy", "create", f"bench{n}", str(path))
        stowage(data, "policy", "attach", f"bench{n}", "--user", AUTHZ_USER)
    Client(d["endpoint"], d["access_key"], d["secret_key"]).call(
        "PUT", "/bench", json.dumps(bench_bucket_policy()).encode(), query="policy")
    return {"endpoint": d["endpoint"], "access_key": str(created["access_key"]),
            "secret_key": str(created["secret_key"])}


def authz_figures(root: dict[str, str], user: dict[str, str], rounds: int,
                  per_client: int) -> dict[str, tuple[float, float, float]]:
    """4 KiB PUT and GET: (root ops/s, user ops/s, user's difference) as medians over rounds that
    run root and the user back to back, in alternating order. The difference is the median of
    each round's own ratio, so drift between rounds (other load on the machine) cancels out."""
    runs: dict[str, dict[str, list[float]]] = {"root": {"PUT": [], "GET": []}, "user": {"PUT": [], "GET": []}}
    for r in range(rounds):
        order = (("root", root), ("user", user)) if r % 2 == 0 else (("user", user), ("root", root))
        for who, creds in order:
            res = small_ops(creds, 4 * KIB, 16, per_client, prefix=f"{who}{r}-")
            for method in ("PUT", "GET"):
                runs[who][method].append(res[method][0])
    out = {}
    for method in ("PUT", "GET"):
        r_ops, u_ops = runs["root"][method], runs["user"][method]
        ratios = [u / r - 1 for r, u in zip(r_ops, u_ops, strict=True)]
        out[method] = (statistics.median(r_ops), statistics.median(u_ops), statistics.median(ratios))
    return out


# --- encryption: a plaintext bucket beside an SSE-S3 one ------------------------------------------

SSE_BUCKET = "bench-sse"
SSE_S3_DEFAULT = (b'<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule>'
                  b"<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm>"
                  b"</ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>")


def sse_figures(d: dict[str, str], rounds: int, big: bytes, big_per_client: int,
                small_per_client: int) -> dict[str, tuple[float, float, float]]:
    """(plaintext, SSE-S3, SSE-S3's difference) for "64 MiB PUT/GET" (MiB/s, 1 client) and
    "4 KiB PUT/GET" (ops/s, 16 clients): medians over rounds that run both buckets back to back,
    alternating which goes first; the difference is the median of each round's own ratio."""
    c = Client(d["endpoint"], d["access_key"], d["secret_key"])
    c.call("PUT", f"/{SSE_BUCKET}")
    c.call("PUT", f"/{SSE_BUCKET}", SSE_S3_DEFAULT, query="encryption")
    runs: dict[str, dict[str, list[float]]] = {}
    for r in range(rounds):
        order = ("bench", SSE_BUCKET) if r % 2 == 0 else (SSE_BUCKET, "bench")
        for bucket in order:
            put, get = throughput(d, 1, big_per_client, big, bucket=bucket)
            small = small_ops(d, 4 * KIB, 16, small_per_client, prefix=f"sse{r}-", bucket=bucket)
            for name, value in (("64 MiB PUT", put), ("64 MiB GET", get), ("4 KiB PUT", small["PUT"][0]),
                                ("4 KiB GET", small["GET"][0])):
                runs.setdefault(name, {}).setdefault(bucket, []).append(value)
    out = {}
    for name, per in runs.items():
        plain, enc = per["bench"], per[SSE_BUCKET]
        ratios = [e / p - 1 for p, e in zip(plain, enc, strict=True)]
        out[name] = (statistics.median(plain), statistics.median(enc), statistics.median(ratios))
    return out


def populate_listing(data: Path, n: int) -> None:
    """Write n keys straight into the metadata DB while the daemon is stopped (filling a bucket
    through S3 would take minutes of small PUTs and measure those, not the listing)."""
    from appliance.engine import keys as K
    from appliance.engine.records import ObjectVersion
    from bench.engine import open_store

    store = open_store(data)
    try:
        batch = store.db.batch()
        for i in range(n):
            name = f"dir{i % 100:02d}/obj{i:07d}"
            batch.put(K.latest("listing", name), ObjectVersion("listing", name, "null", 1, time.time_ns(), size=1,
                                                               etag="0" * 32))
        trio.run(store.create_bucket, "listing")
        store.db.commit_now(batch)
    finally:
        store.db.close()


def full_listing(d: dict[str, str]) -> tuple[int, float]:
    c = Client(d["endpoint"], d["access_key"], d["secret_key"])
    token, total = "", 0
    t = time.perf_counter()
    while True:
        query = "list-type=2&max-keys=1000" + (f"&continuation-token={quote(token, safe='')}" if token else "")
        _, body = c.call("GET", "/listing", query=query)
        total += body.count(b"<Contents>")
        m = re.search(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>", body)
        if not m:
            break
        token = m.group(1).decode()
    return total, time.perf_counter() - t


def engine_figures(root: Path, quick: bool) -> tuple[float, float, float, float]:
    from bench.engine import open_store
    from bench.engine import small_ops as engine_small
    from bench.engine import throughput as engine_tp

    store = open_store(root)

    async def run() -> tuple[float, float, float, float]:
        await store.create_bucket("bench")
        put, get = await engine_tp(store, 64 * MIB, 2 if quick else 4)
        puts, gets = await engine_small(store, 400 if quick else 1600, 16)
        return put, get, puts, gets

    try:
        return trio.run(run)
    finally:
        store.db.close()


def main(directory: Path, quick: bool, list_keys: int, use_wrk: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    raw = measure(directory, (256 if quick else 1024) * MIB)
    work = Path(tempfile.mkdtemp(prefix="s3bench-", dir=directory))
    try:
        eng = engine_figures(work / "engine", quick)
        shutil.rmtree(work / "engine", ignore_errors=True)
        data = work / "data"
        proc, d = start_daemon(data)
        try:
            Client(d["endpoint"], d["access_key"], d["secret_key"]).call("PUT", "/bench")
            big = os.urandom(64 * MIB)
            tp1 = throughput(d, 1, 2 if quick else 4, big)
            tp8 = throughput(d, 8, 1 if quick else 2, big)
            sse = sse_figures(d, 2 if quick else 6, big, 1 if quick else 2, 25 if quick else 60)
            del big
            if use_wrk:
                small4 = small_ops_wrk(d, work, 4 * KIB, 16, quick)
                small256 = small_ops_wrk(d, work, 256 * KIB, 16, quick)
            else:
                small4 = small_ops(d, 4 * KIB, 16, 25 if quick else 100)
                small256 = small_ops(d, 256 * KIB, 16, 10 if quick else 40)
            authz = authz_figures(d, setup_authz_user(data, d), 2 if quick else 12, 25 if quick else 40)
        finally:
            stop_daemon(proc)
        populate_listing(data, list_keys)
        proc, d = start_daemon(data)
        try:
            _, first_secs = full_listing(d)  # beside the daemon's start-up passes (bench.compare)
            listed, secs = full_listing(d)
        finally:
            stop_daemon(proc)
        assert listed == list_keys, (listed, list_keys)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"Stowage S3 gateway benchmark — dir {directory}{' (quick)' if quick else ''}")
    print("  (each figure beside its issue-15 target, the raw figure of this run, and the README's current figure)")
    for line in raw.lines():
        print("  " + line)
    print(f"  engine in-process: 64 MiB put {eng[0]:8.1f} MiB/s  get {eng[1]:8.1f} MiB/s; "
          f"4 KiB x16 put {eng[2]:7.1f} ops/s  get {eng[3]:7.1f} ops/s   "
          f"({readme('engine put, 64 MiB')}; {readme('engine 4 KiB')})")
    ceiling = raw.seq_write_mib_s * 4 / 6
    put_target = f"target PUT >= {0.9 * ceiling:.0f} MiB/s = 90% of raw write {raw.seq_write_mib_s:.0f} x 4/6"
    get_target = f"GET >= {0.8 * raw.seq_read_mib_s:.0f} MiB/s = 80% of raw cold read {raw.seq_read_mib_s:.0f}"
    print(f"  S3 64 MiB objects, 1 client:   PUT {tp1[0]:8.1f} MiB/s   GET {tp1[1]:8.1f} MiB/s   "
          f"({put_target}, {get_target}; {readme('S3 64 MiB PUT / GET, 1 client')})")
    print(f"  S3 64 MiB objects, 8 clients:  PUT {tp8[0]:8.1f} MiB/s   GET {tp8[1]:8.1f} MiB/s   "
          f"({readme('S3 64 MiB PUT / GET, 8 clients')})")
    small_targets = {("4 KiB", "PUT"): ">= 1,000 ops/s, p99 <= 50 ms", ("4 KiB", "GET"): ">= 2,500 ops/s, p99 <= 50 ms",
                     ("256 KiB", "PUT"): ">= 400 ops/s", ("256 KiB", "GET"): ">= 1,200 ops/s"}
    load = "wrk, 16 connections" if use_wrk else "16 threaded Python clients"
    print(f"  small objects: {load}")
    for label, res in (("4 KiB", small4), ("256 KiB", small256)):
        for method in ("PUT", "GET"):
            ops, p50, p99, _n = res[method]
            print(f"  S3 {label:>7} {method}, 16 clients: {ops:8.1f} ops/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
                  f"   (target {small_targets[label, method]}; {readme(f'S3 {label} PUT / GET')})")
    for name, (plain, enc, diff) in sse.items():
        unit = "MiB/s" if name.startswith("64") else "ops/s"
        print(f"  S3 {name:>10}, encryption: plaintext {plain:8.1f} {unit}   SSE-S3 {enc:8.1f} {unit}   "
              f"(SSE-S3 {diff * 100:+.1f}%, median of paired rounds)")
    for method in ("PUT", "GET"):
        r, u, diff = authz[method]
        print(f"  S3   4 KiB {method}, 16 clients, authorization: root {r:8.1f} ops/s   user with 3x10-statement "
              f"policies + bucket policy {u:8.1f} ops/s   (user {diff * 100:+.1f}%, median of paired rounds)")
    print(f"  S3 full ListObjectsV2 of {listed:,} keys (pages of 1,000): {secs:6.2f} s = {listed / secs:,.0f} keys/s"
          f"   (target >= 100,000 keys/s; {readme('S3 full ListObjectsV2')}); the first after the daemon's start "
          f"{listed / first_secs:,.0f} keys/s")
    print(f"  daemon peak PSS (process tree) over every daemon of this run: {max(PEAKS, default=0) / MIB:6.1f} MiB"
          "   (target <= 300 MiB)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="S3 gateway benchmark")
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp/stowage-bench"))
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--list-keys", type=int, default=100_000)
    wrkload.add_client_option(ap)
    args = ap.parse_args()
    main(args.dir, args.quick, args.list_keys, wrkload.chose_wrk(ap, args))

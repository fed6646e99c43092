"""Benchmark: the FUSE mount beside a plain directory on the same disk, in the same run.

    .venv/bin/python bench/fuse.py [--dir /var/tmp] [--size-mib 1024] [--files 10000] [--meta-ops 1000]
                                   [--only data|meta]

Starts `stowage serve --data DIR` (six directory disks, 4+2) with the mount at DIR/mnt and
measures, for the mount and for DIR/plain: sequential write (1 GiB, 1 MiB writes, fsync, close)
and read MiB/s, `cp` of a local file of that size, random 4 KiB writes/s into a 256 MiB file
(including the final fsync), file creates/s (empty and 4 KiB), `ls -l` of a 10,000-file
directory, and metadata operations per second on --meta-ops files each: mkfifo, link, chmod,
chown, utimensat, rename. Page caches are
dropped before reads when /proc/sys/vm/drop_caches is writable (noted in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.raw import scratch_dir
from bench.readme import readme

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def seq_write(path: Path, size: int) -> float:
    block = os.urandom(MIB)

    def run() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for _ in range(size // MIB):
            os.write(fd, block)
        os.fsync(fd)
        os.close(fd)

    return size / MIB / timed(run)


def seq_read(path: Path) -> float:
    size = path.stat().st_size

    def run() -> None:
        with open(path, "rb", buffering=0) as f:
            while f.read(MIB):
                pass

    return size / MIB / timed(run)


def random_writes(path: Path, size: int, count: int) -> float:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    for off in range(0, size, MIB):
        os.pwrite(fd, os.urandom(MIB), off)
    os.fsync(fd)
    rng = random.Random(1)
    buf = os.urandom(4096)
    offsets = [rng.randrange(0, size // 4096) * 4096 for _ in range(count)]

    def run() -> None:
        for off in offsets:
            os.pwrite(fd, buf, off)
        os.fsync(fd)

    t = timed(run)
    os.close(fd)
    return count / t


def creates(root: Path, n: int, body: bytes) -> float:
    root.mkdir()

    def run() -> None:
        for i in range(n):
            with open(root / f"f{i:05d}", "wb") as f:
                if body:
                    f.write(body)

    return n / timed(run)


def ls_l(root: Path) -> float:
    return timed(lambda: subprocess.run(["ls", "-l", str(root)], stdout=subprocess.DEVNULL, check=True))


def per_second(n: int, fn: Callable[[int], object]) -> float:
    return n / timed(lambda: [fn(i) for i in range(n)])


def metadata_ops(root: Path, n: int) -> dict[str, float]:
    """Each operation n times, on n distinct files (made beforehand, not timed)."""
    root.mkdir()
    files = [root / f"f{i:05d}" for i in range(n)]
    for f in files:
        f.touch()
    when = 1_600_000_000 * 10**9
    return {
        "mkfifo_per_s": per_second(n, lambda i: os.mkfifo(root / f"p{i:05d}")),
        "link_per_s": per_second(n, lambda i: os.link(files[i], root / f"l{i:05d}")),
        "chmod_per_s": per_second(n, lambda i: os.chmod(files[i], 0o600)),
        "chown_per_s": per_second(n, lambda i: os.chown(files[i], 65534, 65534)),
        "utimensat_per_s": per_second(n, lambda i: os.utime(files[i], ns=(when, when + i))),
        "rename_per_s": per_second(n, lambda i: os.rename(files[i], root / f"r{i:05d}")),
    }


def cp_into(src: Path, dst: Path) -> float:
    """`cp` of a local file (cp sizes its writes by the target's st_blksize)."""
    secs = timed(lambda: subprocess.run(["cp", str(src), str(dst)], check=True))
    dst.unlink()
    return src.stat().st_size / MIB / secs


def suite(base: Path, args: argparse.Namespace, dropping: bool, src: Path) -> dict[str, float]:
    r: dict[str, float] = {}
    if args.only != "data":
        r.update(metadata_ops(base / "meta", args.meta_ops))
    if args.only == "meta":
        return r
    big = base / "big.bin"
    r["seq_write_MiBps"] = seq_write(big, args.size_mib * MIB)
    if dropping:
        drop_caches()
    r["seq_read_MiBps"] = seq_read(big)
    big.unlink()
    r["cp_MiBps"] = cp_into(src, base / "copy.bin")
    r["rand_4k_writes_per_s"] = random_writes(base / "rand.bin", 256 * MIB, args.random_writes)
    (base / "rand.bin").unlink()
    r["creates_empty_per_s"] = creates(base / "empty", args.creates, b"")
    r["creates_4k_per_s"] = creates(base / "small", args.creates, os.urandom(4096))
    many = base / "many"
    t0 = time.perf_counter()
    creates(many, args.files, b"")
    r["create_10k_s"] = time.perf_counter() - t0
    if dropping:
        drop_caches()
    r["ls_l_10k_cold_s"] = ls_l(many)
    r["ls_l_10k_warm_s"] = ls_l(many)
    return r


def start_daemon(data: Path, code: Path | None = None,
                 unencrypted: bool = False) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    """`code`: the source tree to run the daemon from (bench.fusecompare's "before"); default this one.
    `unencrypted`: new buckets (a mkdir in the mount's root) get no default encryption, as in
    bench.s3; by default they get the shipped default, SSE-S3."""
    log = open(data.parent / "daemon.log", "ab")  # noqa: SIM115
    extra: list[str] = []
    if unencrypted:
        config = data.parent / "stowage.toml"
        config.write_text('[s3]\ndefault_bucket_encryption = "none"\n')
        extra = ["--config", str(config)]
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "--data", str(data), "--listen",
                             "127.0.0.1:0", *extra], cwd=code or REPO, stdout=log, stderr=subprocess.STDOUT)
    runfile = data / "run" / "daemon.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited: see {data.parent / 'daemon.log'}")
        if runfile.exists():
            try:
                info = json.loads(runfile.read_text())
                if info.get("pid") == proc.pid and info.get("mount"):
                    return proc, info
            except ValueError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("daemon did not become ready")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--random-writes", type=int, default=20000)
    ap.add_argument("--creates", type=int, default=1000)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--meta-ops", type=int, default=1000)
    ap.add_argument("--only", choices=["data", "meta"], default=None)
    args = ap.parse_args()
    with scratch_dir(args.dir, "stowage-bench-") as root:
        dropping = drop_caches()
        plain = root / "plain"
        plain.mkdir()
        src = root / "src.bin"  # what cp copies in, read from the page cache
        if args.only != "meta":
            seq_write(src, args.size_mib * MIB)
        plain_r = suite(plain, args, dropping, src)
        proc, info = start_daemon(root / "data")
        try:
            mnt = Path(str(info["mount"]))
            (mnt / "bench").mkdir()
            mount_r = suite(mnt / "bench", args, dropping, src)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
    print(f"page caches dropped before reads: {'yes' if dropping else 'no (warm reads)'}")
    print(f"{'metric':<24}{'stowage mount':>16}{'plain dir':>14}   issue 15 target; README's figure")
    for k in plain_r:
        print(f"{k:<24}{mount_r[k]:>16.1f}{plain_r[k]:>14.1f}   {TARGETS.get(k, '')}"
              f"{'; ' + readme(README_ROWS[k]) if k in README_ROWS else ''}")


# the README performance table's row for a metric
README_ROWS = {
    "seq_write_MiBps": "mount: sequential write", "seq_read_MiBps": "mount: sequential write",
    "cp_MiBps": "mount: `cp`", "rand_4k_writes_per_s": "mount: random 4 KiB", "creates_empty_per_s": "mount: creates",
    "creates_4k_per_s": "mount: creates", "ls_l_10k_cold_s": "mount: `ls -l`",
}

# issue 15's targets for the mount, beside the plain directory of the same run
TARGETS = {
    "creates_4k_per_s": ">= 2,000 /s",
    "seq_write_MiBps": ">= 90% of S3 PUT MiB/s of the same size (bench.s3 / bench.compare)",
    "ls_l_10k_cold_s": "<= 3x the plain directory's",
}


if __name__ == "__main__":
    main()

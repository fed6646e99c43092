"""Before/after, side by side in one run: the mount's figures of issue 15 for two source trees.

    python -m bench.fusecompare --before /path/to/old/tree [--dir DIR] [--rounds 2]
                                [--files 2000] [--size-mib 512] [--list 10000] [--unencrypted]

Each round starts a daemon (mount on, S3 on) from each tree in turn, alternating which goes
first, and measures on it, beside a plain directory on the same disk in the same minutes:

* `tar -x` of --files 4 KiB files: files/s and the daemon's CPU time per file (user + system,
  from /proc; steadier than throughput on a loaded machine);
* a sequential write of --size-mib (1 MiB writes, fsync, close) through the mount, and an S3
  PUT of the same size to the same daemon: the target is the mount at >= 90% of the PUT;
* `ls -l` of a directory of --list files with the kernel's caches dropped (cold), against the
  plain directory's (target <= 3x); then again after a restart of the daemon, which then keeps
  none of the files' attributes (fusefs/listcache.py) either.

The table shows each side's median over the rounds.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import tarfile
import time
from pathlib import Path

from bench.compare import Side, cpu_seconds
from bench.fuse import MIB, drop_caches, seq_write, start_daemon
from bench.raw import scratch_dir
from bench.s3 import Client


def tarball(path: Path, files: int, size: int) -> Path:
    """A tar of `files` files of `size` random bytes in one directory `d`."""
    with tarfile.open(path, "w") as tar:
        for i in range(files):
            info = tarfile.TarInfo(f"d/f{i:05d}")
            info.size = size
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(os.urandom(size)))
    return path


def untar(tar: Path, into: Path) -> float:
    into.mkdir()
    t0 = time.perf_counter()
    subprocess.run(["tar", "-xf", str(tar), "-C", str(into)], check=True)
    return time.perf_counter() - t0


def ls_cold(d: Path) -> float:
    drop_caches()
    t0 = time.perf_counter()
    subprocess.run(["ls", "-l", str(d)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def s3_put_mibps(info: dict[str, object], data: Path, size: int) -> float:
    import tomllib

    creds = tomllib.loads((data / "credentials.toml").read_text())
    c = Client(str(info["s3_endpoint"]), creds["access_key"], creds["secret_key"])
    body = os.urandom(size)
    t0 = time.perf_counter()
    c.call("PUT", "/bench/s3-put.bin", body)
    secs = time.perf_counter() - t0
    c.call("DELETE", "/bench/s3-put.bin")
    return size / MIB / secs


def plain_round(plain: Side, work: Path, small: Path, empty: Path, files: int, size: int) -> None:
    base = work / "plain"
    base.mkdir()
    try:
        plain.add("tar -x 4 KiB files/s", files / untar(small, base / "small"))
        plain.add("seq write MiB/s", seq_write(base / "big.bin", size))
        untar(empty, base / "many")
        plain.add("ls -l cold s", ls_cold(base / "many" / "d"))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def mount_round(side: Side, work: Path, small: Path, empty: Path, files: int, size: int,
                unencrypted: bool = False) -> None:
    data = work / f"{side.name}-data"
    data.mkdir()
    proc, info = start_daemon(data, side.code, unencrypted)
    try:
        mnt = Path(str(info["mount"])) / "bench"
        mnt.mkdir()
        c0 = cpu_seconds(proc.pid)
        secs = untar(small, mnt / "small")
        side.add("tar -x 4 KiB files/s", files / secs)
        side.add("daemon CPU ms per file", (cpu_seconds(proc.pid) - c0) * 1000 / files)
        c0 = cpu_seconds(proc.pid)
        side.add("seq write MiB/s", seq_write(mnt / "big.bin", size))
        side.add("daemon CPU s per GiB written", (cpu_seconds(proc.pid) - c0) * (1024 * MIB) / size)
        (mnt / "big.bin").unlink()
        side.add("S3 PUT MiB/s (same size)", s3_put_mibps(info, data, size))
        untar(empty, mnt / "many")
        c0 = cpu_seconds(proc.pid)
        side.add("ls -l cold s", ls_cold(mnt / "many" / "d"))
        side.add("daemon CPU ms per ls -l", (cpu_seconds(proc.pid) - c0) * 1000)
        # the same after a restart: nothing of the files is in the daemon's memory either
        proc.terminate()
        proc.wait(120)
        proc, info = start_daemon(data, side.code, unencrypted)
        d = Path(str(info["mount"])) / "bench" / "many" / "d"
        c0 = cpu_seconds(proc.pid)
        side.add("ls -l after restart s", ls_cold(d))
        side.add("daemon CPU ms, after restart", (cpu_seconds(proc.pid) - c0) * 1000)
    finally:
        proc.terminate()
        proc.wait(120)
        shutil.rmtree(data, ignore_errors=True)



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, required=True, help="the source tree to compare with")
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--list", type=int, default=10000)
    ap.add_argument("--unencrypted", action="store_true",
                    help="the mount's bucket without default encryption (small files then packed: engine/volumes.py)")
    args = ap.parse_args()
    size = args.size_mib * MIB
    sides = [Side("before", args.before.resolve()), Side("after", None)]
    plain = Side("plain", None)
    with scratch_dir(args.dir, "stowage-fusecmp-") as work:
        small = tarball(work / "small.tar", args.files, 4096)
        empty = tarball(work / "empty.tar", args.list, 0)
        for r in range(args.rounds):
            for side in sides if r % 2 == 0 else sides[::-1]:
                mount_round(side, work, small, empty, args.files, size, args.unencrypted)
                print(f"round {r + 1} {side.name}: {({k: round(v[-1], 2) for k, v in side.figures.items()})}",
                      flush=True)
            plain_round(plain, work, small, empty, args.files, size)
    print(f"\n{'figure':<32}{'before':>12}{'after':>12}{'plain dir':>12}")
    for name in sides[0].figures:
        p = statistics.median(plain.figures[name]) if name in plain.figures else float("nan")
        if name == "ls -l after restart s":
            p = statistics.median(plain.figures["ls -l cold s"])
        print(f"{name:<32}{sides[0].median(name):>12.2f}{sides[1].median(name):>12.2f}{p:>12.2f}")


if __name__ == "__main__":
    main()

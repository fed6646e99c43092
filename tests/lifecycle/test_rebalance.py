"""A pool that grows from 6 to 8 directory disks gets its existing data spread over all of them:
in the background, rate-limited, with reads and writes working throughout, surviving kill -9 in
the middle (the walk resumes from its saved cursor, nothing is lost, no surplus file is left),
and the moved placement and the cursor come back from `stowage recover-metadata`."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from appliance.control import call
from appliance.engine.volumes import scan
from tests.conftest import DaemonProc
from tests.healing.helpers import full_redundancy
from tests.lifecycle.conftest import wait_for

RATE = 6 << 20  # rebalance bytes per second: slow enough to be caught in the middle


def write_config(path: Path, data: Path, ndisks: int) -> None:
    disks = "".join(f'[[disks]]\npath = "{data}/disks/disk{i}"\n' for i in range(ndisks))
    path.write_text(f"{disks}[rebalance]\nrate_bytes_per_sec = {RATE}\ntolerance = 0.05\nsettle_seconds = 0.5\n"
                    "[gc]\ngrace_seconds = 0.5\ninterval_seconds = 0.2\n")


def rebalance(d: DaemonProc) -> dict[str, Any]:
    st = call(Path(d.info["control_socket"]), "status", {}, timeout=60)  # what `stowage status` shows
    pool: dict[str, Any] = st["services"]["rebalance"]["pools"].get("default", {})
    return pool


def shard_bytes_per_disk(data: Path, ndisks: int) -> list[int]:
    """Per disk: its shard files' bytes and its live packed records' (small objects)."""
    out = []
    for i in range(ndisks):
        disk = data / "disks" / f"disk{i}"
        files = sum(f.stat().st_size for f in (disk / "shards").glob("*/*"))
        out.append(files + sum(r.size for v in disk.glob("volumes/*.vol") for r in scan(str(v), int(v.stem)) if r.live))
    return out


def even(data: Path, ndisks: int, tolerance: float = 0.15) -> bool:
    used = shard_bytes_per_disk(data, ndisks)
    mean = sum(used) / ndisks
    return max(used) - min(used) <= tolerance * mean


def test_grown_pool_is_rebalanced_through_kill_and_recovery(tmp_path: Path) -> None:
    data, cfg = tmp_path / "data", tmp_path / "stowage.toml"
    write_config(cfg, data, 6)
    d = DaemonProc(data, ["--no-mount", "--config", str(cfg)]).start()
    try:
        s3 = d.s3()
        s3.create_bucket(Bucket="grow")
        bodies = {f"obj{i:03d}": os.urandom(150_000 + 9_000 * i) for i in range(32)}
        for key, body in bodies.items():
            s3.put_object(Bucket="grow", Key=key, Body=body)
        assert all(shard_bytes_per_disk(data, 6))
        d.stop()

        write_config(cfg, data, 8)  # two directory disks join the pool at the next start
        d.start()
        wait_for(lambda: rebalance(d).get("moved_shards", 0) >= 8, "shards moving onto the new disks")
        assert rebalance(d)["running"]
        d.kill()  # kill -9 in the middle of the walk

        d.start()
        s3 = d.s3()
        errors: list[str] = []
        stop = threading.Event()

        def reader() -> None:  # reads and writes keep working while shards move
            n = 0
            while not stop.is_set():
                key = f"obj{n % 32:03d}"
                got = s3.get_object(Bucket="grow", Key=key)["Body"].read()
                if got != bodies[key]:
                    errors.append(f"{key}: {len(got)} bytes differ")
                n += 1

        t = threading.Thread(target=reader)
        t.start()
        try:
            late = {f"late{i}": os.urandom(120_000) for i in range(4)}
            for key, body in late.items():
                s3.put_object(Bucket="grow", Key=key, Body=body)
            bodies.update(late)
            done = wait_for(lambda: (p := rebalance(d)) and not p["running"] and p["last_complete_ns"] and p,
                            "the rebalance to finish")
        finally:
            stop.set()
            t.join()
        assert errors == []
        assert "rebalance resumed" in d.log_tail(400)
        # "balanced" (every disk within 5% of its share) is not always in reach: a shard may only
        # go to a disk holding no other shard of its segment (2 of 8 here), and one shard is ~6% of
        # a share, so the walk may end "as even as whole shards allow", depending on what moved
        # before the kill. Even within 15% it always is.
        assert done["disks"] == 8 and done["spread"] <= 0.15, done
        # the old files of moved shards go after GC's grace period; then the disks are even
        wait_for(lambda: even(data, 8), f"even disks: {shard_bytes_per_disk(data, 8)}")
        moved = done["moved_shards"]
        d.stop()

        shutil.rmtree(data / "meta")
        d.cli("recover-metadata", "--config", str(cfg))
        d.start()
        s3 = d.s3()
        for key, body in bodies.items():
            got = s3.get_object(Bucket="grow", Key=key)["Body"].read()
            assert hashlib.md5(got).digest() == hashlib.md5(body).digest(), key
        after = wait_for(lambda: rebalance(d), "the pool's rebalance state")
        assert after["moved_shards"] == moved and not after["running"]  # the cursor came back from the journal
        assert even(data, 8)
        # every segment's k+m shards once each on distinct disks: no surplus file
        assert full_redundancy(data, moved_records=True)
        assert "stowage.rebalance: pool default: rebalancing" not in d.log_tail(30)  # nothing more to do
    finally:
        d.kill()

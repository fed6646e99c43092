"""The mount's delayed durability under power cuts (fusefs/SEMANTICS.md "Durability"): close(2)
makes a file visible at once and durable within mount.durability_seconds; fsync(2) returns only
once it is durable. A kill -9 leaves the page cache intact and proves nothing, so every disk of
the appliance is a fault disk whose power cut drops whatever was not made durable."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.faultfs import usable
from tests.polling import wait_for

from .appliance import BUCKET, fault_appliance

pytestmark = pytest.mark.skipif(not usable(), reason="needs root and /dev/fuse")
SIZES = (0, 10, 4096, 70_000, 300_000)  # empty, replicated small files, 4+2 stripes


def _write(path: Path, body: bytes, sync: bool) -> None:
    with open(path, "wb") as f:
        f.write(body)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    if sync:  # the new name is acknowledged by the directory's fsync
        dirfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)


def test_closed_files_become_durable_within_the_interval_and_a_cut_never_tears_one(tmp_path: Path) -> None:
    rnd = random.Random(7)
    with fault_appliance(tmp_path, mount=True, config="[mount]\ndurability_seconds = 0.5\n") as a:
        s3 = a.daemon.s3()
        s3.create_bucket(Bucket=BUCKET)
        root = Path(a.daemon.info["mount"]) / BUCKET
        wait_for(root.is_dir, 30, "the bucket in the mount")
        settled = {f"settled-{i}": rnd.randbytes(n) for i, n in enumerate(SIZES * 2)}
        for name, body in settled.items():
            _write(root / name, body, sync=False)
        # nothing calls fsync: the interval's background sync alone makes them durable
        wait_for(lambda: not a.ctl_status()["metadata"]["undurable_commits"], 30,
                 "the closed files' commits to be durable without any fsync")
        synced = {f"synced-{i}": rnd.randbytes(n) for i, n in enumerate(SIZES)}
        for name, body in synced.items():
            _write(root / name, body, sync=True)
        recent = {f"recent-{i}": rnd.randbytes(n) for i, n in enumerate(SIZES * 2)}
        # closed just before the cut: each may be lost, whole: gone, or the empty file its creat
        # made (a separate commit, possibly durable when the close's was not)
        for name, body in recent.items():
            _write(root / name, body, sync=False)
        a.power_cut()

        s3 = a.daemon.s3()
        for name, body in {**settled, **synced}.items():
            assert s3.get_object(Bucket=BUCKET, Key=name)["Body"].read() == body, name
        lost = 0
        for name, body in recent.items():
            try:
                got = s3.get_object(Bucket=BUCKET, Key=name)["Body"].read()
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "NoSuchKey", name
                lost += 1
                continue
            if got == b"" and body:  # its close was lost, its creat's zero-byte version was not
                lost += 1
                continue
            assert got == body, f"{name}: {len(got)} bytes back of {len(body)}: torn"
        listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
        assert listed - set(recent) == set(settled) | set(synced)
        print(f"{lost} of {len(recent)} files closed just before the cut were lost (whole)")
        # the mount after the restart agrees with S3
        root = Path(a.daemon.info["mount"]) / BUCKET
        wait_for(root.is_dir, 30, "the bucket in the mount after the restart")
        assert {p.name for p in root.iterdir()} == listed

"""Real faults under a real mount: too many shards lost reads as EIO, a pool that cannot hold a
write gives ENOSPC, and the daemon keeps serving."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import mounted


def test_lost_shards_eio_and_full_pool_enospc(mount_daemon: Any) -> None:
    mnt = mounted(mount_daemon)
    s3 = mount_daemon.s3()
    s3.create_bucket(Bucket="faults")
    body = os.urandom(3 << 20)
    s3.put_object(Bucket="faults", Key="big.bin", Body=body)  # never cached by the kernel
    assert (mnt / "faults" / "big.bin").read_bytes() == body
    s3.put_object(Bucket="faults", Key="other.bin", Body=os.urandom(2 << 20))
    disks = sorted((mount_daemon.data_dir / "disks").iterdir())[:3]
    for d in disks:  # three of six disks lose every shard: more than m=2
        os.rename(d / "shards", d / "shards.gone")
    with pytest.raises(OSError) as ei:
        (mnt / "faults" / "other.bin").read_bytes()
    assert ei.value.errno == errno.EIO
    with pytest.raises(OSError) as ei, open(mnt / "faults" / "new.bin", "wb") as f:
        f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
    assert ei.value.errno == errno.ENOSPC, ei.value
    # the daemon survives both: listings and the S3 side still answer
    assert "big.bin" in os.listdir(mnt / "faults")
    assert {o["Key"] for o in s3.list_objects_v2(Bucket="faults")["Contents"]} >= {"big.bin", "other.bin"}
    assert Path(mnt).is_dir() and mount_daemon.proc.poll() is None

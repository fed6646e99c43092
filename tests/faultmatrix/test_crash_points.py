"""The daemon killed (SIGKILL, by itself) at each named crash point of the write, multipart, GC,
heal and rename paths (diskmgr/crashpoints.py), then restarted: every acknowledged write reads
back byte-exact, the step in flight is whole or absent, and no shard file is left orphaned."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from diskmgr.crashpoints import ENV, POINTS
from tests.healing.helpers import data_segments
from tests.polling import wait_for

from .checks import listing_consistent, no_orphans, read_back, whole_or_absent

BUCKET = "crash"
SIZES = [0, 300_000, 1, 4096, (1 << 20) + 5]
FAST_GC = "[gc]\ngrace_seconds = 0\ninterval_seconds = 0.1\n"


def crashed_at(d: Any, point: str) -> None:
    """Wait for the daemon to die at `point` (it kills itself), then clear its mount."""
    wait_for(lambda: d.proc.poll() is not None, timeout=60, what=f"the daemon to crash at {point}")
    assert d.proc.returncode == -9, d.log_tail()
    assert f"crash point {point}" in d.log_tail(200)
    if d.info.get("mount"):
        subprocess.run(["umount", "-l", d.info["mount"]], capture_output=True)


def start_armed(daemon_factory: Any, tmp_path: Path, point: str, mount: bool = False) -> Any:
    cfg = tmp_path / "stowage.toml"
    cfg.write_text(FAST_GC if point.startswith("gc.") else "")
    args = ["--config", str(cfg)] + ([] if mount else ["--no-mount"])
    # the PUTs of `populate` pass the write points: the one after them crashes
    armed = f"{point}@{len(SIZES) + 1}" if point.startswith("write.") else point
    return daemon_factory(args, env={ENV: armed})


def populate(s3: Any, seed: int = 7) -> dict[str, bytes]:
    rnd = random.Random(seed)
    with contextlib.suppress(ClientError):
        s3.create_bucket(Bucket=BUCKET)
    acked = {}
    for i, size in enumerate(SIZES):
        body = rnd.randbytes(size)
        s3.put_object(Bucket=BUCKET, Key=f"base/{i}", Body=body)
        acked[f"base/{i}"] = body
    return acked


def restart_and_check(d: Any, acked: dict[str, bytes]) -> Any:
    d.info = {}
    d.env.pop(ENV, None)
    d.start()
    s3 = d.s3()
    read_back(s3, BUCKET, acked)
    listing_consistent(s3, BUCKET)
    return s3


def test_every_point_is_covered() -> None:
    from .powercuts import MOMENTS  # the points only a power cut reaches (lifecycle, snapshot)

    assert set(POINTS) == set(CASES) | set(MOMENTS)


def crash_in_put(d: Any, point: str, acked: dict[str, bytes]) -> None:
    body = os.urandom(700_000)
    with pytest.raises((BotoCoreError, ClientError)):
        d.s3().put_object(Bucket=BUCKET, Key="inflight", Body=body)
    crashed_at(d, point)
    s3 = restart_and_check(d, acked)
    got = whole_or_absent(s3, BUCKET, "inflight", [body])
    if point == "write.committed":
        assert got == body  # committed before the crash: durable though never acknowledged


def crash_in_multipart(d: Any, point: str, acked: dict[str, bytes]) -> None:
    s3 = d.s3()
    up = s3.create_multipart_upload(Bucket=BUCKET, Key="mp")["UploadId"]
    parts, body = [], b""
    for n in (1, 2):
        piece = os.urandom(5 << 20 if n == 1 else 1000)
        etag = s3.upload_part(Bucket=BUCKET, Key="mp", UploadId=up, PartNumber=n, Body=piece)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
        body += piece
    with pytest.raises((BotoCoreError, ClientError)):
        s3.complete_multipart_upload(Bucket=BUCKET, Key="mp", UploadId=up, MultipartUpload={"Parts": parts})
    crashed_at(d, point)
    s3 = restart_and_check(d, acked)
    assert s3.get_object(Bucket=BUCKET, Key="mp")["Body"].read() == body
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def crash_in_gc(d: Any, point: str, acked: dict[str, bytes]) -> None:
    s3 = d.s3()
    new = os.urandom(200_000)
    s3.put_object(Bucket=BUCKET, Key="base/1", Body=new)  # its old segment becomes garbage
    acked["base/1"] = new
    crashed_at(d, point)
    restart_and_check(d, acked)


def crash_in_heal(d: Any, point: str, acked: dict[str, bytes]) -> None:
    segs = data_segments(d.data_dir)
    assert segs
    first = next(s for shards in segs.values() for s in shards if s.header.shard == 0)
    first.destroy(random.Random(0))  # a data shard of an object gone or damaged (a read notices it)
    with contextlib.suppress(BotoCoreError, ClientError):
        read_back(d.s3(), BUCKET, acked)  # the degraded read reports the damage: heal rebuilds it
    d.cli("heal", check=False)  # the daemon dies under the command (or before it)
    crashed_at(d, point)
    restart_and_check(d, acked)
    d.cli("heal")
    read_back(d.s3(), BUCKET, acked)


def crash_in_rename(d: Any, point: str, acked: dict[str, bytes]) -> None:
    m = Path(d.info["mount"]) / BUCKET
    body = os.urandom(300_000)
    (m / "before.bin").write_bytes(body)
    acked["before.bin"] = body
    with pytest.raises(OSError):
        os.rename(m / "before.bin", m / "after.bin")
    crashed_at(d, point)
    s3 = restart_and_check(d, {k: v for k, v in acked.items() if k != "before.bin"})
    # committed before the crash: the move is whole, the old name gone
    assert s3.get_object(Bucket=BUCKET, Key="after.bin")["Body"].read() == body
    assert whole_or_absent(s3, BUCKET, "before.bin", []) is None


CASES = {
    "write.data_stored": crash_in_put,
    "write.committed": crash_in_put,
    "multipart.completed": crash_in_multipart,
    "rename.committed": crash_in_rename,
    "gc.record_dropped": crash_in_gc,
    "gc.files_deleted": crash_in_gc,
    "heal.shards_sealed": crash_in_heal,
    "heal.committed": crash_in_heal,
}


@pytest.mark.parametrize("point", sorted(CASES))
def test_crash_point(point: str, daemon_factory: Any, tmp_path: Path) -> None:
    mount = point.startswith("rename.")
    if mount and not os.access("/dev/fuse", os.R_OK | os.W_OK):
        pytest.skip("/dev/fuse is not usable here")
    d = start_armed(daemon_factory, tmp_path, point, mount=mount)
    acked = populate(d.s3())
    CASES[point](d, point, acked)
    d.stop()
    no_orphans(d.data_dir)

"""Where heal puts a shard it rebuilds, when the disk it first chose cannot take it: a write that
fails there is written again on another disk of the pool (repair.py), so a segment does not stay
degraded for good."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from appliance.engine.shardfile import read_header

from .helpers import BUCKET, ctl, data_segments
from .test_disk_failure import seven_disk_config


def shard_disks(data_dir: Path, segment_id: str) -> dict[int, str]:
    """shard index -> disk directory name, over the shard files (not directories) of a segment."""
    out: dict[int, str] = {}
    for p in data_dir.glob(f"disks/*/shards/*/{segment_id}.*"):
        if p.is_file():
            hdr = read_header(str(p))
            assert hdr.segment_id == segment_id and hdr.shard not in out, p
            out[hdr.shard] = p.parts[-4]
    return out


@pytest.mark.parametrize("holding", [False, True], ids=["empty", "holding-a-file"])
def test_a_directory_at_a_shards_path_does_not_keep_its_segment_degraded(
        daemon_factory: Any, tmp_path: Path, holding: bool) -> None:
    """Heal rebuilt the shard in place, the rename onto the directory failed (EISDIR) at every
    pass, and the segment stayed one fault from loss for good (found by fuzzing). An empty
    directory now gives way to the shard file; one holding anything is left alone and the shard
    goes to the disk of the pool that held none of the segment's."""
    d = daemon_factory(["--no-mount", "--config", str(seven_disk_config(tmp_path, "data"))])
    s3 = d.s3()
    s3.create_bucket(Bucket=BUCKET)
    body = os.urandom(3 << 20)
    s3.put_object(Bucket=BUCKET, Key="k", Body=body)
    d.stop()
    [(seg, shards)] = data_segments(d.data_dir).items()
    victim = next(s for s in shards if s.record is None)
    before = shard_disks(d.data_dir, seg)
    victim.path.unlink()
    victim.path.mkdir()
    if holding:
        (victim.path / "keep").write_bytes(b"not ours")
    d.start()
    assert d.s3().get_object(Bucket=BUCKET, Key="k")["Body"].read() == body
    assert ctl(d, "scrub.start", {"wait": True})["found"] == 1
    assert ctl(d, "scrub.start", {"wait": True})["found"] == 0  # repaired by the first pass
    assert ctl(d, "heal.run")["heal"]["pending"] == 0
    after = shard_disks(d.data_dir, seg)
    assert sorted(after) == list(range(6)) and len(set(after.values())) == 6
    moved = {i: disk for i, disk in after.items() if before[i] != disk}
    if holding:
        assert (victim.path / "keep").read_bytes() == b"not ours"  # left as it was
        assert list(moved) == [victim.header.shard]
        assert moved[victim.header.shard] not in before.values()  # the seventh disk
    else:
        assert victim.path.is_file() and moved == {}  # rebuilt in place
    assert d.s3().get_object(Bucket=BUCKET, Key="k")["Body"].read() == body

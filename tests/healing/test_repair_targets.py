"""Where heal puts a shard it rebuilds, when the disk it first chose cannot take it: a write that
fails there is written again on another disk of the pool (repair.py), so a segment does not stay
degraded for good."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.engine.shardfile import read_header
from tests.faultfs import FaultDisk
from tests.faultfs.rules import GROWING

from .helpers import BUCKET, check_all, ctl, data_segments, full_redundancy, populate, shards_on
from .test_disk_failure import seven_disk_config
from .test_loop_disks import BIG, add_disk, disk_path, disks_cli


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


def test_a_full_disk_is_not_a_failing_disk(daemon_factory: Any, tmp_path: Path) -> None:
    """A disk that refuses growth with ENOSPC while its statfs still shows room (reserved blocks,
    a quota, another writer between two reads of its free space; here a fault disk): placement and
    heal draw to it, and every write there fails. Each ENOSPC was counted as an I/O error: the
    disk went `warning`, then `failing`, on the way to `failed` and a rebuild of all it holds
    (found by fuzzing). Now its health is untouched, and heal puts the shards its writes missed on
    the disk that has room."""
    cfg = seven_disk_config(tmp_path, "data")
    full = tmp_path / "data" / "disks" / "disk6"
    with FaultDisk.start(tmp_path / "fault", full) as fault:
        d = daemon_factory(["--no-mount", "--config", str(cfg)])
        fault.control.enospc(ops=sorted(GROWING))
        with pytest.raises(OSError) as err:
            (full / "filler").touch()
        assert err.value.errno == errno.ENOSPC and os.statvfs(full).f_bavail > 0
        disk_id = next(x["disk_id"] for x in ctl(d, "status")["disks"] if x["path"] == str(full))
        objs = populate(d, n=8, seed=5)
        check_all(d, objs)
        heal = ctl(d, "heal.run")["heal"]
        assert heal["pending"] == 0 and heal["rebuilt_shards"] > 0  # writes missed the full disk
        assert full_redundancy(d.data_dir)
        assert not list(full.glob("shards/*/*"))
        counters = next(x for x in ctl(d, "disks.counters")["disks"] if x["disk_id"] == disk_id)
        assert counters["io_errors"] == 0, counters
        assert ctl(d, "disks.check")  # the disk monitor looks now: nothing against the disk
        status = next(x for x in ctl(d, "status")["disks"] if x["disk_id"] == disk_id)
        assert status["state"] == "ok", status
        check_all(d, objs)
        d.stop()


def test_a_disk_out_of_inodes_draws_no_new_shards(daemon_factory: Any, tmp_path: Path) -> None:
    """A filesystem out of inodes (a tmpfs's nr_inodes here; many small files on ext4) refuses
    every new file whatever its free bytes. Placement counted only the bytes, so each new segment
    put a shard there, the write failed, and the segment stayed one shard short until heal
    rebuilt it elsewhere. Its room is now none: new segments go to the disks that can take them,
    and nothing is left for heal to do."""
    cfg = seven_disk_config(tmp_path, "data")
    full = tmp_path / "data" / "disks" / "disk6"
    full.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64T,nr_inodes=600", "tmpfs", str(full)], check=True)
    try:
        d = daemon_factory(["--no-mount", "--config", str(cfg)])  # lays out the disk's directories
        d.stop()
        filler = full / "filler"
        filler.mkdir()
        with pytest.raises(OSError) as err:
            for n in range(1000):
                (filler / str(n)).touch()
        assert err.value.errno == errno.ENOSPC and os.statvfs(full).f_bavail > 0
        d.start()  # its first placement reads the free space afresh
        disk_id = next(x["disk_id"] for x in ctl(d, "status")["disks"] if x["path"] == str(full))
        objs = populate(d, n=8, seed=5)
        check_all(d, objs)
        assert full_redundancy(d.data_dir)  # no segment waits for heal
        heal = ctl(d, "heal.run")["heal"]
        assert heal["pending"] == 0 and heal["rebuilt_shards"] == 0, heal
        assert not list(full.glob("shards/*/*"))
        status = next(x for x in ctl(d, "status")["disks"] if x["disk_id"] == disk_id)
        assert status["state"] == "ok", status
        d.stop()
    finally:
        subprocess.run(["umount", "-l", str(full)], check=True)


def test_replace_onto_a_disk_without_room(daemon: Any, make_loop: Callable[..., str], tmp_path: Path) -> None:
    """`disks replace OLD NEW` with NEW smaller or fuller than OLD's shards need: every shard was
    written to NEW whatever its free space, each ENOSPC counted against NEW's health (`warning`,
    `failing`, ...), and the replace failed saying "no other writable disk could take them" while
    other disks had room (found by fuzzing). NEW is the preferred target only: what it has no
    room for goes to another disk, and if none can take it the error says NEW is out of space."""
    etc = tmp_path / "sysroot"
    etc.mkdir()
    objs = populate(daemon, n=8, seed=21)
    new = add_disk(daemon, make_loop(512 << 20), etc)
    new_path = disk_path(daemon, new)
    st = os.statvfs(new_path)
    subprocess.run(["fallocate", "-l", str(st.f_bavail * st.f_frsize - (256 << 10)), str(new_path / "filler")],
                   check=True)
    old = next(x["disk_id"] for x in ctl(daemon, "status")["disks"] if x["path"].endswith("disk0"))

    def health(disk_id: str) -> tuple[str, int]:
        row = next(x for x in ctl(daemon, "disks.check")["disks"] if x["disk_id"] == disk_id)
        return row["state"], row["io_errors"]

    # the six embedded disks hold a shard of every segment: only NEW could take OLD's
    r = subprocess.run([sys.executable, "-m", "appliance", "disks", "replace", old, new, "--data",
                        str(daemon.data_dir)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, STOWAGE_SYSCONF_ROOT=str(etc)))
    assert r.returncode != 0
    assert f"out of space on {new}, and no other writable disk could take them" in r.stderr, r.stderr
    assert health(new) == ("ok", 0)
    assert health(old)[0] == "ok"  # given back its use
    check_all(daemon, objs)
    on_new = shards_on(new_path)  # a small shard that fit (its free space was read before the filler)

    # a disk with room: it takes what NEW cannot
    other = add_disk(daemon, make_loop(BIG), etc)
    held = shards_on(disk_path(daemon, old))
    r = disks_cli(daemon, etc, "replace", old, new)
    assert f"disk {old} replaced by {new}: {held} shards rebuilt, {held} of them on other disks " \
           f"({new} had no room for them)" in r.stdout, r.stdout
    assert shards_on(new_path) == on_new and shards_on(disk_path(daemon, other)) == held
    assert health(new) == ("ok", 0)
    assert full_redundancy(daemon.data_dir)
    check_all(daemon, objs)

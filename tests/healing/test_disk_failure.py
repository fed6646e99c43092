"""A disk vanishing under a running daemon: reads keep working, the healer restores full
redundancy on the remaining disks without operator action, every object stays byte-exact.
And a segment that lost more than m shards is reported by bucket/key, never dropped silently."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from appliance.engine.shardfile import read_header
from tests.conftest import REPO, STOWAGE

from .helpers import BUCKET, check_all, ctl, data_segments, full_redundancy, populate, vanish, wait_for


def seven_disk_config(tmp: Path, name: str) -> Path:
    cfg = tmp / f"{name}.toml"
    disks = "\n".join(f'[[disks]]\npath = "{tmp / name / "disks" / f"disk{i}"}"\n' for i in range(7))
    cfg.write_text(f"[pools.default]\nk = 4\nm = 2\n\n{disks}")
    return cfg


def test_vanished_disk_is_healed_without_operator(daemon_factory: Any, tmp_path: Path) -> None:
    cfg = seven_disk_config(tmp_path, "data")
    d = daemon_factory(["--no-mount", "--config", str(cfg)])
    objs = populate(d, n=16)
    victim = max((d.data_dir / "disks").iterdir(), key=lambda p: len(list(p.glob("shards/*/*"))))
    held = len(list(victim.glob("shards/*/*")))
    assert held > 0
    vanish(victim, tmp_path / "pulled")

    check_all(d, objs)  # degraded reads decode around the missing disk

    def healed() -> bool:
        st = ctl(d, "status")
        disk = next(x for x in st["disks"] if x["path"] == str(victim))
        heal = st["services"]["heal"]
        return disk["state"] == "offline" and not heal["running"] and heal["pending"] == 0 \
            and full_redundancy(d.data_dir)

    wait_for(healed, timeout=120, what="healing after the disk vanished")
    st = json.loads(d.cli("status", "--json").stdout)
    assert st["services"]["heal"]["rebuilt_shards"] >= held
    assert st["services"]["heal"]["unrecoverable"] == []
    check_all(d, objs)
    # nothing left to do: a scrub pass finds no damage
    assert ctl(d, "scrub.start", {"wait": True})["found"] == 0
    # and after a restart the offline disk stays out and the data is all there
    d.restart()
    check_all(d, objs)


def test_unrecoverable_object_is_listed(daemon: Any) -> None:
    objs = populate(daemon, n=6)
    s3 = daemon.s3()
    head = s3.head_object(Bucket=BUCKET, Key="obj/003")
    segs = data_segments(daemon.data_dir)
    # find obj/003's segment by its shard header identity, delete three of its six shards
    seg = next(s for s, shards in segs.items() if shards[0].header.identity.get("key") == "obj/003")
    for shard in segs[seg][:3]:
        shard.destroy(random.Random(3))
    with pytest.raises(ClientError) as err:  # a segment missing 3 of 4+2 shards cannot be read
        s3.get_object(Bucket=BUCKET, Key="obj/003")["Body"].read()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # said plainly, not as throttling ("Please reduce your request rate", found by fuzzing)
    assert "too many of the disks" in err.value.response["Error"]["Message"]
    r = daemon.cli("heal", check=False)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{BUCKET}/obj/003" in r.stdout
    st = ctl(daemon, "heal.status")
    assert any(o.get("key") == "obj/003" for e in st["unrecoverable"] for o in e["objects"])
    assert head["ContentLength"] == len(objs["obj/003"])
    # the other objects are untouched
    check_all(daemon, {k: v for k, v in objs.items() if k != "obj/003"})


def test_a_drain_that_cannot_finish_is_refused_before_it_starts(daemon: Any) -> None:
    """Six disks, 4+2: a drain has nowhere to move a shard. It used to start, fail, and leave
    the disk draining for good, so every new segment had a shard less (found by fuzzing)."""
    objs = populate(daemon, n=4)
    disk = ctl(daemon, "status")["disks"][0]
    r = daemon.cli("disks", "remove", disk["disk_id"], check=False)
    assert r.returncode != 0 and "nowhere to move" in r.stderr and "Nothing was changed" in r.stderr, r.stderr
    after = next(d for d in ctl(daemon, "status")["disks"] if d["disk_id"] == disk["disk_id"])
    assert after["state"] == disk["state"] == "ok"
    objs.update(populate(daemon, n=4, seed=2, prefix="after/"))
    check_all(daemon, objs)
    assert full_redundancy(daemon.data_dir)  # new segments got all six shards


def test_another_file_at_a_shards_path_is_a_damaged_shard(daemon_factory: Any, tmp_path: Path) -> None:
    """Another segment's shard file put where a shard's file belongs (a misplaced or swapped
    file): its chunks' CRCs are its own, so they passed. It was served as that shard's (wrong
    bytes, unencrypted data), scrub saw nothing and heal rebuilt parity from it (found by
    fuzzing). Now the header must name the segment and the shard: otherwise it is damaged."""
    config = tmp_path / "noenc.toml"
    config.write_text('[s3]\ndefault_bucket_encryption = "none"\n')
    d = daemon_factory(["--no-mount", "--config", str(config)])
    s3 = d.s3()
    s3.create_bucket(Bucket=BUCKET)
    a, b = os.urandom(2 << 20), os.urandom(2 << 20)
    s3.put_object(Bucket=BUCKET, Key="a", Body=a)
    s3.put_object(Bucket=BUCKET, Key="b", Body=b)
    segs = {s[0].header.identity.get("key"): s for s in data_segments(d.data_dir).values()}
    target = next(s for s in segs["a"] if s.record is None and s.header.shard == 0)
    other = next(s for s in segs["b"] if s.record is None and s.header.shard == 0)
    shutil.copyfile(other.path, target.path)  # b's data shard 0 where a's belongs
    for _ in range(2):
        assert s3.get_object(Bucket=BUCKET, Key="a")["Body"].read() == a
        assert s3.get_object(Bucket=BUCKET, Key="a", Range="bytes=0-65535")["Body"].read() == a[:65536]
    d.cli("scrub", check=False)  # finds it (a read found it already) and heal rewrites it
    wait_for(lambda: read_header(str(target.path)).segment_id == target.header.segment_id, timeout=60)
    assert s3.get_object(Bucket=BUCKET, Key="a")["Body"].read() == a
    assert s3.get_object(Bucket=BUCKET, Key="b")["Body"].read() == b


@pytest.mark.parametrize("kind", ["shard", "volume"])
def test_a_fifo_where_a_shard_or_volume_file_belongs(daemon_factory: Any, kind: str) -> None:
    """Opening it waited for a writer for ever: scrub never returned and, for a volume, the
    daemon did not stop on SIGTERM (found by fuzzing). It is a damaged shard like any other."""
    d = daemon_factory(["--no-mount"])
    s3 = d.s3()
    s3.create_bucket(Bucket=BUCKET)
    big, small = os.urandom(3 << 20), os.urandom(4096)
    s3.put_object(Bucket=BUCKET, Key="big", Body=big)
    s3.put_object(Bucket=BUCKET, Key="small", Body=small)
    d.stop()
    pattern = "disks/*/shards/*/*" if kind == "shard" else "disks/*/volumes/*.vol"
    victim = sorted(d.data_dir.glob(pattern))[0]
    victim.unlink()
    os.mkfifo(victim)
    d.start()
    s3 = d.s3()
    assert s3.get_object(Bucket=BUCKET, Key="big")["Body"].read() == big
    assert s3.get_object(Bucket=BUCKET, Key="small")["Body"].read() == small
    r = subprocess.run([*STOWAGE, "scrub", "--json", "--data", str(d.data_dir)], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode in (0, 1), r.stdout + r.stderr  # 1: damage found (and queued for healing)
    assert d.stop(timeout=60) == 0


@pytest.mark.parametrize("entry", ["volumes", "shards", "tmp", "."])
def test_a_file_where_a_disks_directory_belongs_holds_that_disk_offline(daemon_factory: Any, entry: str) -> None:
    """A file at one disk's volumes/, shards/ or tmp/, or at the disk's own directory, stopped
    the whole appliance's start with a traceback (found by fuzzing). That disk is offline, saying
    why, and the other five serve every object and take new ones."""
    d = daemon_factory(["--no-mount"])
    objs = populate(d, n=6)
    d.stop()
    bad = (d.data_dir / "disks" / "disk1" / entry).resolve()
    if bad.is_dir():
        shutil.rmtree(bad)
    bad.write_text("not a directory")
    d.start()
    ctl(d, "disks.check")  # the disk monitor's verdict too, not only the loader's
    disk = _disk1_offline_and_the_rest_serve(d, objs)
    assert disk["reasons"] == [f"{bad} is not a directory"]


def _disk1_offline_and_the_rest_serve(d: Any, objs: dict[str, bytes]) -> dict[str, Any]:
    """disk1 is offline in `status`, the other five are ok, every object reads back and new ones
    are taken; then the daemon stops cleanly, with no traceback logged. Returns disk1's row."""
    st = json.loads(d.cli("status", "--json").stdout)
    disk: dict[str, Any] = next(x for x in st["disks"] if x["path"] == str(d.data_dir / "disks" / "disk1"))
    assert disk["state"] == "offline", disk
    assert sum(x["state"] == "ok" for x in st["disks"]) == 5
    check_all(d, objs)
    objs.update(populate(d, n=2, seed=2, prefix="new/"))
    check_all(d, objs)
    assert d.stop() == 0
    assert "Traceback" not in d.log_tail(10_000)
    return disk


@pytest.mark.parametrize("damage", ["garbage", "foreign", "directory"])
def test_one_disks_unusable_label_holds_that_disk_offline(daemon_factory: Any, damage: str) -> None:
    """A damaged label, a label that is a directory, or one naming another appliance on one
    disk refused the whole appliance's start, and recover-metadata, which ignores such a disk,
    could not help (found by fuzzing). That disk is offline, saying why, and the other five
    serve; with its label mended it is back."""
    d = daemon_factory(["--no-mount"])
    objs = populate(d, n=6)
    d.stop()
    label = d.data_dir / "disks" / "disk1" / ".stowage-disk.json"
    good = label.read_bytes()
    label.unlink()
    if damage == "garbage":
        label.write_bytes(b"{not json")
    elif damage == "directory":
        label.mkdir()
    else:
        doc = json.loads(good)
        doc["appliance_id"] = "0123456789abcdef"
        label.write_text(json.dumps(doc))
    d.start()
    _disk1_offline_and_the_rest_serve(d, objs)
    if label.is_dir():
        label.rmdir()
    label.write_bytes(good)
    d.start()
    st = json.loads(d.cli("status", "--json").stdout)
    assert all(x["state"] == "ok" for x in st["disks"]), st["disks"]
    check_all(d, objs)

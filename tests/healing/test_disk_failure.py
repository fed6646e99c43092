"""A disk vanishing under a running daemon: reads keep working, the healer restores full
redundancy on the remaining disks without operator action, every object stays byte-exact.
And a segment that lost more than m shards is reported by bucket/key, never dropped silently."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

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
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 500
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

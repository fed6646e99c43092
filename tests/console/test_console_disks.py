"""The console's disk actions against a real daemon with a 4+2 pool on seven directory disks:
adding a real loop device (root only) through the console runs `stowage disks add`'s own code
(preflight refusals included) and is audited; a drain and a replace started from the console
move the shards, a drained added disk is unmounted, and every object still reads back byte for
byte through boto3."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from diskmgr.label import is_mounted
from tests.conftest import DaemonProc, running
from tests.diskmgr.conftest import GIB
from tests.healing.helpers import shards_on
from tests.healing.test_disk_failure import seven_disk_config
from tests.polling import wait_for

from .conftest import ConsoleClient, add_user


@pytest.fixture(scope="module")
def d7(tmp_path_factory: pytest.TempPathFactory, sysroot: Path) -> Iterator[DaemonProc]:
    tmp = tmp_path_factory.mktemp("console7")
    cfg = seven_disk_config(tmp, "data")
    # shard counts are compared before and after each move: no rebalance onto the added disks meanwhile
    cfg.write_text(cfg.read_text() + "\n[rebalance]\nenabled = false\n")
    d = DaemonProc(tmp / "data", ["--no-mount", "--config", str(cfg)], {"STOWAGE_SYSCONF_ROOT": str(sysroot)})
    with running(d):
        yield d


@pytest.fixture(scope="module")
def admin(d7: DaemonProc) -> ConsoleClient:
    return ConsoleClient(d7, d7.access_key, d7.secret_key)


def _audit(d: DaemonProc) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (d.data_dir / "log" / "audit.log").read_text().splitlines()]


def _ended(d: DaemonProc, op: str, disk_id: str) -> dict[str, Any] | None:
    """The audit entry of a console drain/replace of `disk_id` once it ended (not "started")."""
    return next((e for e in reversed(_audit(d)) if e["source"] == "console" and e["action"] == op
                 and f"={disk_id}" in e["target"] and e["outcome"] != "started"), None)


def _disks(c: ConsoleClient) -> dict[str, dict[str, Any]]:
    return {x["disk_id"]: x for x in c("GET", "disks").json()["disks"]}


def _candidate(c: ConsoleClient, dev: str) -> dict[str, Any] | None:
    r = c("GET", "disks/candidates")
    assert r.status_code == 200, r.text
    return next((x for x in r.json()["devices"] if x["device"] == dev), None)


def _add(c: ConsoleClient, dev: str, **extra: Any) -> Any:
    return c("POST", "disks/action", json={"action": "add", "device": dev, "role": "data", "pool": "default",
                                           "confirm": dev, **extra})


def _boot_entries(sysroot: Path) -> str:
    """What the added disks wrote for boot (fstab lines or mount units) under the scratch root."""
    etc = sysroot / "etc"
    return "".join(p.read_text() for p in etc.rglob("*") if p.is_file()) if etc.exists() else ""


def test_add_a_loop_device(d7: DaemonProc, admin: ConsoleClient, loops: Callable[[], str]) -> None:
    dev = loops()
    cand = _candidate(admin, dev)
    assert cand is not None and cand["kind"] == "loop" and cand["size_bytes"] == GIB
    assert cand["blockers"] == [] and cand["data"] == []
    r = _add(admin, dev, confirm="")  # every add formats: the device must be named again
    assert r.status_code == 400 and "confirm" in r.json()["message"]
    r = _add(admin, dev)
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert res["handed_over"] == "attached to the running daemon" and res["device"] == dev
    disk = _disks(admin)[res["disk_id"]]
    assert disk["path"] == res["mount_point"] == str(d7.data_dir / "disks" / res["disk_id"])
    assert disk["pool"] == "default" and disk["state"] == "ok"
    assert _candidate(admin, dev) is None  # in the appliance now, no longer a candidate
    entry = _audit(d7)[-1]
    assert (entry["source"], entry["action"], entry["outcome"]) == ("console", "disks.add", "ok")
    assert entry["who"].endswith(":root") and f"device={dev}" in entry["target"]
    assert res["disk_id"] not in entry["before"]["disks"] and res["disk_id"] in entry["after"]["disks"]


def test_add_refusals(d7: DaemonProc, admin: ConsoleClient, loops: Callable[[], str], tmp_path: Path) -> None:
    """The CLI's preflight: a mounted device never; one holding a filesystem not without force."""
    dev = loops()
    subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True, capture_output=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", dev, str(mnt)], check=True)
    try:
        cand = _candidate(admin, dev)
        assert cand is not None and any("mounted" in b for b in cand["blockers"])
        r = _add(admin, dev, force=True)
        assert r.status_code == 409 and r.json()["error"] == "DeviceRefused" and "mounted" in r.json()["message"]
        assert (_audit(d7)[-1]["action"], _audit(d7)[-1]["outcome"]) == ("disks.add", "DeviceRefused")
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    cand = _candidate(admin, dev)
    assert cand is not None and cand["blockers"] == [] and any("filesystem" in x for x in cand["data"])
    r = _add(admin, dev)
    assert r.status_code == 409 and "not blank" in r.json()["message"]
    assert _add(admin, dev, force="yes").status_code == 400
    for bad in ({"device": 5, "confirm": 5}, {"role": "boot"}, {"pool": "nope"}, {"pool": "../x"},
                {"device": "/etc/passwd", "confirm": "/etc/passwd"}, {"device": dev + "p1", "confirm": dev + "p1"}):
        r = _add(admin, dev, **bad)
        assert r.status_code == 400 and r.json()["error"] == "InvalidArgument", (bad, r.text)
    assert all(x["path"] != str(mnt) for x in _disks(admin).values())


def test_add_needs_manage_disks(d7: DaemonProc, admin: ConsoleClient) -> None:
    ak, sk = add_user(d7, "disk-viewer")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
        "stowage:GetDiskStatus"], "Resource": "*"}]})
    r = admin.iam("CreatePolicy", PolicyName="disk-viewer", PolicyDocument=policy)
    arn = r.text.split("<Arn>")[1].split("<")[0]
    assert admin.iam("AttachUserPolicy", UserName="disk-viewer", PolicyArn=arn).status_code == 200
    viewer = ConsoleClient(d7, ak, sk)
    assert viewer("GET", "disks/candidates").status_code == 200
    r = _add(viewer, "/dev/loop0")
    assert r.status_code == 403 and "stowage:ManageDisks" in r.json()["message"]
    nobody = ConsoleClient(d7, *add_user(d7, "disk-nobody"))
    assert nobody("GET", "disks/candidates").status_code == 403


def test_drain_and_replace(d7: DaemonProc, admin: ConsoleClient, loops: Callable[[], str], sysroot: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=d7.endpoint, aws_access_key_id=d7.access_key,
                      aws_secret_access_key=d7.secret_key, region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="console-drain")
    objs = {f"o{i}": os.urandom(40_000 + 997 * i) for i in range(12)}
    for k, v in objs.items():
        s3.put_object(Bucket="console-drain", Key=k, Body=v)

    def intact() -> None:
        for k, v in objs.items():
            assert s3.get_object(Bucket="console-drain", Key=k)["Body"].read() == v, k

    disks = _disks(admin)
    total = sum(shards_on(x["path"]) for x in disks.values())
    # (small objects are packed, and a disk can hold none of 12: drain one that holds some)
    victim = max(disks.values(), key=lambda x: shards_on(x["path"]))
    assert shards_on(victim["path"]) > 0
    r = admin("POST", "disks/action", json={"action": "drain", "disk": victim["disk_id"]})
    assert r.status_code == 200 and r.json() == {"done": False, "started": "disks.remove"}, r.text
    wait_for(lambda: _ended(d7, "disks.remove", victim["disk_id"]), timeout=60, what="the drain")
    ended = _ended(d7, "disks.remove", victim["disk_id"])
    assert ended is not None and ended["outcome"] == "ok"
    assert victim["disk_id"] not in _disks(admin)
    assert shards_on(victim["path"]) == 0
    assert sum(shards_on(x["path"]) for x in _disks(admin).values()) == total  # moved, none lost or doubled
    intact()

    # replace a directory disk by a loop disk added through the console: its shards are rebuilt there
    r = _add(admin, loops())
    assert r.status_code == 200, r.text
    new = r.json()["result"]
    old = max((x for x in _disks(admin).values() if x["disk_id"] != new["disk_id"]), key=lambda x: shards_on(x["path"]))
    held, before = shards_on(old["path"]), shards_on(new["mount_point"])
    assert held > 0
    r = admin("POST", "disks/action", json={"action": "replace", "disk": old["disk_id"], "new": new["disk_id"]})
    assert r.status_code == 200 and r.json()["started"] == "disks.replace", r.text
    wait_for(lambda: _ended(d7, "disks.replace", old["disk_id"]), timeout=60, what="the replace")
    ended = _ended(d7, "disks.replace", old["disk_id"])
    assert ended is not None and ended["outcome"] == "ok" and old["disk_id"] not in _disks(admin)
    assert ended["after"]["result"]["unmounted"] is False  # a configured directory: nothing to release
    assert shards_on(old["path"]) == 0 and shards_on(new["mount_point"]) == before + held
    intact()

    # draining a disk that `add` prepared releases its device as `stowage disks remove` does
    assert is_mounted(new["mount_point"]) and new["mount_point"] in _boot_entries(sysroot)
    r = admin("POST", "disks/action", json={"action": "drain", "disk": new["disk_id"]})
    assert r.status_code == 200, r.text
    wait_for(lambda: _ended(d7, "disks.remove", new["disk_id"]), timeout=60, what="the drain of the added disk")
    ended = _ended(d7, "disks.remove", new["disk_id"])
    assert ended is not None and ended["outcome"] == "ok" and ended["after"]["result"]["unmounted"] is True
    assert not is_mounted(new["mount_point"]) and new["mount_point"] not in _boot_entries(sysroot)
    assert new["disk_id"] not in _disks(admin)
    intact()

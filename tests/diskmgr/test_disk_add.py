"""`stowage disks add` on real loop devices, through the real CLI (python -m appliance).

Boot-time mounts go to a scratch root (STOWAGE_SYSCONF_ROOT) so the host's /etc is untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from diskmgr.label import is_mounted, mount_at, read_label

GIB = 1 << 30


def stowage(*args: str, etc: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STOWAGE_SYSCONF_ROOT=str(etc))
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=300)


def blkid(dev: str) -> dict[str, str]:
    out = subprocess.run(["blkid", "-p", "-o", "export", dev], capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def majmin(dev: str) -> str:
    st = os.stat(dev)
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


@pytest.fixture
def appliance(tmp_path: Path) -> tuple[Path, Path]:
    data, etc = tmp_path / "appliance", tmp_path / "root"
    data.mkdir()
    etc.mkdir()
    return data, etc


def test_add_formats_mounts_by_uuid_labels_and_records(make_loop, appliance):
    data, etc = appliance
    dev = make_loop(GIB)
    r = stowage("disks", "add", dev, "--role", "data", "--data", str(data), etc=etc)
    assert r.returncode == 0, r.stderr
    disk_id = r.stdout.split()[2].rstrip(":")
    where = data / "disks" / disk_id

    sig = blkid(dev)
    assert sig["TYPE"] == "xfs" and sig["LABEL"] == "stw-" + disk_id[-8:]
    uuid = sig["UUID"]
    entry = mount_at(where)
    assert entry is not None and entry.majmin == majmin(dev) and entry.fstype == "xfs"
    assert is_mounted(where)
    fstab = (etc / "etc/fstab").read_text()
    assert f"UUID={uuid} {where} xfs noatime,nosuid,nodev,noexec,nofail" in fstab  # remounted by UUID at boot
    # mounted live with the same options: nothing on a data disk runs, is a device or is setuid
    live = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    options = next(f[3] for f in live if f[1] == str(where)).split(",")
    assert {"nosuid", "nodev", "noexec", "noatime"} <= set(options)

    label = read_label(where)
    assert (label.disk_id, label.role, label.pool, label.fs_uuid) == (disk_id, "data", "default", uuid)
    from appliance.config import embedded_config
    from appliance.diskregistry import appliance_id

    assert label.appliance_id == appliance_id(embedded_config(data))
    # the daemon was not running: the disk is recorded for its next start
    from appliance.engine import keys
    from appliance.engine.metadb import MetaDB
    from appliance.engine.records import DiskRecord

    db = MetaDB(data / "meta")
    try:
        recs = {rec.disk_id: rec for _, rec in db.scan_records(DiskRecord, keys.DISK)}
    finally:
        db.close()
    assert recs[disk_id].path == str(where) and recs[disk_id].uuid == uuid and recs[disk_id].state == "ok"
    assert "recorded in" in r.stdout

    # the read-only view shows it, managed and healthy, with its space
    r = stowage("disks", "--data", str(data), "--json", "--no-smart", etc=etc)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["format"] == 1 and doc["appliance_id"] == label.appliance_id
    row = next(x for x in doc["disks"] if x["disk_id"] == disk_id)
    assert row["managed"] and row["device"] == dev and row["state"] == "ok" and row["free_bytes"] > 0
    assert not any(x["device"] == dev and not x["managed"] for x in doc["disks"])

    # a second add of the same device is refused: it is mounted now
    r = stowage("disks", "add", dev, "--role", "data", "--force", "--yes", "--data", str(data), etc=etc)
    assert r.returncode == 1 and "cannot be used: it is mounted at" in r.stderr

    # the empty mount point underneath is immutable: with the disk gone nothing lands on /
    subprocess.run(["umount", str(where)], check=True)
    assert not is_mounted(where)
    with pytest.raises(PermissionError):
        (where / "shards").mkdir()
    r = stowage("disks", "--data", str(data), "--json", "--no-smart", etc=etc)
    row = next(x for x in json.loads(r.stdout)["disks"] if x["mount_point"] == str(where))
    assert row["state"] == "offline" and "is not mounted" in row["reasons"][0]

    # that offline member is never formatted as a new disk, not even with --force (found by
    # fuzzing: the "not blank ... --force" message led the operator to wipe it)
    for name in (dev, "../" + dev.lstrip("/")):
        r = stowage("disks", "add", name, "--role", "data", "--force", "--yes", "--data", str(data), etc=etc)
        assert r.returncode == 1 and f"holds disk {disk_id} of this appliance" in r.stderr, r.stderr
        assert f"stowage disks remove {disk_id}" in r.stderr
    assert blkid(dev)["UUID"] == uuid


def test_refuses_a_device_with_a_filesystem(make_loop, appliance):
    data, etc = appliance
    dev = make_loop(GIB)
    subprocess.run(["mkfs.ext4", "-q", "-L", "family-photos", dev], check=True)
    before = blkid(dev)
    r = stowage("disks", "add", dev, "--role", "data", "--data", str(data), etc=etc)
    assert r.returncode == 1
    assert "is not blank: it holds a filesystem (ext4, label family-photos)" in r.stderr
    assert "Nothing was changed" in r.stderr and "--force" in r.stderr
    assert blkid(dev) == before
    assert not (etc / "etc/fstab").exists()


def test_refuses_a_device_with_a_partition_table(make_loop, write_mbr, appliance):
    data, etc = appliance
    dev = make_loop(GIB)
    write_mbr(dev)
    r = stowage("disks", "add", dev, "--role", "data", "--data", str(data), etc=etc)
    assert r.returncode == 1 and "is not blank" in r.stderr and "partition" in r.stderr
    assert blkid(dev).get("PTTYPE") == "dos"


def test_force_needs_confirmation(make_loop, appliance):
    data, etc = appliance
    dev = make_loop(GIB)
    subprocess.run(["mkfs.ext4", "-q", dev], check=True)
    uuid = blkid(dev)["UUID"]
    # not a terminal and no --yes: refused, untouched
    r = stowage("disks", "add", dev, "--role", "data", "--force", "--data", str(data), etc=etc, stdin="y\n")
    assert r.returncode == 1 and "not confirmed" in r.stderr and "--force --yes" in r.stderr
    assert blkid(dev)["UUID"] == uuid
    # the library-level confirmation callback decides as well
    from appliance.config import embedded_config
    from appliance.diskregistry import add_disk
    from diskmgr.prepare import Aborted

    with pytest.raises(Aborted):
        add_disk(embedded_config(data), dev, "data", force=True, confirm=lambda pf: False)
    assert blkid(dev)["UUID"] == uuid


def test_force_yes_erases_and_takes_the_device(make_loop, write_mbr, appliance):
    data, etc = appliance
    dev = make_loop(GIB)
    write_mbr(dev)
    r = stowage("disks", "add", dev, "--role", "data", "--force", "--yes", "--data", str(data), etc=etc)
    assert r.returncode == 0, r.stderr
    assert "it has partitions: " in r.stderr or "it has a dos partition table" in r.stderr
    sig = blkid(dev)
    assert sig["TYPE"] == "xfs" and "PTTYPE" not in sig


def test_refuses_a_mounted_device_even_with_force(make_loop, appliance, tmp_path):
    data, etc = appliance
    dev = make_loop(GIB)
    subprocess.run(["mkfs.ext4", "-q", dev], check=True)
    mnt = tmp_path / "busy"
    mnt.mkdir()
    subprocess.run(["mount", dev, str(mnt)], check=True)
    (mnt / "precious").write_text("keep me")
    r = stowage("disks", "add", dev, "--role", "data", "--force", "--yes", "--data", str(data), etc=etc)
    assert r.returncode == 1 and f"it is mounted at {mnt}" in r.stderr
    assert (mnt / "precious").read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["disks", "add", "/dev/loop0"], 2, "Missing option '--role'"),
        (["disks", "add", "/dev/loop0", "--role", "cache"], 2, "Invalid value for '--role'"),
        (["disks", "add", "/dev/loop0", "--role", "data", "--yes"], 2, "--yes only confirms --force"),
        (["disks", "add", "/dev/no-such-disk", "--role", "data"], 1, "/dev/no-such-disk: no such device"),
        (["disks", "add", "", "--role", "data"], 1, "no device given"),
        (["disks", "add", "/etc/hostname", "--role", "data"], 1, "/etc/hostname: not a block device"),
        (["disks", "add", "/dev/loop0", "--role", "data", "--pool", "archive"], 1,
         "pool 'archive' is not configured"),
        (["disks", "add", "/dev/loop0", "--role", "data", "--pool", "../x"], 1, "pool '../x'"),
        (["disks", "smart", "/dev/no-such-disk"], 1, "no such disk or device"),
        (["disks", "frobnicate"], 2, "No such command 'frobnicate'"),
        (["disks", "list", "--config", "/nonexistent/stowage.toml"], 78, "no such file"),
    ],
)
def test_bad_arguments_give_a_clear_message(appliance, args, code, message):
    data, etc = appliance
    needs_data = "--config" not in args and args[1] != "frobnicate"
    r = stowage(*args, *(["--data", str(data)] if needs_data else []), etc=etc)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_smart_on_a_loop_device_is_unavailable_not_an_error(loop_device, appliance):
    data, etc = appliance
    r = stowage("disks", "smart", loop_device, "--data", str(data), etc=etc)
    assert r.returncode == 0, r.stderr
    assert "SMART: unavailable" in r.stdout
    r = stowage("disks", "smart", loop_device, "--json", "--data", str(data), etc=etc)
    doc = json.loads(r.stdout)
    assert doc["smart"]["verdict"] == "unavailable" and doc["state"] == "ok"

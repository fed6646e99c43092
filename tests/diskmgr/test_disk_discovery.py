"""Discovery on this machine's real block devices and on loop devices; role suggestions."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from diskmgr.discovery import build_devices, discover, find_device, suggest_roles
from diskmgr.label import parse_mountinfo

GIB = 1 << 30


def test_real_machine_has_a_system_disk():
    devices = discover()
    assert devices, "no block devices found"
    root_dev = os.stat("/").st_dev
    root_majmin = f"{os.major(root_dev)}:{os.minor(root_dev)}"
    system = [d for d in devices if d.system]
    # the device holding / is either listed as the system disk or / lives on something lsblk
    # does not list as a disk (overlay, tmpfs in a container)
    if any(d.majmin == root_majmin for d in devices):
        assert any(d.majmin == root_majmin and d.system and "/" in d.system_reason for d in devices)
    for d in system:
        s = {x.path: x for x in suggest_roles(devices)}[d.path]
        assert s.role == "" and "system disk" in s.reason
    for d in devices:
        assert d.size > 0 and d.path.startswith("/dev/")
        assert d.kind in ("HDD", "SSD", "NVMe", "loop")


def test_loop_device_blank_then_filesystem_then_partition_table(make_loop, write_mbr):
    dev = make_loop(GIB)
    d = find_device(discover(), dev)
    assert d is not None and d.type == "loop" and d.kind == "loop"
    assert d.size == GIB and d.in_use() == [] and not d.system
    assert d.backing_file.endswith("disk.img")
    assert d.io is not None  # psutil counters for the device
    assert find_device(discover(), os.path.basename(dev)) is not None  # by kernel name too
    # a loop device has no by-id link and no serial: "" matched it (and `disks add ''` took it)
    assert find_device(discover(), "") is None and find_device(discover(), "  ") is None
    s = {x.path: x for x in suggest_roles(discover())}[dev]
    assert s.role in ("data", "meta")

    subprocess.run(["mkfs.ext4", "-q", "-L", "probe-me", dev], check=True)
    d = find_device(discover(), dev)
    assert d is not None and d.fstype == "ext4" and d.fs_label == "probe-me" and d.fs_uuid
    assert d.in_use() == ["has a filesystem (ext4)"]
    assert {x.path: x for x in suggest_roles(discover())}[dev].role == ""

    subprocess.run(["wipefs", "-a", "-q", dev], check=True)
    write_mbr(dev)
    d = find_device(discover(), dev)
    assert d is not None and d.pttype == "dos"
    assert any("partition" in why for why in d.in_use())


def test_mounted_loop_device_shows_its_mount(make_loop, tmp_path):
    dev = make_loop(GIB)
    subprocess.run(["mkfs.ext4", "-q", dev], check=True)
    mnt = tmp_path / "m"
    mnt.mkdir()
    subprocess.run(["mount", dev, str(mnt)], check=True)
    d = find_device(discover(), dev)
    assert d is not None and d.mountpoints == [str(mnt)]
    assert f"is mounted at {mnt}" in d.in_use()


def _node(name: str, size: int, rota: bool, tran: str | None, **kw: Any) -> dict[str, Any]:
    n = {"name": name, "kname": name, "path": f"/dev/{name}", "maj:min": kw.pop("majmin", "8:0"), "type": "disk",
         "size": size, "rota": rota, "tran": tran, "model": kw.pop("model", "M"), "serial": "S", "rm": False,
         "ro": False, "fstype": None, "uuid": None, "label": None, "pttype": None, "mountpoints": [None]}
    n.update(kw)
    return n


def test_build_devices_and_suggestions_on_a_typical_box():
    tb = 1 << 40
    doc = {"blockdevices": [
        _node("sda", 500 << 30, False, "sata", majmin="8:0", pttype="gpt", children=[
            {"name": "sda1", "kname": "sda1", "path": "/dev/sda1", "maj:min": "8:1", "type": "part", "size": 1 << 30,
             "fstype": "vfat", "mountpoints": ["/boot/efi"]},
            {"name": "sda2", "kname": "sda2", "path": "/dev/sda2", "maj:min": "8:2", "type": "part", "size": 400 << 30,
             "fstype": "ext4", "mountpoints": [None]},
        ]),
        _node("sdb", 8 * tb, True, "sata", majmin="8:16"),
        _node("sdc", 8 * tb, True, "sata", majmin="8:32"),
        _node("sdd", 4 * tb, True, "sas", majmin="8:48", children=[
            {"name": "vg-lv", "kname": "dm-0", "path": "/dev/mapper/vg-lv", "maj:min": "253:0", "type": "lvm",
             "size": 4 * tb, "mountpoints": [None]}]),
        _node("nvme0n1", 1 * tb, False, "nvme", majmin="259:0"),
        _node("sde", 2 * tb, False, "sata", majmin="8:64"),
        _node("sdf", 16 * tb, True, "usb", majmin="8:80", fstype="ntfs", label="Backup"),
        _node("zram0", 8 << 30, False, None, majmin="252:0"),
        _node("sr0", 1 << 30, False, "sata", majmin="11:0", type="rom"),
    ]}
    mounts = parse_mountinfo("27 1 8:2 / / rw,relatime - ext4 /dev/sda2 rw\n"
                             "28 27 8:1 / /boot/efi rw - vfat /dev/sda1 rw\n")
    devs = build_devices(doc, mounts, by_id={"/dev/sdb": "/dev/disk/by-id/ata-WDC_X"})
    by = {d.name: d for d in devs}
    assert sorted(by) == ["nvme0n1", "sda", "sdb", "sdc", "sdd", "sde", "sdf"]  # no zram, no cd-rom
    assert by["sda"].system and by["sda"].system_reason == "holds /, /boot/efi"
    assert [p.path for p in by["sda"].partitions] == ["/dev/sda1", "/dev/sda2"]
    assert by["sda"].partitions[1].mountpoints == ["/"]  # from mountinfo, not only lsblk
    assert by["sdb"].by_id == "/dev/disk/by-id/ata-WDC_X"
    assert by["sdd"].holders == ["vg-lv"] and "is in use by vg-lv" in by["sdd"].in_use()
    assert by["nvme0n1"].kind == "NVMe" and by["sde"].kind == "SSD" and by["sdb"].kind == "HDD"
    roles = {s.path: s for s in suggest_roles(devs)}
    assert roles["/dev/nvme0n1"].role == "meta"
    assert roles["/dev/sdb"].role == roles["/dev/sdc"].role == "data"
    assert roles["/dev/sde"].role == "data" and "faster" in roles["/dev/sde"].reason
    assert roles["/dev/sda"].role == "" and roles["/dev/sdd"].role == ""
    assert roles["/dev/sdf"].role == "" and "ntfs" in roles["/dev/sdf"].reason


def test_probe_fills_what_udev_did_not():
    doc = {"blockdevices": [_node("sdb", 1 << 40, True, "sata", majmin="8:16")]}
    devs = build_devices(doc, probe=lambda dev: {"TYPE": "xfs", "UUID": "u-1", "LABEL": "old", "USAGE": "filesystem"})
    assert (devs[0].fstype, devs[0].fs_uuid, devs[0].fs_label) == ("xfs", "u-1", "old")
    devs = build_devices(doc, probe=lambda dev: {"PTTYPE": "gpt", "PTUUID": "x"})
    assert devs[0].pttype == "gpt" and devs[0].fstype == ""

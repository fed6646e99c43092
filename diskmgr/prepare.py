"""`stowage disks add DEVICE`: turning a blank block device into an appliance disk (host side).

Steps, each checked before the next:
1. Preflight. The device must be a whole disk (or loop device), writable, at least MIN_SIZE.
   *Blockers* are never overridden: mounted (itself or a partition), used as swap, held by
   LVM/md/dm/crypt, read-only. mkfs would fail or — worse — succeed under a live filesystem.
   *Data* needs --force plus a confirmation: partitions or a partition table, any signature
   `wipefs -n` or `blkid -p` finds, or being the system disk.
2. Erase (only with --force): `wipefs -a` on partitions then the disk; the kernel forgets the
   partitions. Without --force mkfs runs without its own force flag, so it refuses a device
   that grew a signature since the preflight.
3. mkfs.xfs if installed, else mkfs.ext4 (no reserved blocks), labelled `stw-<8 hex>`.
4. Mount by UUID at `<state_dir>/disks/<disk-id>`. The empty mount point is made immutable
   first (chattr +i, best effort) so nothing can ever write into it while the disk is absent.
5. Write the identity label (diskmgr.label) and the boot-time mount (diskmgr.bootmount).
6. Hand the disk to the appliance through the caller's `hand_over` callback (the appliance's
   CLI attaches it live through the control socket, or records it for the next start).
A failure after mkfs unmounts and removes the boot entry again; the new (empty) filesystem
stays — the user already handed the device over.

This module knows nothing of the appliance's configuration or metadata: the caller passes where
disks are mounted, which pools exist, the appliance's id and what to do with the ready disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import bootmount
from .discovery import BlockDevice, discover, find_device
from .errors import DiskError, InvalidDiskArgument
from .label import ROLES, DiskLabel, is_mounted, mount_at, new_disk_id, validate_name, write_label

MIN_SIZE = 512 << 20  # mkfs.xfs needs 300 MiB; anything this small is not a storage disk anyway
TOOL_TIMEOUT = 600.0


class DeviceRefused(DiskError):
    """The device holds data or is in use; it was not touched."""

    code = "DeviceRefused"


class Aborted(DiskError):
    """The operator did not confirm."""

    code = "Aborted"


@dataclass
class Preflight:
    device: BlockDevice
    blockers: list[str] = field(default_factory=list)  # never overridable
    data: list[str] = field(default_factory=list)  # overridable with --force + confirmation
    signatures: list[str] = field(default_factory=list)  # what wipefs found (offset, type)


@dataclass(frozen=True)
class PreparedDisk:
    """A disk formatted, mounted and labelled, about to be handed to the appliance."""

    disk_id: str
    device: str  # its stable name (/dev/disk/by-id/...) when it has one
    fs_uuid: str
    mount_point: Path
    role: str
    pool: str  # "meta" for a metadata disk


# Gives a prepared disk to the appliance; returns what happened, in words for the operator. An
# exception undoes the preparation (unmounted, boot entry removed).
HandOver = Callable[[PreparedDisk], str]


@dataclass(frozen=True)
class AddResult:
    disk_id: str
    device: str
    by_id: str
    fstype: str
    fs_uuid: str
    mount_point: Path
    role: str
    pool: str
    boot: str
    handed_over: str  # what hand_over said


def _run(argv: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT,
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError as exc:
        raise DiskError(f"{what}: {argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise DiskError(f"{what}: {argv[0]} did not finish within {TOOL_TIMEOUT:.0f} s") from exc
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise DiskError(f"{what} failed: {' / '.join(msg[-3:]) or f'exit status {proc.returncode}'}")
    return proc


def wipefs_signatures(dev: str) -> list[str]:
    """Every signature wipefs sees (without erasing anything): ["xfs at 0x0", ...]."""
    try:
        proc = subprocess.run(["wipefs", "-n", "-J", dev], capture_output=True, text=True, timeout=60,
                              check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    try:
        sigs = json.loads(proc.stdout).get("signatures", [])
    except (ValueError, AttributeError):
        return []
    return [f"{s.get('type', '?')} at {s.get('offset', '?')}" for s in sigs if isinstance(s, dict)]


def check_device_spec(spec: str) -> None:
    """A device as the user gave it can name a file at all: no NUL, no control character, and
    encodable as a file name (a lone surrogate from a JSON \ud800 is not); InvalidDiskArgument
    otherwise (os.stat and realpath would raise ValueError or UnicodeEncodeError)."""
    try:
        os.fsencode(spec)
    except UnicodeEncodeError:
        raise InvalidDiskArgument(f"{spec!r}: not a valid device name") from None
    if not spec.isprintable():
        raise InvalidDiskArgument(f"{spec!r}: not a valid device name (it holds a NUL or a control character)")
    if not spec.strip():
        raise InvalidDiskArgument("no device given: name one, such as /dev/sdb, sdb or a /dev/disk/by-id/ link")


def resolve_device(spec: str, devices: list[BlockDevice]) -> BlockDevice:
    check_device_spec(spec)
    dev = find_device(devices, spec)
    if dev is not None:
        return dev
    path = os.path.realpath(spec if spec.startswith("/") else f"/dev/{spec}")  # (sdb, ../dev/loop3)
    dev = find_device(devices, path)
    if dev is not None:
        return dev
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidDiskArgument(f"{spec}: no such device") from None
    if not stat.S_ISBLK(st.st_mode):
        raise InvalidDiskArgument(f"{spec}: not a block device")
    for d in devices:
        for p in d.partitions:
            if p.path == path:
                raise InvalidDiskArgument(f"{spec} is a partition of {d.path}; give a whole disk "
                                      "(Stowage uses the whole device)")
    raise InvalidDiskArgument(f"{spec}: not a disk Stowage can use (only whole disks and loop devices)")


def preflight(dev: BlockDevice) -> Preflight:
    pf = Preflight(dev)
    mps = dev.all_mountpoints
    if mps:
        pf.blockers.append("it is mounted at " + ", ".join(mps))
    if dev.swap:
        pf.blockers.append("it is in use as swap")
    if dev.holders:
        pf.blockers.append("it is in use by " + ", ".join(dev.holders) + " (LVM, RAID or encryption)")
    if dev.readonly:
        pf.blockers.append("it is read-only")
    if dev.size < MIN_SIZE:
        pf.blockers.append(f"it is too small ({dev.size} bytes; at least {MIN_SIZE >> 20} MiB)")
    if dev.system:
        pf.data.append(f"it is the system disk ({dev.system_reason})")
    if dev.partitions:
        parts = ", ".join(f"{p.path}{' (' + p.fstype + ')' if p.fstype else ''}" for p in dev.partitions)
        pf.data.append(f"it has partitions: {parts}")
    elif dev.pttype:
        pf.data.append(f"it has a {dev.pttype} partition table")
    if dev.fstype:
        named = f", label {dev.fs_label}" if dev.fs_label else ""
        pf.data.append(f"it holds a filesystem ({dev.fstype}{named})")
    pf.signatures = wipefs_signatures(dev.path)
    if pf.signatures and not (dev.fstype or dev.pttype or dev.partitions):
        pf.data.append("it carries signatures: " + ", ".join(pf.signatures))
    return pf


def confirmation_phrase(dev: BlockDevice) -> str:
    return dev.path


def _erase(dev: BlockDevice) -> None:
    for p in dev.partitions:
        _run(["wipefs", "-a", p.path], f"erasing signatures on {p.path}")
    _run(["wipefs", "-a", dev.path], f"erasing signatures on {dev.path}")
    if dev.partitions:
        # make the kernel forget the old partitions (the table itself is gone already)
        subprocess.run(["partx", "-d", dev.path], capture_output=True, timeout=60, check=False)
        subprocess.run(["blockdev", "--rereadpt", dev.path], capture_output=True, timeout=60, check=False)


def choose_fstype() -> str:
    return "xfs" if shutil.which("mkfs.xfs") else "ext4"


def make_filesystem(dev: str, fstype: str, label: str, force: bool) -> None:
    if fstype == "xfs":
        argv = ["mkfs.xfs", "-q", "-L", label] + (["-f"] if force else []) + [dev]
    else:
        argv = ["mkfs.ext4", "-q", "-L", label, "-m", "0"] + (["-F"] if force else []) + [dev]
    _run(argv, f"creating the {fstype} filesystem on {dev}")


def fs_uuid(dev: str) -> str:
    out = _run(["blkid", "-p", "-s", "UUID", "-o", "value", dev], f"reading the filesystem UUID of {dev}")
    uuid = out.stdout.strip()
    if not uuid:
        raise DiskError(f"{dev}: the new filesystem has no UUID")
    return uuid


def _chattr(path: Path, flag: str) -> None:
    subprocess.run(["chattr", flag, str(path)], capture_output=True, timeout=30, check=False)


def mount_by_uuid(uuid: str, where: Path, fstype: str, expect_majmin: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if is_mounted(where):
        raise DiskError(f"{where} is already a mount point")
    if any(where.iterdir()):
        raise DiskError(f"{where} is not empty; refusing to mount over files")
    _chattr(where, "+i")  # while empty, nothing may write into it (EPERM instead of filling /)
    _run(["mount", "-t", fstype, "-o", bootmount.MOUNT_OPTIONS, f"UUID={uuid}", str(where)],
         f"mounting UUID={uuid} at {where}")
    entry = mount_at(where)
    if entry is None:
        raise DiskError(f"{where}: mount reported success but nothing is mounted there")
    if expect_majmin and entry.majmin != expect_majmin:
        subprocess.run(["umount", str(where)], capture_output=True, timeout=60, check=False)
        raise DiskError(f"UUID={uuid} resolved to device {entry.majmin}, not the disk just formatted "
                        f"({expect_majmin}); another device has the same UUID")


def remove_mount_point(where: Path) -> None:
    """The empty (immutable) mount point of a disk that is no longer the appliance's."""
    if not is_mounted(where):
        _chattr(where, "-i")
        with contextlib.suppress(OSError):
            where.rmdir()


def member_of(dev: BlockDevice, disks_dir: Path) -> str | None:
    """The id of this appliance's disk whose filesystem `dev` holds while its mount point under
    `disks_dir` is empty (a boot-time mount that failed, a cable pulled and put back): formatting
    it would turn a disk holding shards into a new, empty one. Known by the filesystem label
    `add_disk` gave it (stw- and the disk id's last 8 characters)."""
    suffix = dev.fs_label[4:] if dev.fs_label.startswith("stw-") else ""
    if len(suffix) != 8:
        return None
    try:
        names = sorted(os.listdir(disks_dir))
    except OSError:
        return None
    for name in names:
        if name.endswith(suffix) and not is_mounted(disks_dir / name):
            return name
    return None


def unmount(where: Path) -> None:
    if is_mounted(where) and subprocess.run(["umount", str(where)], capture_output=True,
                                            timeout=120).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=60, check=False)


def add_disk(
    spec: str,
    role: str,
    pool: str = "default",
    *,
    disks_dir: Path,
    pools: Collection[str],
    appliance_id: Callable[[], str],
    hand_over: HandOver,
    force: bool = False,
    confirm: Callable[[Preflight], bool] | None = None,
    boot: bootmount.BootConfig | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> AddResult:
    """Prepare the device `spec` as a disk of the appliance mounted under `disks_dir`.

    `appliance_id` is called only once the device passed the preflight: finding the id may
    create the metadata DB of a brand-new appliance, and a refused device must change nothing.
    """
    check_device_spec(spec)
    if role not in ROLES:
        raise InvalidDiskArgument(f"role {role!r}: expected one of {', '.join(ROLES)}")
    try:
        validate_name("pool", pool)
    except ValueError as exc:
        raise InvalidDiskArgument(str(exc)) from None
    if role == "data" and pool not in pools:
        raise InvalidDiskArgument(f"pool {pool!r} is not configured (known: {', '.join(sorted(pools))}); "
                                  "add [pools.NAME] to the config first")
    if os.geteuid() != 0:
        raise DiskError("adding a disk needs root (it formats and mounts a block device)")
    devices = discover(io_counters=False)
    dev = resolve_device(spec, devices)
    pf = preflight(dev)
    if pf.blockers:
        raise DeviceRefused(f"{dev.path} cannot be used: " + "; ".join(pf.blockers) +
                            ". Nothing was changed.")
    member = member_of(dev, disks_dir)
    if member is not None:  # not even with --force: the way to give it up is `disks remove`
        raise DeviceRefused(f"{dev.path} holds disk {member} of this appliance, which is not mounted at "
                            f"{disks_dir / member}: mount it there again (the daemon's boot-time mount does, "
                            f"or `mount UUID={dev.fs_uuid or '...'} {disks_dir / member}`) instead of formatting "
                            f"it. To give that disk up, run `stowage disks remove {member}` first. Nothing was "
                            "changed.")
    if pf.data:
        if not force:
            raise DeviceRefused(f"{dev.path} is not blank: " + "; ".join(pf.data) + ". Nothing was "
                                "changed. To erase it and use it anyway, run again with --force.")
        if confirm is None or not confirm(pf):
            raise Aborted(f"not confirmed; {dev.path} was not changed")

    owner = appliance_id()
    boot = boot or bootmount.host_boot_config()
    disk_id = new_disk_id()
    fstype = choose_fstype()
    where = disks_dir / disk_id
    if pf.data:
        progress(f"erasing {dev.path}")
        _erase(dev)
    progress(f"creating {fstype} filesystem on {dev.path}")
    make_filesystem(dev.path, fstype, "stw-" + disk_id[-8:], force=bool(pf.data))
    uuid = fs_uuid(dev.path)
    mounted = boot_written = False
    try:
        progress(f"mounting UUID={uuid} at {where}")
        mount_by_uuid(uuid, where, fstype, dev.majmin)
        mounted = True
        label = DiskLabel(owner, disk_id, role, pool if role == "data" else "meta",
                          _now(), uuid)
        write_label(where, label)
        boot_text = bootmount.install(boot, disk_id, uuid, str(where), fstype, role, label.pool)
        boot_written = True
        handed = hand_over(PreparedDisk(disk_id, dev.by_id or dev.path, uuid, where, role, label.pool))
    except BaseException:
        if boot_written:
            bootmount.uninstall(boot, disk_id, str(where))
        if mounted:
            unmount(where)
        remove_mount_point(where)
        raise
    return AddResult(disk_id, dev.path, dev.by_id, fstype, uuid, where, role, label.pool, boot_text, handed)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

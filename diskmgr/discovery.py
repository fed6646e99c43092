"""Block-device discovery: what disks this box has, what is on them, and what they could be for.

Sources, each for what it knows best:
- `lsblk --json -b -O`: the device tree (disks, partitions, device-mapper/md holders), model,
  serial, size, rotational flag, transport.
- `blkid -p` (low-level probe): filesystem and partition-table signatures. lsblk takes these
  from the udev database, which is empty where udev does not run (containers, early boot,
  minimal images) — there a freshly made filesystem would look blank. Probing is read-only.
- /proc/self/mountinfo and /proc/swaps (by major:minor): what is mounted or swapped on, the
  kernel's view, independent of udev.
- /dev/disk/by-id: the stable name to show and to record (sdX names move between boots).
- /sys/block/*/holders: LVM/md/dm users of a device.
- psutil: per-disk I/O counters.

`discover()` returns typed `BlockDevice`s (whole disks and attached loop devices; partitions
hang below them). `suggest_roles()` proposes roles: the fastest blank solid-state device for
metadata, blank spinning disks for data; never the system disk or a device with data on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .label import MountEntry, mount_at, read_mounts

SYSTEM_MOUNTS = ("/", "/boot", "/boot/efi", "/efi", "/usr", "/var", "/etc", "/home")
_SKIP_PREFIXES = ("zram", "ram", "fd")
LSBLK_TIMEOUT = 30.0


class DiscoveryError(RuntimeError):
    """lsblk is missing or returned something unusable."""


@dataclass
class IoCounters:
    read_count: int
    write_count: int
    read_bytes: int
    write_bytes: int
    read_time_ms: int
    write_time_ms: int
    busy_time_ms: int | None = None


@dataclass
class Partition:
    name: str
    path: str
    majmin: str
    size: int
    type: str  # "part", or a holder type like "lvm", "crypt", "raid1"
    fstype: str = ""
    fs_uuid: str = ""
    fs_label: str = ""
    mountpoints: list[str] = field(default_factory=list)
    children: list[Partition] = field(default_factory=list)


@dataclass
class BlockDevice:
    name: str  # kernel name: sda, nvme0n1, loop3
    path: str  # /dev/sda
    majmin: str
    type: str  # "disk" | "loop"
    size: int  # bytes
    rotational: bool
    transport: str  # sata, sas, nvme, usb, "" (virtio, loop, unknown)
    model: str = ""
    serial: str = ""
    vendor: str = ""
    wwn: str = ""
    by_id: str = ""  # /dev/disk/by-id/... (most descriptive), "" when udev provides none
    removable: bool = False
    readonly: bool = False
    pttype: str = ""  # partition table type (gpt, dos) even when it holds no partitions
    fstype: str = ""  # a filesystem directly on the whole device
    fs_uuid: str = ""
    fs_label: str = ""
    partitions: list[Partition] = field(default_factory=list)
    mountpoints: list[str] = field(default_factory=list)  # of the device itself
    holders: list[str] = field(default_factory=list)  # dm/md/lvm users of the device
    swap: bool = False
    backing_file: str = ""  # loop devices
    system: bool = False
    system_reason: str = ""
    io: IoCounters | None = None

    @property
    def kind(self) -> str:
        """HDD / SSD / NVMe / loop: what a person calls it."""
        if self.type == "loop":
            return "loop"
        if self.transport == "nvme" or self.name.startswith("nvme"):
            return "NVMe"
        return "HDD" if self.rotational else "SSD"

    @property
    def all_mountpoints(self) -> list[str]:
        out = list(self.mountpoints)
        stack = list(self.partitions)
        while stack:
            p = stack.pop()
            out.extend(p.mountpoints)
            stack.extend(p.children)
        return out

    def in_use(self) -> list[str]:
        """Why writing to this device would destroy something; [] for a blank device."""
        why = []
        if self.partitions:
            why.append(f"has {len(self.partitions)} partition{'s' if len(self.partitions) > 1 else ''}")
        elif self.pttype:
            why.append(f"has a {self.pttype} partition table")
        if self.fstype:
            why.append(f"has a filesystem ({self.fstype})")
        mps = self.all_mountpoints
        if mps:
            why.append("is mounted at " + ", ".join(mps))
        if self.swap:
            why.append("is in use as swap")
        if self.holders:
            why.append("is in use by " + ", ".join(self.holders))
        return why

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind
        return d


@dataclass(frozen=True)
class RoleSuggestion:
    path: str
    role: str  # "meta" | "data" | "" (none)
    reason: str


# --- probing helpers -------------------------------------------------------------------------


def blkid_probe(dev: str) -> dict[str, str]:
    """Low-level signature probe (`blkid -p -o export`): TYPE, UUID, LABEL, PTTYPE, ...; {} if blank."""
    try:
        proc = subprocess.run(["blkid", "-p", "-o", "export", dev], capture_output=True, text=True,
                              timeout=LSBLK_TIMEOUT, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return {}
    out = {}
    for line in proc.stdout.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def read_by_id(directory: str = "/dev/disk/by-id") -> dict[str, str]:
    """Map /dev/sdX -> the most descriptive by-id link (ata-/nvme-/scsi- over wwn-)."""
    result: dict[str, str] = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return result
    def rank(n: str) -> int:
        return 2 if n.startswith(("wwn-", "nvme-eui.", "nvme-nvme.")) else (1 if "-part" in n else 0)
    for n in sorted(names, key=rank):
        if "-part" in n:
            continue
        target = os.path.realpath(os.path.join(directory, n))
        result.setdefault(target, os.path.join(directory, n))
    return result


def read_swaps(path: str = "/proc/swaps") -> list[str]:
    try:
        with open(path) as f:
            return [line.split()[0] for line in f.read().splitlines()[1:] if line.strip()]
    except OSError:
        return []


def _block_majmin(path: str) -> str | None:
    """major:minor of a block device node; None for anything else (a stale name, a file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}" if stat.S_ISBLK(st.st_mode) else None


def _io_counters() -> dict[str, IoCounters]:
    try:
        import psutil
        raw = psutil.disk_io_counters(perdisk=True, nowrap=True) or {}
    except Exception:  # psutil missing or /proc/diskstats unreadable: counters are optional
        return {}
    return {
        name: IoCounters(c.read_count, c.write_count, c.read_bytes, c.write_bytes, c.read_time, c.write_time,
                         getattr(c, "busy_time", None))
        for name, c in raw.items()
    }


def run_lsblk() -> dict[str, Any]:
    try:
        proc = subprocess.run(["lsblk", "--json", "-b", "-O"], capture_output=True, text=True,
                              timeout=LSBLK_TIMEOUT, check=False)
    except FileNotFoundError as exc:
        raise DiscoveryError("lsblk is not installed (apt install util-linux)") from exc
    except subprocess.TimeoutExpired as exc:
        raise DiscoveryError("lsblk did not answer") from exc
    if proc.returncode != 0:
        raise DiscoveryError(f"lsblk failed: {proc.stderr.strip()}")
    try:
        doc = json.loads(proc.stdout)
    except ValueError as exc:
        raise DiscoveryError(f"lsblk returned no JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("blockdevices"), list):
        raise DiscoveryError("lsblk returned no device list")
    return doc


# --- the pure part ---------------------------------------------------------------------------


def _s(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _mps(node: dict[str, Any]) -> list[str]:
    mps = node.get("mountpoints")
    if not isinstance(mps, list):
        mps = [node.get("mountpoint")]
    return [m for m in mps if isinstance(m, str) and m]


def build_devices(
    lsblk: dict[str, Any],
    mounts: Iterable[MountEntry] = (),
    swaps: Iterable[str] = (),
    by_id: dict[str, str] | None = None,
    probe: Callable[[str], dict[str, str]] | None = None,
    holders: Callable[[str], list[str]] | None = None,
    io: dict[str, IoCounters] | None = None,
) -> list[BlockDevice]:
    """Turn lsblk's tree plus the kernel's mount/swap tables into BlockDevices (pure given its
    arguments; `probe` fills filesystem signatures lsblk could not see)."""
    by_majmin: dict[str, list[str]] = {}
    for m in mounts:
        by_majmin.setdefault(m.majmin, []).append(m.mount_point)
    swap_majmins = {mm for mm in (_block_majmin(s) for s in swaps) if mm}
    by_id = by_id or {}
    io = io or {}

    def mountpoints(node: dict[str, Any]) -> list[str]:
        seen = list(dict.fromkeys(by_majmin.get(_s(node.get("maj:min")), []) + _mps(node)))
        return [m for m in seen if m != "[SWAP]"]

    def fs(node: dict[str, Any]) -> tuple[str, str, str, str]:
        fstype, uuid, label, pttype = (_s(node.get("fstype")), _s(node.get("uuid")), _s(node.get("label")),
                                       _s(node.get("pttype")))
        if probe is not None and not fstype:
            sig = probe(_s(node.get("path")) or "/dev/" + _s(node.get("kname")))
            usage = sig.get("USAGE", "filesystem")
            if usage in ("filesystem", "raid", "crypto", "other") and sig.get("TYPE"):
                fstype, uuid, label = sig["TYPE"], sig.get("UUID", ""), sig.get("LABEL", "")
            pttype = pttype or sig.get("PTTYPE", "")
        return fstype, uuid, label, pttype

    def part(node: dict[str, Any]) -> Partition:
        fstype, uuid, label, _ = fs(node)
        return Partition(
            name=_s(node.get("name")), path=_s(node.get("path")) or "/dev/" + _s(node.get("kname")),
            majmin=_s(node.get("maj:min")), size=int(node.get("size") or 0), type=_s(node.get("type")),
            fstype=fstype, fs_uuid=uuid, fs_label=label, mountpoints=mountpoints(node),
            children=[part(c) for c in node.get("children") or [] if isinstance(c, dict)],
        )

    devices = []
    for node in lsblk.get("blockdevices", []):
        if not isinstance(node, dict):
            continue
        name = _s(node.get("kname")) or _s(node.get("name"))
        dtype = _s(node.get("type"))
        size = int(node.get("size") or 0)
        if dtype not in ("disk", "loop") or size == 0 or name.startswith(_SKIP_PREFIXES):
            continue
        path = _s(node.get("path")) or f"/dev/{name}"
        children = [c for c in node.get("children") or [] if isinstance(c, dict)]
        fstype, uuid, label, pttype = fs(node)
        dev = BlockDevice(
            name=name, path=path, majmin=_s(node.get("maj:min")), type=dtype, size=size,
            rotational=bool(node.get("rota")), transport=_s(node.get("tran")),
            model=_s(node.get("model")).strip(), serial=_s(node.get("serial")).strip(),
            vendor=_s(node.get("vendor")).strip(), wwn=_s(node.get("wwn")), by_id=by_id.get(path, ""),
            removable=bool(node.get("rm")), readonly=bool(node.get("ro")), pttype=pttype,
            fstype=fstype, fs_uuid=uuid, fs_label=label,
            partitions=[part(c) for c in children if _s(c.get("type")) == "part"],
            mountpoints=mountpoints(node),
            holders=[_s(c.get("name")) for c in children if _s(c.get("type")) != "part"],
            backing_file=_s(node.get("back-file")),
            io=io.get(name),
        )
        if holders is not None:
            dev.holders = list(dict.fromkeys(dev.holders + holders(name)))
        tree_majmins = {dev.majmin}
        stack: list[Partition] = list(dev.partitions)
        while stack:
            p = stack.pop()
            tree_majmins.add(p.majmin)
            stack.extend(p.children)
        for c in children:  # holders (dm/md) directly on the disk
            tree_majmins.add(_s(c.get("maj:min")))
            for cc in c.get("children") or []:
                if isinstance(cc, dict):
                    tree_majmins.add(_s(cc.get("maj:min")))
        dev.swap = bool(tree_majmins & swap_majmins) or "[SWAP]" in _all_lsblk_mps(node)
        sys_mps = sorted({m for mm in tree_majmins for m in by_majmin.get(mm, []) if m in SYSTEM_MOUNTS}
                         | {m for m in _all_lsblk_mps(node) if m in SYSTEM_MOUNTS})
        if sys_mps:
            dev.system, dev.system_reason = True, "holds " + ", ".join(sys_mps)
        elif dev.swap and dtype == "disk":
            dev.system, dev.system_reason = True, "holds the system's swap"
        devices.append(dev)
    return devices


def _all_lsblk_mps(node: dict[str, Any]) -> list[str]:
    out = _mps(node)
    for c in node.get("children") or []:
        if isinstance(c, dict):
            out.extend(_all_lsblk_mps(c))
    return out


def _sys_holders(name: str) -> list[str]:
    try:
        return sorted(os.listdir(f"/sys/block/{name}/holders"))
    except OSError:
        return []


def discover(*, probe: bool = True, io_counters: bool = True) -> list[BlockDevice]:
    """All whole disks and attached loop devices on this machine."""
    devices = build_devices(
        run_lsblk(), read_mounts(), read_swaps(), read_by_id(),
        probe=blkid_probe if probe and os.geteuid() == 0 else None,
        holders=_sys_holders,
        io=_io_counters() if io_counters else None,
    )
    for d in devices:
        if d.type == "loop" and not d.backing_file:
            with contextlib.suppress(OSError):
                d.backing_file = Path(f"/sys/block/{d.name}/loop/backing_file").read_text().strip()
    return devices


def find_device(devices: Iterable[BlockDevice], spec: str) -> BlockDevice | None:
    """Look a device up by /dev path (symlinks such as by-id resolved), kernel name or serial."""
    if not spec.strip():
        return None  # "" matched the first device without a by-id link (or a serial)
    real = os.path.realpath(spec) if spec.startswith("/") else ""
    for d in devices:
        if spec in (d.path, d.name, d.by_id) or (real and real == d.path) or (d.serial and spec == d.serial):
            return d
    return None


def suggest_roles(devices: Iterable[BlockDevice]) -> list[RoleSuggestion]:
    """One suggestion per device: the fastest blank solid-state device -> meta, blank HDDs (and
    other blank SSDs) -> data; system disks and devices holding data -> none, with the reason."""
    devs = list(devices)
    out: dict[str, RoleSuggestion] = {}
    blank = []
    for d in devs:
        if d.system:
            out[d.path] = RoleSuggestion(d.path, "", f"system disk ({d.system_reason})")
        elif d.readonly:
            out[d.path] = RoleSuggestion(d.path, "", "read-only device")
        elif d.in_use():
            out[d.path] = RoleSuggestion(d.path, "", "not blank: " + "; ".join(d.in_use()))
        else:
            blank.append(d)

    def speed(d: BlockDevice) -> tuple[int, int, int]:
        # NVMe beats SATA/SAS SSD beats a loop device; among equals the smaller is fine for metadata,
        # but prefer the larger one so the DB has room to grow.
        tier = 3 if d.kind == "NVMe" else (2 if d.kind == "SSD" else (1 if d.kind == "loop" else 0))
        return (tier, 0 if d.removable else 1, d.size)

    solid = [d for d in blank if not d.rotational]
    meta = max(solid, key=speed) if solid else None
    for d in blank:
        if d is meta:
            out[d.path] = RoleSuggestion(d.path, "meta", f"fastest blank solid-state device ({d.kind})")
        elif d.rotational:
            out[d.path] = RoleSuggestion(d.path, "data", "blank spinning disk")
        else:
            out[d.path] = RoleSuggestion(d.path, "data",
                                         f"blank {d.kind} (metadata already has a faster one)")
    return [out[d.path] for d in devs]


def mounted_device(path: str | os.PathLike[str], recorded: str = "") -> str:
    """The block device whose filesystem is mounted at `path`, for SMART and hdparm: `recorded`
    when it still names that device (a /dev/disk/by-id link stays), else its by-id link or its
    /dev node now; "" when no block device is mounted there. Device names move between boots
    (and a by-id link may be missing), so a recorded name alone may point at another disk.
    Cheap: mountinfo, one /sys link and /dev/disk/by-id, no subprocess."""
    entry = mount_at(path)
    if entry is None:
        return ""
    if recorded and _block_majmin(recorded) == entry.majmin:
        return recorded
    try:
        name = os.path.basename(os.readlink(f"/sys/dev/block/{entry.majmin}"))
    except OSError:  # not a block device (a bind mount of a directory, tmpfs, overlay)
        return ""
    dev = f"/dev/{name}"
    if _block_majmin(dev) != entry.majmin:
        return ""
    return read_by_id().get(dev, dev)

"""Making a prepared disk come back at boot: a systemd .mount unit, or an fstab line.

Decision: when systemd is the init system (/run/systemd/system exists — sd_booted()'s test) we
write a native mount unit `/etc/systemd/system/<escaped path>.mount`, enabled by a symlink in
`local-fs.target.wants/` (no need for `systemctl enable`, works in an image build too), and
run `systemctl daemon-reload` when the live system is the target. It is *wanted*, not
required, by local-fs.target: a dead disk must not drop the box into an emergency shell —
the daemon sees the unmounted mount point and marks the disk offline instead. Without
systemd (containers, other inits) we add one line to /etc/fstab with `nofail`, preceded by a
`# stowage disk <id>` comment that identifies it for removal.

Both name the filesystem by UUID, never by /dev/sdX (those names move between boots).
STOWAGE_SYSCONF_ROOT (default "/") prefixes /etc and /run: tests and image builds use it to
write into a scratch root instead of the live system.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .durable import write_atomic

# A data disk holds shard files only: nothing on it is ever a program, a device or setuid, so
# a crafted file there (or a disk moved in from elsewhere) can grant nothing.
MOUNT_OPTIONS = "noatime,nosuid,nodev,noexec"
MARKER = "# stowage disk "


@dataclass(frozen=True)
class BootConfig:
    mode: str  # "systemd" | "fstab" | "none"
    root: Path = Path("/")

    @property
    def unit_dir(self) -> Path:
        return self.root / "etc/systemd/system"

    @property
    def fstab(self) -> Path:
        return self.root / "etc/fstab"

    @property
    def live(self) -> bool:
        return self.root == Path("/")


def host_boot_config(root: str | None = None) -> BootConfig:
    r = Path(root if root is not None else os.environ.get("STOWAGE_SYSCONF_ROOT", "/"))
    mode = "systemd" if (r / "run/systemd/system").is_dir() else "fstab"
    return BootConfig(mode, r)


def systemd_escape_path(path: str) -> str:
    """`systemd-escape --path`: the unit name stem for a mount point."""
    p = os.path.normpath(path).strip("/")
    if not p:
        return "-"
    out = []
    for i, ch in enumerate(p):
        if ch == "/":
            out.append("-")
        elif ch.isascii() and (ch.isalnum() or ch in ":_" or (ch == "." and i > 0)):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode())
    return "".join(out)


def mount_unit_name(where: str) -> str:
    return systemd_escape_path(where) + ".mount"


def mount_unit_text(disk_id: str, uuid: str, where: str, fstype: str, role: str, pool: str) -> str:
    return (
        f"# Written by `stowage disks add` for disk {disk_id}. It is removed when the disk is removed.\n"
        "[Unit]\n"
        f"Description=Stowage disk {disk_id} ({role}, pool {pool})\n"
        "\n"
        "[Mount]\n"
        f"What=/dev/disk/by-uuid/{uuid}\n"
        f"Where={where}\n"
        f"Type={fstype}\n"
        f"Options={MOUNT_OPTIONS}\n"
        "TimeoutSec=90\n"
        "\n"
        "[Install]\n"
        "WantedBy=local-fs.target\n"
    )


def _fstab_escape(path: str) -> str:
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")


def fstab_entry(disk_id: str, uuid: str, where: str, fstype: str, role: str, pool: str) -> str:
    passno = 0 if fstype == "xfs" else 2  # xfs is never fsck'd at boot; ext4 is, after /
    return (f"{MARKER}{disk_id} ({role}, pool {pool}) - written by `stowage disks add`\n"
            f"UUID={uuid} {_fstab_escape(where)} {fstype} {MOUNT_OPTIONS},nofail,"
            f"x-systemd.device-timeout=30s 0 {passno}\n")


def _atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Durably replace a system file, keeping its current mode if it exists (fstab is 0644,
    but an administrator may have tightened it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        mode = path.stat().st_mode & 0o7777
    write_atomic(path, text, mode)


def _without_disk(lines: list[str], disk_id: str, where: str) -> list[str]:
    """Drop our entry for this disk (marker + line) and any other line mounting `where`."""
    out: list[str] = []
    skip_next = False
    for line in lines:
        if skip_next:
            skip_next = False
            if not line.lstrip().startswith("#"):
                continue
        if line.startswith(f"{MARKER}{disk_id} ") or line.rstrip("\n") == f"{MARKER}{disk_id}":
            skip_next = True
            continue
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#") and fields[1] == _fstab_escape(where):
            continue
        out.append(line)
    return out


def install(boot: BootConfig, disk_id: str, uuid: str, where: str, fstype: str, role: str,
            pool: str) -> str:
    """Write the boot-time mount; returns a sentence saying what was written."""
    if boot.mode == "none":
        return "no boot-time mount written (STOWAGE boot mode 'none')"
    if boot.mode == "systemd":
        name = mount_unit_name(where)
        unit = boot.unit_dir / name
        _atomic_write(unit, mount_unit_text(disk_id, uuid, where, fstype, role, pool))
        wants = boot.unit_dir / "local-fs.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f"../{name}")
        if boot.live:
            subprocess.run(["systemctl", "daemon-reload"], capture_output=True, timeout=60, check=False)
        return f"systemd mount unit {unit} (enabled for local-fs.target)"
    fstab = boot.fstab
    try:
        lines = fstab.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        lines = []
    lines = _without_disk(lines, disk_id, where)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    _atomic_write(fstab, "".join(lines) + fstab_entry(disk_id, uuid, where, fstype, role, pool))
    return f"{fstab} line (UUID={uuid}, nofail)"


def uninstall(boot: BootConfig, disk_id: str, where: str) -> None:
    """Remove what `install` wrote (used to roll back a failed add, and by disk removal)."""
    name = mount_unit_name(where)
    for p in (boot.unit_dir / "local-fs.target.wants" / name, boot.unit_dir / name):
        if p.is_symlink() or p.exists():
            p.unlink()
    try:
        lines = boot.fstab.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return
    kept = _without_disk(lines, disk_id, where)
    if kept != lines:
        _atomic_write(boot.fstab, "".join(kept))

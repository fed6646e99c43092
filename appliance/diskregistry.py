"""Where the host-side disk tools (diskmgr) meet the appliance: its identity, its list of disks.

- `appliance_id(cfg)`: the id lives in the metadata DB; the daemon copies it to
  `<state_dir>/appliance-id` at every start, which is read first. Otherwise, when the daemon is
  stopped the DB is opened briefly (creating it, and so the id, on a brand-new appliance —
  exactly what the first `stowage serve` would do). When the daemon holds the DB's lock, the id
  is read from the label of any disk the daemon already labelled.
- `hand_over(cfg, disk)`: give a freshly prepared disk to the appliance. With the daemon running
  this is the control-socket op "disks.attach" {"path", "disk_id", "role", "pool", "device",
  "fs_uuid"}; with the
  daemon stopped a DiskRecord is written to the metadata DB so the next start loads it (the
  start-up loader only opens managed disks that have a record).
- `add_disk(cfg, ...)`: `stowage disks add` — diskmgr.prepare.add_disk given this appliance's
  disks directory, pools, id and hand-over.
- `release(cfg, disk_id, path)`: after a drain or replace, the host side of `stowage disks
  remove`: a managed disk is unmounted and its boot-time mount removed.

Below the CLI (which is a composition root nothing imports) so that the web console's "add" and
"drain"/"replace" (appliance/consoleadmin.py) run this very code in the daemon, hand-over op
included.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

from appliance.config import Config
from appliance.engine import diskrecords, offline
from appliance.engine.errors import DiskError, StowageError
from diskmgr import bootmount
from diskmgr.label import LabelFormatError, is_mounted, read_label
from diskmgr.prepare import AddResult, Preflight, PreparedDisk, remove_mount_point, unmount
from diskmgr.prepare import add_disk as prepare_disk

ATTACH_OP = "disks.attach"


class ApplianceUnknown(DiskError):
    """The appliance's identity could not be determined."""

    code = "ApplianceUnknown"


def daemon_running(cfg: Config) -> bool:
    """A daemon answers on the control socket (a stale socket file does not count)."""
    path = cfg.control_path
    if not path.exists():
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(str(path))
    except OSError:
        return False
    finally:
        s.close()
    return True


def _candidate_disk_dirs(cfg: Config) -> list[Path]:
    out = [Path(d.path) for d in cfg.disks]
    with contextlib.suppress(OSError):
        out += sorted(p for p in cfg.disks_dir.iterdir() if p.is_dir())
    return out


def id_from_labels(cfg: Config) -> str | None:
    for d in _candidate_disk_dirs(cfg):
        try:
            return read_label(d).appliance_id
        except (StowageError, LabelFormatError, OSError):
            continue
    return None


def _written_id(cfg: Config) -> str:
    """The id the daemon writes at every start (appliance/daemon.py), or ""."""
    try:
        return (Path(cfg.state_dir) / "appliance-id").read_text().strip()
    except OSError:
        return ""


def appliance_id(cfg: Config) -> str:
    written = _written_id(cfg)
    if written:
        return written
    if not daemon_running(cfg):
        try:
            return offline.appliance_id(cfg.meta_path)
        except offline.MetaDBUnavailable as exc:
            found = id_from_labels(cfg)
            if found:
                return found
            raise ApplianceUnknown(
                f"cannot read the appliance id from {cfg.meta_path}: {exc.message}") from exc
    found = id_from_labels(cfg)
    if found is None:
        raise ApplianceUnknown("the daemon is running but none of its disks carries a readable label; "
                               "cannot tell which appliance this is")
    return found


def attach_live(cfg: Config, disk: PreparedDisk) -> object:
    """The one call into the running daemon (appliance/control.py, JSON lines over the socket)."""
    from appliance import control

    return control.call(cfg.control_path, ATTACH_OP,
                        {"path": str(disk.mount_point), "disk_id": disk.disk_id, "role": disk.role,
                         "pool": disk.pool, "device": disk.device, "fs_uuid": disk.fs_uuid}, timeout=120.0)


def hand_over(cfg: Config, disk: PreparedDisk) -> str:
    """Give a prepared disk to the appliance; returns what happened, for the operator."""
    if disk.role != "data":
        return (f"metadata disk ready; to move the metadata DB here stop the daemon, copy {cfg.meta_path} "
                f"to {disk.mount_point}/meta and set meta_dir = \"{disk.mount_point}/meta\" in the config")
    if daemon_running(cfg):
        attach_live(cfg, disk)
        return "attached to the running daemon"
    offline.record_disk(cfg.meta_path, diskrecords.new(disk.disk_id, str(disk.mount_point), disk.role, disk.pool,
                                                       device=disk.device, fs_uuid=disk.fs_uuid))
    where = os.fspath(cfg.meta_path)
    return f"the daemon is not running; recorded in {where}, it is used from the next start"


def add_disk(cfg: Config, spec: str, role: str, pool: str = "default", *, force: bool = False,
             confirm: Callable[[Preflight], bool] | None = None, boot: bootmount.BootConfig | None = None,
             progress: Callable[[str], None] = lambda _msg: None) -> AddResult:
    """Format the device `spec`, mount it under the state directory and give it to this appliance."""
    return prepare_disk(spec, role, pool, disks_dir=cfg.disks_dir, pools=cfg.pools,
                        appliance_id=lambda: appliance_id(cfg), hand_over=lambda disk: hand_over(cfg, disk),
                        force=force, confirm=confirm, boot=boot, progress=progress)


def release(cfg: Config, disk_id: str, path: str) -> bool:
    """A drained managed disk (under the state dir) loses its boot mount and its mount point,
    and is unmounted if it was mounted: whether it was. A configured directory is left: False."""
    where = Path(path)
    if where.parent != cfg.disks_dir:
        return False
    released = is_mounted(where)
    bootmount.uninstall(bootmount.host_boot_config(), disk_id, str(where))  # (an offline disk's too)
    if released:
        unmount(where)
    remove_mount_point(where)  # else `disks list` shows the removed disk as a missing one
    return released


def appliance_id_readonly(cfg: Config) -> str | None:
    """The appliance id if it exists already; never creates a metadata DB (for read-only views)."""
    written = _written_id(cfg)
    if written:
        return written
    if (cfg.meta_path / "CURRENT").exists():
        try:
            return appliance_id(cfg)
        except StowageError:
            pass
    return id_from_labels(cfg)

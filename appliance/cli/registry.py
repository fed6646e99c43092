"""Where the host-side disk tools meet the appliance: its identity and its list of disks.

- `appliance_id(cfg)`: the id lives in the metadata DB (appliance/metadb.py); the daemon copies
  it to `<state_dir>/appliance-id` at every start, which is read first. Otherwise, when the daemon
  is stopped the DB is opened briefly (creating it, and so the id, on a brand-new appliance —
  exactly what the first `stowage serve` would do). When the daemon holds the DB's lock, the
  id is read from the label of any disk the daemon already labelled.
- `hand_over(cfg, ...)`: give a freshly prepared disk to the appliance. With the daemon running
  this is the control-socket op "disks.attach" {"path", "disk_id", "role", "pool"}; with the
  daemon stopped a DiskRecord is written to the metadata DB so the next start loads it (the
  start-up loader only opens managed disks that have a record).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.config import Config
from appliance.engine.errors import DiskError, StowageError
from diskmgr.label import LabelFormatError, read_label

ATTACH_OP = "disks.attach"


class ApplianceUnknown(DiskError):
    """The appliance's identity could not be determined."""

    code = "ApplianceUnknown"


def daemon_running(cfg: Config) -> bool:
    """A daemon answers on the control socket (a stale socket file does not count)."""
    import socket

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
    try:
        out += sorted(p for p in cfg.disks_dir.iterdir() if p.is_dir())
    except OSError:
        pass
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
        from appliance.engine.metadb import MetaDB  # the daemon's own DB wrapper: one definition of the id

        try:
            db = MetaDB(cfg.meta_path)
        except StowageError as exc:
            found = id_from_labels(cfg)
            if found:
                return found
            raise ApplianceUnknown(
                f"cannot read the appliance id from {cfg.meta_path}: {exc.message}") from exc
        try:
            return db.appliance_id
        finally:
            db.close()
    found = id_from_labels(cfg)
    if found is None:
        raise ApplianceUnknown("the daemon is running but none of its disks carries a readable label; "
                               "cannot tell which appliance this is")
    return found


@dataclass(frozen=True)
class HandOver:
    live: bool  # True: the running daemon attached it; False: recorded for the next start
    detail: str


def attach_live(cfg: Config, path: Path, disk_id: str, role: str, pool: str) -> object:
    """The one call into the running daemon (appliance/control.py, JSON lines over the socket)."""
    from appliance import control

    return control.call(cfg.control_path, ATTACH_OP,
                        {"path": str(path), "disk_id": disk_id, "role": role, "pool": pool}, timeout=120.0)


def record_for_next_start(cfg: Config, path: Path, disk_id: str, role: str, pool: str, device: str,
                          fs_uuid: str) -> None:
    from appliance.engine import keys
    from appliance.engine.metadb import MetaDB
    from appliance.engine.records import DiskRecord

    db = MetaDB(cfg.meta_path)
    try:
        b = db.batch()
        b.put(keys.disk(disk_id), DiskRecord(disk_id, str(path), role, pool, "ok", time.time_ns(),
                                             device, fs_uuid))
        db.commit_now(b)
    finally:
        db.close()


def hand_over(cfg: Config, path: Path, disk_id: str, role: str, pool: str, device: str,
              fs_uuid: str) -> HandOver:
    if daemon_running(cfg):
        attach_live(cfg, path, disk_id, role, pool)
        return HandOver(True, "attached to the running daemon")
    record_for_next_start(cfg, path, disk_id, role, pool, device, fs_uuid)
    where = os.fspath(cfg.meta_path)
    return HandOver(False, f"the daemon is not running; recorded in {where}, it is used from the next start")


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

"""Bringing data disks online at start-up: labels checked, records kept in the metadata DB.

Two kinds of disks:
- static directories from the config (the embedded `--data DIR` mode's six disks): created and
  labelled on first start. If one later comes back empty and without a label (its directory was
  wiped or replaced by an empty one) it joins as a *new* disk and the old disk id is marked
  failed, so the healer rebuilds its shards; it is never mistaken for the old disk. One that
  lost only its label file (its files are there) gets the label of the disk recorded at its
  path back: as a new disk, the orphan sweep would delete its shards. A non-empty unlabelled
  directory no record names is refused.
- managed disks (`stowage disks add`): a filesystem mounted under the state dir. It must be
  mounted and carry our label, or it stays offline: nothing is ever written into an empty
  mount point. Its record then names the block device mounted there (SMART and spin-down
  use it; /dev/sdX names move between boots).
A label naming another appliance (ForeignDisk), a damaged or unreadable label: the disk recorded
at that path is held offline with the reason (never used, so never swept: that protects a
populated disk from the orphan sweep of a daemon that does not know its segments); where no
disk was ever recorded, the start is refused (a configuration error).
A disk whose directory, or an entry of its skeleton (shards/, tmp/, volumes/), is something else
(a file) is held offline with that reason, like a missing managed disk: the others serve.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from appliance.config import Config, ConfigError
from diskmgr import label as labels
from diskmgr.discovery import mounted_device
from diskmgr.errors import DiskError
from diskmgr.state import DiskState

from . import diskrecords
from .disks import Disk, DiskSet
from .metadb import MetaDB
from .records import DiskRecord

log = logging.getLogger("stowage.disks")


def load_disks(cfg: Config, db: MetaDB) -> DiskSet:
    """Open every configured and managed data disk (blocking; start-up)."""
    appliance_id = db.appliance_id
    known = diskrecords.known(db)
    disks = DiskSet()
    static_paths = set()
    real_paths: dict[str, Path] = {}
    for dc in cfg.disks:
        path = Path(dc.path)
        static_paths.add(str(path))
        if path.exists() and not path.is_dir():  # (a file): its label cannot be read, its record says who it is
            _hold_offline(disks, known, path, f"{path} is not a directory")
            continue
        path.mkdir(parents=True, exist_ok=True)
        other = real_paths.setdefault(os.path.realpath(path), path)
        if other != path:  # (a symlink to another): it was loaded once and reported as all disks
            raise ConfigError(f"disks: {path} is the same directory as {other}; each configured disk must "
                              "be a directory of its own")
        try:
            lab = labels.read_label(path)
            labels.verify_label(lab, appliance_id)
        except labels.UnlabelledDisk:
            holds = any(p.name != "lost+found" for p in path.iterdir())  # (a fresh ext4 holds nothing)
            at_path = _recorded_at(known, path)
            here = next((rec for rec in at_path if rec.role == "data"), None)
            if holds and here is not None:
                # the label file alone is gone, the disk's files are there: it is the disk recorded
                # at this path. As a new disk, the orphan sweep would delete every shard on it.
                lab = labels.new_label(appliance_id, "data", here.pool, disk_id=here.disk_id)
                log.warning("disk %s at %s lost its label but not its files: label restored", here.disk_id, path)
                labels.write_label(path, lab)
            elif holds:
                # a configured directory with someone else's files in it: never adopt it silently
                raise labels.UnlabelledDisk(
                    f"{path} is not empty and carries no Stowage label; refusing to use it as a data disk "
                    "(give an empty directory, or add a real disk with `stowage disks add`)") from None
            else:
                lab = labels.new_label(appliance_id, "data", dc.pool)
                for rec in at_path:
                    log.warning("disk %s at %s lost its label and its files: marking it failed, joining "
                                "%s as a new disk", rec.disk_id, path, lab.disk_id)
                    diskrecords.change_state(rec, DiskState.FAILED)
                    diskrecords.save_now(db, rec)
                labels.write_label(path, lab)
        except (labels.LabelFormatError, DiskError) as exc:  # damaged, unreadable, another appliance's
            # the disk recorded here is offline, as a managed disk with the same label is: one bad
            # label stopped the whole appliance, and recover-metadata could not help (it ignores it)
            _hold_offline(disks, known, path, str(exc))
            continue
        prior = known.get(lab.disk_id)
        if prior is not None and prior.state == DiskState.REMOVED:
            # drained and released by `stowage disks remove`: it holds nothing we need
            log.warning("disk %s at %s was removed from the pool; not using it (wipe the directory "
                        "to add it back as a new disk, or drop it from the configuration)", lab.disk_id, path)
            continue
        twin = disks.get(lab.disk_id)
        if twin is not None:
            raise ConfigError(f"disks: {path} and {twin.path} carry the label of the same disk {lab.disk_id} "
                              "(a copied disk?); refusing to use either until one is removed")
        disk = Disk(lab.disk_id, path, pool=lab.pool, role="data")
        try:
            fault = disk.skeleton_fault()
            if fault is None and not disk.is_initialised():
                disk.initialise()
        except OSError as exc:
            fault = f"{exc.filename or path}: {exc.strerror or exc}"
        if fault is not None:  # one damaged disk is a disk offline, not a box that cannot start
            disks.add(_offline(disk, fault))
            continue
        disks.add(disk)
        rec = prior or diskrecords.new(lab.disk_id, str(path), "data", lab.pool)
        if rec.path != str(path) or rec.state in (DiskState.FAILED, DiskState.OFFLINE):
            rec.path = str(path)
            diskrecords.change_state(rec, DiskState.OK)
        diskrecords.save_now(db, rec)
        known[rec.disk_id] = rec
    for rec in known.values():
        if (rec.path in static_paths or rec.role != "data" or rec.state == DiskState.REMOVED
                or disks.get(rec.disk_id) is not None):  # (held offline above, its record naming an older path)
            continue
        disk = Disk(rec.disk_id, Path(rec.path), pool=rec.pool, role="data")
        try:
            lab = labels.open_disk(rec.path, appliance_id, rec.disk_id, require_mount=True)
            fault = disk.skeleton_fault()
            if fault is None and not disk.is_initialised():
                disk.initialise()
        except Exception as exc:  # a missing disk is a state, not a reason to stay down
            fault = str(exc)
        if fault is None:
            # offline was only its absence; any other state (failing, draining...) still holds
            state = diskrecords.state_of(rec)
            disk.state = DiskState.OK if state == DiskState.OFFLINE else state
            _follow_device(db, rec, lab)
        else:
            _offline(disk, fault)
        disks.add(disk)
    return disks


def _follow_device(db: MetaDB, rec: DiskRecord, lab: labels.DiskLabel) -> None:
    """Record the block device a managed disk is mounted from now: /dev/sdX names move between
    boots, and SMART or hdparm sent to the recorded name would reach another disk. Also fills
    what a record written without them lacks (the device, the filesystem UUID). Never stops
    the start: the disk works without it, only its SMART and spin-down would wait."""
    try:
        device = mounted_device(rec.path, rec.device)
    except OSError as exc:
        log.warning("disk %s: cannot tell which device is mounted at %s (%s); keeping %r for SMART",
                    rec.disk_id, rec.path, exc, rec.device)
        return
    fs_uuid = rec.uuid or lab.fs_uuid
    if (device or rec.device) == rec.device and fs_uuid == rec.uuid:
        return
    if device and rec.device and device != rec.device:
        log.info("disk %s: its device is now %s (recorded %s)", rec.disk_id, device, rec.device)
    rec.device, rec.uuid = device or rec.device, fs_uuid
    diskrecords.save_now(db, rec)


def _hold_offline(disks: DiskSet, known: dict[str, DiskRecord], path: Path, fault: str) -> None:
    """A configured path that is not a directory, or whose label cannot be used: the disk
    recorded there is offline (its record is kept: it is the disk's again once the path is
    mended). One never recorded is a configuration error: there is no disk to hold."""
    here = next((rec for rec in _recorded_at(known, path) if rec.role == "data"), None)
    if here is None:
        raise ConfigError(f"disks: {fault}")
    disks.add(_offline(Disk(here.disk_id, path, pool=here.pool, role="data"), fault))


def _recorded_at(known: dict[str, DiskRecord], path: Path) -> list[DiskRecord]:
    """The records of the disks at `path` that are neither failed nor removed."""
    return [rec for rec in known.values()
            if rec.path == str(path) and rec.state not in (DiskState.FAILED, DiskState.REMOVED)]


def _offline(disk: Disk, fault: str) -> Disk:
    """`disk`, held offline for `fault` (logged): the others serve."""
    log.error("disk %s at %s is offline: %s", disk.disk_id, disk.path, fault)
    disk.state, disk.reasons = DiskState.OFFLINE, [fault]
    return disk

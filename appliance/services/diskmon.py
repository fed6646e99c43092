"""The disk monitor: periodic per-disk checks combined into a health state (diskmgr.health).

Every CHECK_SECONDS each data disk is observed in a worker thread (a hung disk cannot stall the
loop; a check unanswered for config [stall] seconds marks the disk offline, "stalled", and the
checks then come that often):
- the directory (or mount point) is still there, and a managed disk is still mounted;
- the identity label is readable and names this appliance and this disk;
- the shard directory skeleton is still there (a wiped directory is not our disk any more), and
  none of its entries is something else (a file where volumes/ belongs);
- whether the filesystem is read-only (a kernel that remounted it after errors);
- the daemon's own I/O-error / checksum-failure counters and p99 latency (disk.counters);
- SMART (`smartctl --json`) when the disk's DiskRecord names a real block device, every
  SMART_SECONDS (it is slow and wakes sleeping disks; `-n standby` for the disks of a pool
  that spins down, which keep their last report while asleep: spindown.py);
- for such a pool: the standby timeout set once (`hdparm -S`) and `Disk.asleep` (`hdparm -C`).
`diskmgr.health.assess` turns that into ok/warning/failing/failed/offline. Placement obeys
`disk.state` (failing: no new shards); failed/offline wake the healer with a full scan. Every
transition is logged (TransitionLog) and persisted to the disk's DiskRecord. Administrative
states (draining, removed) are kept: the monitor only updates their reasons.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import trio

from appliance.engine.disks import Disk
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import DiskRecord
from diskmgr import label as labels
from diskmgr.health import DiskObservation, Health, TransitionLog, assess
from diskmgr.smart import IN_STANDBY, SmartReport, read_smart
from diskmgr.state import DiskState

from .heal import Healer
from .loop import Json, run_periodically
from .spindown import SpinDown

log = logging.getLogger("stowage.diskmon")

CHECK_SECONDS = 5.0
SMART_SECONDS = 600.0


def _probe(disk: Disk, appliance_id: str, managed: bool) -> DiskObservation:
    """Observe one disk (blocking)."""
    c = disk.counters
    base = DiskObservation(io_errors=c.io_errors, checksum_failures=c.checksum_failures,
                           latency_p99_ms=c.latency_p99_ms())
    path = disk.path
    if not path.is_dir():
        return replace(base, present=False, offline_reason=disk.skeleton_fault() or f"{path} has vanished")
    if managed and not labels.is_mounted(path):
        return replace(base, mounted=False, offline_reason=f"{path} is no longer a mounted filesystem")
    try:
        labels.open_disk(path, appliance_id, disk.disk_id, require_mount=False)
    except Exception as exc:  # any label problem: not (any more) our disk
        return replace(base, label_ok=False, offline_reason=str(exc))
    fault = disk.skeleton_fault()  # (a file where shards/, tmp/ or volumes/ belongs)
    if fault is not None:
        return replace(base, label_ok=False, offline_reason=fault)
    if not disk.is_initialised():
        return replace(base, label_ok=False, offline_reason=f"{disk.shards_dir} is missing (disk wiped?)")
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError as exc:
        return replace(base, present=False, offline_reason=f"{path}: {exc.strerror}")
    return replace(base, read_only=read_only)


def _smart_device(rec: DiskRecord | None) -> str | None:
    dev = rec.device if rec else ""
    if not dev or not dev.startswith("/dev/") or "/loop" in dev:
        return None
    return dev if Path(dev).exists() else None


class DiskMonitor:
    def __init__(self, store: ObjectStore, healer: Healer, static_paths: set[str]) -> None:
        self.store = store
        self.healer = healer
        self.static_paths = static_paths
        self.probe_timeout = store.cfg.stall.seconds
        self.transitions = TransitionLog(logger=logging.getLogger("stowage.disks"))
        self.smart: dict[str, tuple[float, SmartReport]] = {}
        self.spin = SpinDown(store)
        for d in store.disks:
            self.transitions.last[d.disk_id] = d.state

    def _record(self, disk_id: str) -> DiskRecord | None:
        return self.store.disk_record(disk_id)

    async def _smart_for(self, disk: Disk, rec: DiskRecord | None) -> SmartReport | None:
        dev = _smart_device(rec)
        if dev is None:
            return None
        cached = self.smart.get(disk.disk_id)
        if cached and time.monotonic() - cached[0] < SMART_SECONDS:
            return cached[1]
        standby = self.spin.watches(disk, rec)
        report = await trio.to_thread.run_sync(partial(read_smart, dev, standby=standby), abandon_on_cancel=True)
        if report.unavailable_reason == IN_STANDBY:
            return cached[1] if cached else None  # asleep: the last report stands, it is not woken for it
        self.smart[disk.disk_id] = (time.monotonic(), report)
        return report

    async def check(self, disk: Disk) -> Health:
        rec = self._record(disk.disk_id)
        managed = str(disk.path) not in self.static_paths
        obs: DiskObservation | None = None
        try:
            with trio.move_on_after(self.probe_timeout):
                obs = await trio.to_thread.run_sync(_probe, disk, self.store.appliance_id, managed,
                                                    abandon_on_cancel=True)
        except OSError as exc:  # EIO on the disk's own directory: it is not usable
            obs = DiskObservation(io_errors=disk.counters.io_errors, present=False,
                                  offline_reason=f"{disk.path}: {exc.strerror or exc}")
        if obs is None:
            obs = DiskObservation(present=False, offline_reason=f"stalled: no answer within {self.probe_timeout:g} s")
        if obs.present and obs.mounted:
            await self.spin.observe(disk, rec)
        smart = await self._smart_for(disk, rec) if obs.present and obs.mounted else None
        return assess(smart, obs)

    async def apply(self, disk: Disk, health: Health) -> None:
        disk.reasons = list(health.reasons)
        if disk.state.administrative:
            return
        if disk.state == health.state:
            return
        old = disk.state
        self.transitions.last.setdefault(disk.disk_id, old)
        self.transitions.update(disk.disk_id, health)
        await self.store.set_disk_state(disk, health.state)
        if health.state.lost:
            log.warning("disk %s is %s: healing its shards elsewhere", disk.disk_id, health.state)
            self.healer.request(full_scan=True)
        elif old.lost:
            self.healer.request(full_scan=True)

    async def check_all(self) -> None:
        for disk in list(self.store.disks):
            if disk.role != "data" or disk.state == DiskState.REMOVED:
                continue
            try:
                await self.apply(disk, await self.check(disk))
            except Exception:
                log.exception("checking disk %s failed", disk.disk_id)

    def snapshot(self) -> list[Json]:
        return [{"disk_id": d.disk_id, "state": d.state, "reasons": list(d.reasons),
                 "io_errors": d.counters.io_errors, "checksum_failures": d.counters.checksum_failures}
                for d in self.store.disks]

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await run_periodically(self.check_all, lambda: min(CHECK_SECONDS, self.probe_timeout), log=log,
                               what="disk check",
                               task_status=task_status)

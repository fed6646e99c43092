"""Spin-down of the disks of pools that ask for it (`pools.<name>.spin_down_seconds`, an archive
pool typically): the disk monitor's part.

On the first check of each such disk the monitor sets its standby timeout (`hdparm -S`), and on
every check it reads the power state with `hdparm -C` (which does not wake the drive) into
`Disk.asleep`: placement then prefers awake disks and the scrubber skips segments on sleeping
ones, and SMART is read with `smartctl -n standby` (a sleeping drive keeps its last report).
Directory disks and loop devices do not spin: they are skipped, said once in the log. A failing
hdparm (a device without ATA power management) is reported with hdparm's words, never hidden.
"""

from __future__ import annotations

import logging

import trio

from appliance.engine.disks import Disk
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import DiskRecord
from diskmgr.spindown import SpinDownResult, apply_spindown, is_asleep, spins

from .loop import Json

log = logging.getLogger("stowage.disks")


class SpinDown:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.results: dict[str, SpinDownResult | str] = {}  # disk id -> hdparm -S result, or why skipped

    def seconds(self, disk: Disk) -> int:
        pool = self.store.cfg.pools.get(disk.pool)
        return pool.spin_down_seconds if pool is not None else 0

    def watches(self, disk: Disk, rec: DiskRecord | None) -> bool:
        """Does this disk spin down (so SMART must not wake it)?"""
        return bool(self.seconds(disk)) and rec is not None and spins(rec.device)

    async def observe(self, disk: Disk, rec: DiskRecord | None) -> None:
        """Set the standby timeout once, and read whether the disk sleeps now."""
        seconds = self.seconds(disk)
        if not seconds:
            disk.asleep = False
            return
        device = rec.device if rec is not None else ""
        if not spins(device):
            if disk.disk_id not in self.results:
                why = f"loop device {device}" if device else "directory disk"
                self.results[disk.disk_id] = f"skipped: {why} (does not spin)"
                log.info("disk %s: pool %s spins its disks down; %s does not spin", disk.disk_id, disk.pool, why)
            disk.asleep = False
            return
        if disk.disk_id not in self.results:
            res = await trio.to_thread.run_sync(apply_spindown, device, seconds)
            self.results[disk.disk_id] = res
            if res.applied:
                log.info("disk %s: spins down after %d s idle (%s)", disk.disk_id, seconds, " ".join(res.command))
            else:
                log.warning("disk %s: could not set its spin-down (%s): %s", disk.disk_id, " ".join(res.command),
                            res.reason)
        disk.asleep = await trio.to_thread.run_sync(is_asleep, device)

    def status(self) -> Json:
        out: Json = {}
        for disk_id, res in self.results.items():
            out[disk_id] = res if isinstance(res, str) else (
                "applied" if res.applied else f"failed: {res.reason}")
        return out

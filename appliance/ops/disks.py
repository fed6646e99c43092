"""Daemon-side control ops of disk management (registered by appliance.daemon).

    disks.attach {"path", "disk_id", "role", "pool"[, "device", "fs_uuid"]}
            -> {"disk_id", "path", "pool", "state"}
        Take a disk that `stowage disks add` prepared (mounted, labelled for this appliance)
        into the running daemon: the label is checked exactly as at start-up (mounted, ours,
        the expected disk id), the shard directories are created, the disk joins its pool and
        its DiskRecord is committed so it is loaded again after a restart. Idempotent. The
        record names the block device (SMART and spin-down read it there): `device` when it is
        the one mounted at `path`, else the mounted one; the filesystem UUID is `fs_uuid` or
        the label's.
    disks.counters {} -> {"disks": [{"disk_id", "path", "pool", "state", "reasons", "io_errors",
                                     "checksum_failures", "latency_p99_ms", "shards", "heal_progress"}]}
        The daemon's own per-disk observations, for `stowage disks` and the health policy
        (latency_p99_ms: over the last minute; null while too few operations were seen).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import trio

from appliance.control import ControlServer, Emit
from appliance.engine import ObjectStore, diskrecords
from appliance.engine.disks import Disk
from appliance.engine.errors import InvalidArgument
from appliance.engine.records import DiskRecord
from appliance.services.healing import Healing
from diskmgr.discovery import mounted_device
from diskmgr.label import ROLES, open_disk, validate_name
from diskmgr.state import LOST


def _arg(args: dict[str, Any], name: str) -> str:
    v = args.get(name)
    if not isinstance(v, str) or not v:
        raise InvalidArgument(f"disks.attach: {name} must be a non-empty string")
    return v


def _optional(args: dict[str, Any], name: str) -> str:
    v = args.get(name, "")
    if not isinstance(v, str):
        raise InvalidArgument(f"disks.attach: {name} must be a string")
    return v


def register(control: ControlServer, store: ObjectStore, pools: Collection[str], healing: Healing) -> None:
    """`pools`: the configured pool names; `healing`: the services whose progress each disk shows."""

    async def attach(args: dict[str, Any], emit: Emit) -> Any:
        path, disk_id, role, pool = (_arg(args, n) for n in ("path", "disk_id", "role", "pool"))
        device, fs_uuid = _optional(args, "device"), _optional(args, "fs_uuid")
        if role not in ROLES:
            raise InvalidArgument(f"disks.attach: role {role!r} is not one of {', '.join(ROLES)}")
        if role != "data":
            raise InvalidArgument("disks.attach: only data disks join a running daemon; a metadata disk is "
                                  "configured with meta_dir and used from the next start")
        try:
            validate_name("pool", pool)
        except ValueError as exc:
            raise InvalidArgument(f"disks.attach: {exc}") from exc
        if pool not in pools:
            raise InvalidArgument(f"disks.attach: pool {pool!r} is not configured")
        existing = store.disks.get(disk_id)
        if existing is not None and str(existing.path) == path:
            return {"disk_id": disk_id, "path": path, "pool": existing.pool, "state": existing.state}
        if existing is not None:
            raise InvalidArgument(f"disks.attach: disk {disk_id} is already attached at {existing.path}")

        def prepare() -> tuple[Disk, DiskRecord]:
            label = open_disk(path, store.db.appliance_id, disk_id, require_mount=True)
            disk = Disk(disk_id, Path(path), pool=label.pool, role="data")
            if not disk.is_initialised():
                disk.initialise()
            rec = diskrecords.new(disk_id, path, "data", disk.pool, device=mounted_device(path, device),
                                  fs_uuid=fs_uuid or label.fs_uuid)
            return disk, rec

        disk, rec = await trio.to_thread.run_sync(prepare)
        await diskrecords.save(store.db, rec)
        store.disks.add(disk)
        return {"disk_id": disk_id, "path": path, "pool": disk.pool, "state": disk.state}

    def progress(disk: Disk) -> float | None:
        """0..1 of the drain/replace of this disk, or of the heal pass rebuilding a lost one."""
        drain = healing.drainer.progress
        if drain is not None and drain.running and drain.disk_id == disk.disk_id:
            return round(drain.done / drain.total, 3) if drain.total else 0.0
        heal = healing.healer.progress
        if disk.state in LOST and heal.running:
            return round(heal.done / heal.total, 3) if heal.total else 0.0
        return None

    async def counters(args: dict[str, Any], emit: Emit) -> Any:
        held = await trio.to_thread.run_sync(store.shards_per_disk)
        out = []
        for disk in store.disks:
            p99 = disk.counters.latency_p99_ms()
            out.append({"disk_id": disk.disk_id, "path": str(disk.path), "pool": disk.pool, "state": disk.state,
                        "reasons": list(disk.reasons), "io_errors": disk.counters.io_errors,
                        "checksum_failures": disk.counters.checksum_failures,
                        "latency_p99_ms": round(p99, 3) if p99 is not None else None,
                        "shards": held.get(disk.disk_id, 0), "heal_progress": progress(disk)})
        return {"disks": out}

    control.register("disks.attach", attach)
    control.register("disks.counters", counters)

"""Self-healing, wired into the daemon: the healer, scrubber, disk monitor, metadata snapshots,
and the drain/replace operations, with their control-socket ops.

appliance/daemon.py calls `register(daemon)` (control ops) and then starts each of `services()`
with `await nursery.start(service, daemon)`. Progress is published in `daemon.state` under
"heal", "scrub", "drain", "snapshot" (shown by `stowage status`).

Control ops (JSON over the control socket; `emit` streams progress lines):

    heal.run {}                      look at everything known damaged now; waits, streams progress
                                     -> {"heal": state, "unrecoverable": [lost entries]}
    heal.status {}                   -> {"heal": state, "unrecoverable": [...]}
    scrub.start {"wait": true}       start a full scrub pass now (cancels a background pass)
                                     -> scrub state at the end (or at once with wait=false)
    scrub.status {}                  -> scrub state
    disks.drain / disks.remove {"disk"}   move every shard off the disk, then mark it removed and
                                     release it -> {"disk_id", "path", "moved_shards", "released", ...}
    disks.replace {"old", "new"}     rebuild/move OLD's shards onto NEW (attached first), release OLD
    disks.check {}                   run the disk monitor's checks now -> per-disk states
    meta.snapshot {}                 take a metadata snapshot now -> {"segment_id", "records", ...}
("disks.attach" is diskmgr.control_ops'.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from .diskmon import DiskMonitor
from .drain import Drainer
from .heal import Healer
from .scrub import Scrubber
from .snapshot import Snapshotter

if TYPE_CHECKING:
    from appliance.control import Emit
    from appliance.daemon import Daemon


@dataclass
class Healing:
    healer: Healer
    scrubber: Scrubber
    monitor: DiskMonitor
    drainer: Drainer
    snapshotter: Snapshotter


_bundles: dict[int, Healing] = {}


def bundle(d: Daemon) -> Healing:
    """The healing services of one daemon (created on first use)."""
    found = _bundles.get(id(d))
    if found is None:
        store = d.store
        st = d.state
        healer = Healer(store, st.setdefault("heal", {}))
        found = Healing(
            healer=healer,
            scrubber=Scrubber(store, healer, st.setdefault("scrub", {})),
            monitor=DiskMonitor(store, healer, {dc.path for dc in d.cfg.disks}),
            drainer=Drainer(store, healer, st.setdefault("drain", {})),
            snapshotter=Snapshotter(store, st.setdefault("snapshot", {})),
        )
        _bundles[id(d)] = found
    return found


async def _heal_service(d: Daemon, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await bundle(d).healer.serve(task_status=task_status)


async def _scrub_service(d: Daemon, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await bundle(d).scrubber.serve(task_status=task_status)


async def _monitor_service(d: Daemon, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await bundle(d).monitor.serve(task_status=task_status)


async def _snapshot_service(d: Daemon, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await bundle(d).snapshotter.serve(task_status=task_status)


def services() -> list[Any]:
    return [_heal_service, _monitor_service, _scrub_service, _snapshot_service]


def register(d: Daemon) -> None:
    h = bundle(d)

    async def heal_run(args: dict[str, Any], emit: Emit) -> Any:
        h.healer.request(full_scan=True)
        await h.healer.wait_pass(emit)
        return {"heal": h.healer.progress(), "unrecoverable": h.healer.lost()}

    async def heal_status(args: dict[str, Any], emit: Emit) -> Any:
        return {"heal": h.healer.progress(), "unrecoverable": h.healer.lost()}

    async def scrub_start(args: dict[str, Any], emit: Emit) -> Any:
        n = h.scrubber.request_pass()
        if args.get("wait", True):
            await h.scrubber.wait_pass(n, emit)
        return dict(h.scrubber.state)

    async def scrub_status(args: dict[str, Any], emit: Emit) -> Any:
        return dict(h.scrubber.state)

    async def drain(args: dict[str, Any], emit: Emit) -> Any:
        return await h.drainer.drain(args.get("disk"), emit)

    async def replace(args: dict[str, Any], emit: Emit) -> Any:
        return await h.drainer.drain(args.get("old"), emit, target_id=args.get("new") or "")

    async def check(args: dict[str, Any], emit: Emit) -> Any:
        await h.monitor.check_all()
        return {"disks": h.monitor.snapshot()}

    async def snapshot(args: dict[str, Any], emit: Emit) -> Any:
        info = await h.snapshotter.take(force=True)
        return vars(info) if info else None

    for op, fn in (("heal.run", heal_run), ("heal.status", heal_status), ("scrub.start", scrub_start),
                   ("scrub.status", scrub_status), ("disks.drain", drain), ("disks.remove", drain),
                   ("disks.replace", replace), ("disks.check", check), ("meta.snapshot", snapshot)):
        d.control.register(op, fn)

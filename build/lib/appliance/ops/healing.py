"""Control ops of the self-healing services (registered by the daemon; `emit` streams progress).

    heal.run {}                      look at everything known damaged now; waits, streams progress
                                     -> {"heal": progress, "unrecoverable": [lost entries]}
    heal.status {}                   -> {"heal": progress, "unrecoverable": [...]}
    scrub.start {"wait": true}       start a full scrub pass now (cancels a background pass)
                                     -> scrub progress at the end (or at once with wait=false)
    scrub.status {}                  -> scrub progress
    disks.drain / disks.remove {"disk"}   move every shard off the disk, then mark it removed and
                                     release it -> {"disk_id", "path", "moved_shards", "released", ...}
    disks.replace {"old", "new"}     rebuild/move OLD's shards onto NEW (attached first), release OLD
    disks.check {}                   run the disk monitor's checks now -> per-disk states
    meta.snapshot {}                 take a metadata snapshot now -> {"segment_id", "records", ...}
("disks.attach" is appliance/ops/disks.py's.)
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from appliance.control import ControlServer, Emit, Handler
from appliance.services.healing import Healing


def register(control: ControlServer, h: Healing) -> None:

    def heal_json() -> dict[str, Any]:
        return {"heal": h.healer.progress.to_json(), "unrecoverable": [e.to_json() for e in h.healer.lost()]}

    async def heal_run(args: dict[str, Any], emit: Emit) -> Any:
        h.healer.request(full_scan=True)
        await h.healer.wait_pass(emit)
        return heal_json()

    async def heal_status(args: dict[str, Any], emit: Emit) -> Any:
        return heal_json()

    async def scrub_start(args: dict[str, Any], emit: Emit) -> Any:
        n = h.scrubber.request_pass()
        if args.get("wait", True):
            await h.scrubber.wait_pass(n, emit)
        return h.scrubber.progress.to_json()

    async def scrub_status(args: dict[str, Any], emit: Emit) -> Any:
        return h.scrubber.progress.to_json()

    async def drain(args: dict[str, Any], emit: Emit) -> Any:
        return await h.drainer.drain(args.get("disk"), emit)

    async def replace(args: dict[str, Any], emit: Emit) -> Any:
        return await h.drainer.drain(args.get("old"), emit, target_id=args.get("new") or "")

    async def check(args: dict[str, Any], emit: Emit) -> Any:
        await h.monitor.check_all()
        return {"disks": h.monitor.snapshot()}

    async def snapshot(args: dict[str, Any], emit: Emit) -> Any:
        info = await h.snapshotter.take(force=True)
        return asdict(info) if info else None

    ops: dict[str, Handler] = {
        "heal.run": heal_run, "heal.status": heal_status, "scrub.start": scrub_start, "scrub.status": scrub_status,
        "disks.drain": drain, "disks.remove": drain, "disks.replace": replace, "disks.check": check,
        "meta.snapshot": snapshot,
    }
    for op, fn in ops.items():
        control.register(op, fn)

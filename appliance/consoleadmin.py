"""The daemon's side of the web console's appliance pages (s3gw/console/admin.py says what the
console asks): disks in detail and their actions, the durability estimate, the version, and the
recent history of the metrics the charts draw.

The console authorizes every call before it gets here. Disk actions run the very control-socket
operations `stowage disks|heal|scrub` run (appliance/ops/healing.py), so the console can do
nothing the CLI could not, and each is written to the audit log with the console's user, their
address and the disks' states before and after. A drain or replace takes as long as moving the
disk's shards: it runs in the background and its progress shows on the disks page.

A drain or replace that ends well then releases the drained disk's device as `stowage disks
remove|replace` do (diskregistry.release: a managed disk is unmounted, its boot mount removed).

"add" is `stowage disks add` itself (appliance/diskregistry.py: the same preflight refusals,
mkfs, mount, label, boot mount, and the hand-over through the "disks.attach" control op), run
in a worker thread of the daemon; the candidates it offers come from the same discovery as
`stowage disks list`, each with what the preflight would refuse or want erased.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from prometheus_client import Counter

from appliance.config import Config
from appliance.control import ControlServer
from appliance.engine import ObjectStore
from appliance.engine.codec import auto_geometry
from appliance.engine.errors import InvalidArgument, StowageError
from appliance.services.drain import check_replace
from appliance.services.healing import Healing
from diskmgr.discovery import DiscoveryError, discover, suggest_roles
from diskmgr.label import mount_at
from diskmgr.prepare import AddResult, preflight
from diskmgr.smart import SmartReport
from diskmgr.state import DiskState

from . import __version__, diskregistry, migrate
from .audit import AuditLog
from .auditing import disk_states
from .durability import DiskInput, Estimate, estimate, shard_bytes

log = logging.getLogger("stowage.console")

Json = dict[str, Any]
SAMPLE_SECONDS = 10.0
SAMPLES = 360  # one hour of history
SHARDS_TTL = 30.0  # counting shards per disk scans every segment record: not on every refresh
DURABILITY_TTL = 30.0


@dataclass(frozen=True)
class Action:
    op: str  # the control-socket operation
    params: tuple[str, ...]  # the console's argument names, in the op's order
    args: tuple[str, ...]  # the op's argument names
    background: bool  # returns at once; the work goes on


ACTIONS: dict[str, Action] = {
    "drain": Action("disks.remove", ("disk",), ("disk",), True),
    "replace": Action("disks.replace", ("disk", "new"), ("old", "new"), True),
    "check": Action("disks.check", (), (), False),
    "scrub": Action("scrub.start", (), (), False),
    "heal": Action("heal.run", (), (), True),
}

RELEASING = ("disks.remove", "disks.replace")  # the drained disk's device is released on the host


def wear_of(smart: SmartReport | None) -> dict[str, int | None]:
    """The SMART counters the durability model raises a disk's failure rate for."""
    if smart is None:
        return {}
    return {"reallocated_sectors": smart.reallocated_sectors, "pending_sectors": smart.pending_sectors,
            "offline_uncorrectable": smart.offline_uncorrectable, "uncorrected": smart.uncorrected_errors,
            "media_errors": smart.media_errors}


def counter_total(counter: Counter) -> float:
    """The sum of a labelled counter's children (what a Prometheus sum() would say)."""
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


def _finite(doc: Any) -> Any:
    """JSON has no infinity: an estimate's "inf" nines become null, as the CLI's --json has it."""
    if isinstance(doc, dict):
        return {k: _finite(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_finite(v) for v in doc]
    return None if isinstance(doc, float) and math.isinf(doc) else doc


@dataclass
class ConsoleAdmin:
    cfg: Config
    store: ObjectStore
    healing: Healing
    control: ControlServer
    audit: AuditLog
    requests: Callable[[], float]  # S3 and IAM requests answered since the start
    samples: deque[Json] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    _nursery: trio.Nursery | None = None
    _shards: tuple[float, dict[str, int]] = (-math.inf, {})
    _durability: tuple[float, Json] = (-math.inf, {})
    _adding: trio.Lock = field(default_factory=trio.Lock)  # one add at a time: each preflight sees the last's disk

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Samples the metrics for the charts, and holds the background disk actions."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                self.samples.append(self._sample())
                await trio.sleep(SAMPLE_SECONDS)

    def _sample(self) -> Json:
        cap = self.store.capacity()
        return {"time": round(time.time(), 3), "usable_total": cap.usable_total,
                "usable_used": cap.usable_total - cap.usable_free, "requests": self.requests()}

    def history(self) -> Json:
        return {"interval_seconds": SAMPLE_SECONDS, "samples": [*self.samples, self._sample()]}

    # --- disks --------------------------------------------------------------------------------

    async def disk_detail(self) -> Json:
        now = trio.current_time()
        if now - self._shards[0] > SHARDS_TTL:
            self._shards = (now, await trio.to_thread.run_sync(self.store.shards_per_disk))
        held = self._shards[1]
        drain = self.healing.drainer.progress
        out: dict[str, Json] = {}
        for disk in self.store.disks:
            cached = self.healing.monitor.smart.get(disk.disk_id)
            smart = cached[1] if cached else None
            progress = drain.to_json() if drain is not None and drain.running and drain.disk_id == disk.disk_id \
                else None
            out[disk.disk_id] = {
                "shards": held.get(disk.disk_id, 0), "drain": progress,
                "smart": (smart.to_json() | {"verdict": smart.verdict}) if smart is not None else None}
        return {"disks": out, "services": self.healing.progress_json()}

    async def disk_candidates(self) -> Json:
        """The block devices not (yet) in the appliance, as `stowage disks list` finds them."""

        def scan() -> Json:
            try:
                devices = discover(io_counters=False)
            except DiscoveryError as exc:
                return {"devices": [], "pools": sorted(self.cfg.pools), "error": str(exc)}
            ours = {e.majmin for d in self.store.disks if (e := mount_at(d.path)) is not None}
            suggested = {s.path: s for s in suggest_roles(devices)}
            out = []
            for dev in devices:
                if dev.majmin in ours:
                    continue
                pf, s = preflight(dev), suggested.get(dev.path)
                out.append({"device": dev.path, "by_id": dev.by_id, "kind": dev.kind, "model": dev.model,
                            "serial": dev.serial, "size_bytes": dev.size, "system": dev.system,
                            "blockers": pf.blockers, "data": pf.data,
                            "suggested_role": s.role if s else "", "suggestion_reason": s.reason if s else ""})
            return {"devices": out, "pools": sorted(self.cfg.pools)}

        return await trio.to_thread.run_sync(scan)

    async def disk_action(self, action: str, args: Json, who: str, where: str) -> Json:
        if action == "add":
            return await self._add(args, who, where)
        spec = ACTIONS.get(action)
        if spec is None:
            raise InvalidArgument(f"no disk action {action[:32]!r} (there are add, {', '.join(ACTIONS)})")
        op_args: Json = {}
        for param, name in zip(spec.params, spec.args, strict=True):
            value = args.get(param)
            if not isinstance(value, str) or not value:
                raise InvalidArgument(f"{action}: give {param}")
            op_args[name] = value
        if action == "scrub":
            op_args["wait"] = False
        ids = [v for v in op_args.values() if isinstance(v, str)] or None
        handler = self.control.handlers[spec.op]
        disks = [d for d in self.store.disks if ids is None or d.disk_id in ids]
        if ids is not None and len(disks) != len(set(ids)):
            known = ", ".join(d.disk_id for d in self.store.disks)
            raise InvalidArgument(f"{action}: no such disk (there are {known})")
        before = disk_states(disks)
        if action == "replace":
            try:
                self._check_replace(op_args["old"], op_args["new"])
            except StowageError as exc:
                self._record(spec.op, op_args, who, where, exc.code, before, None)
                raise

        async def emit(progress: Json) -> None:
            pass  # the disks page polls the services' progress instead

        async def run() -> Json:
            try:
                result = await handler(op_args, emit)
                if spec.op in RELEASING and isinstance(result, dict):  # and then `stowage disks remove`'s host side
                    try:
                        result["unmounted"] = await trio.to_thread.run_sync(
                            diskregistry.release, self.cfg, result["disk_id"], result["path"])
                    except OSError as exc:  # the drain itself succeeded: say so, and what is left to do
                        result["unmounted"], result["release_error"] = False, str(exc)
            except StowageError as exc:
                self._record(spec.op, op_args, who, where, exc.code, before, None)
                raise
            self._record(spec.op, op_args, who, where, "ok", before, {"disks": disk_states(disks),
                                                                     "result": result})
            return {"done": True, "result": result}

        if not spec.background:
            return await run()
        assert self._nursery is not None, "serve() runs before the gateway takes requests"
        self._record(spec.op, op_args, who, where, "started", before, None)

        async def background() -> None:
            try:
                await run()
            except StowageError as exc:
                log.warning("console: %s %s failed: %s", spec.op, op_args, exc.message)

        self._nursery.start_soon(background)
        return {"done": False, "started": spec.op}

    def _check_replace(self, old_id: str, new_id: str) -> None:
        """What the drain service refuses a replace for (appliance/services/drain.py, where
        `stowage disks replace` learns it), checked before the background work starts so the
        console answers the refusal instead of "started"."""
        old, new = self.store.disks.get(old_id), self.store.disks.get(new_id)
        if old is not None and new is not None:  # else disk_action answered "no such disk" already
            check_replace(old, new)

    async def _add(self, args: Json, who: str, where: str) -> Json:
        """`stowage disks add DEVICE --role ROLE --pool POOL [--force]`; `confirm` must repeat the
        device: the console's answer to the CLI's "type the device to confirm" (asked for every
        add here, since every add formats the device)."""
        device, role, pool = args.get("device"), args.get("role", "data"), args.get("pool", "default")
        force, confirm = args.get("force", False), args.get("confirm")
        if not isinstance(device, str) or not device or not isinstance(role, str) or not isinstance(pool, str):
            raise InvalidArgument("add: give device (and role, pool as strings)")
        if not isinstance(force, bool):
            raise InvalidArgument("add: force is true or false")
        if confirm != device:
            raise InvalidArgument(f"add: everything on {device[:64]} will be erased; confirm by giving the device "
                                  "again as confirm")
        op_args: Json = {"device": device, "role": role, "pool": pool, "force": "yes" if force else "no"}
        async with self._adding:
            before = disk_states(self.store.disks)
            try:
                # confirm=: the console's confirmation was checked above; --force still gates a device with data
                added: AddResult = await trio.to_thread.run_sync(lambda: diskregistry.add_disk(
                    self.cfg, device, role, pool, force=force, confirm=lambda _pf: True))
            except StowageError as exc:
                self._record("disks.add", op_args, who, where, exc.code, before, None)
                raise
            except ValueError as exc:  # a device name no file name can hold (NUL, ...): the caller's
                self._record("disks.add", op_args, who, where, InvalidArgument.code, before, None)
                raise InvalidArgument(f"add: {exc}") from None
            after = disk_states(self.store.disks)
        result = {"disk_id": added.disk_id, "device": added.device, "by_id": added.by_id, "fstype": added.fstype,
                  "fs_uuid": added.fs_uuid, "mount_point": str(added.mount_point), "role": added.role,
                  "pool": added.pool, "boot": added.boot, "handed_over": added.handed_over}
        self._record("disks.add", op_args, who, where, "ok", before, {"disks": after, "result": result})
        return {"done": True, "result": result}

    def _record(self, op: str, args: Json, who: str, where: str, outcome: str, before: Json, after: Json | None
                ) -> None:
        target = ", ".join(f"{k}={v}" for k, v in args.items() if isinstance(v, str))
        self.audit.record(source="console", who=who, where=where, action=op, target=target, outcome=outcome,
                          before={"disks": before}, after=after)

    # --- durability and version ---------------------------------------------------------------

    async def durability(self) -> Json:
        now = trio.current_time()
        if now - self._durability[0] > DURABILITY_TTL:
            result = await trio.to_thread.run_sync(self._estimate)
            self._durability = (now, _finite(result.to_json()))
        return self._durability[1]

    def _estimate(self) -> Estimate:
        """What `stowage durability` computes (appliance/cli/durability.py gathers the same inputs
        from outside the daemon), with SMART as the disk monitor last read it."""
        by_pool: dict[str, list[DiskInput]] = {}
        for d in self.store.disks:
            if d.state == DiskState.REMOVED:
                continue
            cached = self.healing.monitor.smart.get(d.disk_id)
            smart = cached[1] if cached and cached[1].available else None
            by_pool.setdefault(d.pool, []).append(DiskInput(
                d.disk_id, d.pool, str(d.state), shard_bytes(d.path), wear_of(smart),
                smart.power_on_hours if smart else None))
        pools = []
        for name, disks in sorted(by_pool.items()):
            pc = self.cfg.pools.get(name)
            k, m = (pc.k, pc.m) if pc is not None and pc.k > 0 else auto_geometry(len(disks))
            pools.append((name, k, m, disks))
        dc = self.cfg.durability
        return estimate(pools, dc.afr_percent / 100.0, float(dc.rebuild_bytes_per_sec), "configured",
                        dc.replication_sites)

    async def version(self) -> Json:
        def report() -> Json:
            state = migrate.load_state(self.cfg)
            status = migrate.status_of(self.store.db).to_json()
            return {"version": __version__, "formats": migrate.FORMATS, "daemon_running": True,
                    "upgrade": state.to_json() if state else None} | status

        return await trio.to_thread.run_sync(report)

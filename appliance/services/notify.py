"""Bucket notifications: queued in the commit that causes them, delivered at least once.

How an event travels (docs/notifications.md):
1. A transaction that changes versions runs `hook` under the commit lock (engine/events.py). For
   each change and each rule of the bucket's configuration that selects it, an event record
   (notifyevents.py) is added to the same batch under o<target>\\0<seq> (events_keys.py): the event
   exists exactly when the write does, and a crash can lose neither without the other.
2. Once the commit is durable (Txn.on_durable) the queue's durable watermark moves past its seq
   and the target's worker wakes. Workers deliver only entries at or below the watermark (commits
   become durable in commit order), oldest first, one at a time per target: events of one key
   reach a target in commit order. A delivered entry is deleted; a crash between the two
   delivers it again (at least once).
3. A failed delivery is retried with exponential backoff (up to notify.retry_max_seconds),
   holding back the entries after it. A target's queue holds at most notify.queue_limit entries:
   past it the write still succeeds and the event is counted as overflowed (persisted, logged,
   shown in `stowage status`), or the write fails with 503 SlowDown when notify.overflow says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from appliance.config import Config
from appliance.engine import events, events_keys, keys
from appliance.engine.errors import NoSuchBucket, StowageError
from appliance.engine.eventrules import EventConfigError, NotificationRule, notification_rules, target_arn
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import BucketRecord, EventConfigRecord, EventTargetRecord, QueuedEvent
from appliance.engine.storecore import Txn

from . import notifyevents, notifytargets
from .notifytargets import DeliveryFailed, SecretWrapper, Target, TargetError

log = logging.getLogger("stowage.notify")
DELETE_BATCH = 64  # delivered entries removed from the queue per commit
FIRST_RETRY = 0.2


class EventQueueFull(StowageError):
    """A notification target's queue is full and notify.overflow is "slowdown"."""

    code = "SlowDown"


@dataclass
class TargetStats:
    queued: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    overflowed: int = 0
    last_error: str = ""
    last_delivered_ns: int = 0
    retrying_since_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"queued": self.queued, "delivered": self.delivered, "failed_attempts": self.failed_attempts,
                "overflowed": self.overflowed, "last_error": self.last_error,
                "last_delivered_ns": self.last_delivered_ns, "retrying": bool(self.retrying_since_ns)}


@dataclass
class _Cached:
    raw: bytes
    rules: list[NotificationRule]


@dataclass
class NotifyService:
    store: ObjectStore
    cfg: Config
    master: SecretWrapper
    targets: dict[str, Target] = field(default_factory=dict)
    static: set[str] = field(default_factory=set)  # defined in the TOML (not removable by the CLI)
    stats: dict[str, TargetStats] = field(default_factory=dict)
    seq: int = 0  # the last queue seq handed out (under the commit lock)
    durable_seq: int = 0  # every entry up to here belongs to a durable commit
    _wakes: dict[str, trio.Event] = field(default_factory=dict)
    _workers: dict[str, trio.CancelScope] = field(default_factory=dict)
    _configs: dict[str, _Cached] = field(default_factory=dict)
    _nursery: trio.Nursery | None = None
    _overflow_logged_ns: int = 0

    # --- start-up -------------------------------------------------------------------------

    def load(self) -> None:
        """Targets, queue depths and counters from the TOML and the DB (blocking; before serving);
        then the hook is registered with the store."""
        db = self.store.db
        timeout = self.cfg.notify.timeout_seconds
        for name, tc in self.cfg.notify.targets.items():
            self.targets[name] = notifytargets.from_config(name, tc, timeout)
            self.static.add(name)
        for _, rec in db.scan_records(EventTargetRecord, events_keys.NOTIFY_TARGETS):
            if rec.name in self.targets:
                log.warning("notification target %r is defined in the config and by `stowage notify target add`: "
                            "the config's is used", rec.name)
                continue
            try:
                self.targets[rec.name] = notifytargets.from_record(rec, self.master, timeout)
            except StowageError as exc:
                log.error("notification target %r cannot be used: %s", rec.name, exc)
        for name in self.targets:
            self.stats[name] = TargetStats()
        for k, _ in db.scan(keys.NOTIFY_QUEUE):
            name = events_keys.queued_target(k)
            self._stats(name).queued += 1
            self.seq = max(self.seq, events_keys.queued_seq(k))
        for k, v in db.scan(events_keys.counter("overflow:")):
            self._stats(k[len(events_keys.counter("overflow:")):].decode()).overflowed = keys.unpack_seq(v)
        self.durable_seq = self.seq  # what the DB holds after start-up is durable
        self.store.add_txn_hook(self.hook)

    def _stats(self, name: str) -> TargetStats:
        st = self.stats.get(name)
        if st is None:
            st = self.stats[name] = TargetStats()
        return st

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for name in self.targets:
                self._start_worker(name)
            task_status.started()
            await trio.sleep_forever()

    def _start_worker(self, name: str) -> None:
        if self._nursery is None or name in self._workers:
            return
        scope = self._workers[name] = trio.CancelScope()
        self._nursery.start_soon(self._worker, name, scope)

    # --- the commit hook (under the store's commit lock) ----------------------------------------

    def rules(self, t: Txn, bucket: str) -> list[NotificationRule]:
        raw = t.batch.get(events_keys.config(bucket))
        if raw is None:
            self._configs.pop(bucket, None)
            return []
        b = t.batch.get_record(BucketRecord, keys.bucket(bucket))
        raw += keys.pack_seq(b.created_ns if b is not None else 0)  # a bucket made again has none
        cached = self._configs.get(bucket)
        if cached is None or cached.raw != raw:
            rec = live_config(t, bucket, raw[:-8])
            cached = self._configs[bucket] = _Cached(raw, notification_rules(rec.notifications if rec else []))
        return cached.rules

    def hook(self, t: Txn) -> None:
        cause = events.current_cause()
        owners: dict[str, str] = {}
        for ch in t.changes:
            v = ch.version
            rules = self.rules(t, v.bucket)
            if not rules:
                continue
            name = notifyevents.event_name(ch, cause)
            if name is None:
                continue
            for rule in rules:
                if not rule.selects(name, v.key):
                    continue
                if v.bucket not in owners:
                    b = t.batch.get_record(BucketRecord, keys.bucket(v.bucket))
                    owners[v.bucket] = b.owner if b is not None else ""
                payload = notifyevents.record(name, v, cause, rule.id, self.cfg.s3.region, owners[v.bucket])
                self.enqueue(t, QueuedEvent(rule.target, v.bucket, v.key, v.version_id, payload, time.time_ns()))

    def enqueue(self, t: Txn, ev: QueuedEvent) -> None:
        st = self._stats(ev.target)
        if st.queued >= self.cfg.notify.queue_limit:
            if self.cfg.notify.overflow == "slowdown":
                raise EventQueueFull(f"the notification queue of target {ev.target!r} is full", target=ev.target)
            st.overflowed += 1
            t.batch.put(events_keys.counter("overflow:" + ev.target), keys.pack_seq(st.overflowed))
            now = time.monotonic_ns()
            if now - self._overflow_logged_ns > 10_000_000_000:
                self._overflow_logged_ns = now
                log.warning("notification queue of target %r is full (%d events): %d events did not fit so far",
                            ev.target, st.queued, st.overflowed)
            return
        self.seq += 1
        seq = self.seq
        t.batch.put(events_keys.notify_queued(ev.target, seq), ev)
        st.queued += 1
        t.on_durable.append(lambda: self._durable(ev.target, seq))

    def _durable(self, target: str, seq: int) -> None:
        self.durable_seq = max(self.durable_seq, seq)
        wake = self._wakes.get(target)
        if wake is not None:
            wake.set()

    # --- delivery ---------------------------------------------------------------------------

    def _head(self, name: str, limit: int) -> list[tuple[bytes, QueuedEvent]]:
        out: list[tuple[bytes, QueuedEvent]] = []
        for k, raw in self.store.db.scan(events_keys.queue_prefix(keys.NOTIFY_QUEUE, name)):
            if events_keys.queued_seq(k) > self.durable_seq or len(out) >= limit:
                break
            out.append((k, QueuedEvent.decode(raw)))
        return out

    async def _worker(self, name: str, scope: trio.CancelScope) -> None:
        with scope:
            st = self._stats(name)
            while True:
                wake = self._wakes[name] = trio.Event()
                entries = self._head(name, DELETE_BATCH)
                if not entries:
                    if st.queued and not any(True for _ in self.store.db.scan(
                            events_keys.queue_prefix(keys.NOTIFY_QUEUE, name))):
                        st.queued = 0  # a commit that failed after its hook ran counted an event
                    await wake.wait()
                    continue
                done = self.store.db.batch()
                try:
                    for k, ev in entries:
                        await self._deliver(name, ev, st)
                        done.delete(k)
                finally:
                    with trio.CancelScope(shield=True):
                        # not synced: a delivered entry the crash keeps is delivered again
                        await self.store.db.commit(done, sync=False)
                        st.queued = max(0, st.queued - len(done.writes))

    async def _deliver(self, name: str, ev: QueuedEvent, st: TargetStats) -> None:
        delay = FIRST_RETRY
        while True:
            target = self.targets.get(name)
            if target is None:  # removed: its worker is being cancelled
                await trio.sleep_forever()
                continue
            try:
                await target.send(notifyevents.message(ev.payload))
            except Exception as exc:  # any failure is a failed delivery, never the daemon's end
                if not isinstance(exc, DeliveryFailed) and not st.retrying_since_ns:
                    log.exception("notification target %r: delivery failed unexpectedly", name)
                st.failed_attempts += 1
                if not st.retrying_since_ns:
                    st.retrying_since_ns = time.time_ns()
                    log.warning("notification target %r: delivery failed (%s); retrying", name, exc)
                st.last_error = str(exc)
                await trio.sleep(delay)
                delay = min(delay * 2, self.cfg.notify.retry_max_seconds)
                continue
            if st.retrying_since_ns:
                log.info("notification target %r: delivering again", name)
                st.retrying_since_ns = 0
            st.delivered += 1
            st.last_delivered_ns = time.time_ns()
            return

    # --- configurations (the S3 gateway) ---------------------------------------------------------

    def check_rules(self, rules: list[NotificationRule]) -> None:
        """A rule naming a target that does not exist is refused, as AWS refuses a destination it
        cannot validate."""
        for r in rules:
            t = self.targets.get(r.target)
            if t is None or t.kind != r.arn.rsplit(":", 1)[1]:
                raise EventConfigError("Unable to validate the following destination configurations",
                                       ArgumentName=r.arn, ArgumentValue="The destination does not exist")

    def get_rules(self, bucket: str) -> list[NotificationRule]:
        raw = self.store.db.get(events_keys.config(bucket))
        rec = live_config(Txn(self.store), bucket, raw) if raw is not None else None
        return notification_rules(rec.notifications) if rec is not None else []

    async def save_rules(self, bucket: str, rules: list[NotificationRule], request_id: str) -> None:
        """Store a bucket's notification configuration and queue an s3:TestEvent to each of its
        targets, in one commit."""
        self.check_rules(rules)
        async with self.store.txn() as t:
            if t.batch.get(keys.bucket(bucket)) is None:
                raise NoSuchBucket(bucket=bucket)
            update_config(t, bucket, lambda rec: setattr(rec, "notifications", [r.to_dict() for r in rules]))
            for name in dict.fromkeys(r.target for r in rules):
                test = notifyevents.test_event(bucket, request_id)
                self.enqueue(t, QueuedEvent(name, bucket, "", "", test, time.time_ns()))

    # --- targets (the control socket) -----------------------------------------------------------

    def target_list(self) -> list[dict[str, Any]]:
        out = []
        for name, t in sorted(self.targets.items()):
            arns = [target_arn(kind, name, t.kind) for kind in ("Queue", "Topic", "CloudFunction")]
            source = "config" if name in self.static else "cli"
            out.append({"name": name, "type": t.kind, "arns": arns, "source": source, **t.describe(),
                        **self._stats(name).to_json()})
        return out

    async def target_add(self, name: str, kind: str, settings: dict[str, Any], secret: str) -> dict[str, Any]:
        if name in self.targets:
            raise TargetError(f"a notification target named {name!r} exists already")
        rec = notifytargets.new_record(name, kind, settings, secret, self.master)
        target = notifytargets.from_record(rec, self.master, self.cfg.notify.timeout_seconds)
        async with self.store.txn() as t:
            t.batch.put(events_keys.notify_target(name), rec)
        self.targets[name] = target
        self._stats(name)
        self._start_worker(name)
        return next(d for d in self.target_list() if d["name"] == name)

    async def target_remove(self, name: str) -> int:
        """Remove a target added by the CLI, with its queued events (their number is returned)."""
        if name in self.static:
            raise TargetError(f"target {name!r} is defined in the config file: remove it there")
        if name not in self.targets:
            raise TargetError(f"no notification target named {name!r}")
        users = [b for b, rec in self.store.db.scan_records(EventConfigRecord, events_keys.CONFIGS)
                 if any(r["target"] == name for r in rec.notifications)]
        if users:
            raise TargetError(f"target {name!r} is used by the notification configuration of bucket(s) "
                              f"{', '.join(sorted(k[len(events_keys.CONFIGS):].decode() for k in users))}")
        scope = self._workers.pop(name, None)
        if scope is not None:
            scope.cancel()
        self.targets.pop(name)
        dropped = 0
        async with self.store.txn() as t:
            t.batch.delete(events_keys.notify_target(name))
            for k, _ in self.store.db.scan(events_keys.queue_prefix(keys.NOTIFY_QUEUE, name)):
                t.batch.delete(k)
                dropped += 1
        self.stats.pop(name, None)
        if dropped:
            log.warning("notification target %r removed with %d undelivered events", name, dropped)
        return dropped

    def status(self) -> dict[str, Any]:
        return {"targets": {name: st.to_json() for name, st in sorted(self.stats.items())},
                "queued": sum(st.queued for st in self.stats.values()),
                "overflowed": sum(st.overflowed for st in self.stats.values())}


def live_config(t: Txn, bucket: str, raw: bytes) -> EventConfigRecord | None:
    """The configuration stored as `raw`, unless it belonged to a deleted bucket of the same name
    (a bucket's deletion leaves it: the engine does not know about it)."""
    rec = EventConfigRecord.decode(raw)
    b = t.batch.get_record(BucketRecord, keys.bucket(bucket))
    return rec if b is not None and rec.updated_ns >= b.created_ns else None


def update_config(t: Txn, bucket: str, change: Callable[[EventConfigRecord], None]) -> None:
    """Change a bucket's EventConfigRecord in transaction t (created when missing, deleted when empty)."""
    raw = t.batch.get(events_keys.config(bucket))
    rec = (live_config(t, bucket, raw) if raw is not None else None) or EventConfigRecord(bucket)
    change(rec)
    rec.updated_ns = time.time_ns()
    if rec.notifications or rec.replication is not None:
        t.batch.put(events_keys.config(bucket), rec)
    else:
        t.batch.delete(events_keys.config(bucket))

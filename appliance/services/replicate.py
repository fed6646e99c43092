"""Bucket replication: versions queued in the commit that makes them, written to remote S3
endpoints at least once, in commit order per key (docs/replication.md).

1. The commit hook (engine/events.py) looks at each new version of a bucket with a replication
   configuration: for each destination a rule selects (the highest-priority rule per
   destination, filters on prefix and tags), a QueuedEvent goes under J<target>\\0<seq> and the
   version's ReplicationState (j key) becomes PENDING, in the same batch. Delete markers are
   queued when their rule has DeleteMarkerReplication. A version that arrives as a replica
   (events.Cause.replica) is marked REPLICA and never queued: two boxes replicating to each
   other converge without loops.
2. Per target, a dispatcher reads the queue in order (only entries of durable commits) and hands
   each entry to one of replication.workers lanes chosen by its key, so the versions of one key
   are written in order while different keys go in parallel. A lane writes the version
   (s3push.py: metadata, content headers, tags, checksums, storage class, object lock, SSE-S3/KMS
   objects decrypted here and re-encrypted by the target), then removes the entry and sets
   COMPLETED in one commit. A target that cannot be reached is retried with backoff (the state
   stays PENDING); a version the target refuses for good is FAILED with the reason.
3. Resync (`stowage replication resync BUCKET`) queues existing versions that are neither
   COMPLETED nor REPLICA for the rules with ExistingObjectReplication, page by page, its cursor
   committed with each page (resumable).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import trio

from appliance.config import Config
from appliance.engine import events, events_keys, keys
from appliance.engine.crypto import KeyResolver
from appliance.engine.errors import NoSuchBucket, NoSuchKey, NoSuchVersion, StowageError
from appliance.engine.eventrules import ReplicationRule, ReplicationRules
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import EventConfigRecord, EventTargetRecord, ObjectVersion, QueuedEvent, ReplicationState
from appliance.engine.sealed import NotSealable
from appliance.engine.storecore import Txn
from diskmgr.crashpoints import crash_point

from . import replicatargets
from .notify import live_config, update_config
from .notifytargets import SecretWrapper, TargetError
from .replicatargets import RemoteTarget
from .s3push import REPLICA_VERSION_HEADER, PushFailed, put_streamed
from .sealedpush import put_sealed

log = logging.getLogger("stowage.replication")
PENDING, COMPLETED, FAILED, REPLICA = "PENDING", "COMPLETED", "FAILED", "REPLICA"
FIRST_RETRY = 0.2
SCAN_BATCH = 256
RESYNC_PAGE = 500
SSE_C_REASON = ("SSE-C object: its customer key is never stored, so it cannot be decrypted here, and a "
                "non-Stowage S3 service cannot take its ciphertext")


class Unreplicable(Exception):
    """This version cannot be replicated to this target (it is FAILED with the reason)."""


@dataclass
class ReplStats:
    queued: int = 0
    queued_bytes: int = 0
    completed: int = 0
    failed: int = 0
    overflowed: int = 0
    bytes_sent: int = 0
    last_error: str = ""
    retrying_since_ns: int = 0
    recent: deque[tuple[float, int]] = field(default_factory=deque)  # (monotonic time, bytes) of the last minute

    def sent(self, n: int) -> None:
        now = time.monotonic()
        self.bytes_sent += n
        self.recent.append((now, n))
        while self.recent and self.recent[0][0] < now - 60:
            self.recent.popleft()

    def throughput(self) -> float:
        now = time.monotonic()
        window = [b for t, b in self.recent if t >= now - 60]
        return sum(window) / 60.0


@dataclass
class _Cached:
    raw: bytes
    rules: ReplicationRules | None


@dataclass
class ResyncProgress:
    bucket: str
    scanned: int = 0
    queued: int = 0
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "scanned": self.scanned, "queued": self.queued, "done": self.done}


@dataclass
class ReplicationService:
    store: ObjectStore
    cfg: Config
    master: SecretWrapper
    resolver: Callable[[], KeyResolver]  # opens the data keys of SSE-S3/KMS objects
    targets: dict[str, RemoteTarget] = field(default_factory=dict)
    stats: dict[str, ReplStats] = field(default_factory=dict)
    seq: int = 0
    durable_seq: int = 0
    loaded_seq: int = 0  # entries up to here were queued by an earlier run: perhaps sent already
    resyncs: dict[str, ResyncProgress] = field(default_factory=dict)
    _wakes: dict[str, trio.Event] = field(default_factory=dict)
    _workers: dict[str, trio.CancelScope] = field(default_factory=dict)
    _configs: dict[str, _Cached] = field(default_factory=dict)
    _nursery: trio.Nursery | None = None
    # site replication's implicit rules of a bucket (services/site.py): every versioned bucket
    # replicates to the same bucket on every other box of the site
    site_rules: Callable[[Txn, str], list[ReplicationRule]] | None = None

    # --- start-up -------------------------------------------------------------------------

    def load(self) -> None:
        db = self.store.db
        for _, rec in db.scan_records(EventTargetRecord, events_keys.REPLICATION_TARGETS):
            try:
                self.targets[rec.name] = replicatargets.from_record(rec, self.master, self.cfg.replication.workers * 2)
            except StowageError as exc:
                log.error("replication target %r cannot be used: %s", rec.name, exc)
            self._stats(rec.name)
        for k, raw in db.scan(keys.REPLICATION_QUEUE):
            st = self._stats(events_keys.queued_target(k))
            st.queued += 1
            st.queued_bytes += int(QueuedEvent.decode(raw).payload.get("size", 0))
            self.seq = max(self.seq, events_keys.queued_seq(k))
        self.durable_seq = self.loaded_seq = self.seq
        self.store.add_txn_hook(self.hook)

    def _stats(self, name: str) -> ReplStats:
        st = self.stats.get(name)
        if st is None:
            st = self.stats[name] = ReplStats()
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
        self._nursery.start_soon(self._target_loop, name, scope)

    # --- the commit hook ------------------------------------------------------------------------

    def rules(self, t: Txn, bucket: str) -> ReplicationRules | None:
        raw = t.batch.get(events_keys.config(bucket))
        if raw is None:
            self._configs.pop(bucket, None)
            return None
        b = t.batch.get(keys.bucket(bucket))
        stamp = raw + (b or b"")
        cached = self._configs.get(bucket)
        if cached is None or cached.raw != stamp:
            rec = live_config(t, bucket, raw)
            doc = rec.replication if rec is not None else None
            cached = self._configs[bucket] = _Cached(stamp, ReplicationRules.from_dict(doc) if doc else None)
        return cached.rules

    def hook(self, t: Txn) -> None:
        cause = events.current_cause()
        for ch in t.changes:
            v = ch.version
            if ch.kind == events.REMOVE:
                t.batch.delete(events_keys.state(v.bucket, v.key, v.version_id))
                continue
            if cause is not None and cause.replica:
                if ch.kind == events.PUT and not v.delete_marker:
                    t.batch.put(events_keys.state(v.bucket, v.key, v.version_id), ReplicationState(REPLICA, "",
                                                                                                   time.time_ns()))
                continue
            tagging = ch.kind == events.IN_PLACE and cause is not None and cause.event.startswith("ObjectTagging:")
            if ch.kind != events.PUT and not tagging:
                continue
            rules = self.rules(t, v.bucket)
            site = self.site_rules(t, v.bucket) if self.site_rules is not None else []
            if site:
                rules = ReplicationRules(rules.role if rules else "", [*(rules.rules if rules else []), *site])
            if rules is None:
                continue
            if tagging:  # new tags of a replicated version (Stowage targets: the same version id)
                chosen = [r for r in rules.rules_for(v.key, v.tags, (v.sse or {}).get("mode") == "aws:kms")
                          if (tgt := self.targets.get(r.target)) is not None and tgt.keeps_versions]
            elif v.delete_marker:
                chosen = [r for r in rules.rules_for(v.key, {}) if r.delete_markers and not r.tags]
            else:
                chosen = rules.rules_for(v.key, v.tags, (v.sse or {}).get("mode") == "aws:kms")
            for rule in chosen:
                self.enqueue(t, v, rule, "tags" if tagging else "")

    def enqueue(self, t: Txn, v: ObjectVersion, rule: ReplicationRule, op: str = "") -> None:
        st = self._stats(rule.target)
        op = op or ("delete" if v.delete_marker else "put")
        state_key = events_keys.state(v.bucket, v.key, v.version_id)
        if st.queued >= self.cfg.replication.queue_limit:
            st.overflowed += 1
            if op == "put":
                t.batch.put(state_key, ReplicationState(FAILED, "the replication queue is full", time.time_ns()))
            log.warning("replication queue of target %r is full: %s/%s not queued", rule.target, v.bucket, v.key)
            return
        self.seq += 1
        seq = self.seq
        payload = {"op": op, "rule": rule.id, "dest": rule.dest_bucket, "size": v.size,
                   "storage_class": rule.storage_class}
        t.batch.put(events_keys.replication_queued(rule.target, seq),
                    QueuedEvent(rule.target, v.bucket, v.key, v.version_id, payload, time.time_ns()))
        if op == "put":
            t.batch.put(state_key, ReplicationState(PENDING, "", time.time_ns()))
        st.queued += 1
        st.queued_bytes += v.size
        name = rule.target
        t.on_durable.append(lambda: self._durable(name, seq))

    def _durable(self, target: str, seq: int) -> None:
        self.durable_seq = max(self.durable_seq, seq)
        wake = self._wakes.get(target)
        if wake is not None:
            wake.set()

    # --- the workers ------------------------------------------------------------------------------

    def _scan(self, name: str, after: int) -> list[tuple[bytes, QueuedEvent]]:
        prefix = events_keys.queue_prefix(keys.REPLICATION_QUEUE, name)
        out: list[tuple[bytes, QueuedEvent]] = []
        with self.store.db.iterator(events_keys.replication_queued(name, after + 1),
                                    keys.prefix_successor(prefix)) as it:
            for k, raw in it:
                if events_keys.queued_seq(k) > self.durable_seq or len(out) >= SCAN_BATCH:
                    break
                out.append((k, QueuedEvent.decode(raw)))
        return out

    async def _target_loop(self, name: str, scope: trio.CancelScope) -> None:
        lanes = self.cfg.replication.workers
        with scope:
            async with trio.open_nursery() as nursery:
                senders = []
                for _ in range(lanes):
                    send, recv = trio.open_memory_channel[tuple[bytes, QueuedEvent]](16)
                    senders.append(send)
                    nursery.start_soon(self._lane, name, recv)
                cursor = 0
                while True:
                    wake = self._wakes[name] = trio.Event()
                    entries = self._scan(name, cursor)
                    if not entries:
                        await wake.wait()
                        continue
                    for k, ev in entries:
                        lane = zlib.crc32(f"{ev.bucket}\x00{ev.key}".encode()) % lanes
                        await senders[lane].send((k, ev))
                        cursor = events_keys.queued_seq(k)

    async def _lane(self, name: str, recv: trio.MemoryReceiveChannel[tuple[bytes, QueuedEvent]]) -> None:
        async for k, ev in recv:
            await self._until_done(name, k, ev)

    async def _until_done(self, name: str, k: bytes, ev: QueuedEvent) -> None:
        st = self._stats(name)
        delay = FIRST_RETRY
        while True:
            target = self.targets.get(name)
            if target is None:
                await trio.sleep_forever()
                continue
            outcome: ReplicationState | None = ReplicationState(COMPLETED, "", time.time_ns())
            try:
                maybe_sent = delay > FIRST_RETRY or events_keys.queued_seq(k) <= self.loaded_seq
                sent = await self._replicate(target, ev, maybe_sent)
                crash_point("replication.sent")
                st.sent(sent)
                st.completed += 1
            except PushFailed as exc:
                st.last_error = str(exc)
                if exc.transient:
                    if not st.retrying_since_ns:
                        st.retrying_since_ns = time.time_ns()
                        log.warning("replication target %r: %s; retrying", name, exc)
                    await trio.sleep(delay)
                    delay = min(delay * 2, self.cfg.replication.retry_max_seconds)
                    continue
                outcome = ReplicationState(FAILED, str(exc), time.time_ns())
            except Unreplicable as exc:
                outcome = ReplicationState(FAILED, str(exc), time.time_ns())
            except (NoSuchKey, NoSuchVersion, NoSuchBucket):
                outcome = None  # removed since: nothing left to replicate
            except Exception as exc:  # reading the version failed (disks): a later attempt may not
                log.exception("replication of %s/%s to %r", ev.bucket, ev.key, name)
                st.last_error = f"{type(exc).__name__}: {exc}"
                await trio.sleep(delay)
                delay = min(delay * 2, self.cfg.replication.retry_max_seconds)
                continue
            if outcome is not None and outcome.status == FAILED:
                st.failed += 1
                st.last_error = outcome.reason
                log.warning("replication of %s/%s (%s) to %r failed: %s", ev.bucket, ev.key, ev.version_id, name,
                            outcome.reason)
            if st.retrying_since_ns:
                st.retrying_since_ns = 0
                log.info("replication target %r: replicating again", name)
            await self._finish(k, ev, outcome)
            st.queued = max(0, st.queued - 1)
            st.queued_bytes = max(0, st.queued_bytes - int(ev.payload.get("size", 0)))
            return

    async def _finish(self, k: bytes, ev: QueuedEvent, outcome: ReplicationState | None) -> None:
        """Remove the entry and record the outcome, in one commit; a failure is also an
        s3:Replication:OperationFailedReplication event for the bucket's notifications."""
        failed = outcome is not None and outcome.status == FAILED
        cause = events.Cause(event="Replication:OperationFailedReplication", principal="stowage:replication")
        with trio.CancelScope(shield=True), events.caused_by(cause):
            async with self.store.txn() as t:
                t.batch.delete(k)
                v = t.version_at(ev.bucket, ev.key, ev.version_id)
                if outcome is not None and ev.payload.get("op") == "put" and v is not None:
                    t.batch.put(events_keys.state(ev.bucket, ev.key, ev.version_id), outcome)
                    if failed:
                        t.changes.append(events.Change(events.IN_PLACE, v))

    async def _replicate(self, target: RemoteTarget, ev: QueuedEvent, maybe_sent: bool) -> int:
        """Write one queued version (or delete marker) to the target; returns the bytes sent.
        `maybe_sent`: an earlier attempt (of this run or of one that crashed) may have written it."""
        ep, dest = target.endpoint, str(ev.payload["dest"])
        if ev.payload.get("op") == "delete":
            headers = {REPLICA_VERSION_HEADER: ev.version_id} if target.keeps_versions else {}
            await ep.acall("delete_object", headers, Bucket=dest, Key=ev.key)
            return 0
        v = self.store.head_object(ev.bucket, ev.key, ev.version_id)
        if ev.payload.get("op") == "tags":
            replica = {REPLICA_VERSION_HEADER: v.version_id}
            if v.tags:
                await ep.acall("put_object_tagging", replica, Bucket=dest, Key=v.key, VersionId=v.version_id,
                               Tagging={"TagSet": [{"Key": k, "Value": val} for k, val in v.tags.items()]})
            else:
                await ep.acall("delete_object_tagging", replica, Bucket=dest, Key=v.key, VersionId=v.version_id)
            return 0
        if v.delete_marker:
            return 0
        mode = (v.sse or {}).get("mode", "")
        if mode == "SSE-C" and not target.keeps_versions:
            raise Unreplicable(SSE_C_REASON)
        if maybe_sent and target.keeps_versions and await self._has_version(target, dest, v):
            return 0
        rc = self.cfg.replication
        headers = replica_headers(v, str(ev.payload.get("storage_class", "")))
        if mode == "SSE-C":  # to a Stowage box: the ciphertext with its key check value (sealedpush.py)
            try:
                return await put_sealed(self.store, target.endpoint, dest, v,
                                        {**headers, REPLICA_VERSION_HEADER: v.version_id}, rc.multipart_threshold)
            except NotSealable as exc:
                raise Unreplicable(str(exc)) from None
        complete: dict[str, str] = {REPLICA_VERSION_HEADER: v.version_id} if target.keeps_versions else {}
        single = v.size <= rc.multipart_threshold and len(v.parts) <= 1
        if single and v.checksum_type == "FULL_OBJECT":
            complete.update({f"x-amz-checksum-{a.lower()}": c for a, c in v.checksums.items()})
        body = self.store.read_object(v, decrypt_with=self.resolver() if mode else None)
        try:
            await put_streamed(ep, dest, v.key, v.size, body, headers, complete, threshold=rc.multipart_threshold,
                               part_size=rc.part_size, source_parts=v.parts)
        finally:
            await body.aclose()
        return v.size

    async def _has_version(self, target: RemoteTarget, dest: str, v: ObjectVersion) -> bool:
        """Whether a Stowage target holds this version already (a crash came after the write)."""
        try:
            await target.endpoint.acall("head_object", Bucket=dest, Key=v.key, VersionId=v.version_id)
        except PushFailed as exc:
            if exc.transient:
                raise
            return False
        return True

    # --- configurations (the S3 gateway) -----------------------------------------------------------

    def check_rules(self, rules: ReplicationRules) -> None:
        for r in rules.rules:
            if r.target not in self.targets:
                raise TargetError(f"Destination bucket ARN names an unknown replication target {r.target!r} "
                                  "(stowage replication target list)")

    def get_rules(self, bucket: str) -> ReplicationRules | None:
        raw = self.store.db.get(events_keys.config(bucket))
        rec = live_config(Txn(self.store), bucket, raw) if raw is not None else None
        return ReplicationRules.from_dict(rec.replication) if rec is not None and rec.replication else None

    async def save_rules(self, bucket: str, rules: ReplicationRules | None) -> None:
        if rules is not None:
            self.check_rules(rules)
        doc = rules.to_dict() if rules is not None else None

        def change(rec: EventConfigRecord) -> None:
            rec.replication = doc

        async with self.store.txn() as t:
            if t.batch.get(keys.bucket(bucket)) is None:
                raise NoSuchBucket(bucket=bucket)
            update_config(t, bucket, change)

    def pins_versioning(self, t: Txn, bucket: str) -> str:
        """Why `bucket`'s versioning may not be suspended ("" if it may): a suspended bucket's new
        objects (version "null") would silently stop replicating, so, as MinIO does, the change is
        refused while a replication configuration or a site replication rule names the bucket."""
        raw = t.batch.get(events_keys.config(bucket))
        rec = live_config(t, bucket, raw) if raw is not None else None
        if rec is not None and rec.replication:
            return "A replication configuration is present on this bucket, so the versioning state cannot be changed."
        if self.site_rules is not None and self.site_rules(t, bucket):
            return "Site replication is enabled on this box, so the versioning state of a bucket cannot be changed."
        return ""

    def state_of_key(self, bucket: str, key: str, version_id: str) -> ReplicationState | None:
        return self.store.db.get_record(ReplicationState, events_keys.state(bucket, key, version_id))

    # --- resync -------------------------------------------------------------------------------------

    async def resync(self, bucket: str,
                     emit: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> ResyncProgress:
        """Queue the existing versions of `bucket` that are not replicated yet (resumable: the
        cursor is committed with each page)."""
        rules = self.get_rules(bucket)
        existing = [r for r in (rules.rules if rules else []) if r.existing_objects and r.enabled]
        if self.site_rules is not None:
            existing += self.site_rules(Txn(self.store), bucket)
        if not existing:
            raise TargetError(f"bucket {bucket!r} has no enabled replication rule with ExistingObjectReplication")
        chosen = ReplicationRules(rules.role if rules else "", existing)
        progress = self.resyncs[bucket] = ResyncProgress(bucket)
        cursor_key = events_keys.counter("resync:" + bucket)
        raw = self.store.db.get(cursor_key)
        key_marker, vid_marker = raw.decode().split("\x00", 1) if raw else ("", "")
        while True:
            page = self.store.list_versions(bucket, key_marker=key_marker, version_id_marker=vid_marker,
                                            max_keys=RESYNC_PAGE)
            versions = [v for v, _latest in page.entries if not v.delete_marker]
            async with self.store.txn() as t:
                for v in versions:
                    progress.scanned += 1
                    state = t.batch.get_record(ReplicationState, events_keys.state(v.bucket, v.key, v.version_id))
                    if state is not None and state.status in (COMPLETED, REPLICA, PENDING):
                        continue
                    if t.version_at(v.bucket, v.key, v.version_id) is None:
                        continue
                    for rule in chosen.rules_for(v.key, v.tags, (v.sse or {}).get("mode") == "aws:kms"):
                        self.enqueue(t, v, rule)
                        progress.queued += 1
                if page.is_truncated:
                    key_marker, vid_marker = page.next_key_marker, page.next_version_id_marker
                    t.batch.put(cursor_key, f"{key_marker}\x00{vid_marker}".encode())
                else:
                    t.batch.delete(cursor_key)
            if emit is not None:
                await emit(progress.to_json())
            if not page.is_truncated:
                break
        progress.done = True
        return progress

    # --- targets and status (the control socket) --------------------------------------------------------

    async def target_add(self, name: str, kind: str, settings: dict[str, Any], secret_key: str) -> dict[str, Any]:
        if name in self.targets:
            raise TargetError(f"a replication target named {name!r} exists already")
        rec = replicatargets.new_record(name, kind, settings, secret_key, self.master)
        target = replicatargets.from_record(rec, self.master, self.cfg.replication.workers * 2)
        async with self.store.txn() as t:
            t.batch.put(events_keys.replication_target(name), rec)
        self.targets[name] = target
        self._stats(name)
        self._start_worker(name)
        return target.describe()

    def attach(self, target: RemoteTarget) -> None:
        """A target kept by another service (site replication's peers), not stored here."""
        self.targets[target.name] = target
        self._stats(target.name)
        self._start_worker(target.name)

    def detach(self, name: str) -> None:
        scope = self._workers.pop(name, None)
        if scope is not None:
            scope.cancel()
        self.targets.pop(name, None)

    def target_list(self) -> list[dict[str, Any]]:
        return [dict(t.describe(), arn=f"arn:stowage:s3::{name}:BUCKET") for name, t in sorted(self.targets.items())]

    async def target_remove(self, name: str) -> int:
        if name not in self.targets:
            raise TargetError(f"no replication target named {name!r}")
        users = [rec.bucket for _, rec in self.store.db.scan_records(EventConfigRecord, events_keys.CONFIGS)
                 if rec.replication and any(r.get("target") == name for r in rec.replication.get("rules", []))]
        if users:
            raise TargetError(f"target {name!r} is used by the replication configuration of bucket(s) "
                              f"{', '.join(sorted(users))}")
        scope = self._workers.pop(name, None)
        if scope is not None:
            scope.cancel()
        self.targets.pop(name)
        dropped = 0
        async with self.store.txn() as t:
            t.batch.delete(events_keys.replication_target(name))
            for k, _ in self.store.db.scan(events_keys.queue_prefix(keys.REPLICATION_QUEUE, name)):
                t.batch.delete(k)
                dropped += 1
        self.stats.pop(name, None)
        return dropped

    def _oldest_ns(self, name: str) -> int:
        for _, raw in self.store.db.scan(events_keys.queue_prefix(keys.REPLICATION_QUEUE, name)):
            return QueuedEvent.decode(raw).queued_ns
        return 0

    def status(self) -> dict[str, Any]:
        now = time.time_ns()
        out: dict[str, Any] = {}
        for name, st in sorted(self.stats.items()):
            oldest = self._oldest_ns(name)
            out[name] = {"queued": st.queued, "queued_bytes": st.queued_bytes, "completed": st.completed,
                         "failed": st.failed, "overflowed": st.overflowed, "bytes_sent": st.bytes_sent,
                         "throughput_bytes_per_sec": round(st.throughput(), 1),
                         "lag_seconds": round((now - oldest) / 1e9, 3) if oldest else 0.0,
                         "retrying": bool(st.retrying_since_ns), "last_error": st.last_error}
        return {"targets": out, "resyncs": [p.to_json() for p in self.resyncs.values()]}


def replica_headers(v: ObjectVersion, storage_class: str) -> dict[str, str]:
    """The headers that recreate a version's metadata on the target (S3's own headers)."""
    h: dict[str, str] = {}
    if v.content_type:
        h["content-type"] = v.content_type
    h.update(v.headers)
    for k, val in v.user_meta.items():
        if k.isascii() and val.isascii():
            h[f"x-amz-meta-{k}"] = val
    if v.tags:
        h["x-amz-tagging"] = urlencode(v.tags, quote_via=quote)
    sc = storage_class or v.storage_class
    if sc and sc != "STANDARD":
        h["x-amz-storage-class"] = sc
    if v.lock_mode and v.retain_until_ns:
        h["x-amz-object-lock-mode"] = v.lock_mode
        h["x-amz-object-lock-retain-until-date"] = datetime.fromtimestamp(v.retain_until_ns / 1e9, UTC) \
            .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if v.legal_hold:
        h["x-amz-object-lock-legal-hold"] = "ON"
    mode = (v.sse or {}).get("mode", "")
    if mode in ("AES256", "aws:kms"):  # re-encrypted by the target with its own keys
        h["x-amz-server-side-encryption"] = mode
    return h

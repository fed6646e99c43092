"""The lifecycle worker: applies each bucket's lifecycle rules (docs/lifecycle.md).

A pass walks every bucket that has rules, key by key (all versions of a key at once, newest
first), then its incomplete multipart uploads, and does what the rules say is due:
    - Expiration of the current version: removed (unversioned bucket) or hidden behind a delete
      marker (versioned: a new one; suspended: the "null" one), as a DELETE would;
    - ExpiredObjectDeleteMarker: a delete marker that is a key's only version is removed;
    - NoncurrentVersionExpiration: a version noncurrent for NoncurrentDays, beyond the
      NewerNoncurrentVersions newest noncurrent ones, is removed;
    - Transition / NoncurrentVersionTransition: the version's data is re-encoded into the
      target class's pool and geometry, its ETag, version id, Last-Modified and checksums kept;
    - AbortIncompleteMultipartUpload: the upload and its parts are removed.
Object lock wins: a removal a retention or legal hold forbids is refused by the engine and
counted as `locked`. Every action is conditional on the version still being what was read.

The cursor (bucket, phase, last key done) is committed after every batch, so a restart resumes
where the pass stood; a transition cut by a crash left only an uncommitted segment, which the
start-up orphan sweep removes, and is done again. Expirations and aborts are paced by
`lifecycle.max_actions_per_second`, transitions by `lifecycle.transition_bytes_per_second`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from typing import Any

import trio

from appliance.config import Config
from appliance.engine.errors import NoSuchBucket, NoSuchUpload
from appliance.engine.events import Cause, caused_by
from appliance.engine.lifecycle_rules import (
    Rule,
    abort_due,
    current_expiration,
    current_transition,
    noncurrent_actions,
    removes_expired_marker,
)
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import BucketRecord, LifecycleCursor, ObjectVersion

from .loop import Json, Wakeup, run_periodically

log = logging.getLogger("stowage.lifecycle")
LIFECYCLE_PRINCIPAL = "stowage:lifecycle"  # the userIdentity of the events lifecycle causes

BATCH = 200  # keys (or uploads) per batch; the cursor is committed after each
BURST_SECONDS = 1.0  # work a pace lets through at once before it waits
OUTLOOK_DAYS = 30  # `stowage usage` shows what lifecycle will do within this many days


class Pace:
    """At most `rate` units a second on average, with a burst of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0

    async def take(self, amount: float) -> None:
        now = trio.current_time()
        self._next = max(self._next, now - BURST_SECONDS) + amount / self.rate
        if self._next > now:
            await trio.sleep(self._next - now)


class LifecycleWorker:
    def __init__(self, store: ObjectStore, cfg: Config) -> None:
        self.store = store
        self.cfg = cfg.lifecycle
        self.wakeup = Wakeup()
        self.actions = Pace(self.cfg.max_actions_per_second)
        self.bytes = Pace(float(self.cfg.transition_bytes_per_second))
        self.cur = store.lifecycle_cursor()
        self.running = False
        # bucket -> what the rules will expire and move within 30 days, from the last pass over it
        self.outlook: dict[str, dict[str, int]] = {}
        self._looking: dict[str, int] = {}

    def interval(self) -> float:
        """Seconds between passes: a quarter of a debug day, so rules act within one."""
        day = self.cfg.debug_day_seconds
        return min(self.cfg.interval_seconds, max(day / 4, 0.05)) if day else self.cfg.interval_seconds

    def progress_json(self) -> Json:
        doc: dict[str, Any] = asdict(self.cur)
        doc["running"] = self.running
        return doc

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await run_periodically(self.run_pass, self.interval, log=log, what="lifecycle pass", wakeup=self.wakeup,
                               task_status=task_status)

    async def run_pass(self) -> None:
        cur = self.store.lifecycle_cursor()
        if not cur.pass_started_ns:
            cur = replace(cur, pass_started_ns=time.time_ns(), bucket="", phase="", after="")
        self.cur, self.running = cur, True
        try:
            await self.store.flush_access()  # the reads intelligent tiering decides on
            for bucket, rules in await trio.to_thread.run_sync(self.store.lifecycle_buckets):
                if cur.bucket and bucket.name < cur.bucket:
                    continue  # done earlier in this pass (before a restart)
                if bucket.name != cur.bucket:
                    cur.bucket, cur.phase, cur.after = bucket.name, "versions", ""
                try:
                    await self._bucket(bucket, rules, cur)
                except NoSuchBucket:
                    continue  # deleted meanwhile
            self.cur = cur = replace(cur, pass_started_ns=0, bucket="", phase="", after="",
                                     last_complete_ns=time.time_ns())
            await self.store.save_lifecycle_cursor(cur)
        finally:
            self.running = False

    async def _bucket(self, b: BucketRecord, rules: list[Rule], cur: LifecycleCursor) -> None:
        if cur.phase == "versions":
            self._looking = {"expire_bytes": 0, "transition_bytes": 0}
            while True:
                groups = await trio.to_thread.run_sync(self.store.version_groups, b.name, cur.after, BATCH)
                if not groups:
                    break
                pending: list[tuple[str, ObjectVersion]] = []
                for versions in groups:
                    await self._key(b, rules, versions, cur, pending)
                await self._expire(b, pending, cur)
                cur.after = groups[-1][0].key
                await self.store.save_lifecycle_cursor(cur)
            self.outlook[b.name] = self._looking
            cur.phase, cur.after = "uploads", ""
        if not any(r.enabled and r.abort_days is not None for r in rules):
            return
        while True:
            key, _, uid = cur.after.partition("\x00")
            ups = await trio.to_thread.run_sync(self.store.uploads_after, b.name, key, uid, BATCH)
            if not ups:
                break
            day, now = self.store.lifecycle_day, time.time_ns()
            for up in ups:
                if abort_due(rules, up.key, up.initiated_ns, day, now) is None:
                    continue
                await self.actions.take(1)
                try:
                    await self.store.abort_multipart(b.name, up.key, up.upload_id)
                    cur.aborted += 1
                except NoSuchUpload:
                    pass  # completed or aborted meanwhile
            cur.after = f"{ups[-1].key}\x00{ups[-1].upload_id}"
            await self.store.save_lifecycle_cursor(cur)

    async def _key(self, b: BucketRecord, rules: list[Rule], versions: list[ObjectVersion],
                   cur: LifecycleCursor, pending: list[tuple[str, ObjectVersion]]) -> None:
        """Apply the rules to one key's versions (newest first): transitions now, expirations
        into `pending` (committed together by _expire)."""
        day, now = self.store.lifecycle_day, time.time_ns()
        self._look_ahead(rules, versions, day, now + int(OUTLOOK_DAYS * day * 1e9))
        first = versions[0]
        if first.delete_marker:
            if len(versions) == 1 and removes_expired_marker(rules, first.key):
                pending.append(("marker", first))
        else:
            exp = current_expiration(rules, first.key, first.size, first.tags, first.last_modified_ns, day)
            if exp is not None and exp.at_ns <= now:
                pending.append(("current", first))
            else:
                move = current_transition(rules, first.key, first.size, first.tags, first.last_modified_ns, day, now)
                if move is not None and move.storage_class != first.storage_class:
                    await self._transition(first, move.storage_class, cur)
        for i, v in enumerate(versions[1:], start=1):
            # noncurrent since its successor was written; `i - 1` noncurrent versions are newer
            expire, move = noncurrent_actions(rules, v.key, v.size, v.tags, versions[i - 1].last_modified_ns, i - 1,
                                              day, now)
            if expire is not None:
                pending.append(("version", v))
            elif move is not None and not v.delete_marker and move.storage_class != v.storage_class:
                await self._transition(v, move.storage_class, cur)
        for v in versions:
            tier = self.store.tiering_move(v, now)
            if tier is not None:
                await self.bytes.take(max(v.size, 1))
                if await self.store.transition(v, tier.placement, label=v.storage_class,
                                               archive_tier=tier.archive_tier) is not None:
                    cur.tiered += 1

    def _look_ahead(self, rules: list[Rule], versions: list[ObjectVersion], day: float, then: int) -> None:
        """Count what the rules will have expired or moved by `then` (for `stowage usage`)."""
        first = versions[0]
        if not first.delete_marker:
            exp = current_expiration(rules, first.key, first.size, first.tags, first.last_modified_ns, day)
            move = current_transition(rules, first.key, first.size, first.tags, first.last_modified_ns, day, then)
            if exp is not None and exp.at_ns <= then:
                self._looking["expire_bytes"] += first.size
            elif move is not None and move.storage_class != first.storage_class:
                self._looking["transition_bytes"] += first.size
        for i, v in enumerate(versions[1:], start=1):
            expire, move = noncurrent_actions(rules, v.key, v.size, v.tags, versions[i - 1].last_modified_ns, i - 1,
                                              day, then)
            if expire is not None:
                self._looking["expire_bytes"] += v.size
            elif move is not None and move.storage_class != v.storage_class:
                self._looking["transition_bytes"] += v.size

    async def _expire(self, b: BucketRecord, pending: list[tuple[str, ObjectVersion]],
                      cur: LifecycleCursor) -> None:
        """The expirations of a batch of keys, in one commit per event kind: one journal write for
        all of them. Versions object lock protects are skipped (and counted): object lock wins, as
        on AWS. Their events are s3:LifecycleExpiration:DeleteMarkerCreated for a current version
        hidden behind a marker (a versioned bucket), :Delete for every removal."""
        if not pending:
            return
        await self.actions.take(len(pending))
        hidden = [p for p in pending if p[0] == "current" and b.versioning]
        removed = [p for p in pending if not (p[0] == "current" and b.versioning)]
        for items, event in ((hidden, "DeleteMarkerCreated"), (removed, "Delete")):
            if not items:
                continue
            with caused_by(Cause(event=f"LifecycleExpiration:{event}", principal=LIFECYCLE_PRINCIPAL)):
                done = await self.store.expire_many(items)
            cur.expired += done.expired
            cur.markers_removed += done.markers
            cur.locked += done.locked

    async def _transition(self, v: ObjectVersion, storage_class: str, cur: LifecycleCursor) -> None:
        await self.bytes.take(max(v.size, 1))
        with caused_by(Cause(event="LifecycleTransition", principal=LIFECYCLE_PRINCIPAL)):
            res = await self.store.transition(v, storage_class)
        if res is not None:
            cur.transitioned += 1
            cur.transitioned_bytes += res.moved_bytes
            log.debug("lifecycle: %s/%s %s -> %s", v.bucket, v.key, v.version_id, storage_class)


async def serve_lifecycle(store: ObjectStore, cfg: Config, worker: LifecycleWorker, *,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The worker as a daemon service (nothing to do when lifecycle.enabled is false)."""
    if not cfg.lifecycle.enabled:
        task_status.started()
        return
    await worker.serve(task_status=task_status)

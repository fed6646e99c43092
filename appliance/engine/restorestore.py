"""RestoreObject in the store: queueing a restore, the restore worker's copy and its expiry
(the rules and the read check are restore.py's)."""

from __future__ import annotations

import time

from . import events, keys, tiering, tieringconfig, transcode
from .errors import InvalidObjectState, NoSuchBucket, NoSuchKey, NoSuchVersion, RestoreAlreadyInProgress
from .lifecycle_rules import DAY, due_ns
from .records import ObjectVersion, RestoreRecord, SegmentRef
from .restore import is_archived, readable_refs, restore_of
from .storecore import StoreCore
from .transcode import TranscodeResult

HOT_CLASS = "STANDARD"  # where a restore copy is written


class RestoreStore(StoreCore):
    @property
    def restore_day(self) -> float:
        return self.cfg.lifecycle.debug_day_seconds or DAY

    def restore_state(self, v: ObjectVersion) -> RestoreRecord | None:
        return restore_of(self, v)

    def restore_statuses(self, bucket: str, versions: list[tuple[str, str, int]]) -> dict[int, RestoreRecord]:
        """The restores of the archived versions among (key, version id, seq) of a listing, by seq
        (blocking: a read per version)."""
        out: dict[int, RestoreRecord] = {}
        for key, version_id, seq in versions:
            rec = self.db.get_record(RestoreRecord, keys.restore(bucket, key, version_id))
            if rec is not None and rec.seq == seq:
                out[seq] = rec
        return out

    def readable_refs(self, v: ObjectVersion) -> list[SegmentRef]:
        """What a read of `v` reads; InvalidObjectState for an archived version not restored."""
        return readable_refs(self, v)

    async def request_restore(self, v: ObjectVersion, days: int, tier: str) -> bool:
        """Queue a restore of `v` (True), or extend a finished one's expiry (False).
        InvalidObjectState when `v` is not archived; RestoreAlreadyInProgress while one runs."""
        if not is_archived(v) and tieringconfig.tier_of(self, v) is None:
            raise InvalidObjectState("Restore is not allowed for the object's current storage class",
                                     storage_class=v.storage_class)
        now = time.time_ns()
        async with self.txn() as t:
            cur = t.version_at(v.bucket, v.key, v.version_id)
            if cur is None or cur.seq != v.seq:
                raise InvalidObjectState("The object changed while the restore was asked")
            k = keys.restore(v.bucket, v.key, v.version_id)
            rec = t.batch.get_record(RestoreRecord, k)
            if rec is not None and rec.seq == v.seq and rec.ongoing:
                raise RestoreAlreadyInProgress("Object restore is already in progress")
            if rec is not None and rec.seq == v.seq and rec.expiry_ns > now:
                rec.days, rec.expiry_ns = days, due_ns(now, days, self.restore_day)
                t.batch.put(k, rec)
                return False
            if rec is not None:  # an expired copy, or one of an earlier version with this id
                t.decref([SegmentRef(s[0], s[1], s[2]) for s in rec.copy])
            t.batch.put(k, RestoreRecord(v.bucket, v.key, v.version_id, v.seq, days, tier, now))
            t.changes.append(events.Change(events.IN_PLACE, cur))  # s3:ObjectRestore:Post (its cause)
        return True

    def restores(self) -> list[RestoreRecord]:
        """Every restore record, queued and finished (blocking scan)."""
        return [rec for _, rec in self.db.scan_records(RestoreRecord, keys.RESTORE)]

    async def complete_restore(self, rec: RestoreRecord) -> TranscodeResult | None:
        """Make the restore copy of a queued record and commit it (None: the version or the
        record changed meanwhile; the record is dropped if its version is gone)."""
        v = self._version_of(rec)
        if v is None:
            await self.drop_restore(rec)
            return None
        if tieringconfig.tier_of(self, v) is not None:
            # an intelligent-tiering archive tier: the data goes back to the frequent tier, and the
            # restore record with the tier record in the same commit (no temporary copy, no expiry)
            return await transcode.transition_version(self, v, tiering.CLASS, also=tieringconfig.leave_tier)
        refs, fresh = await transcode.refs_in_class(self, v.segments, HOT_CLASS)
        try:
            async with self.txn() as t:
                k = keys.restore(rec.bucket, rec.key, rec.version_id)
                now_rec = t.batch.get_record(RestoreRecord, k)
                if now_rec is None or now_rec.seq != rec.seq or not now_rec.ongoing:
                    raise _Stale()
                for s in fresh:
                    t.add_segment(s)
                t.incref(refs)
                now = time.time_ns()
                now_rec.ongoing, now_rec.completed_ns = False, now
                now_rec.expiry_ns = due_ns(now, now_rec.days, self.restore_day)
                now_rec.copy = [[r.segment_id, r.offset, r.length] for r in refs]
                now_rec.copied_bytes = sum(s.length for s in fresh)
                t.batch.put(k, now_rec)
                t.changes.append(events.Change(events.IN_PLACE, v))  # s3:ObjectRestore:Completed
        except BaseException as exc:
            for s in fresh:
                await self.discard_segment(s)
            if isinstance(exc, _Stale):
                return None
            raise
        return transcode.TranscodeResult(sum(s.length for s in fresh), len(fresh))

    async def drop_restore(self, rec: RestoreRecord) -> None:
        """Remove a record and release its copy (expired, or its version is gone)."""
        async with self.txn() as t:
            k = keys.restore(rec.bucket, rec.key, rec.version_id)
            cur = t.batch.get_record(RestoreRecord, k)
            if cur is None or cur.requested_ns != rec.requested_ns:
                return
            t.decref([SegmentRef(s[0], s[1], s[2]) for s in cur.copy])
            t.batch.delete(k)

    def _version_of(self, rec: RestoreRecord) -> ObjectVersion | None:
        try:
            v = self.head_object(rec.bucket, rec.key, rec.version_id)
        except (NoSuchBucket, NoSuchKey, NoSuchVersion):
            return None
        archived = is_archived(v) or tieringconfig.tier_of(self, v) is not None
        return v if v.seq == rec.seq and archived else None


class _Stale(Exception):
    """The restore record changed while its copy was written."""

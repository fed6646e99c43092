"""Site replication's change log: capturing local changes and applying a peer's.

Capture: `SiteLog.hook` runs on every metadata commit's writes (MetaDB.write_hooks), under the
commit order, before the commit's lsn is taken. For each replicated record the commit changes
it adds, to the same writes, the record's new stamp (hybrid logical clock, this site) and one
SiteChange per peer: the change and its queue entries commit together or not at all, are
journaled with it (recover-metadata brings them back) and survive kill -9.

Apply: `apply_change` (inside the receiving box's transaction) keeps the write with the larger
(hlc, site) pair: the last writer wins. A change whose writer had not seen this box's latest
write of the record (its `prev` stamp is older than ours) is concurrent: it is resolved the same
way and reported as a conflict. A batch that carries stamps is site replication's own (an apply
or a join's state transfer): the hook leaves it alone, so nothing is sent back.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.engine import keys, lock
from appliance.engine.journal import Writes
from appliance.engine.metadb import Batch, MetaDB
from appliance.engine.records import BucketRecord, SiteChange, SiteConflict, SiteStamp

from . import sitekeys
from .sitehlc import Hlc

STATE_TRANSFER = -1  # SiteChange.prev of a join's state transfer: not a write


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class SiteLog:
    db: MetaDB
    name: str  # this box's site name
    clock: Hlc
    peers: tuple[str, ...] = ()  # replaced whole (never mutated) by the service
    seq: int = 0  # of the last queued change
    on_queued: Callable[[], None] | None = None  # wakes the senders (called from any thread)
    # commits run the hook in worker threads under the DB's commit order, a join's state
    # transfer in the loop: both take queue positions
    _seq_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_seq(self) -> int:
        with self._seq_lock:
            self.seq += 1
            return self.seq

    def hook(self, writes: Writes) -> None:
        peers = self.peers
        if not peers:
            return
        changed = [k for k in writes if sitekeys.replicated(k)]
        if not changed or any(k.startswith(sitekeys.STAMP) for k in writes):
            return
        now = time.time_ns()
        for k in changed:
            value = writes[k] = versioned(k, writes[k])
            if value == self.db.get(k):
                continue  # rewritten unchanged (update_bucket, ...): nothing to tell
            prev_raw = self.db.get(sitekeys.stamp(k))
            prev = SiteStamp.decode(prev_raw).hlc if prev_raw else 0
            hlc = self.clock.after(prev)
            writes[sitekeys.stamp(k)] = SiteStamp(hlc, self.name).encode()
            change = SiteChange(b64(k), b64(value) if value is not None else None, hlc, self.name, prev, now).encode()
            for p in peers:
                writes[sitekeys.queued(p, self.next_seq())] = change
        if self.on_queued is not None:
            self.on_queued()

    def queue_state(self, batch: Batch, peer: str) -> int:
        """Queue every replicated record for a new peer (a join's state transfer), stamping
        those written before this box had peers. Returns how many were queued."""
        now, n = time.time_ns(), 0
        for prefix in sitekeys.SCAN_PREFIXES:
            for k, value in self.db.scan(prefix):
                if not sitekeys.replicated(k):
                    continue
                st = batch.get_record(SiteStamp, sitekeys.stamp(k))
                fixed = versioned(k, value) or value
                if st is None or fixed != value:
                    st = SiteStamp(self.clock.after(st.hlc if st else 0), self.name)
                    batch.put(sitekeys.stamp(k), st)
                if fixed != value:
                    batch.put(k, fixed)
                    value = fixed
                n += 1
                batch.put(sitekeys.queued(peer, self.next_seq()),
                          SiteChange(b64(k), b64(value), st.hlc, st.origin, STATE_TRANSFER, now))
        return n


def versioned(k: bytes, value: bytes | None) -> bytes | None:
    """A bucket that never had versioning gets it Enabled while this box is in a site (as MinIO's
    site replication does): objects replicate between boxes as versions."""
    if value is None or not k.startswith(keys.BUCKET):
        return value
    rec = BucketRecord.decode(value)
    if rec.versioning:
        return value
    rec.versioning = "Enabled"
    return rec.encode()


@dataclass
class Applied:
    applied: bool
    conflict: SiteConflict | None = None


def _bucket_holds_versions(db: MetaDB, name: str) -> bool:
    prefix = keys.version_bucket_prefix(name)
    with db.iterator(start=prefix, stop=keys.prefix_successor(prefix)) as it:
        return any(True for _ in it)


def apply_change(batch: Batch, ch: SiteChange, *, peer_root: str, local_root: str) -> Applied:
    """Apply one change of a peer to this box's batch, if it wins (see the module doc).
    ValueError: the change names a record site replication does not carry."""
    k = base64.b64decode(ch.key, validate=True)
    if not sitekeys.replicated(k):
        raise ValueError(f"site change of a record that is not replicated: {k[:40]!r}")
    value = base64.b64decode(ch.value, validate=True) if ch.value is not None else None
    if value is not None and k.startswith(keys.BUCKET):
        value = _local_owner(value, peer_root, local_root)
    cur = batch.get_record(SiteStamp, sitekeys.stamp(k))
    incoming = (ch.hlc, ch.origin)
    conflict = None
    if cur is not None:
        if (cur.hlc, cur.origin) == incoming:
            return Applied(False)  # delivered again
        seen = batch.get(k) == value if ch.prev == STATE_TRANSFER else cur.hlc <= ch.prev
        wins = incoming > (cur.hlc, cur.origin)
        if not seen:
            conflict = SiteConflict(k.decode(errors="replace"), cur.hlc, cur.origin, ch.hlc, ch.origin,
                                    ch.origin if wins else cur.origin, "concurrent writes", time.time_ns())
        if not wins:
            kept = _object_lock_kept(k, batch.get(k), value)
            if kept is not None:  # theirs brought object lock to a bucket ours lacks it on
                batch.put(k, kept)
                batch.put(sitekeys.stamp(k), cur)  # still our write: the stamp says so, and nothing is sent
            return Applied(False, conflict)
    if value is None and k.startswith(keys.BUCKET) and _bucket_holds_versions(batch.db, k[1:].decode()):
        return Applied(False, SiteConflict(k.decode(errors="replace"), cur.hlc if cur else 0,
                                           cur.origin if cur else "", ch.hlc, ch.origin, "",
                                           "bucket deleted on the peer holds objects here: kept", time.time_ns()))
    if value is None:
        batch.delete(k)
        if k.startswith(keys.BUCKET):  # what delete_bucket drops with it, kept per box
            name = k[1:].decode()
            batch.delete(keys.usage(name))
            batch.delete(keys.bucket_quota(name))
    else:
        batch.put(k, _object_lock_kept(k, value, batch.get(k)) or value)
    batch.put(sitekeys.stamp(k), SiteStamp(ch.hlc, ch.origin))
    return Applied(True, conflict)


def _object_lock_kept(k: bytes, kept: bytes | None, other: bytes | None) -> bytes | None:
    """For a bucket's key: `kept` (the record a conflict keeps) with the object lock of `other`
    (the one it replaces), when only `other` has it; None when nothing is to change. Object lock
    is never disabled (docs/object-lock.md), so losing it to a concurrent write or a join would
    turn a bucket's WORM promise off without a word: versioning could then be suspended and new
    versions get no default retention. Both boxes of a conflict keep it, whichever wins, so they
    end with the same record."""
    if kept is None or other is None or not k.startswith(keys.BUCKET):
        return None
    rec, theirs = BucketRecord.decode(kept), BucketRecord.decode(other)
    if lock.enabled(rec) or not lock.enabled(theirs):
        return None
    rec.object_lock, rec.versioning = theirs.object_lock, "Enabled"
    return rec.encode()


def _local_owner(value: bytes, peer_root: str, local_root: str) -> bytes:
    """A bucket the peer's root owns is this box's root's here (each box has its own root)."""
    rec = BucketRecord.decode(value)
    if peer_root and rec.owner == peer_root and local_root:
        rec.owner = local_root
        return rec.encode()
    return value

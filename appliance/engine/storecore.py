"""The core of the object-store facade: buckets, object versions, commits.

The public class is appliance.objectstore.ObjectStore (this plus multipart); contract in
docs/engine-api.md. Every mutation is: data first (segments written and sealed
on the data disks), then one LevelDB WriteBatch with sync=True under the commit lock. The
lock makes read-check-write sequences (conditional PUT, refcounts, latest pointer) atomic, so
concurrent writers to one key resolve last-commit-wins and exactly one conditional PUT wins.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import trio

from appliance.config import Config, ConfigError
from diskmgr.crashpoints import crash_point

from . import classes, entropy, events, keys, listing, lock, restore, shardident, tiering, transcode, usage
from .budget import ByteBudget
from .classes import Placement
from .codec import Geometry, auto_geometry
from .crypto import KeyResolver, SegmentKey
from .disks import DiskSet
from .errors import (
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    InvalidArgument,
    InvalidBucketState,
    MethodNotAllowed,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
    PreconditionFailed,
    StowageError,
    VersionExists,
)
from .journal import JournalTarget
from .metadb import Batch, MetaDB
from .names import check_bucket_name, check_key, check_new_key, cli_safe_token
from .records import (
    BucketRecord,
    GcEntry,
    HealEntry,
    InodeRecord,
    ObjectVersion,
    PartRecord,
    Record,
    SegmentRecord,
    SegmentRef,
)
from .refs import slice_refs
from .segments import BodySummary, SegmentIO

log = logging.getLogger("stowage.store")

Finalize = Callable[[BodySummary], "dict[str, str] | None"]
Listener = Callable[[str, str], None]
_DEFERRED: contextvars.ContextVar[bool] = contextvars.ContextVar("stowage_durability_deferred", default=False)

# Awaited by the committing task after the commit (FUSE: kernel cache invalidation must be done
# before an S3 write is acknowledged, so the mount shows it "at once").
CommitHook = Callable[[list[tuple[str, str]]], Awaitable[None]]
SMALL_OBJECT_BYTES = 64 * 1024
CONTENT_HEADERS = ("content-encoding", "content-disposition", "content-language", "cache-control", "expires")
SHARED_RECORDS = 4096  # decoded records kept for readers (_shared_record); all dropped when full
R = TypeVar("R", bound=Record)


Grants = list[dict[str, str]]  # an ACL: records.py describes a grant


def copy_grants(acl: Grants | None) -> Grants | None:
    return None if acl is None else [dict(g) for g in acl]


@dataclass
class PutMeta:
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    user_meta: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    # The POSIX attributes in user_meta come from the mount or from a principal allowed to set
    # them (ObjectVersion.posix_trusted). False unless the writer vouches for them.
    posix_trusted: bool = False
    owner: str = ""  # the new version's owner; "" = the bucket's owner
    acl: Grants | None = None  # its ACL; None = its owner FULL_CONTROL only
    # A write to the file whose hard link the key is (the mount's writes): it goes to every link
    # of this InodeRecord while the key is one of them. Never taken over by `of`: a copy, or any
    # S3 write, is a new file with one name.
    inode: str = ""
    # What the version reports of its server-side encryption (ObjectVersion.sse): the caller's,
    # who chose the keys its data is written with. `of` keeps it: a version sharing another's
    # segments shares their encryption.
    sse: dict[str, str] | None = None
    # Object lock of the new version (engine/lock.py): a retention mode ("" = the bucket's default
    # retention, if any) with its retain-until date, and a legal hold. Never taken over by `of`:
    # a copy gets the retention its request asks for, or its bucket's default, as on S3.
    lock_mode: str = ""
    retain_until_ns: int = 0
    legal_hold: bool = False

    @classmethod
    def of(cls, v: ObjectVersion) -> PutMeta:
        return cls(v.content_type, dict(v.headers), dict(v.user_meta), dict(v.tags), v.storage_class,
                   v.posix_trusted, v.owner, copy_grants(v.acl), sse=dict(v.sse) if v.sse else None)


@dataclass(frozen=True)
class Content:
    """What a version holds, shared by reference between versions (copies, renames, links)."""

    size: int
    etag: str
    segments: list[SegmentRef]
    checksums: dict[str, str] = field(default_factory=dict)
    checksum_type: str = ""
    parts: list[int] = field(default_factory=list)
    part_checksums: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, v: ObjectVersion) -> Content:
        return cls(v.size, v.etag, list(v.segments), dict(v.checksums), v.checksum_type, list(v.parts),
                   [dict(c) for c in v.part_checksums])


@dataclass(frozen=True)
class NewVersion:
    """A version about to be written, settled before its data is (StoreCore.new_version): its
    id, its meta with the object lock fixed, and the identity its segment's headers record
    (shardident.of_new_version; the writer adds the ETag and size)."""

    meta: PutMeta
    version_id: str
    identity: dict[str, Any]


@dataclass
class DeleteResult:
    version_id: str
    delete_marker: bool


@dataclass
class Capacity:
    raw_total: int
    raw_free: int
    usable_total: int
    usable_free: int


def whole_ref(seg: SegmentRecord | None) -> list[SegmentRef]:
    """The ref list of an object that is exactly one new segment (none for an empty body)."""
    return [SegmentRef(seg.segment_id, 0, seg.plain_length)] if seg is not None else []


def new_version_id() -> str:
    # 32 characters of base64url: the shape the gateway takes as a version id (s3gw/routing.py)
    return cli_safe_token(24)


def new_inode_id() -> str:
    return entropy.token_hex(12)


def unquote_etag(etag: str, *, strong: bool = False) -> str:
    """An ETag of a header, unquoted. `strong` (If-Match's comparison, RFC 9110 13.1.1): a weak
    tag keeps its W/ and so matches no stored ETag; If-None-Match compares weakly."""
    etag = etag.strip()
    if etag.startswith("W/"):
        if strong:
            return etag
        etag = etag[2:]
    return etag.strip('"')


class Txn:
    """One metadata transaction: a batch with read-your-writes and refcount bookkeeping."""

    def __init__(self, store: StoreCore) -> None:
        self.store = store
        self.batch: Batch = store.db.batch()
        self.refs: dict[str, int] = {}
        self.new_segments: dict[str, SegmentRecord] = {}
        self.changed: list[tuple[str, str]] = []
        # What this transaction did to versions, for the event hooks (events.py), and what they
        # want called once the commit is durable.
        self.changes: list[events.Change] = []
        self.on_durable: list[Callable[[], None]] = []
        # The caller may lift GOVERNANCE retention (its frontend checked the permission to).
        self.bypass_governance = False
        self.usage = usage.Deltas()  # versions and bytes added/removed per bucket and class

    def incref(self, refs: list[SegmentRef]) -> None:
        for r in refs:
            self.refs[r.segment_id] = self.refs.get(r.segment_id, 0) + 1

    def decref(self, refs: list[SegmentRef]) -> None:
        for r in refs:
            self.refs[r.segment_id] = self.refs.get(r.segment_id, 0) - 1

    def add_segment(self, rec: SegmentRecord) -> None:
        self.new_segments[rec.segment_id] = rec

    def version_at(self, bucket: str, key: str, version_id: str,
                   current: ObjectVersion | None = None) -> ObjectVersion | None:
        """`current`: the key's current version, already decoded, returned when it is the one
        asked for (the L record is its V record's copy: every writer keeps the two in step)."""
        raw = self.batch.get(keys.vid(bucket, key, version_id))
        if raw is None:
            return None
        seq = keys.unpack_seq(raw)
        if current is not None and current.seq == seq:
            return current
        return self.batch.get_record(ObjectVersion, keys.version(bucket, key, seq))

    def latest(self, bucket: str, key: str) -> ObjectVersion | None:
        return self.batch.get_record(ObjectVersion, keys.latest(bucket, key))

    def shared_bucket(self, bucket: str) -> BucketRecord | None:
        """The bucket as this transaction sees it, decoded once and shared while unchanged: read
        only (StoreCore.shared_bucket). A small PUT decoded it twice, a mount's close once more."""
        key = keys.bucket(bucket)
        raw = self.batch.get(key)
        return None if raw is None else self.store.shared_decode(BucketRecord, key, raw)

    def newest(self, bucket: str, key: str) -> ObjectVersion | None:
        """Newest version of a key, delete markers included."""
        items = self.batch.scan(keys.version_key_prefix(bucket, key))
        return ObjectVersion.decode(items[0][1]) if items else None

    # --- hard links: InodeRecord.links and each link's `inode` are kept in step here -----------

    def inode(self, bucket: str, inode_id: str) -> InodeRecord | None:
        return self.batch.get_record(InodeRecord, keys.inode(bucket, inode_id)) if inode_id else None

    def linked(self, v: ObjectVersion | None) -> InodeRecord | None:
        """The inode whose hard link v's key is (None: a file with one name)."""
        if v is None or not v.inode:
            return None
        rec = self.inode(v.bucket, v.inode)
        return rec if rec is not None and v.key in rec.links else None

    def _leave(self, bucket: str, key: str, inode_id: str) -> None:
        rec = self.inode(bucket, inode_id)
        if rec is None or key not in rec.links:
            return
        rec.links.remove(key)
        if rec.links:
            self.batch.put(keys.inode(bucket, inode_id), rec)
        else:
            self.batch.delete(keys.inode(bucket, inode_id))

    def _join(self, v: ObjectVersion) -> None:
        rec = self.inode(v.bucket, v.inode)
        if rec is None:
            v.inode = ""
        elif v.key not in rec.links:
            rec.links.append(v.key)
            self.batch.put(keys.inode(v.bucket, v.inode), rec)

    def put_version(self, v: ObjectVersion) -> ObjectVersion:
        """Add a version (the newest); a "null" version replaces the previous null version. A
        version whose `inode` names an InodeRecord makes its key one of that file's links; any
        other write to a link (an S3 PUT, copy or delete marker) takes the key out of it."""
        latest = self.latest(v.bucket, v.key)
        if v.version_id != "null" and v.version_id == events.replica_version_id() \
                and self.version_at(v.bucket, v.key, v.version_id, current=latest) is not None:
            # A replica keeps its source's id; two copies of it (a retry racing the first, which
            # the gateway's check before the body cannot see) would point the id at the newer
            # and orphan the older, object lock or not. Our own ids are random: never checked.
            raise VersionExists("This version exists on the destination already.", bucket=v.bucket,
                                key=v.key, version_id=v.version_id)
        cur = self.linked(latest)
        if cur is not None and cur.inode_id != v.inode:
            self._leave(v.bucket, v.key, cur.inode_id)
        if v.inode:
            self._join(v)
        if v.version_id == "null":
            # an unversioned overwrite: the null version is the current one, decoded already
            old = self.version_at(v.bucket, v.key, "null", current=latest)
            if old is not None:
                self._drop(old)
        v.seq = self.store.next_seq()
        self.batch.put(keys.version(v.bucket, v.key, v.seq), v)
        self.batch.put(keys.vid(v.bucket, v.key, v.version_id), keys.pack_seq(v.seq))
        if v.delete_marker:
            self.batch.delete(keys.latest(v.bucket, v.key))
        else:
            self.batch.put(keys.latest(v.bucket, v.key), v)
        self.incref(v.segments)
        self.usage.add(v, 1)
        self.changed.append((v.bucket, v.key))
        self.changes.append(events.Change(events.PUT, v))
        return v

    def _drop(self, v: ObjectVersion) -> None:
        # The I key (version id -> seq) stays for a while: a client paging ListObjectVersions
        # while it deletes what it saw (rclone cleanup-hidden) passes the id of a version that
        # is already gone as NextVersionIdMarker, and the next page must start right after it.
        # Lookups by id find no V record behind it, so the version is gone for everything else;
        # the GC drops the I key after VID_MARKER_SECONDS.
        # Object lock: every removal and in-place replacement of a version passes here.
        lock.check_removable(v, time.time_ns(), bypass_governance=self.bypass_governance)
        self.batch.delete(keys.version(v.bucket, v.key, v.seq))
        self.batch.delete(keys.archive_tier(v.bucket, v.key, v.version_id))  # an intelligent-tiering archive tier
        self.batch.put(keys.vid_expiry(time.time_ns(), v.bucket, v.key, v.version_id), b"")
        self.decref(v.segments)
        self.usage.add(v, -1)

    def remove_version(self, v: ObjectVersion) -> None:
        """Permanently remove one version; the next newer one becomes latest (and a key whose
        current version goes is no longer a hard link)."""
        cur = self.latest(v.bucket, v.key)
        if cur is not None and cur.seq == v.seq and v.inode:
            self._leave(v.bucket, v.key, v.inode)
        self._drop(v)
        newest = self.newest(v.bucket, v.key)
        if newest is None or newest.delete_marker:
            self.batch.delete(keys.latest(v.bucket, v.key))
        else:
            self.batch.put(keys.latest(v.bucket, v.key), newest)
        self.changed.append((v.bucket, v.key))
        self.changes.append(events.Change(events.REMOVE, v))

    def finish(self) -> None:
        """Fold refcount changes into segment records; queue unreferenced ones for GC. Usage
        counters first: a quota overrun (QuotaExceeded) refuses the commit."""
        usage.apply(self)
        now = time.time_ns()
        for seg_id, rec in self.new_segments.items():
            # its references folded in here, on a copy (the caller's record stays as it gave
            # it: a retried commit adds it again), rather than written, read back and decoded
            delta = self.refs.get(seg_id, 0)
            if delta:
                rec = replace(rec, refcount=max(0, rec.refcount + delta))
            self.batch.put(keys.segment(seg_id), rec)
            if rec.damaged:  # written degraded: queue it for the healer in the same commit
                self.batch.put(keys.heal(seg_id), HealEntry(seg_id, now, list(rec.damaged), "written degraded"))
            if rec.refcount == 0:
                self.batch.put(keys.gc(now, seg_id), GcEntry(seg_id, now))
        for seg_id, delta in self.refs.items():
            if delta == 0 or seg_id in self.new_segments:
                continue
            found = self.batch.get_record(SegmentRecord, keys.segment(seg_id))
            if found is None:
                if delta > 0:
                    raise NoSuchKey("a segment of the source object no longer exists", segment=seg_id)
                continue
            rec = found
            was = rec.refcount
            rec.refcount = max(0, rec.refcount + delta)
            self.batch.put(keys.segment(seg_id), rec)
            if rec.refcount == 0 and was > 0:
                self.batch.put(keys.gc(now, seg_id), GcEntry(seg_id, now))
        self.batch.put(keys.appliance("seq"), keys.pack_seq(self.store.last_seq))


class StoreCore:
    def __init__(self, cfg: Config, db: MetaDB, disks: DiskSet, *, journal: bool = True) -> None:
        """`journal`: open the metadata journal on the data disks (blocking: it reads the
        journal's newest files; see journal.py). Off only to measure what it costs."""
        self.cfg = cfg
        self.db = db
        self.disks = disks
        self.lock = trio.Lock()
        self.listeners: list[Listener] = []
        self.commit_hooks: list[CommitHook] = []
        self.txn_hooks: list[events.TxnHook] = []
        self.undurable_lsn = 0  # the newest commit made under durability_deferred()
        self.durable_lsn = 0  # every commit up to this one is durable (as far as make_durable knows)
        # on_durable callbacks of deferred commits, with their lsn: run by make_durable
        self._awaiting_durable: list[tuple[int, Callable[[], None]]] = []
        raw = db.get(keys.appliance("seq"))
        self.last_seq = keys.unpack_seq(raw) if raw else 0
        self.seg = SegmentIO(disks, db.appliance_id, self._record_damage)
        self.seg.stall_seconds = cfg.stall.seconds
        self.seg.pack_bytes = cfg.volumes.pack_bytes
        self.seg.volume_bytes = cfg.volumes.volume_bytes
        self.seg.write_budget = ByteBudget(cfg.memory.write_buffer_bytes)
        self.seg.read_budget = ByteBudget(cfg.memory.read_buffer_bytes)
        self.geometries: dict[str, Geometry] = {}
        self.access = tiering.AccessLog()  # reads of INTELLIGENT_TIERING versions, flushed in batches
        # segment id -> reads in progress that took its record: a moved shard's old file stays
        # until they are done (repair.SegmentRepair.move's `linger`)
        self.open_reads: collections.Counter[str] = collections.Counter()
        # segments a reader still needs whole, past a replace or delete (a GET streaming to a slow
        # client, a file open in the mount after an unlink): the collector leaves them be
        self.pins: collections.Counter[str] = collections.Counter()
        # records decoded once and shared by readers until they change (shared_bucket, read_refs)
        self._shared: dict[bytes, tuple[bytes, Any]] = {}
        self.configure_pools()
        if journal:
            db.open_journal(self.journal_targets(), self.journal_quorum())
            raw = db.get(keys.appliance("seq"))  # the journal may have brought newer commits
            self.last_seq = max(self.last_seq, keys.unpack_seq(raw) if raw else 0)

    def journal_targets(self) -> list[JournalTarget]:
        """The disks the metadata journal is written to: every data disk that takes writes."""
        return [JournalTarget(d.disk_id, d.path) for d in self.disks
                if d.role == "data" and d.writable and d.is_initialised()]

    def journal_quorum(self) -> int:
        """Disks a commit must be durable on: one more than the disk losses the data survives."""
        return max((g.m for g in self.geometries.values()), default=0) + 1

    # --- lifecycle ----------------------------------------------------------------------------

    def configure_pools(self) -> None:
        """Resolve each pool's geometry; refuse one its disks cannot hold."""
        for pool in self.disks.pools() or ["default"]:
            pc = self.cfg.pools.get(pool)
            if pc is None:
                raise ConfigError(f"disks reference unknown pool {pool!r}")
            n = len(self.disks.pool(pool))
            k, m = (pc.k, pc.m) if pc.k else auto_geometry(n)
            if n and k + m > n:
                raise ConfigError(
                    f"pools.{pool}: geometry {k}+{m} needs {k + m} disks, the pool has {n}"
                )
            self.geometries[pool] = Geometry(k, m, pc.block_size)

    def placement(self, storage_class: str) -> Placement:
        """The pool and geometry new data of a storage class gets (engine/classes.py);
        InvalidStorageClass for a class neither AWS nor the config names."""
        pools = self.disks.pools() or ["default"]
        return classes.resolve(self.cfg, storage_class, {p: len(self.disks.pool(p)) for p in pools},
                               {p: self.geometry(p) for p in pools})

    def pool_for(self, storage_class: str) -> str:
        """The pool a storage class is stored in."""
        return self.placement(storage_class).pool

    def geometry_for(self, pool: str, size_hint: int | None, geo: Geometry | None = None) -> Geometry:
        """The geometry a new segment is written with (`geo`, else the pool's). Small bodies (size
        known and at most SMALL_OBJECT_BYTES) are replicated, k=1 with the same m: the same number
        of lost disks is survived, but a PUT writes m+1 durable files instead of k+m, and each
        costs about one fsync (~1 ms here) whatever its size. The extra space is negligible at
        that size.
        """
        geo = geo or self.geometry(pool)
        if size_hint is not None and size_hint <= SMALL_OBJECT_BYTES and geo.m > 0:
            return Geometry(1, geo.m, geo.block_size)
        return geo

    def geometry(self, pool: str = "default") -> Geometry:
        return self.geometries.get(pool) or Geometry(*auto_geometry(len(self.disks.pool(pool))), 1 << 20)

    def next_seq(self) -> int:
        self.last_seq = max(time.time_ns(), self.last_seq + 1)
        return self.last_seq

    def add_listener(self, cb: Listener) -> None:
        self.listeners.append(cb)

    def add_commit_hook(self, hook: CommitHook) -> None:
        self.commit_hooks.append(hook)

    def add_txn_hook(self, hook: events.TxnHook) -> None:
        """`hook(txn)` runs in every transaction that changed versions, under the commit lock,
        before its batch is written: what it adds to the batch commits with it (events.py)."""
        self.txn_hooks.append(hook)

    async def _run_commit_hooks(self, changed: list[tuple[str, str]]) -> None:
        for hook in self.commit_hooks:
            try:
                await hook(list(dict.fromkeys(changed)))
            except Exception:
                log.exception("commit hook failed")

    def _notify(self, changed: list[tuple[str, str]]) -> None:
        for bucket, key in dict.fromkeys(changed):
            for cb in self.listeners:
                try:
                    cb(bucket, key)
                except Exception:
                    log.exception("listener failed for %s/%s", bucket, key)

    @contextlib.asynccontextmanager
    async def txn(self, *, staged: bool = False) -> AsyncIterator[Txn]:
        """Lock, build, write, release the lock, wait until durable, then notify listeners.
        The lock covers the LevelDB write (so the next transaction reads this one's writes);
        waiting for the journal's fsyncs outside it lets concurrent commits share them. Inside
        `durability_deferred()` the wait is left to a later `make_durable()`.

        `staged`: the transaction reads only through its Batch (Batch.get and Batch.scan, which
        see staged commits: MetaDB.stage), so the lock covers staging its commit, not writing
        it: a worker-thread hop per commit under the lock bounded small PUTs to one commit per
        hop (~5 ms on a busy machine). Its LevelDB write is made, grouped with others, by the
        thread call that waits for durability; it returns only once written, like any commit.
        Every other transaction, which may scan LevelDB directly, first has the staged commits
        written."""
        # A free lock is taken without yielding: trio's `acquire` yields once while already
        # holding it, so every commit held the lock for a whole turn of a busy loop and 16
        # concurrent PUTs queued behind each other (~3-5 ms each under load). A staged commit
        # builds and stages without awaiting, so it now holds the lock for microseconds.
        try:
            self.lock.acquire_nowait()
        except trio.WouldBlock:
            await self.lock.acquire()
        try:
            if not staged and self.db.has_staged:
                await self.db.flushed(self.db.lsn)
            t = Txn(self)
            yield t
            if t.changes:
                for hook in self.txn_hooks:
                    hook(t)
            t.finish()
            if staged:
                lsn = self.db.stage(t.batch.writes)
            else:
                with trio.CancelScope(shield=True):
                    lsn = await self.db.apply(t.batch)
        finally:
            self.lock.release()
        if not lsn:
            await trio.lowlevel.checkpoint()  # nothing to wait for below: still a checkpoint
        if staged and _DEFERRED.get():
            with trio.CancelScope(shield=True):
                await self.db.flushed(lsn)  # visible to every reader before it returns
        if _DEFERRED.get():
            # notifications and replication act only on durable versions: theirs wait too
            self.undurable_lsn = max(self.undurable_lsn, lsn)
            self._awaiting_durable += [(lsn, cb) for cb in t.on_durable]
        else:
            with trio.CancelScope(shield=True):
                await self.db.durable(lsn)
            for cb in t.on_durable:
                cb()
        self._notify(t.changed)
        if self.commit_hooks and t.changed:
            await self._run_commit_hooks(t.changed)

    @staticmethod
    @contextlib.contextmanager
    def durability_deferred() -> Iterator[None]:
        """Commits made inside (by this task) return once written and visible, without waiting
        until they are durable: the mount's close(2), whose durability follows at fsync(2) or
        within mount.durability_seconds (fusefs/SEMANTICS.md). Only the metadata commit waits
        less: the data it points at was made durable before it, so a power cut can lose such a
        version whole, never leave it torn."""
        token = _DEFERRED.set(True)
        try:
            yield
        finally:
            _DEFERRED.reset(token)

    async def make_durable(self) -> None:
        """Every commit made so far durable, deferred ones included (one shared sync)."""
        lsn = self.db.lsn
        with trio.CancelScope(shield=True):
            await self.db.durable(lsn)
        self.durable_lsn = max(self.durable_lsn, lsn)
        due = [cb for at, cb in self._awaiting_durable if at <= lsn]
        self._awaiting_durable = [(at, cb) for at, cb in self._awaiting_durable if at > lsn]
        for cb in due:
            cb()

    @property
    def has_undurable(self) -> bool:
        """A deferred commit may not be durable yet."""
        return self.undurable_lsn > self.durable_lsn

    def _record_damage(self, segment_id: str, shards: list[int], reason: str) -> None:
        raw = self.db.get(keys.heal(segment_id))
        entry = HealEntry.decode(raw) if raw else HealEntry(segment_id, time.time_ns(), [], reason)
        entry.shards = sorted(set(entry.shards) | set(shards))
        self.db.put_hint(keys.heal(segment_id), entry)
        log.warning("segment %s: damaged shards %s (%s)", segment_id, shards, reason)

    # --- buckets ------------------------------------------------------------------------------

    async def create_bucket(self, name: str, owner: str = "", *, acl: Grants | None = None, ownership: str = "",
                            public_access_block: dict[str, bool] | None = None,
                            encryption: dict[str, Any] | None = None, object_lock: bool = False) -> BucketRecord:
        """A new bucket, its access-control settings committed with it (a bucket must never exist,
        even for a moment, without the public access block it was created with), and its default
        encryption (BucketRecord.encryption). With `object_lock`, a versioned bucket with object
        lock enabled (and no default retention)."""
        check_bucket_name(name)
        async with self.txn() as t:
            if t.batch.get(keys.bucket(name)) is not None:
                raise BucketAlreadyOwnedByYou(bucket=name)
            rec = BucketRecord(name, time.time_ns(), owner=owner, acl=copy_grants(acl), ownership=ownership,
                               public_access_block=dict(public_access_block) if public_access_block else None,
                               encryption=dict(encryption) if encryption else None)
            if object_lock:
                rec.versioning, rec.object_lock = "Enabled", lock.LockConfig().to_record()
            t.batch.put(keys.bucket(name), rec)
        return rec

    def get_bucket(self, name: str) -> BucketRecord:
        rec = self.db.get_record(BucketRecord, keys.bucket(name))
        if rec is None:
            raise NoSuchBucket(bucket=name)
        return rec

    def shared_bucket(self, name: str) -> BucketRecord:
        """The bucket's record as committed, shared by every caller until it changes: callers
        must not modify it (get_bucket gives a record of one's own). The access check reads the
        bucket on every request."""
        rec = self._shared_record(BucketRecord, keys.bucket(name))
        if rec is None:
            raise NoSuchBucket(bucket=name)
        return rec

    def _shared_record(self, cls: type[R], key: bytes) -> R | None:
        """cls.decode of the key's value, reused while the value stays the same (compared whole,
        so a change is never missed): decoding was ~7% of a 4 KiB GET's loop time."""
        raw = self.db.get(key)
        return None if raw is None else self.shared_decode(cls, key, raw)

    def shared_decode(self, cls: type[R], key: bytes, raw: bytes) -> R:
        """cls.decode(raw) of `key`'s value, shared with every caller while the value stays
        `raw`: read only (a change goes through a record of one's own)."""
        hit = self._shared.get(key)
        if hit is not None and hit[0] == raw and type(hit[1]) is cls:
            return hit[1]
        rec = cls.decode(raw)
        if len(self._shared) >= SHARED_RECORDS:
            self._shared.clear()
        self._shared[key] = (raw, rec)
        return rec

    def shared_latest(self, bucket: str, key: str) -> ObjectVersion | None:
        """The key's current version (None: none, or a delete marker), decoded once and shared
        while unchanged: read only (head_object gives one of one's own). NoSuchBucket. The
        mount's attribute requests read a file's and its directory's on every create."""
        self.require_bucket(bucket)
        return self._shared_record(ObjectVersion, keys.latest(bucket, key))

    def require_bucket(self, name: str) -> None:
        """NoSuchBucket unless the bucket exists: get_bucket without decoding its record (a
        GET or HEAD checks this on every request; the decode was ~2% of a 4 KiB GET's loop time)."""
        if self.db.get(keys.bucket(name)) is None:
            raise NoSuchBucket(bucket=name)

    def list_buckets(self) -> list[BucketRecord]:
        return [rec for _, rec in self.db.scan_records(BucketRecord, keys.BUCKET)]

    async def delete_bucket(self, name: str) -> None:
        async with self.txn() as t:
            if t.batch.get(keys.bucket(name)) is None:
                raise NoSuchBucket(bucket=name)
            prefix = keys.version_bucket_prefix(name)
            with self.db.iterator(start=prefix, stop=keys.prefix_successor(prefix)) as it:
                for _ in it:
                    raise BucketNotEmpty(bucket=name)
            # unfinished uploads do not keep a general purpose bucket (AWS, RGW): they go with it
            for k, _ in t.batch.scan(keys.upload_bucket_prefix(name)):
                key, upload_id = keys.split_upload(k, name)
                self._drop_upload_in(t, name, key, upload_id)
            for k, _ in t.batch.scan(keys.inode_prefix(name)):  # none should be left: no key links them
                t.batch.delete(k)
            t.batch.delete(keys.cors(name))  # its CORS rules go with it (bucketcors.py)
            for k, _ in t.batch.scan(keys.tiering_config_prefix(name)):  # and its tiering configurations
                t.batch.delete(k)
            for k in (keys.lifecycle(name), keys.usage(name), keys.bucket_quota(name)):
                t.batch.delete(k)  # a bucket made again under the name starts without them
            t.batch.delete(keys.bucket(name))

    def _drop_upload_in(self, t: Txn, bucket: str, key: str, upload_id: str) -> list[PartRecord]:
        """An upload and its parts leave the metadata; their segments go to the collector."""
        parts = [PartRecord.decode(v) for _, v in t.batch.scan(keys.part_prefix(upload_id))]
        for p in parts:
            t.decref(p.segments)
            t.batch.delete(keys.part(upload_id, p.part_number))
        t.batch.delete(keys.upload(bucket, key, upload_id))
        return parts

    async def set_versioning(self, name: str, status: str,
                             suspendable: Callable[[Txn], str] | None = None) -> BucketRecord:
        """`suspendable(t)`: why versioning must stay Enabled, from settings the engine does not
        know (replication, site replication), read in the same transaction; "" when it may change."""
        if status not in ("Enabled", "Suspended"):
            raise InvalidArgument(f"versioning status must be Enabled or Suspended, not {status!r}")
        async with self.txn() as t:
            rec = t.batch.get_record(BucketRecord, keys.bucket(name))
            if rec is None:
                raise NoSuchBucket(bucket=name)
            if status != "Enabled" and lock.enabled(rec):
                raise InvalidBucketState("An Object Lock configuration is present on this bucket, so the "
                                         "versioning state cannot be changed.", bucket=name)
            reason = suspendable(t) if status != "Enabled" and suspendable is not None else ""
            if reason:
                raise InvalidBucketState(reason, bucket=name)
            rec.versioning = status
            t.batch.put(keys.bucket(name), rec)
        return rec

    async def update_bucket(self, name: str, change: Callable[[BucketRecord], None]) -> BucketRecord:
        """Change a bucket's settings (policy, ACL, ...) in one transaction: `change` edits the
        record as committed so far, so concurrent changes to different settings all land."""
        async with self.txn() as t:
            rec = t.batch.get_record(BucketRecord, keys.bucket(name))
            if rec is None:
                raise NoSuchBucket(bucket=name)
            change(rec)
            t.batch.put(keys.bucket(name), rec)
        return rec

    async def put_bucket_record(self, rec: BucketRecord) -> None:
        """Store bucket-level settings (tags, ...) changed by a frontend."""
        async with self.txn() as t:
            if t.batch.get(keys.bucket(rec.name)) is None:
                raise NoSuchBucket(bucket=rec.name)
            t.batch.put(keys.bucket(rec.name), rec)

    # --- objects: write -----------------------------------------------------------------------

    def _version_id_for(self, bucket: BucketRecord) -> str:
        """A new version's id; a replica keeps its source's (events.caused_by, authorized by the frontend)."""
        return events.replica_version_id() or (new_version_id() if bucket.versioning == "Enabled" else "null")

    def new_version(self, b: BucketRecord | str, key: str, meta: PutMeta) -> NewVersion:
        """The version a write of `key` makes, settled before its data is stored so that its
        segment's headers name it (a PUT, the mount's commits): its id and object lock."""
        b = self.shared_bucket(b) if isinstance(b, str) else b
        meta = self._lock_fixed(b, meta)
        version_id = self._version_id_for(b)
        return NewVersion(meta, version_id, shardident.of_new_version(
            b, key, version_id, meta.storage_class, meta.lock_mode, meta.retain_until_ns, meta.legal_hold))

    def _check_write(self, get: Callable[[bytes], bytes | None], bucket: str, key: str, long_key: bool,
                     if_match: str | None, if_none_match: str | None) -> None:
        """check_new_key and _check_conditions against the key's current version as `get` (a
        Batch's or the DB's) reads it, decoded only when a condition needs its ETag: a small
        overwrite decoded it twice for nothing (~2% of its event-loop time)."""
        raw = get(keys.latest(bucket, key))
        check_new_key(key, raw is not None, long_key)
        if if_match is not None or if_none_match is not None:
            self._check_conditions(None if raw is None else ObjectVersion.decode(raw), if_match, if_none_match)

    @staticmethod
    def _check_conditions(current: ObjectVersion | None, if_match: str | None, if_none_match: str | None) -> None:
        """A conditional write, evaluated as HTTP does (RFC 9110): If-None-Match fails when a
        current version exists and the header is "*" or lists its ETag (AWS takes only "*";
        Ceph and MinIO take ETags too), If-Match fails when none exists (NoSuchKey, as AWS
        answers) or the header lists neither "*" nor its ETag."""
        if if_none_match is not None and current is not None:
            unwanted = [unquote_etag(e) for e in if_none_match.split(",")]
            if "*" in unwanted or current.etag in unwanted:
                raise PreconditionFailed(condition="If-None-Match")
        if if_match is not None:
            if current is None:
                raise NoSuchKey(condition="If-Match")
            wanted = [unquote_etag(e, strong=True) for e in if_match.split(",")]
            if "*" not in wanted and current.etag not in wanted:
                raise PreconditionFailed(condition="If-Match")

    def _new_version(self, bucket: BucketRecord, key: str, meta: PutMeta, size: int, etag: str,
                     segments: list[SegmentRef], version_id: str | None = None) -> ObjectVersion:
        now = time.time_ns()
        mode, until, hold = lock.resolve(bucket, meta.lock_mode, meta.retain_until_ns, meta.legal_hold, now)
        return ObjectVersion(
            bucket=bucket.name, key=key, version_id=version_id or self._version_id_for(bucket), seq=0,
            last_modified_ns=now, size=size, etag=etag, content_type=meta.content_type,
            headers={k: v for k, v in meta.headers.items() if k in CONTENT_HEADERS},
            user_meta=dict(meta.user_meta), tags=dict(meta.tags), storage_class=meta.storage_class,
            segments=segments, owner=meta.owner or bucket.owner, acl=copy_grants(meta.acl),
            posix_trusted=meta.posix_trusted, sse=dict(meta.sse) if meta.sse else None,
            lock_mode=mode, retain_until_ns=until, legal_hold=hold,
        )

    @staticmethod
    def _lock_fixed(bucket: BucketRecord, meta: PutMeta) -> PutMeta:
        """meta with its version's lock settled now (the bucket's default retention counted from
        the start of the write), so the shard headers can record it."""
        mode, until, hold = lock.resolve(bucket, meta.lock_mode, meta.retain_until_ns, meta.legal_hold,
                                         time.time_ns())
        if (mode, until, hold) == (meta.lock_mode, meta.retain_until_ns, meta.legal_hold):
            return meta  # nothing to settle (no lock): a copy made by replace() costs ~3 us per PUT
        return replace(meta, lock_mode=mode, retain_until_ns=until, legal_hold=hold)

    async def write_body(
        self, body: bytes | AsyncIterable[bytes | bytearray], identity: dict[str, Any], pool: str = "default",
        size_hint: int | None = None, encrypt_with: SegmentKey | None = None, *, geometry: Geometry | None = None,
        named: Callable[[], dict[str, Any]] | None = None,
    ) -> tuple[SegmentRecord | None, BodySummary]:
        """Store a body as a new, not yet committed segment (encrypted with `encrypt_with`).
        `size_hint`: the body's length when known up front (bytes bodies are measured here);
        `geometry`: a storage class's (placement()), else the pool's; `named`: SegmentIO.write's."""
        if isinstance(body, bytes | bytearray | memoryview):
            size_hint = len(body)
        geo = self.geometry_for(pool, size_hint, geometry)
        return await self.seg.write(body, geo, self.disks.pool(pool), identity, encrypt_with, size_hint, named=named)

    async def discard_segment(self, rec: SegmentRecord | None) -> None:
        if rec is not None:
            with trio.CancelScope(shield=True):
                await self.seg.delete(rec)

    async def put_object(
        self,
        bucket: str,
        key: str,
        body: bytes | AsyncIterable[bytes | bytearray],
        meta: PutMeta | None = None,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        finalize: Finalize | None = None,
        size_hint: int | None = None,
        encrypt_with: SegmentKey | None = None,
        long_key: bool = False,
    ) -> ObjectVersion:
        """`long_key`: the key may be longer than S3 allows a new key to be (the mount's)."""
        check_key(key)
        b = self.shared_bucket(bucket)  # read only: its versioning and lock settings
        new = self.new_version(b, key, meta or PutMeta())
        meta, version_id = new.meta, new.version_id
        # Fail fast before storing data; the authoritative check is repeated at commit.
        self._check_write(self.db.get, bucket, key, long_key, if_match, if_none_match)
        place = self.placement(meta.storage_class)
        seg, summary = await self.write_body(body, new.identity, place.pool, size_hint, encrypt_with,
                                             geometry=place.geometry)
        try:
            crash_point("write.data_stored")
            checksums = finalize(summary) if finalize else None
            v = self._new_version(b, key, meta, summary.size, summary.etag, whole_ref(seg), version_id)
            if checksums:
                v.checksums = dict(checksums)
                v.checksum_type = "FULL_OBJECT"
            async with self.txn(staged=True) as t:
                self._require_bucket_in(t, bucket)
                self._check_write(t.batch.get, bucket, key, long_key, if_match, if_none_match)
                if seg is not None:
                    t.add_segment(seg)
                t.put_version(v)
        except BaseException:
            await self.discard_segment(seg)
            raise
        crash_point("write.committed")
        return v

    def _bucket_in(self, t: Txn, bucket: str) -> BucketRecord:
        b = t.batch.get_record(BucketRecord, keys.bucket(bucket))
        if b is None:
            raise NoSuchBucket(bucket=bucket)
        return b

    def _require_bucket_in(self, t: Txn, bucket: str) -> None:
        """NoSuchBucket unless the bucket exists as the transaction sees it (no decode)."""
        if t.batch.get(keys.bucket(bucket)) is None:
            raise NoSuchBucket(bucket=bucket)

    @staticmethod
    def _shared_bucket_in(t: Txn, bucket: str) -> BucketRecord:
        """Txn.shared_bucket, NoSuchBucket if there is none."""
        b = t.shared_bucket(bucket)
        if b is None:
            raise NoSuchBucket(bucket=bucket)
        return b

    async def put_object_segments(
        self,
        bucket: str,
        key: str,
        segments: list[SegmentRef],
        size: int,
        etag: str,
        meta: PutMeta | None = None,
        *,
        release_staged: list[str] | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
        checksums: dict[str, str] | None = None,
        long_key: bool = False,
        new_segments: list[SegmentRecord] | None = None,
        copy_of: ObjectVersion | None = None,
        version_id: str | None = None,
    ) -> ObjectVersion:
        """Commit a version made of existing segment ranges (copy, FUSE close), and of
        `new_segments` written for it. With meta.inode, every hard link of that file gets it
        (see put_file_in). `copy_of`: the version whose bytes these are, in its parts (a copy
        by reference keeps its "-N" ETag, so it keeps the parts and their checksums too;
        `checksums`, when given, replace the object's). `version_id`: the one `key`'s new version
        gets, chosen before its data was written (whose headers name it); else a new one."""
        check_key(key)
        if copy_of is not None:
            src = Content.of(copy_of)
            content = replace(src, segments=list(segments)) if checksums is None else \
                replace(src, segments=list(segments), checksums=dict(checksums), checksum_type="FULL_OBJECT",
                        part_checksums=[])
        else:
            content = Content(size, etag, list(segments), dict(checksums or {}), "FULL_OBJECT" if checksums else "")
        async with self.txn() as t:
            for seg in new_segments or []:
                t.add_segment(seg)
            b = self._shared_bucket_in(t, bucket)  # read only: put_file_in takes its name, owner, lock
            self._check_write(t.batch.get, bucket, key, long_key, if_match, if_none_match)
            v = self.put_file_in(t, b, key, meta or PutMeta(), content, version_id)
            self._release_staged_in(t, release_staged or [])
        return v

    def put_content_in(self, t: Txn, b: BucketRecord, key: str, meta: PutMeta, c: Content,
                       inode_id: str = "", version_id: str | None = None) -> ObjectVersion:
        """A new version of `key` holding `c` (a hard link of inode_id when given), with
        `version_id` when given."""
        v = self._new_version(b, key, meta, c.size, c.etag, list(c.segments), version_id)
        v.checksums, v.checksum_type, v.parts = dict(c.checksums), c.checksum_type, list(c.parts)
        v.part_checksums = [dict(pc) for pc in c.part_checksums]
        v.inode = inode_id
        return t.put_version(v)

    def put_file_in(self, t: Txn, b: BucketRecord, key: str, meta: PutMeta, c: Content,
                    version_id: str | None = None) -> ObjectVersion:
        """New versions holding `c`: of every hard link of meta.inode while `key` is one of them (a
        write through the mount reaches every name of the file), else of `key` alone, as a file
        with one name. Returns the version of `key` (`version_id`, when given, is its)."""
        rec = t.linked(t.latest(b.name, key)) if meta.inode else None
        if rec is None or rec.inode_id != meta.inode:
            return self.put_content_in(t, b, key, meta, c, version_id=version_id)
        for k in rec.links:
            if k != key:
                self.put_content_in(t, b, k, meta, c, rec.inode_id)
        return self.put_content_in(t, b, key, meta, c, rec.inode_id, version_id)

    # --- staged segments (FUSE write-back) -----------------------------------------------------

    async def write_segment(
        self, body: bytes | AsyncIterable[bytes | bytearray], identity: dict[str, Any] | None = None,
        *, encrypt_with: SegmentKey | None = None, size_hint: int | None = None,
        named: Callable[[], dict[str, Any]] | None = None,
    ) -> tuple[SegmentRef | None, BodySummary]:
        """Store bytes as a staged segment: durable, held by a staging reference until a version
        references it (put_object_segments(release_staged=...)) or release_staged drops it.
        Staging references do not survive a restart, so abandoned segments are collected.
        `named`: SegmentIO.write's."""
        seg, summary = await self.write_body(body, dict(identity or {}, staged=True), size_hint=size_hint,
                                             encrypt_with=encrypt_with, named=named)
        if seg is None:
            return None, summary
        refs = whole_ref(seg)
        try:
            async with self.txn() as t:
                t.add_segment(seg)
                t.incref(refs)
                t.batch.put(keys.staged(seg.segment_id), b"")
        except BaseException:
            await self.discard_segment(seg)
            raise
        return refs[0], summary

    def _release_staged_in(self, t: Txn, segment_ids: list[str]) -> None:
        for seg_id in segment_ids:
            if t.batch.get(keys.staged(seg_id)) is not None:
                t.batch.delete(keys.staged(seg_id))
                t.decref([SegmentRef(seg_id, 0, 0)])

    async def release_staged(self, segment_ids: list[str]) -> None:
        if segment_ids:
            async with self.txn() as t:
                self._release_staged_in(t, segment_ids)

    def drop_stale_staging(self) -> int:
        """At start-up: staging references of a previous run are void (blocking)."""
        t = Txn(self)
        n = 0
        for k, _ in list(self.db.scan(keys.STAGED)):
            seg_id = k[1:].decode()
            t.batch.delete(k)
            t.decref([SegmentRef(seg_id, 0, 0)])
            n += 1
        if n:
            t.finish()
            self.db.commit_now(t.batch)
        return n

    # --- objects: read ------------------------------------------------------------------------

    def head_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
        self.require_bucket(bucket)
        if version_id is None:
            v = self.db.get_record(ObjectVersion, keys.latest(bucket, key))
            if v is None:
                marker = self._newest(bucket, key)
                if marker is not None and marker.delete_marker:
                    raise NoSuchKey(bucket=bucket, key=key, delete_marker=True, version_id=marker.version_id)
                raise NoSuchKey(bucket=bucket, key=key)
            return v
        raw = self.db.get(keys.vid(bucket, key, version_id))
        v = None if raw is None else self.db.get_record(
            ObjectVersion, keys.version(bucket, key, keys.unpack_seq(raw)))
        if v is None:
            raise NoSuchVersion(bucket=bucket, key=key, version_id=version_id)
        return v

    def _newest(self, bucket: str, key: str) -> ObjectVersion | None:
        prefix = keys.version_key_prefix(bucket, key)
        for _, v in self.db.scan_records(ObjectVersion, prefix):
            return v
        return None

    def get_segment(self, segment_id: str, *, shared: bool = False) -> SegmentRecord:
        """The segment's record; shared=True: the one decoded copy readers share while it is
        unchanged (_shared_record), never to be modified (a read only looks at its placement)."""
        k = keys.segment(segment_id)
        rec = self._shared_record(SegmentRecord, k) if shared else self.db.get_record(SegmentRecord, k)
        if rec is None:
            raise StowageError(f"segment {segment_id} is missing from the metadata DB")
        return rec

    async def read_object(self, version: ObjectVersion, start: int = 0, end: int | None = None,
                          *, decrypt_with: KeyResolver | None = None) -> AsyncGenerator[bytes | bytearray, None]:
        """Bytes [start, end) of an object version, streamed (`decrypt_with` opens the data keys
        of encrypted segments)."""
        end = version.size if end is None else min(end, version.size)
        refs = restore.readable_refs(self, version)  # an archived version: its restore copy, or refused
        if version.storage_class == tiering.CLASS:
            self.access.note(version, time.time_ns())
        # closed with this stream, not when collected: its reads stop and its shares of the
        # read budget are given back at once (as the inner reads below)
        with self.pinned(r.segment_id for r in refs):
            async with contextlib.aclosing(self.read_refs(refs, start, end, decrypt_with=decrypt_with)) as pieces:
                async for piece in pieces:
                    yield piece

    def pin(self, segment_ids: Iterable[str]) -> None:
        """The collector keeps these segments (each pin is taken back by `unpin`)."""
        for seg_id in segment_ids:
            self.pins[seg_id] += 1

    def unpin(self, segment_ids: Iterable[str]) -> None:
        for seg_id in segment_ids:
            self.pins[seg_id] -= 1
            if self.pins[seg_id] <= 0:
                del self.pins[seg_id]

    @contextlib.contextmanager
    def pinned(self, segment_ids: Iterable[str]) -> Iterator[None]:
        ids = set(segment_ids)
        self.pin(ids)
        try:
            yield
        finally:
            self.unpin(ids)

    async def read_refs(self, refs: list[SegmentRef], start: int, end: int,
                        *, decrypt_with: KeyResolver | None = None) -> AsyncGenerator[bytes | bytearray, None]:
        """Bytes [start, end) of an object made of `refs`, streamed (a piece may be a bytearray:
        a decrypted block is yielded in the buffer it was decrypted into, owned by the reader)."""
        keys_: dict[str, bytes] = {}  # data key per segment: a ref list often slices one segment many times
        for ref in slice_refs(refs, start, end):
            rec = self.get_segment(ref.segment_id, shared=True)
            data_key = None
            if rec.enc is not None and decrypt_with is not None:
                data_key = keys_.get(rec.segment_id)
                if data_key is None:
                    data_key = keys_[rec.segment_id] = decrypt_with(rec.enc)
            with self.reading(rec.segment_id):
                async with contextlib.aclosing(self.seg.read(rec, ref.offset, ref.offset + ref.length,
                                                             data_key)) as pieces:
                    async for piece in pieces:
                        yield piece

    @contextlib.contextmanager
    def reading(self, segment_id: str) -> Iterator[None]:
        """A read of the segment's placement as just fetched is in progress (taken with no await
        between fetching the record and entering, so a move committed meanwhile sees it)."""
        self.open_reads[segment_id] += 1
        try:
            yield
        finally:
            self.open_reads[segment_id] -= 1
            if not self.open_reads[segment_id]:
                del self.open_reads[segment_id]

    def segment_envelopes(self, refs: list[SegmentRef]) -> list[dict[str, Any] | None]:
        """The envelope of each distinct segment of a ref list, in order (None: unencrypted)."""
        seen = dict.fromkeys(r.segment_id for r in refs)
        return [self.get_segment(seg_id).enc for seg_id in seen]

    # --- objects: delete, copy, metadata -------------------------------------------------------

    async def delete_object(self, bucket: str, key: str, version_id: str | None = None, *,
                            bypass_governance: bool = False, if_match: str | None = None) -> DeleteResult:
        """Without a version id: the current version goes (unversioned bucket) or a delete marker is
        added. With one: that version goes, unless object lock protects it (ObjectLocked;
        `bypass_governance`: the caller may lift GOVERNANCE retention). `if_match` (a conditional
        delete, without a version id): "*" or ETags the current version must have, checked in
        the commit that deletes (NoSuchKey when there is none, or a delete marker)."""
        async with self.txn() as t:
            t.bypass_governance = bypass_governance
            b = self._bucket_in(t, bucket)
            if if_match is not None:
                cur = t.latest(bucket, key)
                self._check_conditions(None if cur is None or cur.delete_marker else cur, if_match, None)
            if version_id is not None:
                v = t.version_at(bucket, key, version_id)
                if v is None:
                    return DeleteResult(version_id, False)
                t.remove_version(v)
                return DeleteResult(version_id, v.delete_marker)
            if b.versioning == "":
                old = t.version_at(bucket, key, "null")
                if old is not None:
                    t.remove_version(old)
                return DeleteResult("", False)
            marker = ObjectVersion(bucket=bucket, key=key, version_id=self._version_id_for(b), seq=0,
                                   last_modified_ns=time.time_ns(), delete_marker=True, owner=b.owner)
            t.put_version(marker)
            return DeleteResult(marker.version_id, True)

    async def copy_object(
        self,
        src: ObjectVersion,
        dst_bucket: str,
        dst_key: str,
        meta: PutMeta | None = None,
        *,
        owner: str = "",
        acl: Grants | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
        rewrite: bool = False,
        encrypt_with: SegmentKey | None = None,
        decrypt_with: KeyResolver | None = None,
        lock_mode: str = "",
        retain_until_ns: int = 0,
        legal_hold: bool = False,
        checksums: dict[str, str] | None = None,
    ) -> ObjectVersion:
        """Copy by reference: the new version shares the source's segments (and so their keys).
        `meta` None keeps the source's metadata; the owner and ACL are never the source's but
        `owner` and `acl`, and its object lock never the source's but the one given (lock_mode ""
        = the bucket's default retention), as for PutMeta. `checksums` (full-object checksums of
        the content, computed by the caller) replace the source's when given.

        rewrite=True streams the content into a new segment instead, encrypted with
        `encrypt_with` (None: stored in plaintext), reading the source with `decrypt_with`: a
        copy to another key (another SSE-C or KMS key, plaintext to encrypted and back). Memory
        stays bounded by a few blocks whatever the size. The copy is a single-part object.
        """
        restore.readable_refs(self, src)  # an archived source must be restored first, as on AWS
        new_meta = replace(PutMeta.of(src) if meta is None else meta, owner=owner, acl=copy_grants(acl),
                           lock_mode=lock_mode, retain_until_ns=retain_until_ns, legal_hold=legal_hold)
        if rewrite:
            # a FULL_OBJECT checksum is still the content's; a COMPOSITE one was the parts'
            sums = dict(checksums) if checksums is not None else \
                dict(src.checksums) if src.checksum_type == "FULL_OBJECT" else None
            return await self.put_object(dst_bucket, dst_key, self.read_object(src, decrypt_with=decrypt_with),
                                         new_meta, if_match=if_match, if_none_match=if_none_match,
                                         finalize=lambda _summary: sums, size_hint=src.size,
                                         encrypt_with=encrypt_with)
        if encrypt_with is not None:
            raise ValueError("copy_object: encrypt_with needs rewrite=True (a shared copy keeps the source's keys)")
        # Another storage class: the data the copy shares is re-encoded into the class's pool and
        # geometry first (as it is stored: the same keys still open it).
        refs, fresh = await transcode.refs_in_class(self, src.segments, new_meta.storage_class)
        try:
            return await self.put_object_segments(
                dst_bucket, dst_key, refs, src.size, src.etag, new_meta, if_match=if_match,
                if_none_match=if_none_match, checksums=checksums, new_segments=fresh, copy_of=src,
            )
        except BaseException:
            for seg in fresh:
                await self.discard_segment(seg)
            raise

    async def update_meta(self, bucket: str, key: str, meta: PutMeta) -> ObjectVersion:
        """Same data, new metadata (FUSE chmod/chown/utimens/xattr; with meta.inode, of every
        hard link of the file)."""
        async with self.txn() as t:
            b = self._bucket_in(t, bucket)
            cur = t.latest(bucket, key)
            if cur is None:
                raise NoSuchKey(bucket=bucket, key=key)
            return self.put_file_in(t, b, key, meta, Content.of(cur))

    async def set_tags(self, bucket: str, key: str, version_id: str | None, tags: dict[str, str]) -> ObjectVersion:
        """Replace the tags of an existing version in place: tags are a subresource, so unlike
        metadata they change neither the version id nor Last-Modified."""

        def change(v: ObjectVersion) -> None:
            v.tags = dict(tags)

        return await self._change_in_place(bucket, key, version_id, change)

    async def set_acl(self, bucket: str, key: str, version_id: str | None, acl: Grants | None) -> ObjectVersion:
        """Replace the ACL of an existing version in place (a subresource, like its tags)."""

        def change(v: ObjectVersion) -> None:
            v.acl = copy_grants(acl)

        return await self._change_in_place(bucket, key, version_id, change)

    async def _change_in_place(self, bucket: str, key: str, version_id: str | None,
                               change: Callable[[ObjectVersion], None]) -> ObjectVersion:
        async with self.txn() as t:
            self._bucket_in(t, bucket)
            v = t.version_at(bucket, key, version_id) if version_id is not None else t.latest(bucket, key)
            if v is None:
                if version_id is not None:
                    raise NoSuchVersion(bucket=bucket, key=key, version_id=version_id)
                raise NoSuchKey(bucket=bucket, key=key)
            if v.delete_marker:
                raise MethodNotAllowed(bucket=bucket, key=key, delete_marker=True)
            change(v)
            t.batch.put(keys.version(bucket, key, v.seq), v)
            cur = t.latest(bucket, key)
            if cur is not None and cur.seq == v.seq:
                t.batch.put(keys.latest(bucket, key), v)
            t.changed.append((bucket, key))
            t.changes.append(events.Change(events.IN_PLACE, v))
        return v

    async def rename_object(self, bucket: str, src_key: str, dst_key: str, *, noreplace: bool = False,
                            meta: PutMeta | None = None) -> ObjectVersion:
        """Atomically move a key: one batch, no data copied. A hard link stays a link of its file.
        `meta`: the moved file's new metadata (the mount's new ctime), given to all its links."""
        check_key(dst_key)
        async with self.txn() as t:
            b = self._bucket_in(t, bucket)
            v = self._move_in(t, b, src_key, dst_key, noreplace, meta)
        crash_point("rename.committed")
        return v

    def _move_in(self, t: Txn, b: BucketRecord, src_key: str, dst_key: str, noreplace: bool,
                 meta: PutMeta | None = None) -> ObjectVersion:
        cur = t.latest(b.name, src_key)
        if cur is None:
            raise NoSuchKey(bucket=b.name, key=src_key)
        if noreplace and t.latest(b.name, dst_key) is not None:
            raise PreconditionFailed(condition="noreplace", key=dst_key)
        rec = t.linked(cur)
        inode_id = rec.inode_id if rec is not None else ""
        moved = self.put_content_in(t, b, dst_key, meta or PutMeta.of(cur), Content.of(cur), inode_id)
        self._delete_current_in(t, b, src_key)
        after = t.inode(b.name, inode_id)
        if after is not None and meta is not None:  # the file's other names show its new metadata too
            for k in after.links:
                if k != dst_key:
                    self.put_content_in(t, b, k, meta, Content.of(cur), inode_id)
        return moved

    def _delete_current_in(self, t: Txn, b: BucketRecord, key: str) -> None:
        if b.versioning == "":
            old = t.version_at(b.name, key, "null")
            if old is not None:
                t.remove_version(old)
        else:
            t.put_version(ObjectVersion(bucket=b.name, key=key, version_id=self._version_id_for(b), seq=0,
                                        last_modified_ns=time.time_ns(), delete_marker=True, owner=b.owner))

    async def rename_prefix(self, bucket: str, src_prefix: str, dst_prefix: str) -> int:
        """Move every key under src_prefix to dst_prefix in one atomic batch."""
        async with self.txn() as t:
            b = self._bucket_in(t, bucket)
            base = keys.latest_prefix(bucket)
            moved = 0
            for raw, _ in t.batch.scan(base + src_prefix.encode()):
                key = keys.latest_key_of(raw, bucket)
                new_key = dst_prefix + key[len(src_prefix):]
                check_key(new_key)
                self._move_in(t, b, key, new_key, False)
                moved += 1
        crash_point("rename.committed")
        return moved

    async def delete_keys(self, bucket: str, keys_: list[str]) -> None:
        """Delete the current versions of several keys in one batch (FUSE rmdir of markers)."""
        async with self.txn() as t:
            b = self._bucket_in(t, bucket)
            for key in keys_:
                if t.latest(bucket, key) is not None:
                    self._delete_current_in(t, b, key)

    # --- listing ------------------------------------------------------------------------------

    def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "", start_after: str = "",
                     max_keys: int = 1000) -> listing.ListPage:
        self.require_bucket(bucket)
        return listing.list_objects(self.db, bucket, prefix, delimiter, start_after, max_keys)

    def list_entries(self, bucket: str, prefix: str = "", delimiter: str = "", start_after: str = "",
                     max_keys: int = 1000) -> listing.EntryPage:
        """list_objects with only what an S3 listing shows of each object (listing.ListEntry)."""
        self.require_bucket(bucket)
        return listing.list_entries(self.db, bucket, prefix, delimiter, start_after, max_keys)

    def list_posix_entries(self, bucket: str, prefix: str = "", delimiter: str = "", start_after: str = "",
                           max_keys: int = 1000) -> listing.PosixPage:
        """list_objects with only what the mount's listing shows of each file (listing.PosixEntry)."""
        self.require_bucket(bucket)
        return listing.list_posix_entries(self.db, bucket, prefix, delimiter, start_after, max_keys)

    def list_versions(self, bucket: str, prefix: str = "", delimiter: str = "", key_marker: str = "",
                      version_id_marker: str = "", max_keys: int = 1000) -> listing.VersionPage:
        self.require_bucket(bucket)
        return listing.list_versions(self.db, bucket, prefix, delimiter, key_marker, version_id_marker, max_keys)

    def list_version_entries(self, bucket: str, prefix: str = "", delimiter: str = "", key_marker: str = "",
                             version_id_marker: str = "", max_keys: int = 1000) -> listing.VersionEntryPage:
        """list_versions with only what an S3 listing shows of each version (listing.ListEntry)."""
        self.require_bucket(bucket)
        return listing.list_version_entries(self.db, bucket, prefix, delimiter, key_marker, version_id_marker,
                                            max_keys)

    def count_objects(self) -> dict[str, int]:
        """Current objects per bucket (a key-only scan; blocking, run it in a thread)."""
        counts: dict[str, int] = {}
        for b in self.list_buckets():
            prefix = keys.latest_prefix(b.name)
            with self.db.db.iterator(prefix=prefix, include_value=False, verify_checksums=True) as it:
                counts[b.name] = sum(1 for _ in it)
        return counts

    # --- capacity -----------------------------------------------------------------------------

    def capacity(self) -> Capacity:
        """Pool capacity; disks sharing one filesystem (embedded mode) count once."""
        total = free = 0
        seen: set[int] = set()
        for d in self.disks:
            if d.role != "data":
                continue
            dev = d.device()  # as last read: a stalled disk must not hold the loop
            if dev is None:
                continue
            if dev in seen:
                continue
            seen.add(dev)
            total += d.total_bytes()
            free += d.free_bytes() if d.writable else 0
        geo = self.geometry()
        ratio = geo.k / geo.n if geo.n else 1.0
        return Capacity(total, free, int(total * ratio), int(free * ratio))

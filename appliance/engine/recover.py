"""`stowage recover-metadata`: rebuild the metadata DB from the data disks (daemon stopped).

1. Find the data disks (configured directories, and managed disks mounted under the state
   dir), check their labels agree on one appliance id, and read the header of every shard file.
2. Restore the newest metadata snapshot that decodes completely (metasnap.py; segments whose
   headers say {"meta_snapshot": 1}), into a new DB in the empty meta dir. Without any, start
   from an empty DB carrying the disks' appliance id.
3. Reconcile with what the shard headers say happened since:
   - every segment record gets the placement actually found on the disks (healing may have
     moved shards after the snapshot); missing shards become None and are queued for healing;
   - a segment no disk holds any more was collected after the snapshot: the versions and parts
     that reference it are dropped (they had been deleted), except a version object lock still
     protects: it cannot have been deleted, so its data was lost, and it is kept (unreadable,
     reported);
   - a segment written since with an object identity (bucket/key/version_id/etag/size: a single
     PUT) becomes that object version, with the object lock the headers record (bucket created
     if needed, with object lock if the headers say so); a multipart part
     (upload_id/part) is added to its upload if the upload is known;
   - staged (FUSE) segments and segments with too few shards are left to the orphan sweep;
   - latest pointers, refcounts, disk records and the sequence counter are recomputed; a hard
     link stays one while its key's current version still carries the file's identity.
Encrypted segments carry their envelope in every shard header. Recovering them needs the master
key (from its usual place or a backup): the caller hands in `check_envelope`, which raises when
the key cannot open an envelope, and without it the recovery refuses before writing anything.
The envelope a record gets is the headers' (`rotate-master` rewrites headers, so they are newer
than a snapshot's records), the first one the key opens when shards disagree.
What this cannot bring back is written down in docs/metadata-recovery.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from appliance.config import Config
from diskmgr import label as labels
from diskmgr.state import DiskState

from . import diskrecords, keys, lock
from .disks import Disk, DiskSet
from .errors import FormatError, StowageError
from .metadb import Batch, MetaDB
from .metasnap import LIST_KEY, read_stream, stored_snapshots
from .progress import RECOVERED, SCRUB_CURSOR, RecoveryReport, SnapshotInfo, SnapshotList
from .records import (
    BucketRecord,
    HealEntry,
    InodeRecord,
    ObjectVersion,
    PartRecord,
    SegmentRecord,
    SegmentRef,
    UploadRecord,
)
from .segments import SegmentIO
from .shardfile import ShardHeader, read_header

log = logging.getLogger("stowage.recover")


class RecoveryError(StowageError):
    code = "RecoveryError"


# envelope -> None; raises (a StowageError) when the master key at hand cannot open it
EnvelopeCheck = Callable[[dict[str, Any]], None]


@dataclass
class Found:
    header: ShardHeader
    shards: dict[int, str] = field(default_factory=dict)  # shard index -> disk id
    envelopes: list[dict[str, Any]] = field(default_factory=list)  # distinct ones of its headers
    enc: dict[str, Any] | None = None  # the one the master key opens (set by _unlock)


def _disk_dirs(cfg: Config) -> list[tuple[Path, bool]]:
    """(path, managed) of every place a data disk may be."""
    static = [Path(d.path) for d in cfg.disks]
    out = [(p, False) for p in static]
    with contextlib.suppress(OSError):
        out += [(p, True) for p in sorted(cfg.disks_dir.iterdir()) if p.is_dir() and p not in static]
    return out


def find_disks(cfg: Config) -> tuple[str, list[tuple[Disk, labels.DiskLabel]]]:
    found: list[tuple[Disk, labels.DiskLabel]] = []
    for path, managed in _disk_dirs(cfg):
        if managed and not labels.is_mounted(path):
            log.warning("%s is not mounted; skipped", path)
            continue
        try:
            lab = labels.read_label(path)
        except Exception as exc:
            log.warning("%s: %s; skipped", path, exc)
            continue
        if lab.role != "data":
            continue
        found.append((Disk(lab.disk_id, path, pool=lab.pool, role="data"), lab))
    if not found:
        raise RecoveryError(f"no labelled data disks found under {cfg.state_dir}")
    ids = Counter(lab.appliance_id for _, lab in found)
    appliance_id, _ = ids.most_common(1)[0]
    for d, lab in found:
        if lab.appliance_id != appliance_id:
            log.warning("disk %s at %s belongs to appliance %s; ignored", d.disk_id, d.path, lab.appliance_id)
    return appliance_id, [(d, lab) for d, lab in found if lab.appliance_id == appliance_id]


def scan_headers(disks: list[Disk]) -> tuple[dict[str, Found], int]:
    """Read the header of every shard file on every disk (one thread per disk)."""

    def one(disk: Disk) -> list[tuple[str, int, ShardHeader]]:
        out = []
        for seg, idx, path in disk.iter_shard_files():
            try:
                hdr = read_header(path)
            except (OSError, FormatError):
                continue
            if hdr.segment_id == seg and hdr.shard == idx:
                out.append((seg, idx, hdr))
        return out

    found: dict[str, Found] = {}
    files = 0
    with ThreadPoolExecutor(max_workers=max(1, len(disks))) as ex:
        for disk, results in zip(disks, ex.map(one, disks), strict=True):
            for seg, idx, hdr in results:
                files += 1
                f = found.setdefault(seg, Found(hdr))
                if idx < hdr.k + hdr.m:
                    f.shards[idx] = disk.disk_id
                if hdr.enc is not None and hdr.enc not in f.envelopes:
                    f.envelopes.append(hdr.enc)
    return found, files


def _record_from(seg: str, f: Found, pool: str) -> SegmentRecord:
    h = f.header
    shards: list[str | None] = [f.shards.get(i) for i in range(h.k + h.m)]
    return SegmentRecord(seg, h.k, h.m, h.block_size, h.length, shards, 0, h.created_ns, pool,
                         [i for i, d in enumerate(shards) if d is None], f.enc)


def _unlock(cfg: Config, found: dict[str, Found], check: EnvelopeCheck | None) -> int:
    """Choose each encrypted segment's envelope; refuse unless the master key opens them all."""
    encrypted = {seg: f for seg, f in found.items() if f.envelopes}
    if not encrypted:
        return 0
    if check is None:
        raise RecoveryError(
            f"{len(encrypted)} encrypted segments on the data disks, and no master key to open them: "
            f"restore {cfg.master_key_path} or give --master-key FILE (a backup made with "
            "`stowage kms export-master`)")
    for seg, f in encrypted.items():
        failures: list[str] = []
        for env in f.envelopes:
            try:
                check(env)
            except StowageError as exc:
                failures.append(exc.message)
                continue
            f.enc = env
            break
        if f.enc is None:
            raise RecoveryError(f"the master key given does not open the data key of segment {seg} "
                                f"({'; '.join(failures)}); nothing was written — give the right --master-key FILE")
    return len(encrypted)


async def _read_segment(disks: DiskSet, rec: SegmentRecord, appliance_id: str, out: Any) -> None:
    seg = SegmentIO(disks, appliance_id, lambda *_: None)
    async for piece in seg.read(rec, 0, rec.length):
        await trio.to_thread.run_sync(out.write, piece)


def _restore_snapshot(db: MetaDB, disks: DiskSet, rec: SegmentRecord, appliance_id: str, tmp_dir: Path) -> int:
    """Decode a snapshot segment and load it into the (empty) DB. Raises on damage."""
    with tempfile.TemporaryFile(dir=tmp_dir) as f:
        trio.run(_read_segment, disks, rec, appliance_id, f)
        f.seek(0)
        _, items = read_stream(f)
        for _ in items:  # first pass: verify the checksum before touching the DB
            pass
        f.seek(0)
        _, items = read_stream(f)
        n = 0
        b = db.batch()
        for k, v in items:
            b.put(k, v)
            n += 1
            if len(b.writes) >= 10000:
                db.commit_now(b, sync=False)
                b = db.batch()
        db.commit_now(b, sync=True)
        return n


class _Rebuilder:
    """The reconciliation of step 3, on an open DB (blocking)."""

    def __init__(self, db: MetaDB, found: dict[str, Found], pools: dict[str, str], report: RecoveryReport) -> None:
        self.db = db
        self.found = found
        self.pools = pools  # disk id -> pool
        self.report = report
        self.b: Batch = db.batch()
        self.max_seq = keys.unpack_seq(db.get(keys.appliance("seq")) or keys.pack_seq(0))
        self.touched: set[tuple[str, str]] = set()

    def flush(self) -> None:
        self.db.commit_now(self.b, sync=False)
        self.b = self.db.batch()

    def _pool_of(self, f: Found) -> str:
        for d in f.shards.values():
            if d in self.pools:
                return self.pools[d]
        return "default"

    def placements(self) -> set[str]:
        """Update known segments' placement; returns ids of segments that are gone."""
        gone: set[str] = set()
        for k, raw in list(self.db.scan(keys.SEGMENT)):
            rec = SegmentRecord.decode(raw)
            f = self.found.get(rec.segment_id)
            if f is None:
                gone.add(rec.segment_id)
                self.b.delete(k)
                self.b.delete(keys.heal(rec.segment_id))
                continue
            rec.shards = [f.shards.get(i) for i in range(rec.k + rec.m)]
            rec.damaged = [i for i, d in enumerate(rec.shards) if d is None]
            if f.enc is not None:
                rec.enc = f.enc
            self.b.put(k, rec)
            if len(f.shards) < rec.k:
                self.report.segments_unreadable.append(rec.segment_id)
            if rec.damaged:
                self.report.degraded_segments += 1
                self.b.put(keys.heal(rec.segment_id), HealEntry(rec.segment_id, rec.created_ns, rec.damaged,
                                                                "metadata recovery"))
        self.flush()
        return gone

    def drop_gone(self, gone: set[str]) -> None:
        if not gone:
            return
        now = lock.now_ns()
        for k, raw in list(self.db.scan(keys.VERSION)):
            v = ObjectVersion.decode(raw)
            lost = [s.segment_id for s in v.segments if s.segment_id in gone]
            if lost and lock.protection(v, now):
                # never collected (the GC cannot remove a protected version's data): lost with
                # its disks. The version stays, unreadable, as an object with lost shards does.
                self.report.segments_unreadable.extend(sorted(set(lost)))
                continue
            if lost:
                self.b.delete(k)
                self.b.delete(keys.vid(v.bucket, v.key, v.version_id))
                self.touched.add((v.bucket, v.key))
                self.report.versions_dropped.append(f"{v.bucket}/{v.key} ({v.version_id})")
        for k, raw in list(self.db.scan(keys.PART)):
            p = PartRecord.decode(raw)
            if any(s.segment_id in gone for s in p.segments):
                self.b.delete(k)
        self.flush()

    def _next_seq(self, at_least: int) -> int:
        self.max_seq = max(at_least, self.max_seq + 1)
        return self.max_seq

    def _newest_seq(self, bucket: str, key: str) -> int:
        for k, _ in self.db.scan(keys.version_key_prefix(bucket, key)):
            return keys.split_version(k, bucket)[1]
        return 0

    def add_new(self, known: set[str]) -> None:
        """Segments written since the snapshot: versions of single PUTs, multipart parts."""
        new = sorted(((s, f) for s, f in self.found.items() if s not in known),
                     key=lambda t: t[1].header.created_ns)
        for seg, f in new:
            ident = f.header.identity
            if ident.get("meta_snapshot"):
                continue  # handled by snapshots()
            if len(f.shards) < f.header.k:
                self.report.segments_unreadable.append(seg)
                continue
            if ident.get("staged") or "bucket" not in ident or "key" not in ident:
                self.report.segments_ignored += 1
                continue
            rec = _record_from(seg, f, self._pool_of(f))
            if "upload_id" in ident:
                if self._add_part(seg, rec, ident):
                    self.b.put(keys.segment(seg), rec)
                else:
                    self.report.segments_ignored += 1
                self.flush()
                continue
            if "version_id" not in ident or "etag" not in ident:
                self.report.segments_ignored += 1
                continue
            self._add_version(seg, rec, ident)
            self.b.put(keys.segment(seg), rec)
            if rec.damaged:
                self.b.put(keys.heal(seg), HealEntry(seg, rec.created_ns, rec.damaged, "metadata recovery"))
            self.flush()

    def _add_part(self, seg: str, rec: SegmentRecord, ident: dict[str, Any]) -> bool:
        up = self.db.get_record(UploadRecord, keys.upload(ident["bucket"], ident["key"], ident["upload_id"]))
        if up is None:
            return False
        part = int(ident.get("part", 0))
        cur = self.db.get_record(PartRecord, keys.part(up.upload_id, part))
        if cur is not None and cur.last_modified_ns >= rec.created_ns:
            return False
        self.b.put(keys.part(up.upload_id, part), PartRecord(part, int(ident.get("size", rec.plain_length)),
                                                             str(ident.get("etag", "")), rec.created_ns,
                                                             [SegmentRef(seg, 0, rec.plain_length)]))
        self.report.parts_added += 1
        return True

    def _add_version(self, seg: str, rec: SegmentRecord, ident: dict[str, Any]) -> None:
        bucket, key, version_id = str(ident["bucket"]), str(ident["key"]), str(ident["version_id"])
        brec = self.db.get_record(BucketRecord, keys.bucket(bucket))
        if brec is None:
            brec = BucketRecord(bucket, rec.created_ns, versioning="Enabled" if version_id != "null" else "")
            self.b.put(keys.bucket(bucket), brec)
        if ident.get("object_lock") and not lock.enabled(brec):  # enabled after the snapshot
            brec.versioning, brec.object_lock = "Enabled", lock.LockConfig().to_record()
            self.b.put(keys.bucket(bucket), brec)
        raw = self.db.get(keys.vid(bucket, key, version_id))
        if raw is not None:
            old = self.db.get_record(ObjectVersion, keys.version(bucket, key, keys.unpack_seq(raw)))
            if old is not None and any(s.segment_id == seg for s in old.segments):
                return
            if old is not None and version_id != "null":
                return  # an explicit version id is unique: keep the committed record
            if old is not None and lock.protection(old, lock.now_ns()):
                return  # a protected version cannot have been replaced: this write lost its commit
            if old is not None:  # a newer PUT replaced the "null" version
                self.b.delete(keys.version(bucket, key, old.seq))
        seq = self._next_seq(max(rec.created_ns, self._newest_seq(bucket, key) + 1))
        v = ObjectVersion(bucket=bucket, key=key, version_id=version_id, seq=seq, last_modified_ns=rec.created_ns,
                          size=int(ident.get("size", rec.plain_length)), etag=str(ident["etag"]),
                          segments=[SegmentRef(seg, 0, rec.plain_length)], owner=brec.owner,
                          lock_mode=str(ident.get("lock_mode", "")),
                          retain_until_ns=int(ident.get("retain_until_ns", 0)),
                          legal_hold=bool(ident.get("legal_hold", False)))
        self.b.put(keys.version(bucket, key, seq), v)
        self.b.put(keys.vid(bucket, key, version_id), keys.pack_seq(seq))
        self.touched.add((bucket, key))
        self.report.versions_added.append(f"{bucket}/{key}" + (f" ({version_id})" if version_id != "null" else ""))

    def snapshots(self, keep: int) -> None:
        """Keep the snapshot segments found on the disks referenced (else the sweep removes them)."""
        snaps = sorted(((s, f) for s, f in self.found.items() if f.header.identity.get("meta_snapshot")
                        and len(f.shards) >= f.header.k), key=lambda t: t[1].header.created_ns)[-keep:]
        listed = []
        for seg, f in snaps:
            rec = _record_from(seg, f, self._pool_of(f))
            self.b.put(keys.segment(seg), rec)
            ident = f.header.identity
            listed.append(SnapshotInfo(seg, int(ident.get("created_ns", rec.created_ns)), int(ident.get("seq", 0)),
                                       rec.length, 0))
        self.b.put(LIST_KEY, SnapshotList(listed).encode())
        self.flush()

    def latest_pointers(self) -> None:
        for bucket, key in self.touched:
            newest = None
            for _, raw in self.db.scan(keys.version_key_prefix(bucket, key)):
                newest = ObjectVersion.decode(raw)
                break
            if newest is None or newest.delete_marker:
                self.b.delete(keys.latest(bucket, key))
            else:
                self.b.put(keys.latest(bucket, key), newest)
        self.flush()

    def inodes(self) -> None:
        """Hard links: a key stays a name of its file while its current version carries the
        file's identity (a version recovered from a shard header is a file of its own)."""
        for k, raw in list(self.db.scan(keys.INODE)):
            rec = InodeRecord.decode(raw)
            links = []
            for key in rec.links:
                v = self.db.get_record(ObjectVersion, keys.latest(rec.bucket, key))
                if v is not None and v.inode == rec.inode_id:
                    links.append(key)
            if not links:
                self.b.delete(k)
            elif links != rec.links:
                rec.links = links
                self.b.put(k, rec)
        self.flush()

    def refcounts(self) -> None:
        refs: Counter[str] = Counter()
        for _, raw in self.db.scan(keys.VERSION):
            for s in ObjectVersion.decode(raw).segments:
                refs[s.segment_id] += 1
        for _, raw in self.db.scan(keys.PART):
            for s in PartRecord.decode(raw).segments:
                refs[s.segment_id] += 1
        for snap in stored_snapshots(self.db):
            refs[snap.segment_id] += 1
        for prefix in (keys.STAGED, keys.GC, keys.progress(SCRUB_CURSOR)):
            for k, _ in list(self.db.scan(prefix)):
                self.b.delete(k)
        for k, raw in list(self.db.scan(keys.SEGMENT)):
            rec = SegmentRecord.decode(raw)
            n = refs.get(rec.segment_id, 0)
            if n == 0:  # unreferenced: its files are orphans for the start-up sweep
                self.b.delete(k)
                self.b.delete(keys.heal(rec.segment_id))
            elif n != rec.refcount:
                rec.refcount = n
                self.b.put(k, rec)
        self.b.put(keys.appliance("seq"), keys.pack_seq(self.max_seq))
        self.flush()

    def disk_records(self, disks: list[tuple[Disk, labels.DiskLabel]]) -> None:
        for d, lab in disks:
            rec = diskrecords.get(self.db, d.disk_id) or diskrecords.new(
                d.disk_id, str(d.path), "data", lab.pool, fs_uuid=lab.fs_uuid, added_ns=0)
            rec.path, rec.pool = str(d.path), lab.pool
            if rec.state in (DiskState.FAILED, DiskState.OFFLINE):  # its label was just read: it is here
                diskrecords.change_state(rec, DiskState.OK)
            diskrecords.put(self.b, rec)
        self.flush()


def recover_metadata(cfg: Config, progress: Callable[[str], None] = lambda _m: None,
                     check_envelope: EnvelopeCheck | None = None) -> RecoveryReport:
    """Rebuild the metadata DB in cfg.meta_path (which must be missing or empty). The caller
    makes sure the daemon is stopped (a running daemon's DB also fails the emptiness check).
    `check_envelope` (from the master key) is needed when encrypted segments are found."""
    meta = cfg.meta_path
    if meta.exists() and any(meta.iterdir()):
        raise RecoveryError(f"{meta} is not empty; move the old metadata away first (recovery never overwrites)")
    report = RecoveryReport()
    appliance_id, disks = find_disks(cfg)
    report.appliance_id = appliance_id
    report.disks = [f"{d.disk_id} ({d.path})" for d, _ in disks]
    progress(f"appliance {appliance_id}: {len(disks)} data disks")
    found, report.shard_files = scan_headers([d for d, _ in disks])
    progress(f"read {report.shard_files} shard headers ({len(found)} segments)")
    encrypted = _unlock(cfg, found, check_envelope)
    if encrypted:
        progress(f"{encrypted} encrypted segments: the master key opens their data keys")
    diskset = DiskSet([d for d, _ in disks])
    pools = {d.disk_id: d.pool for d, _ in disks}
    db = MetaDB(meta)
    try:
        tmp_dir = Path(cfg.state_dir)
        snaps = sorted(((s, f) for s, f in found.items() if f.header.identity.get("meta_snapshot")),
                       key=lambda t: t[1].header.created_ns, reverse=True)
        for seg, f in snaps:
            rec = _record_from(seg, f, "default")
            try:
                n = _restore_snapshot(db, diskset, rec, appliance_id, tmp_dir)
            except (StowageError, OSError) as exc:
                log.warning("snapshot %s unusable: %s", seg, exc)
                progress(f"snapshot {seg} unusable ({exc}); trying an older one")
                continue
            report.snapshot = {"segment_id": seg, "created_ns": f.header.created_ns}
            report.restored_records = n
            progress(f"restored snapshot {seg} ({n} records)")
            break
        if report.snapshot is None:
            progress("no usable metadata snapshot: rebuilding from shard headers alone")
        if db.appliance_id != appliance_id:
            b = db.batch()
            b.put(keys.appliance("id"), appliance_id.encode())
            db.commit_now(b)
        r = _Rebuilder(db, found, pools, report)
        known = {k[1:].decode() for k, _ in db.scan(keys.SEGMENT)}
        gone = r.placements()
        r.drop_gone(gone)
        r.add_new(known)
        r.snapshots(max(1, cfg.snapshot.keep))
        r.latest_pointers()
        r.inodes()
        r.refcounts()
        r.disk_records(disks)
        b = db.batch()
        b.put(keys.progress(RECOVERED), report.encode())
        db.commit_now(b, sync=True)
    finally:
        db.close()
    with contextlib.suppress(OSError):
        (Path(cfg.state_dir) / "appliance-id").write_text(appliance_id + "\n")
    os.sync()
    return report

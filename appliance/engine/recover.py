"""`stowage recover-metadata`: rebuild the metadata DB from the data disks (daemon stopped).

1. Find the data disks (configured directories, and managed disks mounted under the state
   dir), check their labels agree on one appliance id, and read the header of every shard file
   and of every live record packed in a volume file (volumes.py: a record is a shard like a file;
   a dead one, of a deleted segment or a replaced shard, is not).
2. Restore the newest metadata snapshot that decodes completely (metasnap.py; segments whose
   headers say {"meta_snapshot": 1}), into a new DB in the empty meta dir. Without any, start
   from an empty DB carrying the disks' appliance id.
3. Replay the metadata journal (journal.py): every commit after the snapshot's lsn, in order,
   each read from any disk that holds a valid copy (a torn tail or a lost disk on one is covered
   by the others). The DB is then what it was at the last commit, exactly.
4. Reconcile with what the shard headers show:
   - every segment record gets the placement actually found on the disks (healing may have
     moved shards); missing shards are queued for healing;
   - a segment no disk holds any more: the versions and parts that reference it are dropped
     (reported: with a complete journal this is data lost with more than m disks), except a
     version object lock still protects: it cannot have been deleted, so its data was lost, and
     it is kept (unreadable, reported);
   - only when the journal is incomplete (a gap, or an appliance from before the journal): a
     segment written since with an object identity (bucket/key/version_id/etag/size: a single
     PUT, an SSE-C replica stored sealed in one segment, a file the mount wrote in order or
     changed in place and rewrote whole, or its data re-encoded into another class:
     shardident.py; a patch's segment
     holding only the changed runs is spliced into the version it changed, when that is known
     with the ETag the headers name; a re-encoding takes the
     place of the segment it replaces in a version already known, even one gone from the
     disks) becomes that object version, with the object lock the headers record (bucket created
     if needed, versioned or with object lock if the headers say so); a multipart part (upload_id/part) is
     added to its upload if the upload is known. With a complete journal such a segment was
     never committed (a write that failed or lost its race) and is left to the orphan sweep, so
     nothing deleted or never acknowledged comes back;
   - staged (FUSE) segments that name no version and segments with too few shards are left
     to the orphan sweep;
   - latest pointers, refcounts, disk records, usage counters and the sequence counter are
     recomputed; a hard link stays one while its key's current version still carries the
     file's identity.
Refused while another process journals to the disks (journal.own_disk: a running daemon, even
one the CLI cannot reach, or a `stowage` command); the disks stay owned until it ends.
Resumable: the DB is built in the meta dir behind a marker file (metadb.RECOVERY_MARKER) that the
daemon refuses to start with; its `X recovered` record names the next step, so running it again
after a crash goes on from there (a snapshot restore that did not finish starts over).
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
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from appliance.config import Config, default_bucket_encryption
from diskmgr import label as labels
from diskmgr.durable import fsync_dir
from diskmgr.state import DiskState

from . import diskrecords, keys, lock, shardident, usage
from .disks import Disk, DiskSet
from .errors import FormatError, StowageError
from .journal import DiskOwned, FileScan, decode_body, list_files, merged_records, own_disk, release_disks
from .metadb import RECOVERY_MARKER, Batch, MetaDB
from .metasnap import LIST_KEY, read_stream, stored_snapshots
from .patch import composite_etag, layout, splice
from .progress import RECOVERED, RECOVERY_DONE, SCRUB_CURSOR, RecoveryReport, SnapshotInfo, SnapshotList
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
from .volumes import scan as scan_volume
from .volumes import volume_numbers, volume_path

log = logging.getLogger("stowage.recover")


class RecoveryError(StowageError):
    code = "RecoveryError"


# envelope -> None; raises (a StowageError) when the master key at hand cannot open it
EnvelopeCheck = Callable[[dict[str, Any]], None]
LOAD_BATCH = 10_000  # writes per LevelDB batch while loading a snapshot or the journal


@dataclass(frozen=True)
class RecoveryStep:
    """One progress update: `done` of `total` (None: not known) in the current phase."""

    phase: str  # disks | headers | snapshot | journal | reconcile | done
    message: str
    done: int = 0
    total: int | None = None


Progress = Callable[[RecoveryStep], None]


def _quiet(_step: RecoveryStep) -> None:
    pass


@dataclass
class Found:
    header: ShardHeader
    shards: dict[int, str] = field(default_factory=dict)  # shard index -> disk id
    packs: dict[int, list[int]] = field(default_factory=dict)  # shard index -> packed place (none: a file)
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


@dataclass(frozen=True)
class HeaderCount:
    """The shard headers `scan_headers` read."""

    files: int = 0  # shard files
    records: int = 0  # live records in volume files

    @property
    def total(self) -> int:
        return self.files + self.records


# (segment id, shard index, header, packed place or None for a shard file)
_Shard = tuple[str, int, ShardHeader, list[int] | None]


def _packed_shards(disk: Disk) -> list[_Shard]:
    """The live records of a disk's volumes (blocking). A shard may lie in more than one volume:
    the compactor copies live records to the current (higher-numbered) volume before it removes
    the old one. The newest copy decides: had it been marked dead since (its segment deleted, or
    the shard rebuilt elsewhere), an older copy still live must not bring it back."""
    newest: dict[tuple[str, int], tuple[ShardHeader, list[int], bool]] = {}
    for n in volume_numbers(disk.path):
        try:
            for r in scan_volume(volume_path(disk.path, n), n):  # stops at a torn tail
                newest[(r.header.segment_id, r.header.shard)] = (r.header, [n, r.offset, r.data_start], r.live)
        except (OSError, FormatError) as exc:  # what came before is kept
            log.warning("disk %s: volume %d: %s", disk.disk_id, n, exc)
    return [(seg, idx, hdr, place) for (seg, idx), (hdr, place, live) in newest.items() if live]


def scan_headers(disks: list[Disk]) -> tuple[dict[str, Found], HeaderCount]:
    """Read the header of every shard file and every packed record on every disk (one thread per
    disk). Where a disk holds a shard both as a file and as a live record, the file wins: a
    shard is rebuilt as a file (repair.py), never packed again."""

    def one(disk: Disk) -> tuple[list[_Shard], int]:
        out = _packed_shards(disk)
        records = len(out)
        for seg, idx, path in disk.iter_shard_files():
            try:
                hdr = read_header(path)
            except (OSError, FormatError):
                continue
            if hdr.segment_id == seg and hdr.shard == idx:
                out.append((seg, idx, hdr, None))
        return out, records

    found: dict[str, Found] = {}
    files = records = 0
    with ThreadPoolExecutor(max_workers=max(1, len(disks))) as ex:
        for disk, (results, packed) in zip(disks, ex.map(one, disks), strict=True):
            records += packed
            files += len(results) - packed
            for seg, idx, hdr, place in results:  # later ones win: in disk order, files last
                f = found.setdefault(seg, Found(hdr))
                if idx < hdr.k + hdr.m:
                    f.shards[idx] = disk.disk_id
                    if place is None:
                        f.packs.pop(idx, None)
                    else:
                        f.packs[idx] = place
                if hdr.enc is not None and hdr.enc not in f.envelopes:
                    f.envelopes.append(hdr.enc)
    return found, HeaderCount(files, records)


def _set_packs(rec: SegmentRecord, f: Found) -> None:
    """Where the disks hold each shard: packed at the place found, else a shard file."""
    rec.packs = []
    for i, place in sorted(f.packs.items()):
        if i < len(rec.shards):
            rec.set_pack(i, list(place))


def _record_from(seg: str, f: Found, pool: str) -> SegmentRecord:
    h = f.header
    shards: list[str | None] = [f.shards.get(i) for i in range(h.k + h.m)]
    rec = SegmentRecord(seg, h.k, h.m, h.block_size, h.length, shards, 0, h.created_ns, pool,
                        [i for i, d in enumerate(shards) if d is None], f.enc,
                        cipher_id=str(h.identity.get("cipher_id", "")))
    _set_packs(rec, f)
    return rec


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
        pending: list[tuple[bytes, bytes | None]] = []
        for k, v in items:
            pending.append((k, v))
            n += 1
            if len(pending) >= LOAD_BATCH:
                db.load(pending)
                pending = []
        db.load(pending, sync=True)
        return n


def _gap_text(a: int, b: int) -> str:
    return f"records {a}..{b}"


def replay_journal(db: MetaDB, disks: list[Disk], report: RecoveryReport, progress: Progress) -> None:
    """Apply every journal record after the DB's lsn, in order, from whichever disk holds a valid
    copy (blocking). Each LevelDB batch also carries the report so far and the lsn of its last
    record, so a crash leaves a DB that resumes where it stopped. Fills report.journal*."""
    j = report.journal or {}
    after = db.lsn
    roots = {d.disk_id: d.path for d in disks}
    j["files"] = sum(len(list_files(d.path)) for d in disks)
    j.setdefault("from_lsn", after)
    scans: list[tuple[str, FileScan]] = []
    last = after
    pending: list[tuple[bytes, bytes | None]] = []

    def load() -> None:
        j["to_lsn"] = last
        report.journal = j
        db.load([*pending, (keys.progress(RECOVERED), report.encode())], sync=True)
        pending.clear()

    for lsn, body in merged_records(roots, after, scans):
        if lsn != last + 1:
            report.journal_gaps.append(_gap_text(last + 1, lsn - 1))
        last = lsn
        try:
            pending.extend(decode_body(body).writes)
        except FormatError as exc:  # checksummed but does not parse: a writer's bug
            log.error("journal record %d: %s", lsn, exc)
            report.journal_gaps.append(_gap_text(lsn, lsn) + " (damaged on every disk)")
            continue
        j["records"] = int(j.get("records", 0)) + 1
        if len(pending) >= LOAD_BATCH:
            load()
            progress(RecoveryStep("journal", f"replayed the journal up to record {lsn}", int(j["records"])))
    load()
    for disk_id, scan in scans:
        if scan.torn:
            report.journal_torn.append(f"disk {disk_id}: {scan.path.name} from byte {scan.torn_offset}: "
                                       f"{scan.torn} (valid up to record {scan.last})")


class _Rebuilder:
    """The reconciliation of step 3, on an open DB (blocking)."""

    def __init__(self, db: MetaDB, found: dict[str, Found], pools: dict[str, str], report: RecoveryReport,
                 complete: bool, encryption: dict[str, str] | None) -> None:
        self.db = db
        self.encryption = encryption  # what a bucket rebuilt from headers starts with, as a new one does
        self.found = found
        self.pools = pools  # disk id -> pool
        self.report = report
        self.complete = complete  # the journal holds every commit after the snapshot
        self.b: Batch = db.batch()
        self.gone: set[str] = set()  # segments the DB has and no disk holds
        # (bucket, key, version id) -> [(segment, identity)]: the readable re-encodings naming a
        # version (transcode.py). With a complete journal one the DB lacks was never committed.
        self.moves: dict[tuple[str, str, str], list[tuple[str, dict[str, Any]]]] = {}
        for seg, f in ([] if complete else found.items()):
            ident = f.header.identity
            if ident.get("transcode_of") and "version_id" in ident and len(f.shards) >= f.header.k:
                self.moves.setdefault((str(ident["bucket"]), str(ident["key"]), str(ident["version_id"])),
                                      []).append((seg, ident))
        self.max_seq = keys.unpack_seq(db.get(keys.appliance("seq")) or keys.pack_seq(0))

    def flush(self) -> None:
        self.db.load(self.b.writes.items())
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
            _set_packs(rec, f)  # the journal's places may be stale (compacted, rebuilt as a file)
            if f.enc is not None:
                rec.enc = f.enc
            self.b.put(k, rec)
            if len(f.shards) < rec.k:
                self.report.segments_unreadable.append(rec.segment_id)
            if rec.damaged:
                self.report.degraded_segments += 1
                # an entry the journal brought keeps its time and reason; it gains what is missing
                queued = self.db.get_record(HealEntry, keys.heal(rec.segment_id))
                entry = queued or HealEntry(rec.segment_id, rec.created_ns, [], "metadata recovery")
                entry.shards = sorted(set(entry.shards) | set(rec.damaged))
                self.b.put(keys.heal(rec.segment_id), entry)
        self.flush()
        return gone

    def drop_gone(self, gone: set[str]) -> None:
        if not gone:
            return
        self.gone = gone
        now = lock.now_ns()
        for k, raw in list(self.db.scan(keys.VERSION)):
            v = ObjectVersion.decode(raw)
            lost = [s.segment_id for s in v.segments if s.segment_id in gone]
            if lost and all(any(self._replaces(v, ident, s) for _, ident in self._moves_of(v)) for s in lost):
                continue  # moved to another class after the snapshot: add_new swaps the data in
            if lost and lock.protection(v, now):
                # never collected (the GC cannot remove a protected version's data): lost with
                # its disks. The version stays, unreadable, as an object with lost shards does.
                self.report.segments_unreadable.extend(sorted(set(lost)))
                continue
            if lost:
                self.b.delete(k)
                self.b.delete(keys.vid(v.bucket, v.key, v.version_id))
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
        # in the order the versions were written: a segment re-encoded later (a transition)
        # carries its version's Last-Modified, so it neither outranks newer versions of its key
        # nor comes before the segment it replaced
        new = sorted(((s, f) for s, f in self.found.items() if s not in known),
                     key=lambda t: (int(t[1].header.identity.get("last_modified_ns", t[1].header.created_ns)),
                                    t[1].header.created_ns))
        for seg, f in new:
            ident = f.header.identity
            if ident.get("meta_snapshot"):
                continue  # handled by snapshots()
            # a staged segment (the mount's) that names no version was never one's, or its
            # version is not known from it (a stream's that settled, an older version's of
            # Stowage): the sweep takes it
            if (ident.get("staged") and "version_id" not in ident) or "bucket" not in ident or "key" not in ident:
                self.report.segments_ignored += 1
                continue
            if self.complete:  # the journal has every commit: this write was never one (a crash
                self.report.segments_uncommitted += 1  # may have cut it short: not "unreadable")
                continue
            if len(f.shards) < f.header.k:
                self.report.segments_unreadable.append(seg)
                continue
            rec = _record_from(seg, f, self._pool_of(f))
            if "upload_id" in ident:
                if self._add_part(seg, rec, ident):
                    self.b.put(keys.segment(seg), rec)
                else:
                    self.report.segments_ignored += 1
                self.flush()
                continue
            if "patch_of" in ident:
                if not self._add_patched(seg, rec, ident):
                    self.report.segments_ignored += 1
                    continue
            elif not self._swap_in(seg, ident):
                if "version_id" not in ident or "etag" not in ident or ident.get("partial"):
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

    def _moves_of(self, v: ObjectVersion) -> list[tuple[str, dict[str, Any]]]:
        return self.moves.get((v.bucket, v.key, v.version_id), [])

    def _replaces(self, v: ObjectVersion, ident: dict[str, Any], old_id: str) -> bool:
        """Whether a re-encoding naming `v` takes the place of its segment `old_id`: the one it
        was made from, or, for a version whose every segment is gone (moved more than once, the
        segments in between collected too), one that holds the whole version."""
        if ident.get("transcode_of") == old_id:
            return True
        return (not ident.get("partial") and str(ident.get("etag")) == v.etag and int(ident.get("size", -1)) == v.size
                and all(r.segment_id in self.gone for r in v.segments))

    def _swap_in(self, seg: str, ident: dict[str, Any]) -> bool:
        """A re-encoding (transcode.py) of data that the version it names still uses here (from
        the snapshot, or rebuilt from the older segment's headers just before): it takes that
        data's place in the version, which is now in the class the headers say. Whether the
        version has it (its record is then kept)."""
        if not ident.get("transcode_of") or "version_id" not in ident:
            return False
        bucket, key = str(ident["bucket"]), str(ident["key"])
        raw = self.db.get(keys.vid(bucket, key, str(ident["version_id"])))
        v = None if raw is None else self.db.get_record(ObjectVersion, keys.version(bucket, key, keys.unpack_seq(raw)))
        if v is None:
            return False
        if any(r.segment_id == seg for r in v.segments):
            return True
        old = {r.segment_id for r in v.segments if self._replaces(v, ident, r.segment_id)}
        if not old:
            return False
        v.segments = [SegmentRef(seg, r.offset, r.length) if r.segment_id in old else r for r in v.segments]
        v.storage_class = str(ident.get("storage_class", shardident.DEFAULT_CLASS))
        self.b.put(keys.version(bucket, key, v.seq), v)
        return True

    def _add_patched(self, seg: str, rec: SegmentRecord, ident: dict[str, Any]) -> bool:
        """A patch's segment (patch.py: the runs of a file the mount changed in place), spliced
        into its base version as the commit did, if that version is known here (from the
        snapshot, or rebuilt from older headers just before) and is the one the patch was made
        on (its ETag). Whether the version was added."""
        bucket = str(ident["bucket"])
        base_key = str(ident.get("patch_key", ident["key"]))
        raw = self.db.get(keys.vid(bucket, base_key, str(ident["patch_of"])))
        base = None if raw is None else self.db.get_record(ObjectVersion,
                                                           keys.version(bucket, base_key, keys.unpack_seq(raw)))
        if base is None or base.delete_marker or base.etag != ident.get("patch_base_etag"):
            return False
        size = int(ident["patch_size"])
        flat = [int(x) for x in ident["patch_dirty"]]
        if len(flat) % 2:
            return False
        runs = layout(size, base.size, zip(flat[::2], flat[1::2], strict=True))
        if sum(e - s for d, s, e in runs if d) != rec.plain_length:
            return False  # not the layout this segment was written for
        refs = splice(runs, base.segments, SegmentRef(seg, 0, rec.plain_length))
        self._add_version(seg, rec, ident, refs, composite_etag(base.etag, refs, str(ident["etag"])), size)
        return True

    def _add_version(self, seg: str, rec: SegmentRecord, ident: dict[str, Any],
                     refs: list[SegmentRef] | None = None, etag: str = "", size: int = -1) -> None:
        """The version a segment's headers name: the segment whole, or `refs` (a patch's), with
        the ETag and size given, else the headers'."""
        bucket, key, version_id = str(ident["bucket"]), str(ident["key"]), str(ident["version_id"])
        brec = self.db.get_record(BucketRecord, keys.bucket(bucket))
        if brec is None:
            brec = BucketRecord(bucket, rec.created_ns, versioning="Enabled" if version_id != "null" else "",
                                encryption=self.encryption)
            self.b.put(keys.bucket(bucket), brec)
        if version_id != "null" and not brec.versioning:  # enabled after the snapshot or the bucket's first PUT
            brec.versioning = "Enabled"  # (never back to "": Suspended is a state the headers cannot show)
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
        written = int(ident.get("last_modified_ns", rec.created_ns))  # a re-encoded segment keeps it
        seq = self._next_seq(max(written, self._newest_seq(bucket, key) + 1))
        v = ObjectVersion(bucket=bucket, key=key, version_id=version_id, seq=seq, last_modified_ns=written,
                          size=size if size >= 0 else int(ident.get("size", rec.plain_length)),
                          etag=etag or str(ident["etag"]),
                          segments=refs or [SegmentRef(seg, 0, rec.plain_length)], owner=brec.owner,
                          storage_class=str(ident.get("storage_class", shardident.DEFAULT_CLASS)),
                          checksums=dict(ident.get("checksums") or {}),
                          checksum_type=str(ident.get("checksum_type", "")),
                          lock_mode=str(ident.get("lock_mode", "")),
                          retain_until_ns=int(ident.get("retain_until_ns", 0)),
                          legal_hold=bool(ident.get("legal_hold", False)))
        self.b.put(keys.version(bucket, key, seq), v)
        self.b.put(keys.vid(bucket, key, version_id), keys.pack_seq(seq))
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
                                       rec.length, 0, int(ident.get("journal_lsn", 0))))
        self.b.put(LIST_KEY, SnapshotList(listed).encode())
        self.flush()

    def latest_pointers(self) -> None:
        """Every key's current version is its newest, unless that is a delete marker (a full
        pass: it also repairs what a resumed run dropped or added)."""
        for k, raw in list(self.db.scan(keys.LATEST)):
            cur = ObjectVersion.decode(raw)
            if self._newest(cur.bucket, cur.key) is None:
                self.b.delete(k)
        last: tuple[str, str] | None = None
        for _, raw in self.db.scan(keys.VERSION):
            v = ObjectVersion.decode(raw)
            if (v.bucket, v.key) == last:
                continue  # older versions of the key seen already
            last = (v.bucket, v.key)
            lkey = keys.latest(v.bucket, v.key)
            if v.delete_marker:
                if self.db.get(lkey) is not None:
                    self.b.delete(lkey)
            elif self.db.get_record(ObjectVersion, lkey) != v:
                self.b.put(lkey, v)
            if len(self.b.writes) >= LOAD_BATCH:
                self.flush()
        self.flush()

    def _newest(self, bucket: str, key: str) -> ObjectVersion | None:
        for _, raw in self.db.scan(keys.version_key_prefix(bucket, key)):
            return ObjectVersion.decode(raw)
        return None

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


def _counts(db: MetaDB) -> dict[str, int]:
    """What the rebuilt DB holds, by kind (for the report)."""
    out: dict[str, int] = {}
    spaces = {"buckets": keys.BUCKET, "multipart uploads": keys.UPLOAD, "multipart parts": keys.PART,
              "users": keys.USER, "access keys": keys.CREDENTIAL, "groups": keys.GROUP, "policies": keys.POLICY,
              "KMS keys": keys.KMS_KEY, "hard-linked files": keys.INODE, "disks": keys.DISK,
              "segments": keys.SEGMENT, "heal queue": keys.HEAL}
    for name, prefix in spaces.items():
        with db.db.iterator(prefix=prefix, include_value=False) as it:
            out[name] = sum(1 for _ in it)
    versions = markers = 0
    for _, raw in db.scan(keys.VERSION):
        if ObjectVersion.decode(raw).delete_marker:
            markers += 1
        else:
            versions += 1
    out["object versions"], out["delete markers"] = versions, markers
    return out


def _save(db: MetaDB, report: RecoveryReport) -> None:
    db.load([(keys.progress(RECOVERED), report.encode())], sync=True)


# what a freshly made ext4 filesystem holds: the meta dir may be a new SSD mounted there (the doc's procedure)
FRESH_FS = "lost+found"


def _wipe(meta: Path) -> None:
    """Remove an unfinished snapshot restore (everything but the marker and the filesystem's own)."""
    for p in meta.iterdir():
        if p.name in (RECOVERY_MARKER, FRESH_FS):
            continue
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


def _resumable(meta: Path) -> bool:
    """Whether the meta dir holds an unfinished recovery; RecoveryError unless it is that, empty
    or missing."""
    if (meta / RECOVERY_MARKER).exists():
        return True
    if meta.exists() and any(p.name != FRESH_FS for p in meta.iterdir()):
        raise RecoveryError(f"{meta} is not empty; move the old metadata away first (recovery never overwrites)")
    return False


def _begin(meta: Path) -> bool:
    """Put the marker in the meta dir (unless resuming). Returns whether resuming."""
    if _resumable(meta):
        return True
    meta.mkdir(parents=True, exist_ok=True)
    (meta / RECOVERY_MARKER).write_text("stowage recover-metadata is building this DB: run it again to finish\n")
    fsync_dir(meta)
    return False


def _restore_newest(db: MetaDB, cfg: Config, found: dict[str, Found], diskset: DiskSet, appliance_id: str,
                    report: RecoveryReport, progress: Progress) -> None:
    snaps = sorted(((s, f) for s, f in found.items() if f.header.identity.get("meta_snapshot")),
                   key=lambda t: t[1].header.created_ns, reverse=True)
    for i, (seg, f) in enumerate(snaps):
        rec = _record_from(seg, f, "default")
        progress(RecoveryStep("snapshot", f"reading metadata snapshot {seg}", i, len(snaps)))
        try:
            n = _restore_snapshot(db, diskset, rec, appliance_id, Path(cfg.state_dir))
        except (StowageError, OSError) as exc:
            log.warning("snapshot %s unusable: %s", seg, exc)
            report.not_restored.append(f"metadata snapshot {seg}: unusable ({exc}); an older one was tried")
            continue
        report.snapshot = {"segment_id": seg, "created_ns": f.header.created_ns}
        report.restored_records = n
        progress(RecoveryStep("snapshot", f"restored snapshot {seg} ({n} records)", len(snaps), len(snaps)))
        return
    progress(RecoveryStep("snapshot", "no usable metadata snapshot: the journal and the shard headers alone"))


def _replay(db: MetaDB, disks: list[Disk], report: RecoveryReport, progress: Progress) -> None:
    progress(RecoveryStep("journal", f"replaying the metadata journal after record {db.lsn}"))
    replay_journal(db, disks, report, progress)  # finds the gaps after the snapshot's record
    j = report.journal or {}
    if j.get("snapshot_lsn") is False:
        report.journal_gaps.insert(0, "between the snapshot (taken before the journal existed) and the first record")
    files, records = int(j.get("files", 0)), int(j.get("records", 0))
    j["complete"] = bool(files) and not report.journal_gaps
    report.not_restored += [f"journal {gap}: on none of the disks found; what was committed there is lost "
                            "(shard headers stand in for object writes)" for gap in report.journal_gaps]
    if not files:
        report.not_restored.append("no metadata journal on the disks (an appliance from before it, or every "
                                   "journal disk lost): changes after the snapshot come from shard headers only")
    progress(RecoveryStep("journal", f"replayed {records} journal records ({j.get('from_lsn', 0)}.."
                                     f"{j.get('to_lsn', 0)})", records, records))


def _reconcile(db: MetaDB, cfg: Config, found: dict[str, Found], disks: list[tuple[Disk, labels.DiskLabel]],
               report: RecoveryReport, progress: Progress) -> None:
    complete = bool(report.journal and report.journal.get("complete"))
    # a resumed run starts these counts over: every step below is idempotent
    report.versions_added, report.parts_added, report.versions_dropped = [], 0, []
    report.segments_unreadable, report.segments_ignored, report.segments_uncommitted = [], 0, 0
    report.degraded_segments = 0
    r = _Rebuilder(db, found, {d.disk_id: d.pool for d, _ in disks}, report, complete,
                   default_bucket_encryption(cfg))
    known = {k[1:].decode() for k, _ in db.scan(keys.SEGMENT)}
    gone: set[str] = set()

    def placements() -> None:
        gone.update(r.placements())

    steps: list[tuple[str, Callable[[], None]]] = [
        ("segment placement", placements), ("segments gone", lambda: r.drop_gone(gone)),
        ("writes the journal lacks", lambda: r.add_new(known)),
        ("snapshot segments", lambda: r.snapshots(max(1, cfg.snapshot.keep))),
        ("current versions", r.latest_pointers), ("hard links", r.inodes),
        ("reference counts", r.refcounts), ("disk records", lambda: r.disk_records(disks)),
        ("usage counters", lambda: db.load(usage.recount_writes(db)))]
    for i, (what, step) in enumerate(steps):
        progress(RecoveryStep("reconcile", f"reconciling with the shard headers: {what}", i, len(steps)))
        step()


def _reconcile_notes(report: RecoveryReport) -> list[str]:
    """What reconciliation could not restore, and why."""
    complete = bool(report.journal and report.journal.get("complete"))
    notes = [f"{v}: its data is on none of the disks found" + ("" if complete else
             " (deleted and collected after the snapshot, or lost)") for v in report.versions_dropped]
    notes += [f"segment {seg}: fewer than k shards on the disks found; what uses it stays unreadable"
              for seg in report.segments_unreadable]
    if report.versions_added:
        notes.append(f"{len(report.versions_added)} object versions rebuilt from shard headers alone: their "
                     "content type, user metadata, tags, checksums and ACL are lost")
    return notes


def recover_metadata(cfg: Config, progress: Progress = _quiet,
                     check_envelope: EnvelopeCheck | None = None) -> RecoveryReport:
    """Rebuild the metadata DB in cfg.meta_path, which must be missing, empty, or hold the DB of
    an unfinished recovery (resumed). The caller makes sure the daemon is stopped (a running
    daemon's DB also fails the emptiness check). `check_envelope` (from the master key) is
    needed when encrypted segments are found. RecoveryError while another process owns a disk."""
    _resumable(cfg.meta_path)  # refuse a foreign DB before reading anything
    appliance_id, disks = find_disks(cfg)
    owned: list[int] = []
    try:
        for d, _ in disks:  # held to the end: nothing else may journal to them meanwhile
            try:
                owned.append(own_disk(d.path))
            except OSError as exc:  # a read-only or failing disk: no one journals to it either
                log.warning("disk %s: cannot take its owner lock (%s); read as it is", d.disk_id, exc)
    except DiskOwned as exc:
        release_disks(owned)
        raise RecoveryError(exc.message) from None
    try:
        return _recover(cfg, appliance_id, disks, progress, check_envelope)
    finally:
        release_disks(owned)


def _recover(cfg: Config, appliance_id: str, disks: list[tuple[Disk, labels.DiskLabel]], progress: Progress,
             check_envelope: EnvelopeCheck | None) -> RecoveryReport:
    meta = cfg.meta_path
    progress(RecoveryStep("disks", f"appliance {appliance_id}: {len(disks)} data disks", len(disks), len(disks)))
    data_disks = [d for d, _ in disks]
    progress(RecoveryStep("headers", "reading the header of every shard file and packed record"))
    found, count = scan_headers(data_disks)
    shard_files = count.total  # the report's one count: every shard header read, file or record
    progress(RecoveryStep("headers", f"read {shard_files} shard headers ({count.files} shard files, "
                                     f"{count.records} packed records; {len(found)} segments)",
                          shard_files, shard_files))
    encrypted = _unlock(cfg, found, check_envelope)  # refuses before anything is written
    if encrypted:
        progress(RecoveryStep("headers", f"{encrypted} encrypted segments: the master key opens their data keys"))
    resumed = _begin(meta)
    db = MetaDB(meta, recovering=True)
    try:
        raw = db.get(keys.progress(RECOVERED)) if resumed else None
        report = RecoveryReport.decode(raw) if raw else None
        if report is None or report.phase in ("", "snapshot"):
            if resumed:  # the snapshot restore did not finish: start over
                progress(RecoveryStep("snapshot", "an unfinished recovery is started over"))
                db.close()
                _wipe(meta)
                db = MetaDB(meta, recovering=True)
            report = RecoveryReport(phase="snapshot")
            _restore_newest(db, cfg, found, DiskSet(data_disks), appliance_id, report, progress)
            if db.appliance_id != appliance_id:
                db.load([(keys.appliance("id"), appliance_id.encode())], sync=True)
            # snapshot_lsn: None without a snapshot, False for one taken before the journal existed
            has_lsn = db.get(keys.JOURNAL_LSN) is not None
            report.journal = {"from_lsn": db.lsn} | ({} if report.snapshot is None else {"snapshot_lsn": has_lsn})
            report.phase = "journal"
            _save(db, report)
        elif resumed:
            progress(RecoveryStep("snapshot", f"resuming an unfinished recovery at its {report.phase} step"))
        report.appliance_id = appliance_id
        report.disks = [f"{d.disk_id} ({d.path})" for d, _ in disks]
        report.shard_files = shard_files
        if report.phase == "journal":
            _replay(db, data_disks, report, progress)
            report.phase = "reconcile"
            _save(db, report)
        _reconcile(db, cfg, found, disks, report, progress)
        report.restored = _counts(db)
        report.not_restored += _reconcile_notes(report)
        report.phase = RECOVERY_DONE
        # what reconciliation changed is in no journal record: the first start takes a snapshot
        db.load([(keys.progress(RECOVERED), report.encode()), (keys.CHECKPOINT_DUE, b"1")], sync=True)
    finally:
        db.close()
    (meta / RECOVERY_MARKER).unlink()
    fsync_dir(meta)
    with contextlib.suppress(OSError):
        (Path(cfg.state_dir) / "appliance-id").write_text(appliance_id + "\n")
    os.sync()
    progress(RecoveryStep("done", "metadata DB rebuilt", 1, 1))
    return report

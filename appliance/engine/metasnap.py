"""Metadata snapshots: a consistent copy of the LevelDB, erasure-coded on the data disks.

`take_snapshot` iterates a LevelDB snapshot (a consistent point-in-time view; writers are not
blocked) into a file on the metadata disk, then stores that file as an ordinary segment on the
data pool (same k+m as the objects), whose shard headers carry the identity
{"meta_snapshot": 1, "created_ns", "seq"}. The segment is held by a reference (refcount 1) and
listed under `X snapshots` (progress.SnapshotList), so it is scrubbed and healed like any data;
the oldest beyond `keep` are dereferenced and collected by the GC. A small manifest,
`<disk>/meta-snapshots/manifest.json`, lists the kept snapshots for operators; recovery
(recover.py) does not need it: it finds snapshot segments by their shard headers and reads them
with `read_stream`. When to take one is the snapshot service's business (services/snapshot.py).
The DB copy holds keys.JOURNAL_LSN, the last metadata-journal record it includes (also in the
stream header and the shard identity as "journal_lsn"): once a snapshot is committed the
journal rolls to new files and deletes the ones holding nothing newer than the previous
snapshot (journal.py), so either of the two newest snapshots plus the journal is complete.

Stream format (version 1), all integers little endian:

    b"STWMSNAP" | u16 format | u32 json length | JSON {appliance_id, created_ns, seq, db_format, journal_lsn}
    records:    u32 key length | u32 value length | key | value          (key length < 2^31)
    end:        u32 0xFFFFFFFF | u32 0 | u64 record count | u32 CRC32C of every record byte before it
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import trio
from awscrt.checksums import crc32c

from diskmgr.crashpoints import crash_point
from diskmgr.durable import fsync_dir

from . import keys
from .errors import FormatError
from .metadb import DB_FORMAT, MetaDB
from .progress import SNAPSHOTS, SnapshotInfo, SnapshotList
from .records import SegmentRef
from .storecore import StoreCore

log = logging.getLogger("stowage.snapshot")

MAGIC = b"STWMSNAP"
SNAP_FORMAT = 1
END = 0xFFFFFFFF
LIST_KEY = keys.progress(SNAPSHOTS)
MANIFEST_DIR = "meta-snapshots"
PIECE = 1 << 20
_HDR = struct.Struct("<8sHI")
_REC = struct.Struct("<II")
_END = struct.Struct("<QI")  # after an end marker record header

Records = Iterator[tuple[bytes, bytes]]


def write_stream(items: Records, out: BinaryIO, meta: dict[str, Any]) -> int:
    """Serialise (key, value) pairs; returns the record count (blocking)."""
    head = json.dumps(meta).encode()
    out.write(_HDR.pack(MAGIC, SNAP_FORMAT, len(head)) + head)
    crc = 0
    n = 0
    for k, v in items:
        rec = _REC.pack(len(k), len(v)) + k + v
        crc = crc32c(rec, crc)
        out.write(rec)
        n += 1
    out.write(_REC.pack(END, 0) + _END.pack(n, crc))
    return n


def _records_v1(f: BinaryIO) -> Records:
    crc = 0
    count = 0
    while True:
        raw = f.read(_REC.size)
        if len(raw) < _REC.size:
            raise FormatError("metadata snapshot truncated")
        klen, vlen = _REC.unpack(raw)
        if klen == END:
            rest = f.read(_END.size)
            if len(rest) < _END.size:
                raise FormatError("metadata snapshot truncated")
            total, want = _END.unpack(rest)
            if total != count or want != crc:
                raise FormatError("metadata snapshot checksum mismatch")
            return
        body = f.read(klen + vlen)
        if len(body) < klen + vlen:
            raise FormatError("metadata snapshot truncated")
        crc = crc32c(raw + body, crc)
        count += 1
        yield body[:klen], body[klen:]


# stream format version -> reader of the records after the header
_READERS: dict[int, Callable[[BinaryIO], Records]] = {1: _records_v1}


def read_stream(f: BinaryIO) -> tuple[dict[str, Any], Records]:
    """Parse a snapshot stream; the iterator raises FormatError on damage or truncation."""
    raw = f.read(_HDR.size)
    if len(raw) < _HDR.size:
        raise FormatError("metadata snapshot truncated")
    magic, version, n = _HDR.unpack(raw)
    if magic != MAGIC:
        raise FormatError("not a stowage metadata snapshot")
    reader = _READERS.get(version)
    if reader is None:
        raise FormatError(f"metadata snapshot format {version} is not supported by this version")
    try:
        meta = json.loads(f.read(n))
    except ValueError as exc:
        raise FormatError(f"damaged metadata snapshot header: {exc}") from exc
    return meta, reader(f)


def stored_snapshots(db: MetaDB) -> list[SnapshotInfo]:
    """The snapshots the DB lists as kept, oldest first."""
    raw = db.get(LIST_KEY)
    return SnapshotList.decode(raw).snapshots if raw else []


def list_snapshots(store: StoreCore) -> list[SnapshotInfo]:
    return stored_snapshots(store.db)


def changed_since(store: StoreCore, snap: SnapshotInfo) -> bool:
    """Whether anything was committed after the snapshot was taken."""
    raw = store.db.get(keys.appliance("seq"))
    return raw is None or keys.unpack_seq(raw) > snap.seq


@dataclass(frozen=True)
class _Serialised:
    seq: int
    journal_lsn: int  # the last journal record the snapshot holds
    records: int
    checkpoint_due: bool  # the DB asked for this snapshot (keys.CHECKPOINT_DUE)


def _serialise(store: StoreCore, path: Path, created_ns: int) -> _Serialised:
    """Write a consistent view of the DB to `path` (blocking). keys.CHECKPOINT_DUE is left out:
    the snapshot is the checkpoint it asks for."""
    db = store.db
    snap = db.snapshot()
    seq_raw = snap.get(keys.appliance("seq"))
    seq = keys.unpack_seq(seq_raw) if seq_raw else 0
    lsn_raw = snap.get(keys.JOURNAL_LSN)
    lsn = keys.unpack_seq(lsn_raw) if lsn_raw else 0
    due = snap.get(keys.CHECKPOINT_DUE) is not None
    meta = {"appliance_id": db.appliance_id, "created_ns": created_ns, "seq": seq, "db_format": DB_FORMAT,
            "journal_lsn": lsn}
    with open(path, "wb") as f, snap.iterator(verify_checksums=True) as it:
        n = write_stream(((k, v) for k, v in it if k != keys.CHECKPOINT_DUE), f, meta)
        f.flush()
        os.fsync(f.fileno())
    return _Serialised(seq, lsn, n, due)


async def take_snapshot(store: StoreCore, keep: int) -> tuple[SnapshotInfo, list[SnapshotInfo]] | None:
    """Store a snapshot of the DB now, keeping the newest `keep`. Returns (the new one, all kept);
    None when there is nothing to store. Callers serialise calls (one temporary file)."""
    created = time.time_ns()
    tmp_dir = Path(store.cfg.state_dir) / "run"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / "meta-snapshot.tmp"
    try:
        ser = await trio.to_thread.run_sync(_serialise, store, path, created)
        seq, count = ser.seq, ser.records

        async def body() -> AsyncIterator[bytes]:
            async with await trio.open_file(path, "rb") as f:
                while piece := await f.read(PIECE):
                    yield piece

        pools = store.disks.pools()
        pool = "default" if "default" in pools or not pools else pools[0]
        rec, _ = await store.seg.write(body(), store.geometry(pool), store.disks.pool(pool),
                                       {"meta_snapshot": 1, "created_ns": created, "seq": seq,
                                        "journal_lsn": ser.journal_lsn})
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if rec is None:
        return None
    info = SnapshotInfo(rec.segment_id, created, seq, rec.length, count, ser.journal_lsn)
    try:
        async with store.txn() as t:
            t.add_segment(rec)
            t.incref([SegmentRef(rec.segment_id, 0, rec.length)])
            current = [*list_snapshots(store), info]
            for old in current[:-keep]:
                t.decref([SegmentRef(old.segment_id, 0, 0)])
            kept = current[-keep:]
            t.batch.put(LIST_KEY, SnapshotList(kept).encode())
            if ser.checkpoint_due:
                t.batch.delete(keys.CHECKPOINT_DUE)
    except BaseException:
        await store.discard_segment(rec)
        raise
    crash_point("snapshot.committed")
    # the journal is kept back to the previous snapshot, so that recovery falling back to it (the
    # newest one damaged beyond repair) still replays every commit since
    await _compact_journal(store, kept[-2].journal_lsn if len(kept) > 1 else ser.journal_lsn)
    await _write_manifests(store, kept)
    log.info("metadata snapshot %s: %d records, %d bytes", rec.segment_id, count, rec.length)
    return info, kept


async def _compact_journal(store: StoreCore, covered_lsn: int) -> None:
    """The snapshot is stored and committed: the journal starts new files (on the disks that take
    writes now) and deletes those holding only records the snapshot has."""
    journal = store.db.journal
    if journal is None:
        return
    journal.roll(store.journal_targets())
    removed = await trio.to_thread.run_sync(journal.compact, covered_lsn)
    if removed:
        log.info("metadata journal: %d files up to record %d deleted (the snapshot holds them)", removed, covered_lsn)


async def _write_manifests(store: StoreCore, kept: list[SnapshotInfo]) -> None:
    doc = json.dumps({"format": 1, "appliance_id": store.db.appliance_id,
                      "snapshots": [asdict(s) for s in kept]}, indent=1).encode()
    for disk in store.disks:
        if not disk.writable or not disk.is_initialised():
            continue  # never create directories on a disk that may be an empty mount point

        def work(root: Path = disk.path) -> None:
            d = root / MANIFEST_DIR
            if not d.is_dir():
                d.mkdir()
                fsync_dir(str(root))  # the new directory's name, durable before the file in it is
            tmp = d / "manifest.json.tmp"
            with open(tmp, "wb") as f:
                f.write(doc)
                os.fsync(f.fileno())
            os.replace(tmp, d / "manifest.json")
            fsync_dir(str(d))

        try:
            await trio.to_thread.run_sync(work, limiter=disk.limiter)
        except OSError as exc:
            log.warning("could not write the snapshot manifest on %s: %s", disk.disk_id, exc)

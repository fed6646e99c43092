"""The metadata journal: every commit to the metadata DB, appended to logs on the data disks.

Losing the metadata SSD must not lose an acknowledged change, and the erasure-coded snapshots
(metasnap.py) are only taken now and then. So every WriteBatch the DB commits (metadb.py) is
also one record of this journal, numbered by its log sequence number (lsn, one more per commit,
also written into the batch itself under keys.JOURNAL_LSN), and appended to a file on every
journal disk. A durable commit (sync=True) is acknowledged once `quorum` disks (m+1, the number
of disk losses the data survives plus one) have fsync'd it: each disk has a writer thread that
writes everything queued since its last fsync and then fsyncs once, so concurrent commits share
one fsync per disk (group commit). Queueing a record wakes no writer: MetaDB kicks the quorum
disks (`kick`) when the group that writes and syncs LevelDB begins, so the journal's groups are
LevelDB's groups (a writer woken at every staged commit wrote groups of one or two records, at
~3 thread switches each: 7% fewer small PUTs/s). A disk that fails, or stalls longer than
STALL_SECONDS, is dropped from the journal until the next roll; commits go on with the others. A commit nobody
waits for yet (the mount's close, durable at fsync or within mount.durability_seconds) is a
lazy record: no group kicks it; it goes out with the next kicked record, when a commit waits
for it, once LAZY_BYTES are queued, or after LAZY_SECONDS, so a run of closes
shares one fsync per disk instead of costing one each. Only the first `quorum` live disks
write and fsync every group; the spares take records as lazy ones (within LAZY_SECONDS), unless
a commit has waited SPARE_AFTER for its quorum (a slow or hung disk), when they sync at once:
half the fsyncs and writer wake-ups per commit with six disks, +12% small PUTs/s measured.

A metadata snapshot holds every record up to the lsn in its copy of the DB: after one is
stored, the journal rolls to new files and the files holding only older records are deleted.
Recovery (recover.py) = the newest complete snapshot + every record after it, read from any
disk that holds it. At start-up (`open_journal`) the DB and the journal are brought into line:
records the DB lacks (a crash after the journal write, before LevelDB's) are applied to it, and
when the journal lacks records the DB holds (a power cut lost its unsynced tail; writes made
while no journal was open) a snapshot is marked due at once (keys.CHECKPOINT_DUE).

File `<disk>/journal/<first lsn: 16 hex digits>.jnl`, all integers little endian:

    header:  b"STWJRNL\\0" | u16 format | u32 json length | JSON {appliance_id, disk_id, first_lsn, created_ns}
    records: u32 body length | u32 CRC32C(body) | body
    body:    u64 lsn | u64 commit ns | u32 op count | ops
    op:      u8 1 (put) | u32 key length | key | u32 value length | value
             u8 0 (delete) | u32 key length | key

Lsns within a file are consecutive, from first_lsn. A reader stops at the first record that is
cut short, fails its checksum or is out of sequence (a torn tail: written but not yet synced when
the power went); the records before it stand. The values are the DB's bytes: a secret is in the
journal exactly as in LevelDB, wrapped by the master key.

Whoever journals to a disk owns it: the journal holds an exclusive flock on
`<disk>/journal/owner.lock` (holding the owner's pid) from open to close, so `stowage
recover-metadata` can tell that a daemon or a `stowage` command still writes to the disks, even
one it cannot reach over the control socket (the kernel drops the lock when the process dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import logging
import os
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from awscrt.checksums import crc32c

from diskmgr.durable import fsync_dir, open_regular

from .errors import FormatError, MetadataUnavailable, StowageError
from .shardfile import write_durable

log = logging.getLogger("stowage.journal")

MAGIC = b"STWJRNL\x00"
JOURNAL_FORMAT = 1
JOURNAL_DIR = "journal"
SUFFIX = ".jnl"
OWNER_LOCK = "owner.lock"
STALL_SECONDS = 10.0  # a disk whose write or fsync takes longer leaves the journal
LAG_BYTES = 64 << 20  # ... and so does one that falls this far behind the others
# A lazy record (a commit nobody waits for yet: the mount's close, within its durability
# interval) is written with the next urgent one, when a commit waits for it, or after this long
LAZY_SECONDS = 1.0
LAZY_BYTES = 1 << 20  # ... or once this much is queued
SPARE_AFTER = 0.05  # a commit waiting this long for its quorum has the spare disks sync too
MAX_BODY = 1 << 30
_HDR = struct.Struct("<8sHI")
_FRAME = struct.Struct("<II")
_BODY = struct.Struct("<QQI")
_OP = struct.Struct("<BI")
_LEN = struct.Struct("<I")
PUT, DELETE = 1, 0

Writes = dict[bytes, "bytes | None"]


# --- records ---------------------------------------------------------------------------------


def encode(lsn: int, writes: Writes, committed_ns: int) -> bytes:
    """One framed record: the batch's writes in order."""
    parts = [_BODY.pack(lsn, committed_ns, len(writes))]
    for k, v in writes.items():
        if v is None:
            parts += [_OP.pack(DELETE, len(k)), k]
        else:
            parts += [_OP.pack(PUT, len(k)), k, _LEN.pack(len(v)), v]
    body = b"".join(parts)
    return _FRAME.pack(len(body), crc32c(body)) + body


@dataclass(frozen=True)
class Record:
    lsn: int
    committed_ns: int
    writes: list[tuple[bytes, bytes | None]]  # None: a delete


def decode_body(body: bytes) -> Record:
    """The record in a body whose checksum was verified; FormatError if it does not parse."""
    try:
        lsn, ns, n = _BODY.unpack_from(body, 0)
        at = _BODY.size
        writes: list[tuple[bytes, bytes | None]] = []
        for _ in range(n):
            op, klen = _OP.unpack_from(body, at)
            at += _OP.size
            key = body[at:at + klen]
            at += klen
            if op == PUT:
                (vlen,) = _LEN.unpack_from(body, at)
                at += _LEN.size
                writes.append((key, body[at:at + vlen]))
                at += vlen
            elif op == DELETE:
                writes.append((key, None))
            else:
                raise FormatError(f"journal record {lsn}: unknown operation {op}")
        if at != len(body):
            raise FormatError(f"journal record {lsn}: {len(body) - at} bytes left over")
    except struct.error as exc:
        raise FormatError(f"damaged journal record: {exc}") from exc
    return Record(lsn, ns, writes)


def decode_record(record: bytes) -> Record:
    """The record of a framed record made by `encode`."""
    return decode_body(record[_FRAME.size:])


def body_lsn(body: bytes) -> int:
    return int(_BODY.unpack_from(body, 0)[0])


# --- files -----------------------------------------------------------------------------------


def file_name(first_lsn: int) -> str:
    return f"{first_lsn:016x}{SUFFIX}"


def list_files(disk_root: Path) -> list[tuple[int, Path]]:
    """(first lsn, path) of a disk's journal files, oldest first."""
    try:
        entries = list(os.scandir(disk_root / JOURNAL_DIR))
    except OSError:
        return []
    out = []
    for e in entries:
        stem = e.name[:-len(SUFFIX)] if e.name.endswith(SUFFIX) else ""
        if len(stem) == 16:
            with contextlib.suppress(ValueError):
                out.append((int(stem, 16), Path(e.path)))
    return sorted(out)


@dataclass
class FileScan:
    """What reading one journal file found."""

    path: Path
    first: int
    last: int = 0  # the last valid lsn (first - 1: none)
    records: int = 0
    torn: str = ""  # why reading stopped before the end of the file ("" = it did not)
    torn_offset: int = 0
    appliance_id: str = ""


def _header(f: BinaryIO) -> tuple[int, str]:
    raw = f.read(_HDR.size)
    if len(raw) < _HDR.size:
        raise FormatError("journal file header cut short")
    magic, version, n = _HDR.unpack(raw)
    if magic != MAGIC:
        raise FormatError("not a stowage journal file")
    if version != JOURNAL_FORMAT:
        raise FormatError(f"journal format {version} is not supported by this version")
    try:
        meta = json.loads(f.read(n))
        return int(meta["first_lsn"]), str(meta["appliance_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"damaged journal file header: {exc}") from exc


def read_file(path: Path, first: int, scan: FileScan, after: int = 0) -> Iterator[tuple[int, bytes]]:
    """(lsn, body) of every valid record with lsn > after, in order; `scan` is filled in as the
    file is read (complete once the iterator is exhausted)."""
    # a file whose header does not back its name says nothing of the lsns: a stray
    # ffffffffffffffff.jnl made the next lsn 2^64 (struct.error at every start)
    scan.last = 0
    try:
        f = open_regular(path)  # closed below, the generator may be abandoned
    except (OSError, FormatError) as exc:
        scan.torn = f"unreadable: {exc}"
        return
    with f:
        try:
            head_first, scan.appliance_id = _header(f)
        except (OSError, FormatError) as exc:
            scan.torn = str(exc)
            return
        if head_first != first:
            scan.torn = f"header says first record {head_first}, name says {first}"
            return
        scan.last = first - 1
        expected = first
        while True:
            at = f.tell()
            try:
                frame = f.read(_FRAME.size)
            except OSError as exc:
                scan.torn, scan.torn_offset = f"read error: {exc}", at
                return
            if not frame:
                return  # a clean end
            if len(frame) < _FRAME.size:
                scan.torn, scan.torn_offset = "record cut short", at
                return
            length, crc = _FRAME.unpack(frame)
            if length < _BODY.size or length > MAX_BODY:
                scan.torn, scan.torn_offset = "damaged record length", at
                return
            try:
                body = f.read(length)
            except OSError as exc:
                scan.torn, scan.torn_offset = f"read error: {exc}", at
                return
            if len(body) < length:
                scan.torn, scan.torn_offset = "record cut short", at
                return
            if crc32c(body) != crc:
                scan.torn, scan.torn_offset = "checksum mismatch", at
                return
            lsn = body_lsn(body)
            if lsn != expected:
                scan.torn, scan.torn_offset = f"record {lsn} where {expected} was due", at
                return
            scan.last, scan.records = lsn, scan.records + 1
            expected += 1
            if lsn > after:
                yield lsn, body


@dataclass
class DiskJournal:
    """A disk's journal files, as found at start-up."""

    disk_id: str
    files: list[tuple[int, Path]]
    newest_last: int = 0  # the last valid lsn of its newest file (0: no files)
    ahead: dict[int, bytes] = field(default_factory=dict)  # records after the DB's lsn
    max_lsn: int = 0  # the highest valid lsn in the files read


def scan_disk(disk_id: str, root: Path, after: int) -> DiskJournal:
    """Read the files of one disk that may hold records after lsn `after` (usually the newest
    alone); keep those records (blocking)."""
    files = list_files(root)
    dj = DiskJournal(disk_id, files)
    for i, (first, path) in enumerate(files):
        nxt = files[i + 1][0] if i + 1 < len(files) else None
        if nxt is not None and nxt - 1 <= after:
            continue
        scan = FileScan(path, first)
        for lsn, body in read_file(path, first, scan, after):
            dj.ahead[lsn] = body
        dj.max_lsn = max(dj.max_lsn, scan.last)
        if nxt is None:
            dj.newest_last = scan.last
    return dj


def merged_records(roots: dict[str, Path], after: int,
                   scans: list[tuple[str, FileScan]]) -> Iterator[tuple[int, bytes]]:
    """Every valid record with lsn > after on any of the disks, once each, in lsn order (for
    recovery: a record torn or missing on one disk is taken from another). `scans` receives a
    FileScan per file read, complete once the iterator is exhausted."""

    def one_disk(disk_id: str, root: Path) -> Iterator[tuple[int, bytes]]:
        files = list_files(root)
        for i, (first, path) in enumerate(files):
            nxt = files[i + 1][0] if i + 1 < len(files) else None
            if nxt is not None and nxt - 1 <= after:
                continue  # only records the snapshot already holds
            scan = FileScan(path, first)
            scans.append((disk_id, scan))
            yield from read_file(path, first, scan, after)

    last = after
    for lsn, body in heapq.merge(*(one_disk(d, r) for d, r in roots.items()), key=lambda t: t[0]):
        if lsn > last:
            last = lsn
            yield lsn, body


# --- ownership ----------------------------------------------------------------------------------


class DiskOwned(StowageError):
    """Another process journals to the disk (a running daemon, or a `stowage` command)."""

    code = "DiskOwned"


def own_disk(root: Path) -> int:
    """Take the disk's owner lock (module doc): the open descriptor, to be closed to release it.
    DiskOwned if another process holds it."""
    d = root / JOURNAL_DIR
    if not d.is_dir():
        d.mkdir(mode=0o700)
        fsync_dir(root)
    fd = os.open(d / OWNER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DiskOwned(f"the disk at {root} is in use by another process (pid {holder}: the daemon, or a "
                        "`stowage` command); stop it first") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release_disks(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


# --- the writer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalTarget:
    disk_id: str
    path: Path  # the disk's root


class _Roll:
    """Queued after a snapshot: close the current file; the next record starts a new one."""


_ROLL = _Roll()


class _DiskLog:
    """One disk's journal file and the thread that appends to it and fsyncs it."""

    def __init__(self, journal: Journal, target: JournalTarget, old_files: list[tuple[Path, int]]) -> None:
        self.j = journal
        self.target = target
        self.dir = target.path / JOURNAL_DIR
        self.items: list[tuple[int, bytes] | _Roll] = []
        self.pending_bytes = 0
        self.kick = False  # some queued item is urgent (else all are lazy: see LAZY_SECONDS)
        self.queued_since = 0.0  # monotonic time the oldest queued item was
        self.durable = 0  # the highest lsn fsync'd here
        self.failed = ""
        self.busy_since = 0.0  # monotonic time the current write began (0: idle)
        self.fd = -1
        self.path: Path | None = None
        self.file_last = 0
        self.closed: list[tuple[Path, int]] = list(old_files)  # (file, last lsn) no longer written
        # what this disk's thread waits on for work, under the journal's lock: an append wakes
        # only the threads with nothing queued, and a disk's fsync wakes only the commits
        # waiting on `cond`, not the other disks' threads
        self.wake = threading.Condition(journal.lock)
        self.thread = threading.Thread(target=self._run, name=f"journal-{target.disk_id}", daemon=True)

    def enqueue(self, item: tuple[int, bytes] | _Roll) -> None:
        """(under the journal's condition) queue `item`, without waking the thread (a caller
        in a hurry sets `kick` and notifies `wake`)."""
        if not self.items:
            self.queued_since = time.monotonic()
        self.items.append(item)

    def fail(self, why: str) -> None:
        """(under the journal's condition) leave the journal."""
        if not self.failed:
            self.failed = why
            self.items, self.pending_bytes = [], 0
            log.warning("metadata journal on disk %s stopped: %s", self.target.disk_id, why)
            self.j.cond.notify_all()
            self.wake.notify()

    def _run(self) -> None:
        cond = self.j.cond
        while True:
            with cond:
                while not self.j.closing and not self.failed:
                    if not self.items:
                        # timed: a lazy record is queued without waking this thread (only a
                        # kick does), so an idle writer looks again every LAZY_SECONDS
                        self.wake.wait(LAZY_SECONDS)
                        continue
                    due = self.queued_since + LAZY_SECONDS - time.monotonic()
                    if self.kick or due <= 0:
                        break
                    self.wake.wait(due)
                if self.failed or not self.items:
                    break
                items, self.items, self.pending_bytes, self.kick = self.items, [], 0, False
                self.busy_since = time.monotonic()
                self.j.batches.observe(len(items))
            try:
                last = self._write(items)
            except OSError as exc:
                with cond:
                    self.fail(f"write failed: {exc}")
                break
            with cond:
                self.busy_since = 0.0
                if not self.failed:
                    self.durable = max(self.durable, last)
                cond.notify_all()
        self._close_file()

    def _write(self, items: list[tuple[int, bytes] | _Roll]) -> int:
        buf: list[bytes] = []
        last = 0
        for item in items:
            if isinstance(item, _Roll):
                self._flush(buf)
                buf = []
                self._close_file()
                continue
            lsn, rec = item
            if self.fd < 0:
                self._open(lsn)
            buf.append(rec)
            last = self.file_last = lsn
        self._flush(buf)
        return last

    def _flush(self, buf: list[bytes]) -> None:
        if not buf:
            return
        write_durable(self.fd, buf, -1)  # at the file's end (opened for appending or truncated)

    def _open(self, first: int) -> None:
        if not self.dir.is_dir():
            self.dir.mkdir()
            fsync_dir(self.target.path)
        path = self.dir / file_name(first)
        head = json.dumps({"appliance_id": self.j.appliance_id, "disk_id": self.target.disk_id,
                           "first_lsn": first, "created_ns": time.time_ns()}).encode()
        # O_TRUNC: a file of this name can only hold records that were never valid (open_journal
        # starts numbering after every valid record found)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            os.write(fd, _HDR.pack(MAGIC, JOURNAL_FORMAT, len(head)) + head)
            os.fdatasync(fd)
            fsync_dir(self.dir)
        except BaseException:
            os.close(fd)
            raise
        self.fd, self.path, self.file_last = fd, path, first - 1

    def _close_file(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            if self.path is not None:
                with self.j.cond:
                    self.closed.append((self.path, self.file_last))
            self.fd, self.path = -1, None


BATCH_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class BatchSizes:
    """How many commit records each journal write (one fdatasync on one disk) carried: the
    group commit's effect, exported as a histogram by the metrics endpoint."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BATCH_BOUNDS) + 1))
    total: int = 0  # records written, over all writes

    def observe(self, n: int) -> None:
        i = 0
        while i < len(BATCH_BOUNDS) and n > BATCH_BOUNDS[i]:
            i += 1
        self.counts[i] += 1
        self.total += n


@dataclass(frozen=True)
class JournalStatus:
    disks: list[str]  # disks the journal is written to
    stopped: dict[str, str]  # disk id -> why it left the journal
    quorum: int
    last_lsn: int
    bytes_since_roll: int


class Journal:
    """The journal of one open metadata DB (see the module doc). `append` is called by MetaDB
    in commit order; `wait` blocks until a record is durable on `quorum` disks."""

    def __init__(self, appliance_id: str, targets: list[JournalTarget], quorum: int,
                 old_files: dict[str, list[tuple[Path, int]]] | None = None) -> None:
        self.appliance_id = appliance_id
        self.quorum = max(1, quorum)
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)  # commits waiting for durability (and state)
        self.closing = False
        self.last_lsn = 0
        self.bytes_since_roll = 0
        self.batches = BatchSizes()  # updated under `cond`
        self.logs: dict[str, _DiskLog] = {}
        self.owned: dict[str, int] = {}  # disk id -> descriptor holding its owner lock
        try:
            for t in targets:
                self._add(t, (old_files or {}).get(t.disk_id, []))
        except BaseException:
            self.close()
            raise

    def _add(self, target: JournalTarget, old: list[tuple[Path, int]]) -> None:
        """Journal to one more disk; DiskOwned if another process does (a disk that fails here
        is left out, as one that fails a write later)."""
        if target.disk_id not in self.owned:
            try:
                self.owned[target.disk_id] = own_disk(target.path)
            except OSError as exc:
                log.warning("metadata journal: disk %s left out: %s", target.disk_id, exc)
                return
        dl = _DiskLog(self, target, old)
        self.logs[target.disk_id] = dl
        dl.thread.start()

    def _live(self) -> list[_DiskLog]:
        return [dl for dl in self.logs.values() if not dl.failed]

    def append(self, lsn: int, record: bytes, lazy: bool = False) -> None:
        """Queue a framed record (`encode`) for every disk; never blocks on a disk. `lazy`: no
        commit waits for it yet, so it need not cost an fsync of its own (LAZY_SECONDS)."""
        with self.cond:
            for i, dl in enumerate(self._live()):
                spare = i >= self.quorum  # a spare disk's fsync is needed only if a quorum disk lags
                dl.enqueue((lsn, record))
                dl.pending_bytes += len(record)
                if dl.pending_bytes > LAG_BYTES:
                    dl.fail(f"more than {LAG_BYTES >> 20} MiB behind the other disks")
                    continue
                if not dl.kick and (not (lazy or spare) or dl.pending_bytes > LAZY_BYTES):
                    dl.kick = True
                    dl.wake.notify()
            self.last_lsn = lsn
            self.bytes_since_roll += len(record)

    def covers(self, lsn: int) -> bool:
        """Whether record `lsn` is durable already, as `wait` would find it (never blocks on a
        disk: the event loop asks, and skips a thread call when it is)."""
        with self.cond:
            live = self._live()
            return bool(live) and self._quorum_has(live, lsn)

    def _quorum_has(self, live: list[_DiskLog], lsn: int) -> bool:
        return sum(1 for dl in live if dl.durable >= lsn) >= min(self.quorum, len(live))

    def wait(self, lsn: int) -> None:
        """Block until record `lsn` is durable on `quorum` disks (on every disk left, when fewer
        remain). MetadataUnavailable when no disk takes the journal any more."""
        with self.cond:
            began = time.monotonic()
            while True:
                now = time.monotonic()
                live = self._live()
                for dl in live:
                    if dl.busy_since and now - dl.busy_since > STALL_SECONDS:
                        dl.fail(f"a write took more than {STALL_SECONDS:.0f} s")
                live = self._live()
                if not live:
                    raise MetadataUnavailable("no data disk accepts the metadata journal: commits are refused")
                if self._quorum_has(live, lsn):
                    return
                # the quorum disks first; the spares too once the wait takes longer than SPARE_AFTER
                spares_too = now - began >= SPARE_AFTER
                self._kick(live if spares_too else live[:self.quorum], lsn)
                self.cond.wait(timeout=1.0 if spares_too else SPARE_AFTER - (now - began))

    def kick(self, lsn: int) -> None:
        """Have the quorum disks write and sync every record up to `lsn` now, lazy or not
        (never blocks on a disk)."""
        with self.cond:
            self._kick(self._live()[:self.quorum], lsn)

    @staticmethod
    def _kick(logs: list[_DiskLog], lsn: int) -> None:
        for dl in logs:
            if dl.items and not dl.kick and dl.durable < lsn:  # a lazy record is waited for
                dl.kick = True
                dl.wake.notify()

    def roll(self, targets: list[JournalTarget] | None = None) -> None:
        """Start new files with the next record (after a snapshot, so older files can go). With
        `targets`: the disks to journal to from now on (disks that left rejoin, new ones join;
        the snapshot just stored holds what they missed)."""
        with self.cond:
            for dl in self._live():
                dl.enqueue(_ROLL)
                dl.kick = True
                dl.wake.notify()
            self.bytes_since_roll = 0
            if targets is not None:
                wanted = {t.disk_id for t in targets}
                for disk_id, dl in list(self.logs.items()):
                    if disk_id not in wanted and not dl.failed:
                        dl.fail("no longer a journal disk")
                for t in targets:
                    old = self.logs.get(t.disk_id)
                    if old is None or old.failed:
                        try:
                            self._add(t, old.closed if old is not None else [])
                        except DiskOwned as exc:
                            log.warning("metadata journal: disk %s left out: %s", t.disk_id, exc)
            self.cond.notify_all()

    def compact(self, covered_lsn: int) -> int:
        """Delete the files (no longer written) whose records are all at or below `covered_lsn`,
        the lsn a stored snapshot holds. Returns the number deleted (blocking)."""
        doomed: list[Path] = []
        with self.cond:
            for dl in self._live():  # a disk that left may hang: its files wait for it to come back
                keep = []
                for path, last in dl.closed:
                    if last <= covered_lsn:
                        doomed.append(path)
                    else:
                        keep.append((path, last))
                dl.closed = keep
        removed = 0
        for path in doomed:
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not delete journal file %s: %s", path, exc)
        return removed

    def status(self) -> JournalStatus:
        with self.cond:
            return JournalStatus(sorted(d for d, dl in self.logs.items() if not dl.failed),
                                 {d: dl.failed for d, dl in self.logs.items() if dl.failed},
                                 self.quorum, self.last_lsn, self.bytes_since_roll)

    def close(self, timeout: float = 30.0) -> None:
        """Write and fsync what is queued, then stop the writers (a stalled one is abandoned)."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
            for dl in self.logs.values():
                dl.wake.notify()
        deadline = time.monotonic() + timeout
        for dl in list(self.logs.values()):
            dl.thread.join(max(0.0, deadline - time.monotonic()))
        release_disks(self.owned.values())
        self.owned.clear()


# --- start-up ---------------------------------------------------------------------------------


@dataclass
class JournalStart:
    """What `open_journal` found and did (for the log and the tests)."""

    redone: int = 0  # records the DB lacked, applied to it
    checkpoint_due: bool = False
    reason: str = ""


def scan_targets(targets: Iterable[JournalTarget], after: int) -> list[DiskJournal]:
    ts = list(targets)
    if not ts:
        return []
    with ThreadPoolExecutor(max_workers=len(ts)) as ex:
        return list(ex.map(lambda t: scan_disk(t.disk_id, t.path, after), ts))


def old_files_of(found: list[DiskJournal]) -> dict[str, list[tuple[Path, int]]]:
    """(file, last lsn) per disk for the files found, the last lsn of an older file taken as its
    successor's first - 1 (what compaction needs)."""
    out: dict[str, list[tuple[Path, int]]] = {}
    for dj in found:
        files = []
        for i, (_first, path) in enumerate(dj.files):
            last = dj.files[i + 1][0] - 1 if i + 1 < len(dj.files) else dj.newest_last
            files.append((path, last))
        out[dj.disk_id] = files
    return out


def records_after(found: list[DiskJournal], base: int) -> tuple[list[bytes], int]:
    """The records after `base` that follow it without a gap (any disk's copy), and the highest
    lsn seen anywhere."""
    ahead: dict[int, bytes] = {}
    for dj in found:
        for lsn, body in dj.ahead.items():
            ahead.setdefault(lsn, body)
    highest = max([base, *(dj.max_lsn for dj in found)])
    redo = []
    n = base + 1
    while n in ahead:
        redo.append(ahead[n])
        n += 1
    return redo, highest


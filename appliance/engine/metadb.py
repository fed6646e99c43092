"""The metadata database: LevelDB through plyvel, with versioned records.

Point reads stay inline in the trio loop (microseconds); the synchronous commit of a
WriteBatch (an fsync of LevelDB's log) runs in a worker thread so the loop keeps serving.
The appliance format version is stored in the DB itself; a DB written by a newer format is
refused with a clear message instead of being misread.

Every commit is numbered (its lsn, stored in the batch under keys.JOURNAL_LSN) and, once a
journal is open (`open_journal`, by the store at start-up or by an offline session), also
appended to the metadata journal on the data disks (journal.py) in the same order, under one
lock. A durable commit returns when LevelDB has synced it and the journal has it on its quorum
of disks; `apply` + `durable` split the two so that the store's commit lock is held only for
the first: `apply` writes the batch to LevelDB unsynced (visible at once to the next
transaction; after a kill -9 it is in the page cache, like a synced one), and `durable` waits
for a group sync (groupsync.py) of LevelDB's log files, shared by every commit written before
it began, and for the journal's quorum, whose fsyncs concurrent commits share as well. Every
log file is synced, not only the current one: a commit written just before LevelDB switched to
a new log is still in the old one until its memtable is flushed to a (synced) table. Commits made before a journal
is open (the disk records written at start-up) are held in memory and appended when it opens.
Reads verify LevelDB's block checksums (a block read from a table file, not from its cache): a
flipped bit in a table was otherwise read as a different value, a segment offset served as
other bytes. The DB is opened without `paranoid_checks`: with it, a record torn by a power cut at
the end of the log would refuse the whole DB instead of being dropped, as LevelDB drops it.
A LevelDB write that fails leaves the DB refusing commits (LevelDB itself refuses every write
after one failed): the daemon stops accepting writes and says why.

A commit is first staged (`stage`: numbered, queued for the journal and for LevelDB, no I/O),
then written to LevelDB by a worker thread (`flushed`, or `durable`, whose first thread call
writes every staged commit as one WriteBatch before syncing). Until written, `get` and `scan`
read a staged commit's writes from an overlay (newest per key); LevelDB's own iterators and
snapshots see it once written. The store stages a small PUT's commit under its commit lock and
writes it after releasing the lock (StoreCore.txn(staged=True)); any other transaction has
every staged commit written before it starts, so its direct scans miss nothing. No caller
returns before its commit is written; an acknowledged one is also synced, as before.
"""

from __future__ import annotations

import logging
import os
import resource
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import plyvel
import trio

from . import keys
from .errors import FormatError, MetadataUnavailable, StowageError
from .groupsync import GroupSync, LoopGroup
from .journal import (
    Journal,
    JournalStart,
    JournalStatus,
    JournalTarget,
    Writes,
    decode_body,
    decode_record,
    encode,
    old_files_of,
    records_after,
    scan_targets,
)
from .leveldblog import first_zeroed_hole
from .readcache import ReadCache
from .records import Record

log = logging.getLogger("stowage.metadb")

DB_FORMAT = 1
RECOVERY_MARKER = "RECOVERING"  # in the DB's directory while recover-metadata builds it
HELD_MAX = 10_000  # commits held for a journal not yet open; beyond, a snapshot is due instead
R = TypeVar("R", bound=Record)


def _merged(it: Iterable[tuple[bytes, bytes]],
            extra: list[tuple[bytes, bytes | None]]) -> Iterator[tuple[bytes, bytes]]:
    """Two key-ordered streams merged, `extra` winning on equal keys (None there: deleted)."""
    i = 0
    for k, v in it:
        while i < len(extra) and extra[i][0] < k:
            ek, ev = extra[i]
            if ev is not None:
                yield ek, ev
            i += 1
        if i < len(extra) and extra[i][0] == k:
            ek, ev = extra[i]
            if ev is not None:
                yield ek, ev
            i += 1
            continue
        yield k, v
    for ek, ev in extra[i:]:
        if ev is not None:
            yield ek, ev


class Batch:
    """A WriteBatch plus an overlay, so a transaction reads its own writes."""

    def __init__(self, db: MetaDB) -> None:
        self.db = db
        self.writes: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes | Record) -> None:
        self.writes[key] = value.encode() if isinstance(value, Record) else value

    def delete(self, key: bytes) -> None:
        self.writes[key] = None

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.db.get(key)

    def get_record(self, cls: type[R], key: bytes) -> R | None:
        raw = self.get(key)
        return cls.decode(raw) if raw is not None else None

    def scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """All (key, value) under prefix, merged with this batch's writes, in key order."""
        merged = dict(self.db.scan(prefix))
        for k, v in self.writes.items():
            if k.startswith(prefix):
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
        return sorted(merged.items())


def damaged(path: Path, exc: Exception) -> FormatError:
    return FormatError(f"cannot open metadata DB at {path}: {exc}. It is damaged: with the daemon stopped, "
                       f"move it aside (mv {path} {path}.broken) and rebuild it from the data disks with "
                       "`stowage recover-metadata` (docs/metadata-recovery.md)")


DAMAGED_KEY = keys.appliance("damaged")  # why the DB must be rebuilt (see _refuse_dropped_log)


def _dropped_log_records(info_log: Path) -> str | None:
    """The line of LevelDB's info LOG, written by the open just made, that reports records of
    its log skipped as damaged ("000003.log: dropping 28129 bytes; Corruption: checksum
    mismatch"); None when it reports none, or there is no LOG."""
    try:
        with open(info_log, "rb") as f:
            text = f.read(1 << 20).decode(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if ".log: dropping " in line:
            return line.split(" ", 2)[-1].strip()  # without LevelDB's time stamp and thread id
    return None


def _table_files() -> int:
    """LevelDB's open tables: up to 5,000, at most a quarter of the open-file limit (the daemon
    raises its soft limit at start; recover-metadata and the CLI may run under 1,024)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 5000 if soft == resource.RLIM_INFINITY else max(100, min(5000, soft // 4))


class MetadataInUse(StowageError):
    """Another process holds the metadata DB. Not a configuration error (exit 78, which systemd
    does not restart): a killed daemon with a thread stuck in the kernel holds it until that
    thread returns, and a later start then succeeds."""

    code = "MetadataInUse"


class MetaDB:
    def __init__(self, path: Path, *, recovering: bool = False) -> None:
        """`recovering`: opened by recover-metadata, which may find its own unfinished DB."""
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # (a file where the directory belongs: FileExistsError)
            raise FormatError(f"cannot open metadata DB at {path}: {exc.strerror or exc}") from exc
        if (path / RECOVERY_MARKER).exists() and not recovering:
            raise FormatError(f"{path} holds the metadata DB of an unfinished `stowage recover-metadata`: "
                              "run it again to finish it")
        hole = first_zeroed_hole(path)  # before the open, which replays the log and deletes it
        try:
            # A bloom filter per table (a HEAD of a missing key reads no block), a 32 MiB block
            # cache and more open tables than LevelDB's default 1,000: at 10M records these halved
            # HEAD's median and cut the first delimiter page's seeks by ~40% (bench/README.md,
            # listings), for ~13 MiB. Tables written before keep working (filters are per table).
            self.db = plyvel.DB(str(path), create_if_missing=True, bloom_filter_bits=10,
                                lru_cache_size=32 << 20, max_open_files=_table_files())
        except plyvel.CorruptionError as exc:
            raise damaged(path, exc) from exc
        except plyvel.Error as exc:
            if isinstance(exc, plyvel.IOError) and "/LOCK: " in str(exc):  # LevelDB's lock, held by another process
                raise MetadataInUse(f"the metadata DB at {path} is in use by another process (the daemon, "
                                    "running or still exiting, or a `stowage` command); stop it first") from exc
            raise FormatError(f"cannot open metadata DB at {path}: {exc}") from exc
        self.path = path
        try:
            self._refuse_dropped_log(recovering, hole)
            self._check_format()
            raw = self.db.get(keys.JOURNAL_LSN, verify_checksums=True)
            # a DB from before the journal holds changes no journal record has: not so an empty one
            self.lsn_known = raw is not None or not self._holds_data()
        except plyvel.Error as exc:  # (a truncated table is an IOError)
            self.db.close()
            raise damaged(path, exc) from exc
        except FormatError:
            self.db.close()
            raise
        self.lsn = keys.unpack_seq(raw) if raw else 0
        self.opened_lsn = self.lsn
        self._order = threading.Lock()  # commit order: lsn, journal queue and LevelDB write agree
        self.written = self.lsn  # the highest lsn whose LevelDB write has completed
        # Staged commits (`stage`): numbered and journaled, not yet written to LevelDB, in lsn
        # order; their writes, newest per key, are what `get` and `scan` read first.
        self._queue: list[tuple[int, Writes]] = []
        self._overlay: dict[bytes, tuple[int, bytes | None]] = {}
        self._drain_lock = threading.Lock()  # every LevelDB write: staged commits' in lsn order
        self._flush_running: trio.Event | None = None
        self.log_sync = GroupSync(self._sync_logs, lambda: self.written)
        self.cache = ReadCache()  # what `get` read from LevelDB (readcache.py)
        # durable()'s two stages (the first wait syncs, whatever the DB held when opened)
        self._synced = LoopGroup(self._flush_and_sync, lambda: self.lsn)
        self._journaled = LoopGroup(self._wait_journal, lambda: self._synced.done)
        self.journal: Journal | None = None
        self._held: list[tuple[int, bytes]] | None = []
        self.failed = ""
        # run on every commit's writes, under the commit order, before the lsn is taken: what a
        # hook adds commits with them (site replication stamps and queues its records' changes)
        self.write_hooks: list[Callable[[Writes], None]] = []

    def _refuse_dropped_log(self, recovering: bool, hole: str | None) -> None:
        """A damaged record in LevelDB's log (a flipped bit) is skipped by the open, with the
        block of commits around it, and only its info LOG says so. Those commits are in the
        journal, but the DB's journal position (from a later commit) is current, so nothing
        would replay them, and the orphan sweep would delete their data (found by fuzzing). The
        open has already written what it read to a table and deleted the log, so the next open
        would find nothing wrong: the finding is kept in the DB, and every open refuses it
        until recover-metadata has rebuilt it. A zeroed block LevelDB drops without a word:
        `hole` is the one leveldblog found before the open, if any."""
        found = self.db.get(DAMAGED_KEY, verify_checksums=True)
        if found is None:
            line = _dropped_log_records(self.path / "LOG") or hole
            if line is None:
                return
            self.db.put(DAMAGED_KEY, line.encode(), sync=True)
            found = line.encode()
        if not recovering:
            raise damaged(self.path, FormatError(
                f"LevelDB skipped a damaged part of its log ({found.decode(errors='replace')}), "
                "and the commits in it are missing"))

    def _check_format(self) -> None:
        raw = self.db.get(keys.appliance("format"), verify_checksums=True)
        if raw is None:
            self.db.put(keys.appliance("format"), str(DB_FORMAT).encode(), sync=True)
            self.db.put(keys.appliance("id"), secrets.token_hex(8).encode(), sync=True)
        elif int(raw) > DB_FORMAT:
            raise FormatError(
                f"metadata DB at {self.path} has format {int(raw)}; this Stowage reads format "
                f"{DB_FORMAT} — upgrade Stowage, do not downgrade"
            )

    def _holds_data(self) -> bool:
        with self.db.iterator(start=keys.BUCKET, include_value=False, verify_checksums=True) as it:
            return next(it, None) is not None

    @property
    def appliance_id(self) -> str:
        return (self.db.get(keys.appliance("id"), verify_checksums=True) or b"").decode()

    def get(self, key: bytes) -> bytes | None:
        if self._overlay:
            hit = self._overlay.get(key)
            if hit is not None:
                return hit[1]
        found, cached = self.cache.lookup(key)
        if found:
            return cached
        generation = self.cache.generation
        value: bytes | None = self.db.get(key, verify_checksums=True)
        self.cache.store(key, value, generation)
        return value

    def get_record(self, cls: type[R], key: bytes) -> R | None:
        raw = self.get(key)
        return cls.decode(raw) if raw is not None else None

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) under prefix in key order, staged commits included."""
        with self.db.iterator(prefix=prefix, verify_checksums=True) as it:
            # the overlay is read after the iterator's snapshot is taken: what it holds is at
            # least as new as anything the snapshot has (module doc)
            extra = sorted((k, v) for k, (_lsn, v) in list(self._overlay.items())
                           if k.startswith(prefix)) if self._overlay else []
            if not extra:
                yield from it
            else:
                yield from _merged(it, extra)

    def scan_records(self, cls: type[R], prefix: bytes) -> Iterator[tuple[bytes, R]]:
        for k, v in self.scan(prefix):
            yield k, cls.decode(v)

    def iterator(self, start: bytes, stop: bytes | None) -> plyvel.Iterator:
        return self.db.iterator(start=start, stop=stop, verify_checksums=True)

    def batch(self) -> Batch:
        return Batch(self)

    # --- commits -----------------------------------------------------------------------------

    def _leveldb_write(self, writes: Iterable[tuple[bytes, bytes | None]], sync: bool, through: bool = False) -> None:
        """`through`: the caller is the one drain writing staged commits in order, so the read
        cache may keep the values written (readcache.py); other writers make it forget them."""
        written: list[tuple[bytes, bytes | None]] = []
        try:
            with self.db.write_batch(sync=sync) as wb:
                for k, v in writes:
                    written.append((k, v))
                    if v is None:
                        wb.delete(k)
                    else:
                        wb.put(k, v)
        except plyvel.Error as exc:
            self.cache.clear()  # what LevelDB holds now is not known
            self.failed = str(exc)
            log.error("the metadata DB failed a write: %s; commits are refused from now on", exc)
            raise MetadataUnavailable(f"the metadata DB failed a write: {exc}") from exc
        if through:
            self.cache.written_through(written)
        else:
            self.cache.written(k for k, _v in written)

    def _stage_locked(self, writes: Writes) -> int:
        if self.failed:
            raise MetadataUnavailable(f"the metadata DB failed a write earlier ({self.failed}); "
                                      "commits are refused until the daemon is restarted")
        for hook in self.write_hooks:
            hook(writes)
        lsn = self.lsn + 1
        writes[keys.JOURNAL_LSN] = keys.pack_seq(lsn)
        record = encode(lsn, writes, time.time_ns())
        self.lsn = lsn
        # queued first, so the disks' fsyncs overlap LevelDB's; a record whose LevelDB write
        # then fails is a complete commit that was not acknowledged (open_journal applies it).
        # Queued as lazy: the group that makes it durable kicks the journal (_flush_and_sync)
        if self.journal is not None:
            self.journal.append(lsn, record, lazy=True)
        elif self._held is not None:
            self._held.append((lsn, record))
            if len(self._held) > HELD_MAX:
                self._held = None
        self._queue.append((lsn, writes))
        for k, v in writes.items():
            self._overlay[k] = (lsn, v)
        return lsn

    def stage(self, writes: Writes) -> int:
        """Number a commit and queue it for the journal and for LevelDB, without writing
        anything (no I/O: the loop may call it); returns its lsn (0: nothing to write). `get`
        and `scan` read it at once; LevelDB iterators and snapshots once `flushed(lsn)` returns.
        Durable once `durable(lsn)` returns, which writes it to LevelDB first; until someone
        waits for that, the journal syncs it only with other records or after
        journal.LAZY_SECONDS (a lazy record)."""
        if not writes:
            return 0
        with self._order:
            return self._stage_locked(writes)

    @property
    def has_staged(self) -> bool:
        """Some staged commit is not in LevelDB yet."""
        return self.written < self.lsn

    def _drain(self) -> None:
        """Write every staged commit to LevelDB, unsynced, in lsn order, as one WriteBatch
        (blocking; a commit staged by another caller meanwhile may be written by either)."""
        with self._drain_lock:
            with self._order:
                items, self._queue = self._queue, []
                if not items:
                    # every commit staged so far is written (under this lock, no drain is
                    # half done); numbers taken by no write (open_journal skips some) count too
                    if not self.failed:
                        self.written = max(self.written, self.lsn)
                    return
            try:
                if self.failed:
                    raise MetadataUnavailable(f"the metadata DB failed a write earlier ({self.failed}); "
                                              "commits are refused until the daemon is restarted")
                self._leveldb_write((kv for _lsn, writes in items for kv in writes.items()), False, through=True)
            finally:
                last = items[-1][0]
                with self._order:
                    if not self.failed:
                        self.written = last
                    for lsn, writes in items:  # read from LevelDB from now on (or, failed: not at all)
                        for k in writes:
                            hit = self._overlay.get(k)
                            if hit is not None and hit[0] <= lsn:
                                del self._overlay[k]

    def _write(self, writes: Writes) -> int:
        """Stage and write a commit (blocking)."""
        lsn = self.stage(writes)
        if lsn:
            self._drain()
            if self.written < lsn:  # an earlier drain failed and took it
                raise MetadataUnavailable(f"the metadata DB failed a write ({self.failed})")
        return lsn

    async def flushed(self, lsn: int) -> None:
        """Until staged commit `lsn` is written to LevelDB (grouped like `durable`: one thread
        call writes what every waiting task staged)."""
        while self.written < lsn:
            if self.failed:
                raise MetadataUnavailable(f"the metadata DB failed a write earlier ({self.failed}); "
                                          "commits are refused until the daemon is restarted")
            running = self._flush_running
            if running is not None:
                await running.wait()
                continue
            done = self._flush_running = trio.Event()
            try:
                # in a worker thread even when small: an unsynced write usually takes tens of
                # microseconds, but waits for the filesystem's journal while other files are
                # fsync'd (milliseconds on a busy disk), and the loop must not wait for a disk
                await trio.to_thread.run_sync(self._drain)
            finally:
                self._flush_running = None
                done.set()

    async def apply(self, batch: Batch) -> int:
        """Write the batch atomically to LevelDB, unsynced, and queue it for the journal;
        returns its lsn (0: nothing to write). Durable once `durable(lsn)` returns."""
        lsn = self.stage(batch.writes)
        await self.flushed(lsn)
        return lsn

    async def durable(self, lsn: int) -> None:
        """Until commit `lsn` is written and synced in LevelDB and on the journal's quorum of
        disks (MetadataUnavailable if LevelDB's write or sync fails or no disk takes the
        journal).

        Grouped on the loop's side (LoopGroup), in two stages so that groups overlap: one
        thread call writes what was staged and syncs LevelDB's logs for every commit staged
        when it began, then another waits for the journal to cover what that sync covered;
        while a group waits for the journal, the next one writes and syncs. A thread call per
        commit, each waking on the journal's condition at every disk's fsync, cost more CPU
        than the syncs."""
        if lsn:
            await self._synced.wait(lsn)
            # the journal's fsync began when the commit was staged: usually done by now, and a
            # thread call to find that out cost ~4 ms of a small PUT's ~40 under load
            j = self.journal
            if j is None or not j.covers(lsn):
                await self._journaled.wait(lsn)

    def _flush_and_sync(self, lsn: int) -> None:
        """Staged commits written to LevelDB, then its logs synced up to `lsn` (one thread call).
        The journal's quorum disks start on the same commits first, so both syncs overlap."""
        if self.journal is not None:
            self.journal.kick(lsn)
        self._drain()
        if self.written < lsn:
            raise MetadataUnavailable(f"the metadata DB failed a write ({self.failed})")
        self.log_sync.wait(lsn)

    def _wait_journal(self, lsn: int) -> None:
        j = self.journal
        if j is not None:
            j.wait(lsn)

    def _wait_durable(self, lsn: int) -> None:
        self.log_sync.wait(lsn)
        self._wait_journal(lsn)

    def _sync_logs(self) -> None:
        """fdatasync every LevelDB log file (the group sync; see the module doc). A log file
        deleted meanwhile was flushed to a synced table first."""
        try:
            for name in os.listdir(self.path):
                if not name.endswith(".log"):
                    continue
                try:
                    fd = os.open(self.path / name, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            self.failed = f"syncing its log: {exc}"
            log.error("the metadata DB failed to sync its log: %s; commits are refused from now on", exc)
            raise MetadataUnavailable(f"the metadata DB failed to sync its log: {exc}") from exc

    async def commit(self, batch: Batch, sync: bool = True) -> None:
        """Write the batch atomically; with sync=True this is the durability point (LevelDB
        synced and the journal on its quorum of disks)."""
        lsn = await self.apply(batch)
        if sync:
            await self.durable(lsn)

    def commit_now(self, batch: Batch, sync: bool = True) -> None:
        """Blocking commit, for start-up and tools outside the loop."""
        lsn = self._write(batch.writes)
        if sync and lsn:
            self._wait_durable(lsn)

    def put_hint(self, key: bytes, value: bytes | Record) -> None:
        """A non-synced single write, for hints that may be lost (heal queue entries)."""
        self._write({key: value.encode() if isinstance(value, Record) else value})

    def load(self, writes: Iterable[tuple[bytes, bytes | None]], sync: bool = False) -> None:
        """Write exactly these writes: no lsn of their own, not journaled (recovery rebuilding
        a DB from a snapshot and the journal, whose records carry their lsn)."""
        pairs = list(writes)
        self._drain()
        with self._drain_lock, self._order:  # no drain's write-through overlaps this write
            self._leveldb_write(pairs, sync)
            for k, v in pairs:
                if k == keys.JOURNAL_LSN and v is not None:
                    self.lsn = self.written = keys.unpack_seq(v)

    # --- the journal ----------------------------------------------------------------------------

    def open_journal(self, targets: list[JournalTarget], quorum: int) -> JournalStart:
        """Start journaling to `targets` (blocking; once, before serving). Records after this
        DB's lsn are applied to it first (a crash came between the journal write and LevelDB's);
        when the journal may lack commits this DB holds, keys.CHECKPOINT_DUE is set so that a
        snapshot is taken before the store serves (services/snapshot.py)."""
        start = JournalStart()
        if self.journal is not None:
            return start
        if not targets:
            self._held = None
            return start
        self._drain()
        found = scan_targets(targets, self.opened_lsn)
        redo, highest = records_after(found, self.opened_lsn)
        top = self.opened_lsn + len(redo)
        covering = sum(1 for dj in found if dj.newest_last >= top)
        reasons = []
        if not self.lsn_known:
            reasons.append("the DB was written without a journal")
        if highest > top:
            reasons.append(f"journal records after {top} follow a gap")
        if covering < min(quorum, len(targets)):
            reasons.append(f"only {covering} disks hold the journal up to record {top}")
        journal = Journal(self.appliance_id, targets, quorum, old_files_of(found))
        with self._drain_lock, self._order:  # no drain's write-through overlaps the redo's writes
            held, self._held = self._held, None
            if held is None:
                reasons.append("too many commits were made before the journal opened")
            for body in redo:
                self._leveldb_write(decode_body(body).writes, sync=False)
            self.journal = journal
            if highest > self.opened_lsn:  # the held commits' numbers are taken: commit them again
                self.lsn = highest
                for _lsn, rec in held or []:
                    writes: Writes = dict(decode_record(rec).writes)
                    self._stage_locked(writes)
            else:
                for lsn, rec in held or []:
                    journal.append(lsn, rec)
            due = self.db.get(keys.CHECKPOINT_DUE, verify_checksums=True) is not None
            if reasons and not due:
                self._stage_locked({keys.CHECKPOINT_DUE: b"1"})
        self._drain()
        start.redone = len(redo)
        start.checkpoint_due = due or bool(reasons)
        start.reason = "; ".join(reasons) or ("a snapshot was due already" if due else "")
        if start.redone:
            log.warning("metadata journal: %d committed records the DB lacked were applied to it", start.redone)
        if reasons:
            log.warning("metadata journal: a snapshot is due before serving (%s)", start.reason)
        return start

    def journal_status(self) -> JournalStatus | None:
        return self.journal.status() if self.journal is not None else None

    def checkpoint_due(self) -> bool:
        return self.db.get(keys.CHECKPOINT_DUE, verify_checksums=True) is not None

    def compact(self, prefix: bytes) -> None:
        """Compact the files holding the keys under `prefix` (blocking): overwritten and deleted
        values under it leave the LevelDB files, rather than lingering until LevelDB gets there."""
        self.db.compact_range(start=prefix, stop=keys.prefix_successor(prefix))

    def snapshot(self) -> plyvel.Snapshot:
        return self.db.snapshot()

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
        self.db.close()

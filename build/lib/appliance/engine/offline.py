"""Short sessions on the metadata DB while the daemon is stopped (LevelDB admits one process).

The CLI's views and `stowage disks add` call these rather than opening the DB themselves, so
nothing outside the engine touches LevelDB. Each opens the DB, does its one thing and closes it.
Sessions that change something journal it like the daemon (journal.py): to the data disks the
DB has records of whose labels say they are this appliance's, durable on all of them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from diskmgr import label as labels
from diskmgr.state import DiskState

from . import diskrecords, keys
from .errors import StowageError
from .identity import IdentityView, compact_credentials
from .journal import JournalTarget
from .metadb import MetaDB
from .records import BucketRecord, DiskRecord

T = TypeVar("T")


class MetaDBUnavailable(StowageError):
    """The metadata DB cannot be opened: a running daemon holds it, or it is damaged or newer."""

    code = "MetaDBUnavailable"


def _open(meta_path: Path, journal: bool = False) -> MetaDB:
    try:
        db = MetaDB(meta_path)
    except StowageError as exc:
        raise MetaDBUnavailable(exc.message) from exc
    if journal:
        try:
            targets = journal_targets(db)
            db.open_journal(targets, quorum=len(targets))
        except BaseException:
            db.close()
            raise
    return db


def journal_targets(db: MetaDB) -> list[JournalTarget]:
    """The data disks the DB has records of that carry this appliance's label (blocking)."""
    out = []
    for rec in diskrecords.known(db).values():
        if rec.role != "data" or rec.state in (DiskState.REMOVED, DiskState.FAILED):
            continue
        path = Path(rec.path)
        try:
            labels.verify_label(labels.read_label(path), db.appliance_id, rec.disk_id)
        except (StowageError, OSError):
            continue
        if (path / "shards").is_dir():
            out.append(JournalTarget(rec.disk_id, path))
    return out


@contextlib.contextmanager
def session(meta_path: Path) -> Iterator[MetaDB]:
    """The metadata DB for one command (`stowage kms ...` with the daemon stopped): the
    functions of appliance.iam that take a MetaDB run on it; closed at the end."""
    db = _open(meta_path, journal=True)
    try:
        yield db
    finally:
        db.close()


def appliance_id(meta_path: Path) -> str:
    """The appliance's id. On a brand-new appliance this creates the DB, and so the id, exactly
    as the first `stowage serve` would."""
    db = _open(meta_path)
    try:
        return db.appliance_id
    finally:
        db.close()


@dataclass(frozen=True)
class Summary:
    disks: list[DiskRecord]
    objects_per_bucket: dict[str, int]  # current (latest, not deleted) keys per bucket


def summary(meta_path: Path) -> Summary:
    """What `stowage status` shows of a stopped appliance."""
    db = _open(meta_path)
    try:
        disks = list(diskrecords.known(db).values())
        counts: dict[str, int] = {}
        for _, bucket in db.scan_records(BucketRecord, keys.BUCKET):
            with db.db.iterator(prefix=keys.latest_prefix(bucket.name), include_value=False) as it:
                counts[bucket.name] = sum(1 for _ in it)
        return Summary(disks, counts)
    finally:
        db.close()


def record_disk(meta_path: Path, rec: DiskRecord) -> None:
    """Record a disk so that the next start of the daemon loads it."""
    db = _open(meta_path, journal=True)
    try:
        diskrecords.save_now(db, rec)
    finally:
        db.close()


def identity_session(meta_path: Path, fn: Callable[[IdentityView], T]) -> T:
    """Run fn over the identity records and commit what it wrote in one batch (the daemon's
    IdentityStore.write, for `stowage user|key|group|policy` while the daemon is stopped)."""
    db = _open(meta_path, journal=True)
    try:
        batch = db.batch()
        view = IdentityView(batch)
        result = fn(view)
        if view.changed:
            raw = db.get(keys.appliance("seq"))
            last = keys.unpack_seq(raw) if raw else 0
            # the commit sequence moves on, as a commit of the daemon's would: the next snapshot stores it
            batch.put(keys.appliance("seq"), keys.pack_seq(max(time.time_ns(), last + 1)))
            db.commit_now(batch)
        if view.plaintext_replaced:
            compact_credentials(db)
        return result
    finally:
        db.close()

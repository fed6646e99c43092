"""Upgrades that never brick a store: what a version migrates on disk, the snapshot taken before
it does, and the way back.

Record formats are read by every later version as they are (records.py keeps a decoder per
format), so most upgrades change nothing on disk. A `Migration` is a change the daemon makes to
existing data at start-up (today: round-1 secrets wrapped with the master key, the account
record, the master key mark); each says, reading only, whether a data directory needs it.

- `before_open(cfg)`: at start, before the daemon opens the metadata DB for serving. When a
  migration is pending on a DB that holds data, the DB directory (and the master key file) is
  copied to <state_dir>/upgrade/snapshot-.../ and <state_dir>/upgrade/state.json records the
  upgrade (from, to, migrations, snapshot), uncommitted. A version change without a migration is
  recorded too (a rollback then only swaps the software).
- `stamp_version(db)`: after the start-up migrations, the version that ran the data directory
  is written (key space b"u", journaled like every commit).
- `commit(cfg)`: the operator is satisfied; the snapshot is deleted and rollback is refused.
- `rollback(cfg, install_dir)`: daemon stopped, upgrade uncommitted. The metadata DB and the
  master key go back to the snapshot (the current ones are kept aside under
  <state_dir>/upgrade/rolled-back-.../); the metadata journal on each data disk is moved aside
  too, or the next start would replay the newer commits onto the restored DB; a metadata
  snapshot is marked due. The previous software comes back when the installation kept it
  (<install_dir>/venv.previous: the Debian package's preinst keeps it). What was written after
  the upgrade is lost: its metadata is not in the snapshot, and the orphan sweep removes its
  shard files. So a rollback that would lose a version object lock protects, or its lock, is
  refused (naming them) unless asked with `discard_locked` (`--discard-locked-versions`), and
  refused even then when what it would lose is COMPLIANCE retention (a version under it, an
  earlier date, or the mode): as on AWS, nobody, root included, lifts that before its date.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .config import Config
from .engine import keys, keystore, lock
from .engine.errors import StowageError
from .engine.journal import JOURNAL_DIR, JOURNAL_FORMAT
from .engine.metadb import DB_FORMAT, MetaDB
from .engine.records import CredentialRecord, ObjectVersion
from .engine.shardfile import CHECKSUM_FORMAT

log = logging.getLogger("stowage.upgrade")

VERSION_KEY = keys.upgrade("version")
STATE_FILE = "state.json"
DEFAULT_INSTALL_DIR = Path("/opt/stowage")


class UpgradeError(StowageError):
    code = "UpgradeError"


@dataclass(frozen=True)
class Migration:
    name: str
    description: str
    needed: Callable[[MetaDB], bool]


def _plaintext_secrets(db: MetaDB) -> bool:
    return db.get(keys.SNAPSHOTS_HOLD_PLAINTEXT) is not None or any(
        rec.legacy_secret for _, rec in db.scan_records(CredentialRecord, keys.CREDENTIAL))


MIGRATIONS = [
    Migration("wrap-secrets", "secret keys stored in plain text (round 1) are wrapped with the master key, "
              "and the metadata snapshots that hold them are replaced", _plaintext_secrets),
    Migration("account-record", "the appliance's account (account id, root canonical id) is created",
              lambda db: db.get(keys.ACCOUNT) is None),
    Migration("master-key-mark", "the metadata DB records which master key wraps its secrets",
              lambda db: not keystore.master_mark(db)),
]

# What this version writes; every older format of each is still read.
FORMATS = {"metadata DB": DB_FORMAT, "shard files": CHECKSUM_FORMAT, "metadata journal": JOURNAL_FORMAT}


@dataclass
class FormatStatus:
    software: str
    data_version: str  # the version that last ran the data directory; "" before versions were stamped
    pending: list[Migration] = field(default_factory=list)
    fresh: bool = False  # a data directory with nothing in it yet

    @property
    def current(self) -> bool:
        return not self.pending

    def to_json(self) -> dict[str, object]:
        return {"software": self.software, "data_version": self.data_version or None, "fresh": self.fresh,
                "formats": FORMATS, "current": self.current,
                "pending": [{"name": m.name, "description": m.description} for m in self.pending]}


def _holds_data(db: MetaDB) -> bool:
    return any(True for _ in db.scan(keys.BUCKET)) or any(True for _ in db.scan(keys.CREDENTIAL))


def status_of(db: MetaDB) -> FormatStatus:
    fresh = not _holds_data(db)
    data_version = (db.get(VERSION_KEY) or b"").decode()
    pending = [] if fresh else [m for m in MIGRATIONS if m.needed(db)]
    return FormatStatus(__version__, data_version, pending, fresh)


def offline_status(cfg: Config) -> FormatStatus | None:
    """The status of a stopped appliance's data directory (None: there is none yet)."""
    if not (cfg.meta_path / "CURRENT").exists():
        return None
    db = MetaDB(cfg.meta_path)
    try:
        return status_of(db)
    finally:
        db.close()


@dataclass
class UpgradeState:
    from_version: str
    to_version: str
    migrations: list[str]
    snapshot: str  # "" when nothing was migrated
    taken_ns: int
    committed: bool = False

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def upgrade_dir(cfg: Config) -> Path:
    return Path(cfg.state_dir) / "upgrade"


def load_state(cfg: Config) -> UpgradeState | None:
    try:
        raw = json.loads((upgrade_dir(cfg) / STATE_FILE).read_text())
        return UpgradeState(str(raw["from_version"]), str(raw["to_version"]), [str(m) for m in raw["migrations"]],
                            str(raw["snapshot"]), int(raw["taken_ns"]), bool(raw.get("committed", False)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UpgradeError(f"{upgrade_dir(cfg) / STATE_FILE} is unreadable: {exc}") from exc


def _save_state(cfg: Config, st: UpgradeState) -> None:
    from diskmgr.durable import write_atomic

    d = upgrade_dir(cfg)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(d / STATE_FILE, json.dumps(st.to_json(), indent=2) + "\n", 0o600)


def _copy_private(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("LOCK", "staging"))
    for p in [dst, *dst.rglob("*")]:
        os.chmod(p, 0o700 if p.is_dir() else 0o600)


def before_open(cfg: Config) -> UpgradeState | None:
    """Take the pre-upgrade snapshot when this start will migrate something (module doc).
    Blocking; returns the upgrade this start belongs to, if any."""
    if not (cfg.meta_path / "CURRENT").exists():
        return None
    try:
        db = MetaDB(cfg.meta_path)
    except StowageError:
        return None  # the daemon's own open reports it
    try:
        st = status_of(db)
    finally:
        db.close()
    existing = load_state(cfg)
    if st.fresh or (not st.pending and st.data_version == __version__):
        return existing
    if existing is not None and not existing.committed and existing.to_version == __version__ and \
            (existing.snapshot or not st.pending):
        return existing  # a start after an interrupted one: the first snapshot is the pre-upgrade state
    if not st.pending:
        state = UpgradeState(st.data_version, __version__, [], "", time.time_ns())
        _save_state(cfg, state)
        return state
    taken = time.time_ns()
    snap = upgrade_dir(cfg) / f"snapshot-{st.data_version or 'unstamped'}-{taken}"
    snap.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _copy_private(cfg.meta_path, snap / "meta")
    if cfg.master_key_path.is_file():
        shutil.copy2(cfg.master_key_path, snap / "master.key")
        os.chmod(snap / "master.key", 0o600)
    state = UpgradeState(st.data_version, __version__, [m.name for m in st.pending], str(snap), taken)
    _save_state(cfg, state)
    names = ", ".join(m.name for m in st.pending)
    log.warning("upgrading the data directory (%s): metadata snapshot taken first at %s; "
                "`stowage rollback` returns to it until `stowage upgrade --commit`", names, snap)
    print(f"Stowage upgrade: migrating {names}; pre-upgrade metadata snapshot: {snap}", flush=True)
    return state


def stamp_version(db: MetaDB) -> None:
    """After the start-up migrations: this version ran the data directory (journaled)."""
    if (db.get(VERSION_KEY) or b"").decode() == __version__:
        return
    b = db.batch()
    b.put(VERSION_KEY, __version__.encode())
    db.commit_now(b)


def commit(cfg: Config) -> UpgradeState:
    st = load_state(cfg)
    if st is None:
        raise UpgradeError("no upgrade to commit")
    if st.snapshot:
        shutil.rmtree(st.snapshot, ignore_errors=True)
    st.committed, st.snapshot = True, ""
    _save_state(cfg, st)
    return st


@dataclass
class RollbackResult:
    state: UpgradeState
    aside: Path  # where the metadata DB, master key and state of the rolled-back version went
    journals_moved: list[str] = field(default_factory=list)
    software: str = ""  # what happened to the installed software


def _journal_dirs(cfg: Config) -> list[Path]:
    from .engine.recover import find_disks

    try:
        _, found = find_disks(cfg)
    except StowageError:
        return []
    return [d.path / JOURNAL_DIR for d, _ in found if (d.path / JOURNAL_DIR).is_dir()]


@dataclass(frozen=True)
class LockLoss:
    """A protected version a rollback would lose, or protect less. `compliance`: what it would
    lose is COMPLIANCE retention (the version under it, an earlier date, or the mode), which no
    flag discards."""

    version: ObjectVersion
    compliance: bool

    def __str__(self) -> str:
        return f"{self.version.bucket}/{self.version.key} {self.version.version_id}"


def locked_since(current: MetaDB, snapshot: MetaDB, now_ns: int) -> list[LockLoss]:
    """The versions object lock protects now (engine/lock.py) that a return to `snapshot` would
    lose or protect less: written since it, or given a legal hold or another retention since
    (blocking: reads every version record)."""
    out = []
    for k, v in current.scan_records(ObjectVersion, keys.VERSION):
        if lock.protection(v, now_ns):
            old = snapshot.get_record(ObjectVersion, k)
            if old is None or _protects_less(old, v, now_ns):
                out.append(LockLoss(v, _loses_compliance(old, v, now_ns)))
    return out


def _loses_compliance(old: ObjectVersion | None, v: ObjectVersion, now_ns: int) -> bool:
    if v.lock_mode != lock.COMPLIANCE or not lock.retained(v, now_ns):
        return False
    return old is None or old.lock_mode != lock.COMPLIANCE or old.retain_until_ns < v.retain_until_ns


def _protects_less(old: ObjectVersion, v: ObjectVersion, now_ns: int) -> bool:
    if v.legal_hold and not old.legal_hold:
        return True
    if not lock.retained(v, now_ns):
        return False
    return not lock.retained(old, now_ns) or old.retain_until_ns < v.retain_until_ns or (
        old.lock_mode == lock.GOVERNANCE and v.lock_mode == lock.COMPLIANCE)


def _named(found: list[LockLoss]) -> str:
    return ", ".join(map(str, found[:5])) + (", ..." if len(found) > 5 else "")


def _refuse_locked(cfg: Config, snap: Path, *, discard_locked: bool) -> None:
    """UpgradeError while a rollback to `snap` would undo object lock (docs/object-lock.md): the
    orphan sweep would then delete the data of versions nobody may delete. `discard_locked`
    gives up GOVERNANCE retention and legal holds (an operator may lift those), never
    COMPLIANCE retention: nobody may, before its date."""
    current, snapshot = MetaDB(cfg.meta_path), MetaDB(snap / "meta")
    try:
        found = locked_since(current, snapshot, time.time_ns())
    finally:
        current.close()
        snapshot.close()
    compliance = [x for x in found if x.compliance]
    if compliance:
        raise UpgradeError(f"{len(compliance)} object version(s) written or locked since the upgrade are under "
                           f"COMPLIANCE retention, which nobody may lift or shorten before its date, and a rollback "
                           f"would lose them or shorten their retention: {_named(compliance)}. Commit the upgrade "
                           "instead (--discard-locked-versions does not discard COMPLIANCE retention)")
    if found and not discard_locked:
        raise UpgradeError(f"{len(found)} object version(s) written or locked since the upgrade are protected by "
                           f"object lock (GOVERNANCE retention or a legal hold), and a rollback would lose them or "
                           f"their lock: {_named(found)}. Commit the upgrade instead, or roll back with "
                           "--discard-locked-versions to lose them anyway")


def rollback(cfg: Config, install_dir: Path = DEFAULT_INSTALL_DIR, *,
             discard_locked: bool = False) -> RollbackResult:
    """Return to the state before the last upgrade (module doc). The daemon must be stopped.
    UpgradeError, changing nothing, while it would lose versions object lock protects (or their
    lock), unless `discard_locked`; whatever `discard_locked` says, while it would lose
    COMPLIANCE retention."""
    st = load_state(cfg)
    if st is None:
        raise UpgradeError("no upgrade to roll back (nothing recorded in "
                           f"{upgrade_dir(cfg) / STATE_FILE})")
    if st.committed:
        raise UpgradeError(f"the upgrade to {st.to_version} was committed; its snapshot is gone")
    if st.snapshot and (Path(st.snapshot) / "meta" / "CURRENT").exists():
        _refuse_locked(cfg, Path(st.snapshot), discard_locked=discard_locked)
    now = time.time_ns()
    aside = upgrade_dir(cfg) / f"rolled-back-{st.to_version}-{now}"
    aside.mkdir(mode=0o700, parents=True)
    result = RollbackResult(st, aside)
    if st.snapshot:
        snap = Path(st.snapshot)
        if not (snap / "meta" / "CURRENT").exists():
            raise UpgradeError(f"the pre-upgrade snapshot {snap} is missing or incomplete")
        shutil.move(cfg.meta_path, aside / "meta")
        _copy_private(snap / "meta", cfg.meta_path)
        if (snap / "master.key").exists():
            if cfg.master_key_path.exists():
                shutil.move(cfg.master_key_path, aside / "master.key")
            shutil.copy2(snap / "master.key", cfg.master_key_path)
            os.chmod(cfg.master_key_path, 0o600)
        for jdir in _journal_dirs(cfg):
            target = jdir.with_name(f"{JOURNAL_DIR}.rolled-back-{now}")
            jdir.rename(target)
            result.journals_moved.append(str(target))
        # the journal now lacks what the restored DB holds: a metadata snapshot is due at once
        db = MetaDB(cfg.meta_path)
        try:
            db.load([(keys.CHECKPOINT_DUE, b"1")], sync=True)
        finally:
            db.close()
        shutil.rmtree(snap)
    result.software = _restore_software(install_dir, st, now)
    shutil.move(upgrade_dir(cfg) / STATE_FILE, aside / STATE_FILE)
    return result


def _restore_software(install_dir: Path, st: UpgradeState, now: int) -> str:
    current, previous = install_dir / "venv", install_dir / "venv.previous"
    if not previous.is_dir():
        return (f"the previous software is not kept in {previous}: reinstall version "
                f"{st.from_version or 'the one before'} (apt install stowage=VERSION, or its .deb)")
    if current.exists():
        current.rename(install_dir / f"venv.rolled-back-{now}")
    previous.rename(current)
    return f"{current} is the previous software again (the newer one is kept as venv.rolled-back-{now})"

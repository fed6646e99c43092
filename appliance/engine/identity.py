"""The identity records in the metadata DB: the account, IAM users, their access keys, groups and
customer-managed policies (records.py; key spaces A account, W, K, R, M in keys.py).

The engine stores and reads them; what they mean (names, quotas, conflicts, wrapping secrets)
is the identity layer's business (appliance/iam). A secret reaches a record already wrapped by
the master key: the engine never sees one in plain text, and refuses to encode a round-1
credential record that still carries its plain secret (CredentialRecord).

Every change runs as one function over an `IdentityView` (typed reads, its own writes included,
and writes), committed at once:

- in the daemon, `IdentityStore.write(fn)`: under the store's commit lock, advancing the commit
  sequence so that the snapshot service stores the change; `fn` runs in a worker thread (a
  20 KiB policy document is parsed there, off the trio loop);
- with the daemon stopped, `offline.identity_session(meta_path, fn)`.

Plain text leaving the files: when a transaction replaces or deletes a round-1 credential
record, the credential key range is compacted right after the commit (LevelDB rewrites its files
without the old value), and SNAPSHOTS_HOLD_PLAINTEXT is set in the same commit: the metadata
snapshots taken before still contain the secret, and `replace_plaintext_snapshots` (called by
the daemon at start, before its services run) stores a fresh snapshot and drops the older ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import trio

from . import keys
from .errors import StowageError
from .metadb import Batch, MetaDB
from .metasnap import list_snapshots, take_snapshot
from .records import AccountRecord, CredentialRecord, GroupRecord, PolicyRecord, Record, UserRecord
from .storecore import StoreCore

log = logging.getLogger("stowage.identity")

T = TypeVar("T")
R = TypeVar("R", bound=Record)
ROUND1_CREDENTIAL_FORMAT = 1  # the format whose records hold a plain-text secret


class IdentityView:
    """Typed reads and writes of the identity records within one batch (reads see its writes)."""

    def __init__(self, batch: Batch) -> None:
        self._batch = batch
        self.changed = False
        self.plaintext_replaced = False  # a round-1 credential record was overwritten or deleted

    # --- generic -------------------------------------------------------------------------------

    def _get(self, cls: type[R], key: bytes) -> R | None:
        return self._batch.get_record(cls, key)

    def _scan(self, cls: type[R], prefix: bytes) -> list[R]:
        return [cls.decode(v) for _, v in self._batch.scan(prefix)]

    def _put(self, key: bytes, rec: Record) -> None:
        self._batch.put(key, rec)
        self.changed = True

    def _delete(self, key: bytes) -> None:
        self._batch.delete(key)
        self.changed = True

    def master_mark(self) -> str:
        """The id of the first master key the DB was used with ("" = none; keystore.py)."""
        return (self._batch.get(keys.MASTER_MARK) or b"").decode()

    # --- the account ---------------------------------------------------------------------------

    def account(self) -> AccountRecord | None:
        return self._get(AccountRecord, keys.ACCOUNT)

    def put_account(self, rec: AccountRecord) -> None:
        self._put(keys.ACCOUNT, rec)

    # --- users ---------------------------------------------------------------------------------

    def user(self, name: str) -> UserRecord | None:
        return self._get(UserRecord, keys.user(name)) if name else None

    def users(self) -> list[UserRecord]:
        return self._scan(UserRecord, keys.USER)

    def put_user(self, rec: UserRecord) -> None:
        self._put(keys.user(rec.name), rec)

    def delete_user(self, name: str) -> None:
        self._delete(keys.user(name))

    # --- access keys ---------------------------------------------------------------------------

    def credential(self, access_key: str) -> CredentialRecord | None:
        return self._get(CredentialRecord, keys.credential(access_key)) if access_key else None

    def credentials(self) -> list[CredentialRecord]:
        return self._scan(CredentialRecord, keys.CREDENTIAL)

    def put_credential(self, rec: CredentialRecord) -> None:
        self._note_plaintext(rec.access_key)
        self._put(keys.credential(rec.access_key), rec)

    def delete_credential(self, access_key: str) -> None:
        self._note_plaintext(access_key)
        self._delete(keys.credential(access_key))

    def _note_plaintext(self, access_key: str) -> None:
        old = self._batch.get(keys.credential(access_key))
        if old and old[0] == ROUND1_CREDENTIAL_FORMAT and not self.plaintext_replaced:
            self.plaintext_replaced = True
            self._batch.put(keys.SNAPSHOTS_HOLD_PLAINTEXT, b"1")

    # --- groups --------------------------------------------------------------------------------

    def group(self, name: str) -> GroupRecord | None:
        return self._get(GroupRecord, keys.group(name)) if name else None

    def groups(self) -> list[GroupRecord]:
        return self._scan(GroupRecord, keys.GROUP)

    def put_group(self, rec: GroupRecord) -> None:
        self._put(keys.group(rec.name), rec)

    def delete_group(self, name: str) -> None:
        self._delete(keys.group(name))

    # --- customer-managed policies -------------------------------------------------------------

    def policy(self, name: str) -> PolicyRecord | None:
        return self._get(PolicyRecord, keys.policy(name)) if name else None

    def policies(self) -> list[PolicyRecord]:
        return self._scan(PolicyRecord, keys.POLICY)

    def put_policy(self, rec: PolicyRecord) -> None:
        self._put(keys.policy(rec.name), rec)

    def delete_policy(self, name: str) -> None:
        self._delete(keys.policy(name))


@dataclass(frozen=True)
class IdentityState:
    """Every identity record at one point in time (what the in-memory index is built from)."""

    account: AccountRecord | None
    users: list[UserRecord]
    credentials: list[CredentialRecord]
    groups: list[GroupRecord]
    policies: list[PolicyRecord]


def load_state(db: MetaDB) -> IdentityState:
    """Read every identity record from one consistent view of the DB (blocking)."""
    snap = db.snapshot()

    def scan(cls: type[R], prefix: bytes) -> list[R]:
        with snap.iterator(prefix=prefix, verify_checksums=True) as it:
            return [cls.decode(v) for _, v in it]

    raw = snap.get(keys.ACCOUNT)
    return IdentityState(AccountRecord.decode(raw) if raw else None, scan(UserRecord, keys.USER),
                         scan(CredentialRecord, keys.CREDENTIAL), scan(GroupRecord, keys.GROUP),
                         scan(PolicyRecord, keys.POLICY))


def compact_credentials(db: MetaDB) -> None:
    """Rewrite the credential key range's files, dropping overwritten values (blocking)."""
    db.compact(keys.CREDENTIAL)


class IdentityStore:
    """The daemon's reader and writer of identity records."""

    def __init__(self, core: StoreCore) -> None:
        self.core = core

    def peek(self) -> IdentityView:
        """A view of what is committed, for quick lookups on the loop (never committed)."""
        return IdentityView(self.core.db.batch())

    def load(self) -> IdentityState:
        return load_state(self.core.db)

    async def read(self, fn: Callable[[IdentityView], T]) -> T:
        return await trio.to_thread.run_sync(fn, self.peek())

    async def write(self, fn: Callable[[IdentityView], T]) -> tuple[T, bool]:
        """Run fn(view) in a worker thread and commit what it wrote, durably, in one batch.
        Returns (fn's result, whether anything was written); fn raising writes nothing."""
        async with self.core.txn() as t:
            view = IdentityView(t.batch)
            result = await trio.to_thread.run_sync(fn, view)
            if view.changed:
                self.core.next_seq()  # the snapshot service sees a change to store
        if view.plaintext_replaced:
            await trio.to_thread.run_sync(compact_credentials, self.core.db)
        return result, view.changed


async def replace_plaintext_snapshots(core: StoreCore) -> bool:
    """If round-1 secrets were re-wrapped since the last snapshot was stored, store a fresh
    snapshot and drop the older ones (the GC then deletes their shard files). Returns whether
    snapshots were replaced. Runs at daemon start, before the snapshot service."""
    if core.db.get(keys.SNAPSHOTS_HOLD_PLAINTEXT) is None:
        return False
    replaced = False
    if list_snapshots(core):
        try:
            taken = await take_snapshot(core, keep=1)
        except StowageError as exc:  # the disks cannot take one now: the next start tries again
            log.warning("could not replace the metadata snapshots that hold plain-text secrets: %s", exc.message)
            return False
        if taken is None:
            return False
        replaced = True
        log.info("metadata snapshots taken before the secrets were wrapped were dropped")
    async with core.txn() as t:
        t.batch.delete(keys.SNAPSHOTS_HOLD_PLAINTEXT)
    return replaced

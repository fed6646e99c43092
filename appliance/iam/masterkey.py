"""The appliance master key: wraps every secret the appliance keeps (user secret keys, KMS keys,
data keys), and is kept apart from the data disks and the metadata DB.

Where it lives: `kms.master_key_file` in the config; by default `<state_dir>/keys/master.key`
in the embedded mode and `/etc/stowage/master.key` on a box. Under systemd, a credential passed
with `LoadCredentialEncrypted=stowage-master` (found in $CREDENTIALS_DIRECTORY) wins, so the key
can be sealed to the machine's TPM. Losing this file loses every encrypted secret and object:
back it up with `stowage kms export-master`.

File format (version 1), JSON, mode 0600 in a 0700 directory:

    {"format": 1, "current": "<key id>", "keys": [{"id": "<key id>", "key": "<base64 32 bytes>",
     "created_ns": N}, ...]}

Several keys are kept during a rotation: new wraps use `current`; unwrapping finds its key by
the id stored in the wrapped blob.

Wrapped blob (version 1): b"\\x01" | u8 id length | key id | 12-byte nonce | AES-256-GCM(ct+tag)
with the caller's `context` (what the secret is for, e.g. b"iam-secret:AKID") as associated
data, so a blob cannot be moved to another record and still unwrap.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.config import Config
from appliance.engine import entropy, keystore
from appliance.engine.errors import FormatError, StowageError
from appliance.engine.metadb import MetaDB
from diskmgr.durable import write_atomic

FILE_FORMAT = 1
WRAP_FORMAT = 1
KEY_BYTES = 32
NONCE_BYTES = 12
CREDENTIAL_NAME = "stowage-master"  # the systemd credential name (LoadCredentialEncrypted=)


class MasterKeyError(StowageError):
    """The master key is missing, unreadable, or does not open this secret."""

    code = "MasterKeyError"


@dataclass(frozen=True)
class KeyEntry:
    key_id: str
    key: bytes
    created_ns: int


@dataclass
class MasterKey:
    """The loaded key ring. `path` is where it is persisted (None: read-only, e.g. a credential)."""

    current: str
    entries: dict[str, KeyEntry] = field(default_factory=dict)
    path: Path | None = None

    # --- wrapping --------------------------------------------------------------------------

    def wrap(self, secret: bytes, context: bytes) -> bytes:
        entry = self.entries[self.current]
        nonce = entropy.token_bytes(NONCE_BYTES)
        kid = entry.key_id.encode()
        return bytes([WRAP_FORMAT, len(kid)]) + kid + nonce + _aead(entry.key).encrypt(nonce, secret, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        if len(blob) < 2 or blob[0] != WRAP_FORMAT:
            raise FormatError("wrapped secret: unknown format")
        n = blob[1]
        kid = blob[2 : 2 + n].decode(errors="replace")
        entry = self.entries.get(kid)
        if entry is None:
            raise MasterKeyError(f"secret wrapped by master key {kid!r}, which this appliance does not have")
        nonce = blob[2 + n : 2 + n + NONCE_BYTES]
        try:
            return _aead(entry.key).decrypt(nonce, blob[2 + n + NONCE_BYTES :], context)
        except InvalidTag:
            raise MasterKeyError("a wrapped secret failed authentication (damaged, or moved to another record)") \
                from None

    def wrapped_by_current(self, blob: bytes) -> bool:
        return wrapping_key(blob) == self.current

    # --- rotation --------------------------------------------------------------------------

    def add_key(self) -> str:
        """A new current key (the old ones stay until nothing is wrapped by them)."""
        entry = _new_entry()
        self.entries[entry.key_id] = entry
        self.current = entry.key_id
        return entry.key_id

    def retire(self, key_id: str) -> None:
        if key_id != self.current:
            self.entries.pop(key_id, None)

    # --- persistence -----------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({"format": FILE_FORMAT, "current": self.current, "keys": [
            {"id": e.key_id, "key": base64.b64encode(e.key).decode(), "created_ns": e.created_ns}
            for e in self.entries.values()]}, indent=1)

    def save(self) -> None:
        if self.path is None:
            raise MasterKeyError("the master key came from a systemd credential and cannot be changed here")
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.path, self.to_json() + "\n", 0o600)


@functools.lru_cache(maxsize=16)
def _aead(key: bytes) -> AESGCM:
    return AESGCM(key)  # its key schedule costs more than wrapping a 32-byte secret


def wrapping_key(blob: bytes) -> str:
    """The id of the master key a wrapped blob needs."""
    n = blob[1] if len(blob) > 1 else 0
    return blob[2 : 2 + n].decode(errors="replace")


def _new_entry() -> KeyEntry:
    return KeyEntry("mk-" + secrets.token_hex(8), secrets.token_bytes(KEY_BYTES), time.time_ns())


def parse(text: str | bytes, path: Path | None = None) -> MasterKey:
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("format") != FILE_FORMAT:
            raise ValueError(f"format {raw.get('format') if isinstance(raw, dict) else '?'} is not supported")
        entries = {}
        for e in raw["keys"]:
            key = base64.b64decode(e["key"], validate=True)
            if len(key) != KEY_BYTES:
                raise ValueError("a key is not 32 bytes")
            entries[str(e["id"])] = KeyEntry(str(e["id"]), key, int(e.get("created_ns", 0)))
        current = str(raw["current"])
        if current not in entries:
            raise ValueError("the current key is missing")
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise MasterKeyError(f"master key {path or ''}: unreadable ({exc})") from exc
    return MasterKey(current, entries, path)


def credential_path() -> Path | None:
    """The systemd credential, when the unit passes one."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        p = Path(directory) / CREDENTIAL_NAME
        if p.is_file():
            return p
    return None


def load_or_create(path: Path, create: bool = True) -> MasterKey:
    """Load the master key (the systemd credential first, then `path`); generate it on first start.

    The file must not be readable by anyone but its owner: a looser mode is refused rather than
    used, since the key opens every secret of the appliance.
    """
    cred = credential_path()
    if cred is not None:
        return parse(cred.read_bytes(), None)
    try:
        st = path.stat()
    except FileNotFoundError:
        if not create:
            raise MasterKeyError(f"no master key at {path} (restore it with `stowage kms import-master`)") from None
        key = MasterKey("", {}, path)
        key.add_key()
        key.save()
        return key
    if st.st_mode & 0o077:
        raise MasterKeyError(f"{path} is readable by group or others (mode {st.st_mode & 0o777:o}); "
                             "chmod 600 it")
    return parse(path.read_bytes(), path)


def open_for(cfg: Config, db: MetaDB) -> MasterKey:
    """The master key for a command on a stopped daemon's DB (`stowage kms key ...` offline),
    generated only on a brand-new appliance: a metadata DB that was used with a master key (its
    mark, or a secret wrapped by one) and no key file is refused, because a new key would open
    nothing and hide the loss."""
    fresh = not keystore.master_mark(db) and not keystore.holds_wrapped_secrets(db)
    key = load_or_create(cfg.master_key_path, create=fresh)
    mark_master(db, key)
    return key


def mark_master(db: MetaDB, key: MasterKey) -> None:
    """Record in the DB that it is used with a master key (the daemon does at every start)."""
    if not keystore.master_mark(db):
        keystore.set_master_mark(db, key.current)


def export_to(key: MasterKey, dest: Path, force: bool = False) -> None:
    """Write a backup of the key ring (`stowage kms export-master FILE`), mode 0600."""
    if dest.exists() and not force:
        raise MasterKeyError(f"{dest} exists; not overwritten")
    if not dest.parent.is_dir():
        raise MasterKeyError(f"{dest.parent}: no such directory (create it first)")
    try:
        write_atomic(dest, key.to_json() + "\n", 0o600)
    except OSError as exc:
        raise MasterKeyError(f"{dest}: cannot write the backup ({exc.strerror or exc})") from exc


def import_from(path: Path, backup: Path) -> tuple[MasterKey, list[str]]:
    """Merge a backup's keys into the key ring at `path` (created if missing; its current key
    stays current): (the ring, the key ids added). Nothing is ever dropped by an import."""
    try:
        restored = parse(backup.read_bytes(), backup)
    except OSError as exc:
        raise MasterKeyError(f"{backup}: {exc.strerror or exc}") from exc
    if not path.exists():
        key = MasterKey(restored.current, dict(restored.entries), path)
        key.save()
        return key, list(restored.entries)
    key = load_or_create(path, create=False)
    added = [kid for kid in restored.entries if kid not in key.entries]
    for kid in added:
        key.entries[kid] = restored.entries[kid]
    if added:
        key.save()
    return key, added

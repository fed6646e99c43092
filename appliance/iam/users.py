"""S3 users and access keys in the metadata DB (`stowage user`, `stowage key`).

Plain functions over MetaDB so the daemon (through the control socket) and the CLI (daemon
stopped, DB opened directly) run the same code. Secrets are returned once to the caller and
never logged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.engine import keys
from appliance.engine.errors import InvalidArgument, StowageError
from appliance.engine.metadb import MetaDB
from appliance.engine.records import CredentialRecord, UserRecord

from .credentials import ROOT_USER, make_key

_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class NoSuchUser(StowageError):
    """The user does not exist."""

    code = "NoSuchUser"


class UserExists(StowageError):
    """The user already exists."""

    code = "UserExists"


class NoSuchAccessKey(StowageError):
    """The access key does not exist."""

    code = "NoSuchAccessKey"


@dataclass
class KeyInfo:
    access_key: str
    user: str
    active: bool
    created_ns: int

    @classmethod
    def of(cls, rec: CredentialRecord) -> KeyInfo:
        return cls(rec.access_key, rec.user, rec.active, rec.created_ns)


def _check_name(name: str) -> None:
    if not _USER_RE.match(name):
        raise InvalidArgument(f"invalid user name {name!r}: 1-64 letters, digits, '_', '.', '@', '-'")
    if name == ROOT_USER:
        raise InvalidArgument("'root' is reserved for the appliance's root key")


def _keys_of(db: MetaDB, user: str) -> list[CredentialRecord]:
    return [rec for _, rec in db.scan_records(CredentialRecord, keys.CREDENTIAL) if rec.user == user]


def add_user(db: MetaDB, name: str) -> dict[str, Any]:
    _check_name(name)
    if db.get(keys.user(name)) is not None:
        raise UserExists(f"user {name!r} already exists")
    cred = make_key(name)
    b = db.batch()
    b.put(keys.user(name), UserRecord(name, time.time_ns()))
    b.put(keys.credential(cred.access_key), cred)
    db.commit_now(b)
    return {"user": name, "access_key": cred.access_key, "secret_key": cred.secret_key}


def list_users(db: MetaDB) -> list[dict[str, Any]]:
    out = []
    for _, u in db.scan_records(UserRecord, keys.USER):
        ks = _keys_of(db, u.name)
        out.append({"user": u.name, "created_ns": u.created_ns,
                    "keys": [{"access_key": k.access_key, "active": k.active} for k in ks]})
    return out


def remove_user(db: MetaDB, name: str) -> dict[str, Any]:
    if db.get(keys.user(name)) is None:
        raise NoSuchUser(f"no user {name!r}")
    b = db.batch()
    b.delete(keys.user(name))
    removed = []
    for k in _keys_of(db, name):
        b.delete(keys.credential(k.access_key))
        removed.append(k.access_key)
    db.commit_now(b)
    return {"user": name, "removed_keys": removed}


def create_key(db: MetaDB, user: str) -> dict[str, Any]:
    if db.get(keys.user(user)) is None:
        raise NoSuchUser(f"no user {user!r} (create it with `stowage user add {user}`)")
    cred = make_key(user)
    b = db.batch()
    b.put(keys.credential(cred.access_key), cred)
    db.commit_now(b)
    return {"user": user, "access_key": cred.access_key, "secret_key": cred.secret_key}


def revoke_key(db: MetaDB, access_key: str) -> dict[str, Any]:
    rec = db.get_record(CredentialRecord, keys.credential(access_key))
    if rec is None:
        raise NoSuchAccessKey(f"no access key {access_key!r}")
    rec.active = False
    b = db.batch()
    b.put(keys.credential(access_key), rec)
    db.commit_now(b)
    return {"access_key": access_key, "user": rec.user, "active": False}


UserOp = Callable[[MetaDB, dict[str, Any]], Any]

OPS: dict[str, UserOp] = {
    "user.add": lambda db, a: add_user(db, str(a.get("name", ""))),
    "user.list": lambda db, a: list_users(db),
    "user.remove": lambda db, a: remove_user(db, str(a.get("name", ""))),
    "key.create": lambda db, a: create_key(db, str(a.get("user", ""))),
    "key.revoke": lambda db, a: revoke_key(db, str(a.get("access_key", ""))),
}

"""Identities imported from another service (`stowage import minio-iam`, planned by
appliance/importer/minio_iam.py): the control op "iam.import" applies a batch of items, in order,
each on its own (a conflict skips that item with its reason and the rest go on). A re-run
converges: an existing user is updated (its status, its key's secret, its policies), an existing
policy gets the imported document as a new default version when it differs.

Items (JSON):
    {"kind": "policy", "name", "document", "source"}
    {"kind": "user", "name", "secret_key", "enabled", "policies": [...], "keyless"}
    {"kind": "group", "name", "members": [...], "policies": [...]}
    {"kind": "key", "access_key", "user", "secret_key", "active", "source", "session_policy", "expires_ns"}

A "keyless" user gets no key of its own name (the user the MinIO root's service accounts are
imported to). A key's "session_policy" (a policy document, "" for none) and "expires_ns" (Unix
ns, 0 for never) are its limits (keylimits.py); an imported key may have expired already.

A user's key is the user's own name (a MinIO user is its access key); secrets are sealed with the
master key as every secret is. Keys are imported beyond IAM's quota of two per user (a MinIO user
with several service accounts keeps them all); the quota still applies to keys created here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from appliance.engine.errors import StowageError
from appliance.engine.identity import IdentityView
from appliance.engine.records import CredentialRecord

from . import managed, users
from .credentials import ROOT_USER
from .errors import InvalidInput
from .keylimits import check_expiry, check_session_policy
from .masterkey import MasterKey
from .sealing import seal, unseal

Item = Mapping[str, Any]


class _Run:
    def __init__(self, view: IdentityView, master: MasterKey, reserved: set[str]) -> None:
        self.view = view
        self.master = master
        self.reserved = reserved  # access keys that are not IAM users' (the root key)
        self.imported: list[str] = []
        self.skipped: list[dict[str, str]] = []

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append({"item": item, "reason": reason})

    def policy(self, it: Item) -> None:
        name, document = _str(it, "name"), _str(it, "document")
        rec = self.view.policy(name)
        if rec is None:
            managed.create_policy(self.view, name, document, description=f"imported from MinIO ({_str(it, 'source')})")
            self.imported.append(f"policy {name}")
            return
        current = rec.version(rec.default_version)
        if current is not None and current.document == document:
            self.imported.append(f"policy {name} (unchanged)")
            return
        if len(rec.versions) >= managed.MAX_VERSIONS:
            oldest = next(v for v in rec.versions if v.version_id != rec.default_version)
            managed.delete_version(self.view, name, oldest.version_id)
        managed.create_version(self.view, name, document, set_default=True)
        self.imported.append(f"policy {name} (updated: a new default version)")

    def user(self, it: Item) -> None:
        # every field is checked before anything is written for the item
        keyless = bool(it.get("keyless", False))
        name, policies = _str(it, "name"), _list(it, "policies")
        secret = "" if keyless else _secret(it)
        if not keyless:
            self._check_key(name, name)
        note = " (existed: updated)"
        if self.view.user(name) is None:
            if any(u.name.lower() == name.lower() for u in self.view.users()):
                raise InvalidInput("a user of that name in another case exists already")
            users.create_user(self.view, name)
            note = ""
        users.set_user_disabled(self.view, name, not bool(it.get("enabled", True)))
        if not keyless:
            self._key(name, name, secret, True)
        self._attach("user", name, policies)
        self.imported.append(f"user {name}{note}")

    def group(self, it: Item) -> None:
        name, members, policies = _str(it, "name"), _list(it, "members"), _list(it, "policies")
        if self.view.group(name) is None:
            users.create_group(self.view, name)
        for member in members:
            try:
                users.add_member(self.view, name, member)
            except StowageError as exc:
                self.skip(f"group {name}: member {member}", exc.message)
        self._attach("group", name, policies)
        self.imported.append(f"group {name}")

    def key(self, it: Item) -> None:
        ak, user, secret, source = _str(it, "access_key"), _str(it, "user"), _secret(it), _str(it, "source")
        session_policy = _str(it, "session_policy")
        if session_policy:
            check_session_policy(session_policy)
        expires_ns = check_expiry(it.get("expires_ns", 0), future=False)
        if self.view.user(user) is None:
            raise InvalidInput(f"its user {user} is not here")
        self._key(ak, user, secret, bool(it.get("active", True)), session_policy, expires_ns)
        limits = (" with its session policy" if session_policy else "") + (" with an expiry" if expires_ns else "")
        self.imported.append(f"access key {ak} of user {user}" + (f" ({source})" if source else "") + limits)

    def _check_key(self, ak: str, user: str) -> CredentialRecord | None:
        if ak in self.reserved or ak.lower() == ROOT_USER:
            raise InvalidInput("its access key is this appliance's root key")
        rec = self.view.credential(ak)
        if rec is not None and rec.user != user:
            raise InvalidInput(f"access key {ak} belongs to user {rec.user} here")
        return rec

    def _key(self, ak: str, user: str, secret: str, active: bool, session_policy: str = "",
             expires_ns: int = 0) -> None:
        rec = self._check_key(ak, user)
        if (rec is not None and (rec.active, rec.session_policy, rec.expires_ns) == (active, session_policy, expires_ns)
                and not rec.legacy_secret and unseal(self.master, rec) == secret):
            return
        created = rec.created_ns if rec is not None else time.time_ns()
        self.view.put_credential(CredentialRecord(ak, user, created, active, seal(self.master, ak, secret),
                                                  session_policy, expires_ns))

    def _attach(self, kind: managed.EntityKind, name: str, policies: list[str]) -> None:
        for policy in policies:
            try:
                managed.attach(self.view, kind, name, policy)
            except StowageError as exc:
                self.skip(f"{kind} {name}: policy {policy}", f"not attached: {exc.message}")


def _str(it: Item, name: str) -> str:
    value = it.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected text")
    return value


def _secret(it: Item) -> str:
    value = _str(it, "secret_key")
    if not 0 < len(value) <= 1024:
        raise InvalidInput("secret_key: expected 1 to 1024 characters")
    return value


def _list(it: Item, name: str) -> list[str]:
    value = it.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{name}: expected a list of names")
    return value


def _label(it: Item) -> str:
    kind = it.get("kind")
    if kind == "key":
        return f"access key {str(it.get('access_key'))[:128]}"
    return f"{str(kind)[:16]} {str(it.get('name'))[:128]}"


def import_items(view: IdentityView, master: MasterKey, items: list[Item], reserved: set[str]) -> dict[str, Any]:
    """Apply the items in order; returns {"imported": [...], "skipped": [{"item", "reason"}]}."""
    run = _Run(view, master, reserved)
    apply = {"policy": run.policy, "user": run.user, "group": run.group, "key": run.key}
    for it in items:
        fn = apply.get(str(it.get("kind"))) if isinstance(it, Mapping) else None
        if fn is None:
            run.skip(_label(it) if isinstance(it, Mapping) else str(it)[:80], "not an identity item")
            continue
        try:
            fn(it)
        except StowageError as exc:
            run.skip(_label(it), exc.message)
    return {"imported": run.imported, "skipped": run.skipped}

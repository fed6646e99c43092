"""The identities the gateway knows until the identity records of issue 10 land: the root key and
the round-1 users (`stowage user add`). There is nothing to attach policies with yet, so every
user has the canned `readwrite` policy: what round 1 let every key do.

It offers the interface of `identities.Identities` (docs: /work/wt/IAM.md, "Helper A"), so the
gateway is written against that contract now; `Identities` replaces this module. Canonical ids are
derived from the account and the user name, so they are stable across restarts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from appliance.engine import keys
from appliance.engine.records import UserRecord

from .canned import CANNED
from .credentials import ROOT_USER, Credentials
from .policy import DEFAULT_ACCOUNT, Policy, Principal, parse_policy


def _canonical(account: str, who: str) -> str:
    return hashlib.sha256(f"stowage:{account}:{who}".encode()).hexdigest()


class CredentialIdentities:
    """Root and the users of `Credentials`, as principals; users have the `readwrite` policy."""

    def __init__(self, credentials: Credentials, account_id: str = DEFAULT_ACCOUNT) -> None:
        self.credentials = credentials
        self.account_id = account_id
        self.root = Principal.root(account_id, canonical_id=_canonical(account_id, ROOT_USER))
        self._user_policies = (parse_policy(CANNED["readwrite"], "identity", name="readwrite"),)

    def authenticate(self, access_key: str) -> tuple[str, Principal] | None:
        secret = self.credentials.secret_for(access_key)
        if secret is None:
            return None
        name = self.credentials.owner_for(access_key)
        principal = self.root if name == ROOT_USER else self._user(name)
        return secret, principal

    def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        return self._user_policies if principal.kind == "user" else ()

    def principal_for_user(self, name: str) -> Principal | None:
        db = self.credentials.db
        if db is None or db.get(keys.user(name)) is None:
            return None
        return self._user(name)

    def principal_by_canonical_id(self, canonical_id: str) -> Principal | None:
        if canonical_id == self.root.canonical_id:
            return self.root
        db = self.credentials.db
        if db is None:
            return None
        for _, rec in db.scan_records(UserRecord, keys.USER):
            if _canonical(self.account_id, "user/" + rec.name) == canonical_id:
                return self._user(rec.name)
        return None

    def display_name(self, canonical_id: str) -> str:
        p = self.principal_by_canonical_id(canonical_id)
        if p is None:
            return ""
        return ROOT_USER if p.kind == "root" else p.name

    def _user(self, name: str) -> Principal:
        return Principal.user(name, self.account_id, canonical_id=_canonical(self.account_id, "user/" + name))

"""Who a request comes from, and which identity policies apply to it: the gateway's one view of
the identities, answered from memory.

`Identities` holds an immutable index built from the identity records (`build_index`, in a
worker thread, whenever they change: admin.py) and swapped in whole, so `authenticate` is one
dict lookup: no DB read and no unwrapping per request. Rebuilding reuses what did not change:
an unwrapped secret is kept while its wrapped blob is the same, a parsed policy while its text is.

A stored policy that no longer parses (written by another version, say) is enforced as "deny
everything" for the identities it applies to, and logged: a broken Deny must not turn into an
Allow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from appliance.engine.errors import StowageError
from appliance.engine.identity import IdentityState
from appliance.engine.records import AccountRecord, CredentialRecord, GroupRecord, PolicyRecord, UserRecord

from .canned import CANNED
from .credentials import ROOT_USER, RootKey
from .managed import canned_record
from .masterkey import MasterKey
from .policy import MalformedPolicy, Policy, Principal, parse_policy
from .sealing import unseal

log = logging.getLogger("stowage.iam")

_DENY_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}'


@dataclass(frozen=True, slots=True)
class KeyEntry:
    access_key: str
    secret: str
    principal: Principal  # the user's, with the key's session policy if it has one
    active: bool
    user_disabled: bool
    expires_ns: int = 0  # 0: never

    @property
    def usable(self) -> bool:
        return self.active and not self.user_disabled

    def expired(self, now_ns: int) -> bool:
        return self.expires_ns != 0 and now_ns >= self.expires_ns


@dataclass(frozen=True, slots=True)
class UserEntry:
    principal: Principal
    disabled: bool
    policies: tuple[Policy, ...]  # attached managed, inline, then those of the user's groups


@dataclass(frozen=True)
class Index:
    keys: Mapping[str, KeyEntry] = field(default_factory=dict)
    users: Mapping[str, UserEntry] = field(default_factory=dict)
    by_canonical: Mapping[str, UserEntry] = field(default_factory=dict)
    # what the next build may reuse: (label, text) -> parsed; (access key, wrapped) -> secret
    parsed: Mapping[tuple[str, str], Policy] = field(default_factory=dict)
    secrets: Mapping[tuple[str, str], str] = field(default_factory=dict)


class Identities:
    """The identities of the appliance's one account: the root user (its key from the config,
    the environment or credentials.toml) and the IAM users of the metadata DB."""

    def __init__(self, account: AccountRecord, root_key: RootKey) -> None:
        self.account_id = account.account_id
        self.created_ns = account.created_ns
        self.root = Principal.root(account.account_id, canonical_id=account.root_canonical_id)
        self._root_key = root_key
        self._index = Index()

    def install(self, index: Index) -> None:
        self._index = index

    @property
    def index(self) -> Index:
        return self._index

    # --- the contract the gateway calls ------------------------------------------------------------

    def authenticate(self, access_key: str) -> tuple[str, Principal] | None:
        """(secret key, principal) of an active key of an enabled user (root included); None
        otherwise. In memory: no DB read and no unwrap per request."""
        if access_key == self._root_key.access_key:
            return self._root_key.secret_key, self.root
        entry = self._index.keys.get(access_key)
        if entry is None or not entry.usable or entry.expired(time.time_ns()):
            return None
        return entry.secret, entry.principal

    def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        """Parsed policies that apply: attached managed, inline, and those of the user's groups.
        Root and anonymous: ()."""
        if principal.kind != "user":
            return ()
        entry = self._index.users.get(principal.name)
        # a principal of a deleted user gets nothing from a new user of the same name
        if entry is None or entry.principal.user_id != principal.user_id:
            return ()
        return entry.policies

    def principal_for_user(self, name: str) -> Principal | None:
        if name == ROOT_USER:
            return self.root
        entry = self._index.users.get(name)
        return entry.principal if entry is not None else None

    def principal_by_canonical_id(self, canonical_id: str) -> Principal | None:
        if canonical_id == self.root.canonical_id:
            return self.root
        entry = self._index.by_canonical.get(canonical_id)
        return entry.principal if entry is not None else None

    def display_name(self, canonical_id: str) -> str:
        """The name S3 shows for a canonical id (ACL grants, owners): "root" for the account's
        root user, the user name for an IAM user, "" for an id of no known identity."""
        principal = self.principal_by_canonical_id(canonical_id)
        if principal is None:
            return ""
        return ROOT_USER if principal.kind == "root" else principal.name

    # --- beyond the contract ---------------------------------------------------------------------

    @property
    def root_access_key(self) -> str:
        return self._root_key.access_key

    def refusal(self, access_key: str) -> str:
        """The error for a key `authenticate` refused: an active key of a disabled user is denied
        access (AccessDenied); an active key past its expiry is ExpiredToken, as AWS answers for
        expired temporary credentials; any other is unknown (InvalidAccessKeyId), as AWS answers
        for a deleted or deactivated key."""
        entry = self._index.keys.get(access_key)
        if entry is None or not entry.active:
            return "InvalidAccessKeyId"
        if entry.user_disabled:
            return "AccessDenied"
        return "ExpiredToken" if entry.expired(time.time_ns()) else "InvalidAccessKeyId"

    def user_disabled(self, name: str) -> bool:
        entry = self._index.users.get(name)
        return entry is not None and entry.disabled


# --- building the index ----------------------------------------------------------------------------


class _Builder:
    def __init__(self, master: MasterKey, previous: Index) -> None:
        self.master = master
        self.previous = previous
        self.parsed: dict[tuple[str, str], Policy] = {}
        self.secrets: dict[tuple[str, str], str] = {}

    def policy(self, label: str, text: str) -> Policy:
        key = (label, text)
        found = self.parsed.get(key) or self.previous.parsed.get(key)
        if found is None:
            try:
                found = parse_policy(text, "identity", name=label)
            except MalformedPolicy as exc:
                log.error("stored policy %s no longer parses (%s): enforced as deny-all", label, exc.message)
                found = parse_policy(_DENY_ALL, "identity", name=f"{label} (unreadable: deny-all)")
        self.parsed[key] = found
        return found

    def secret(self, cred: CredentialRecord) -> str | None:
        if cred.legacy_secret:
            return cred.legacy_secret
        key = (cred.access_key, cred.wrapped_secret)
        found = self.secrets.get(key) or self.previous.secrets.get(key)
        if found is None:
            try:
                found = unseal(self.master, cred)
            except StowageError as exc:
                log.error("access key %s: its secret cannot be unwrapped (%s): the key is refused",
                          cred.access_key, exc.message)
                return None
        self.secrets[key] = found
        return found

    def policies_of(self, entity: UserRecord | GroupRecord, managed: Mapping[str, PolicyRecord]) -> list[Policy]:
        out: list[Policy] = []
        for name in entity.policies:
            rec = managed.get(name)
            if rec is not None:  # a dangling name (the policy was deleted offline by another tool) grants nothing
                out.append(self.policy(name, rec.document))
        out += [self.policy(f"{entity.name}/{pname}", text) for pname, text in sorted(entity.inline.items())]
        return out


def build_index(state: IdentityState, account: str, master: MasterKey, previous: Index | None = None) -> Index:
    """The index of every identity record (blocking: unwraps new secrets, parses new policies)."""
    b = _Builder(master, previous or Index())
    managed: dict[str, PolicyRecord] = {n: canned_record(n) for n in CANNED}
    managed.update((p.name, p) for p in state.policies)
    users: dict[str, UserEntry] = {}
    for u in state.users:
        principal = Principal.user(u.name, account, user_id=u.user_id, canonical_id=u.canonical_id, path=u.path)
        policies = b.policies_of(u, managed)
        for g in state.groups:
            if u.name in g.members:
                policies += b.policies_of(g, managed)
        users[u.name] = UserEntry(principal, u.disabled, tuple(policies))
    keys: dict[str, KeyEntry] = {}
    for cred in state.credentials:
        owner = users.get(cred.user)
        secret = b.secret(cred) if owner is not None else None
        if owner is not None and secret is not None:
            principal = owner.principal
            if cred.session_policy:  # unparseable: deny-all, as any stored policy
                principal = replace(principal, session=b.policy(f"{cred.access_key} (session policy)",
                                                                cred.session_policy))
            keys[cred.access_key] = KeyEntry(cred.access_key, secret, principal, cred.active, owner.disabled,
                                             cred.expires_ns)
    by_canonical = {e.principal.canonical_id: e for e in users.values() if e.principal.canonical_id}
    return Index(keys, users, by_canonical, b.parsed, b.secrets)

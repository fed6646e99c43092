"""The `stowage user|key|group|policy` commands: op name -> a function over an IdentityView with
JSON-able arguments and result. The daemon runs them for the control socket (appliance/ops/iam.py,
through IdentityAdmin); with the daemon stopped the CLI runs them on the DB directly
(`run_offline`, through engine.offline.identity_session). Either way the same code decides.

The CLI's removals cascade (`user remove` deletes the user's keys and group memberships, `group
remove` its memberships, `policy remove` detaches the policy everywhere); the IAM API's deletions
refuse with DeleteConflict as AWS's do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance.engine.identity import IdentityView
from appliance.engine.records import CredentialRecord, GroupRecord, PolicyRecord, UserRecord

from . import imports, managed, users
from .canned import CANNED
from .errors import InvalidInput, NoSuchEntity
from .keylimits import check_expiry
from .managed import EntityKind
from .masterkey import MasterKey
from .naming import canned_policy_arn, group_arn, policy_arn, user_arn
from .sealing import prepare

Args = Mapping[str, Any]
Json = Any


@dataclass(frozen=True)
class Env:
    master: MasterKey
    account_id: str


@dataclass(frozen=True)
class Command:
    run: Callable[[IdentityView, Env, Args], Json]
    writes: bool


def _text(args: Args, name: str, default: str | None = None) -> str:
    value = args.get(name, default)
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected text")
    return value


def _texts(args: Args, name: str) -> list[str]:
    value = args.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{name}: expected a list of names")
    return value


def _key_json(c: CredentialRecord) -> Json:
    return {"access_key": c.access_key, "user": c.user, "active": c.active, "created_ns": c.created_ns,
            "expires_ns": c.expires_ns, "session_policy": c.session_policy}


def _user_json(view: IdentityView, env: Env, u: UserRecord) -> Json:
    return {"user": u.name, "user_id": u.user_id, "arn": user_arn(env.account_id, u.path, u.name), "path": u.path,
            "canonical_id": u.canonical_id, "created_ns": u.created_ns, "disabled": u.disabled,
            "policies": list(u.policies), "inline_policies": sorted(u.inline),
            "groups": [g.name for g in users.groups_of_user(view, u.name)],
            "keys": [{"access_key": k.access_key, "active": k.active, "created_ns": k.created_ns}
                     for k in users.keys_of(view, u.name)]}


def _group_json(env: Env, g: GroupRecord) -> Json:
    return {"group": g.name, "group_id": g.group_id, "arn": group_arn(env.account_id, g.path, g.name),
            "path": g.path, "created_ns": g.created_ns, "members": list(g.members), "policies": list(g.policies),
            "inline_policies": sorted(g.inline)}


def _policy_arn(env: Env, p: PolicyRecord) -> str:
    return canned_policy_arn(p.name) if managed.is_canned(p.name) else policy_arn(env.account_id, p.path, p.name)


def _policy_json(view: IdentityView, env: Env, p: PolicyRecord) -> Json:
    attached = [f"user/{u.name}" for u in view.users() if p.name in u.policies]
    attached += [f"group/{g.name}" for g in view.groups() if p.name in g.policies]
    return {"policy": p.name, "policy_id": p.policy_id, "arn": _policy_arn(env, p), "canned": managed.is_canned(p.name),
            "path": p.path, "description": p.description, "default_version": p.default_version,
            "versions": [v.version_id for v in p.versions], "attached_to": attached}


# --- users and keys ----------------------------------------------------------------------------


def _existing_user(view: IdentityView, name: str) -> UserRecord:
    try:
        return users.get_user(view, name)
    except NoSuchEntity:
        raise NoSuchEntity(f"no user {name!r} (create it with `stowage user add {name}`)") from None


def user_add(view: IdentityView, env: Env, a: Args) -> Json:
    u = users.create_user(view, _text(a, "name", ""), _text(a, "path", "/"))
    for name in _texts(a, "policies"):
        managed.attach(view, "user", u.name, name)
    out = {"user": u.name, "user_id": u.user_id, "arn": user_arn(env.account_id, u.path, u.name)}
    if not a.get("no_key"):
        cred, secret = users.create_key(view, env.master, u.name)
        out |= {"access_key": cred.access_key, "secret_key": secret}
    return out


def user_list(view: IdentityView, env: Env, a: Args) -> Json:
    return [_user_json(view, env, u) for u in users.list_users(view)]


def user_show(view: IdentityView, env: Env, a: Args) -> Json:
    return _user_json(view, env, _existing_user(view, _text(a, "name", "")))


def _user_disabled(disabled: bool) -> Callable[[IdentityView, Env, Args], Json]:
    def run(view: IdentityView, env: Env, a: Args) -> Json:
        u = users.set_user_disabled(view, _text(a, "name", ""), disabled)
        return {"user": u.name, "disabled": u.disabled}

    return run


def user_remove(view: IdentityView, env: Env, a: Args) -> Json:
    r = users.delete_user(view, _text(a, "name", ""), force=True)
    return {"user": r.user.name, "removed_keys": r.keys, "groups": r.groups}


def key_create(view: IdentityView, env: Env, a: Args) -> Json:
    cred, secret = users.create_key(view, env.master, _existing_user(view, _text(a, "user", "")).name,
                                    session_policy=_text(a, "policy", ""),
                                    expires_ns=check_expiry(a.get("expires_ns", 0), future=True))
    return {"user": cred.user, "access_key": cred.access_key, "secret_key": secret, "expires_ns": cred.expires_ns,
            "session_policy": cred.session_policy}


def key_show(view: IdentityView, env: Env, a: Args) -> Json:
    return _key_json(users.get_key(view, _text(a, "access_key", "")))


def key_list(view: IdentityView, env: Env, a: Args) -> Json:
    user = _text(a, "user", "")
    if user:
        _existing_user(view, user)
    return [_key_json(c) for c in sorted(view.credentials(), key=lambda c: (c.user, c.created_ns))
            if not user or c.user == user]


def _key_active(active: bool) -> Callable[[IdentityView, Env, Args], Json]:
    def run(view: IdentityView, env: Env, a: Args) -> Json:
        return _key_json(users.set_key_active(view, _text(a, "access_key", ""), active))

    return run


def key_delete(view: IdentityView, env: Env, a: Args) -> Json:
    return _key_json(users.delete_key(view, _text(a, "access_key", "")))


# --- groups ------------------------------------------------------------------------------------


def group_add(view: IdentityView, env: Env, a: Args) -> Json:
    return _group_json(env, users.create_group(view, _text(a, "name", ""), _text(a, "path", "/")))


def group_remove(view: IdentityView, env: Env, a: Args) -> Json:
    return _group_json(env, users.delete_group(view, _text(a, "name", ""), force=True))


def group_list(view: IdentityView, env: Env, a: Args) -> Json:
    return [_group_json(env, g) for g in users.list_groups(view)]


def group_members(view: IdentityView, env: Env, a: Args) -> Json:
    name = _text(a, "name", "")
    for user in _texts(a, "add"):
        users.add_member(view, name, user)
    for user in _texts(a, "remove"):
        users.remove_member(view, name, user)
    return _group_json(env, users.get_group(view, name))


# --- policies ----------------------------------------------------------------------------------


def _document(a: Args) -> str:
    canned = _text(a, "canned", "")
    if canned:
        if canned not in CANNED:
            raise InvalidInput(f"no canned policy {canned!r} (there are {', '.join(sorted(CANNED))})")
        return CANNED[canned]
    return _text(a, "document", "")


def policy_create(view: IdentityView, env: Env, a: Args) -> Json:
    p = managed.create_policy(view, _text(a, "name", ""), _document(a), _text(a, "path", "/"),
                              _text(a, "description", ""))
    return _policy_json(view, env, p)


def policy_update(view: IdentityView, env: Env, a: Args) -> Json:
    """A new default version; at the quota of five, the oldest other version makes room."""
    name = _text(a, "name", "")
    rec = managed.get_policy(view, name)
    if len(rec.versions) >= managed.MAX_VERSIONS and not managed.is_canned(name):
        oldest = next(v for v in rec.versions if v.version_id != rec.default_version)
        managed.delete_version(view, name, oldest.version_id)
    managed.create_version(view, name, _document(a), set_default=True)
    return _policy_json(view, env, managed.get_policy(view, name))


def policy_list(view: IdentityView, env: Env, a: Args) -> Json:
    return [_policy_json(view, env, p) for p in managed.list_policies(view)]


def policy_show(view: IdentityView, env: Env, a: Args) -> Json:
    name = _text(a, "name", "")
    p = managed.get_policy(view, name)
    version = _text(a, "version", "") or p.default_version
    return _policy_json(view, env, p) | {"version": version,
                                          "document": managed.get_version(view, name, version).document}


def _target(a: Args) -> tuple[EntityKind, str]:
    user, group = _text(a, "user", ""), _text(a, "group", "")
    if bool(user) == bool(group):
        raise InvalidInput("name one user or one group")
    return ("user", user) if user else ("group", group)


def policy_attach(view: IdentityView, env: Env, a: Args) -> Json:
    kind, name = _target(a)
    entity = managed.attach(view, kind, name, _text(a, "name", ""))
    return {kind: entity.name, "policies": list(entity.policies)}


def policy_detach(view: IdentityView, env: Env, a: Args) -> Json:
    kind, name = _target(a)
    entity = managed.detach(view, kind, name, _text(a, "name", ""))
    return {kind: entity.name, "policies": list(entity.policies)}


def policy_remove(view: IdentityView, env: Env, a: Args) -> Json:
    r = managed.delete_policy(view, _text(a, "name", ""), force=True)
    return {"policy": r.policy.name, "detached_from": r.detached_from}


def iam_import(view: IdentityView, env: Env, a: Args) -> Json:
    items = a.get("items")
    if not isinstance(items, list):
        raise InvalidInput("items: expected a list")
    return imports.import_items(view, env.master, items, set(_texts(a, "reserved_keys")))


COMMANDS: dict[str, Command] = {
    "user.add": Command(user_add, True),
    "user.list": Command(user_list, False),
    "user.show": Command(user_show, False),
    "user.disable": Command(_user_disabled(True), True),
    "user.enable": Command(_user_disabled(False), True),
    "user.remove": Command(user_remove, True),
    "key.create": Command(key_create, True),
    "key.list": Command(key_list, False),
    "key.show": Command(key_show, False),
    "key.revoke": Command(_key_active(False), True),
    "key.enable": Command(_key_active(True), True),
    "key.delete": Command(key_delete, True),
    "group.add": Command(group_add, True),
    "group.remove": Command(group_remove, True),
    "group.list": Command(group_list, False),
    "group.members": Command(group_members, True),
    "policy.create": Command(policy_create, True),
    "policy.update": Command(policy_update, True),
    "policy.list": Command(policy_list, False),
    "policy.show": Command(policy_show, False),
    "policy.attach": Command(policy_attach, True),
    "policy.detach": Command(policy_detach, True),
    "policy.remove": Command(policy_remove, True),
    "iam.import": Command(iam_import, True),  # `stowage import minio-iam` (imports.py)
}


def run_offline(view: IdentityView, master: MasterKey, op: str, args: Args) -> Json:
    """One command with the daemon stopped: the start-up preparation first (account, re-wrapping
    round-1 secrets), as the daemon would do it, then the command."""
    account = prepare(view, master)
    return COMMANDS[op].run(view, Env(master, account.account_id), args)

"""IAM users, their access keys, and groups: the rules of AWS's IAM API over the identity
records (names, quotas, conflicts), as plain functions over an IdentityView so the daemon (the
IAM API and the control socket) and the offline CLI run the same code.

Secrets: `create_key` returns the new secret once; it is stored wrapped (sealing.py) and never
logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from appliance.engine.identity import IdentityView
from appliance.engine.records import CredentialRecord, GroupRecord, UserRecord

from .credentials import ROOT_USER, new_access_key, new_secret_key
from .errors import DeleteConflict, EntityAlreadyExists, InvalidInput, LimitExceeded, NoSuchEntity
from .keylimits import check_expiry, check_session_policy
from .masterkey import MasterKey
from .naming import (
    MAX_USER_NAME,
    check_access_key_id,
    check_name,
    check_path,
    check_user_name,
    new_canonical_id,
    new_id,
)
from .sealing import seal

# AWS's default quotas
MAX_KEYS_PER_USER = 2
MAX_GROUPS_PER_USER = 10


# --- users -------------------------------------------------------------------------------------


def create_user(view: IdentityView, name: str, path: str = "/") -> UserRecord:
    check_user_name(name)
    check_path(path)
    if name.lower() == ROOT_USER:
        raise InvalidInput(f"{ROOT_USER!r} is reserved for the appliance's root key")
    # IAM names are unique without regard to case
    if any(u.name.lower() == name.lower() for u in view.users()):
        raise EntityAlreadyExists(f"User with name {name} already exists.")
    rec = UserRecord(name, time.time_ns(), user_id=new_id("AIDA"), canonical_id=new_canonical_id(), path=path)
    view.put_user(rec)
    return rec


def get_user(view: IdentityView, name: str) -> UserRecord:
    rec = view.user(name) if len(name) <= MAX_USER_NAME else None
    if rec is None:
        raise NoSuchEntity(f"The user with name {name[:MAX_USER_NAME]} cannot be found.")
    return rec


def list_users(view: IdentityView, path_prefix: str = "/") -> list[UserRecord]:
    return [u for u in view.users() if u.path.startswith(path_prefix)]


def set_user_disabled(view: IdentityView, name: str, disabled: bool) -> UserRecord:
    rec = get_user(view, name)
    if rec.disabled != disabled:
        rec.disabled = disabled
        view.put_user(rec)
    return rec


@dataclass(frozen=True)
class RemovedUser:
    user: UserRecord
    keys: list[str]  # the access keys deleted with it
    groups: list[str]  # the groups it was removed from


def delete_user(view: IdentityView, name: str, *, force: bool = False) -> RemovedUser:
    """Delete a user. As IAM's DeleteUser, a user with keys, policies or groups is a DeleteConflict;
    with `force` (`stowage user remove`) those go with it."""
    rec = get_user(view, name)
    creds = keys_of(view, name)
    groups = groups_of_user(view, name)
    if not force:
        if creds:
            raise DeleteConflict("Cannot delete entity, must delete access keys first.")
        if rec.inline:
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if rec.policies:
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        if groups:
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
    for cred in creds:
        view.delete_credential(cred.access_key)
    for g in groups:
        g.members.remove(name)
        view.put_group(g)
    view.delete_user(name)
    return RemovedUser(rec, [c.access_key for c in creds], [g.name for g in groups])


# --- access keys -------------------------------------------------------------------------------


def keys_of(view: IdentityView, user: str) -> list[CredentialRecord]:
    return sorted((c for c in view.credentials() if c.user == user), key=lambda c: c.created_ns)


def create_key(view: IdentityView, master: MasterKey, user: str, *, session_policy: str = "",
               expires_ns: int = 0) -> tuple[CredentialRecord, str]:
    """A new active key for the user: (its record, the secret, shown this once). It may carry a
    session policy and an expiry (keylimits.py)."""
    get_user(view, user)
    if session_policy:
        check_session_policy(session_policy)
    check_expiry(expires_ns, future=True)
    if len(keys_of(view, user)) >= MAX_KEYS_PER_USER:
        raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}")
    access_key = new_access_key()
    while view.credential(access_key) is not None:
        access_key = new_access_key()
    secret = new_secret_key()
    rec = CredentialRecord(access_key, user, time.time_ns(), True, seal(master, access_key, secret),
                           session_policy, expires_ns)
    view.put_credential(rec)
    return rec, secret


def get_key(view: IdentityView, access_key: str, user: str | None = None) -> CredentialRecord:
    """The key; with `user`, only if it is that user's (IAM's UserName parameter). A stored key
    is found whatever its form (keys imported from MinIO may be shorter than IAM's 16)."""
    rec = view.credential(access_key) if len(access_key) <= 128 else None
    if rec is None:
        check_access_key_id(access_key)
    if rec is None or (user is not None and rec.user != user):
        raise NoSuchEntity(f"The Access Key with id {access_key} cannot be found.")
    return rec


def set_key_active(view: IdentityView, access_key: str, active: bool, user: str | None = None) -> CredentialRecord:
    rec = get_key(view, access_key, user)
    if rec.active != active:
        rec.active = active
        view.put_credential(rec)
    return rec


def delete_key(view: IdentityView, access_key: str, user: str | None = None) -> CredentialRecord:
    rec = get_key(view, access_key, user)
    view.delete_credential(access_key)
    return rec


# --- groups ------------------------------------------------------------------------------------


def create_group(view: IdentityView, name: str, path: str = "/") -> GroupRecord:
    check_name(name, "groupName")
    check_path(path)
    if any(g.name.lower() == name.lower() for g in view.groups()):
        raise EntityAlreadyExists(f"Group with name {name} already exists.")
    rec = GroupRecord(name, time.time_ns(), new_id("AGPA"), path)
    view.put_group(rec)
    return rec


def get_group(view: IdentityView, name: str) -> GroupRecord:
    rec = view.group(name)
    if rec is None:
        raise NoSuchEntity(f"The group with name {name[:128]} cannot be found.")
    return rec


def list_groups(view: IdentityView, path_prefix: str = "/") -> list[GroupRecord]:
    return [g for g in view.groups() if g.path.startswith(path_prefix)]


def groups_of_user(view: IdentityView, user: str) -> list[GroupRecord]:
    return [g for g in view.groups() if user in g.members]


def delete_group(view: IdentityView, name: str, *, force: bool = False) -> GroupRecord:
    """Delete a group. As IAM's DeleteGroup, one with members or policies is a DeleteConflict;
    with `force` (`stowage group remove`) the members are removed and the policies go with it."""
    rec = get_group(view, name)
    if not force:
        if rec.members:
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        if rec.inline:
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if rec.policies:
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
    view.delete_group(name)
    return rec


def add_member(view: IdentityView, group: str, user: str) -> GroupRecord:
    rec = get_group(view, group)
    get_user(view, user)
    if user not in rec.members:
        if len(groups_of_user(view, user)) >= MAX_GROUPS_PER_USER:
            raise LimitExceeded(f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
        rec.members.append(user)
        view.put_group(rec)
    return rec


def remove_member(view: IdentityView, group: str, user: str) -> GroupRecord:
    rec = get_group(view, group)
    get_user(view, user)
    if user not in rec.members:
        raise NoSuchEntity(f"User {user} is not a member of group {group}.")
    rec.members.remove(user)
    view.put_group(rec)
    return rec

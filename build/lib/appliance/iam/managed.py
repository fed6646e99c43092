"""Managed policies (the canned ones and the account's own), inline policies, and attaching
them to users and groups, with the rules of AWS's IAM API, as plain functions over an
IdentityView (see users.py).

The canned policies (canned.py) behave as AWS-managed policies: always there, attachable, never
changed or deleted, with ARNs arn:aws:iam::aws:policy/NAME; their names are reserved, so a name
alone (what the CLI and the records use) always says which policy is meant. Every document is
validated as an identity policy (policy.parse_policy) before it is stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from appliance.engine.identity import IdentityView
from appliance.engine.records import GroupRecord, PolicyRecord, PolicyVersion, UserRecord, derived_id

from .canned import CANNED
from .document import MAX_POLICY_BYTES, MalformedPolicy
from .errors import (
    DeleteConflict,
    EntityAlreadyExists,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    UnmodifiableEntity,
)
from .naming import check_description, check_name, check_path, check_version_id, new_id
from .policy import parse_policy
from .users import get_group, get_user

EntityKind = Literal["user", "group"]

# AWS's default quotas
MAX_VERSIONS = 5
MAX_ATTACHED = 10  # managed policies attached to one user or group
MAX_DOCUMENT_BYTES = MAX_POLICY_BYTES["identity"]


def validate_document(text: str) -> str:
    """The document, if it is a valid identity policy; else LimitExceeded (too large) or
    MalformedPolicyDocument naming the problem."""
    if len(text.encode("utf-8", "replace")) > MAX_DOCUMENT_BYTES:
        raise LimitExceeded(f"Cannot exceed quota for PolicySize: {MAX_DOCUMENT_BYTES}")
    try:
        parse_policy(text, "identity")
    except MalformedPolicy as exc:
        raise MalformedPolicyDocument(exc.message) from None
    return text


# --- managed policies --------------------------------------------------------------------------


def is_canned(name: str) -> bool:
    return name in CANNED


def canned_record(name: str) -> PolicyRecord:
    return PolicyRecord(name, 0, derived_id("ANPA", "canned", name), description=f"canned policy {name}",
                        versions=[PolicyVersion("v1", CANNED[name], 0)])


def get_policy(view: IdentityView, name: str) -> PolicyRecord:
    if is_canned(name):
        return canned_record(name)
    rec = view.policy(name)
    if rec is None:
        raise NoSuchEntity(f"Policy {name[:128]} does not exist or is not attachable.")
    return rec


def create_policy(view: IdentityView, name: str, document: str, path: str = "/",
                  description: str = "") -> PolicyRecord:
    check_name(name, "policyName")
    check_path(path)
    check_description(description)
    taken = [*CANNED, *(p.name for p in view.policies())]
    if any(n.lower() == name.lower() for n in taken):
        raise EntityAlreadyExists(f"A policy called {name} already exists. Duplicate names are not allowed.")
    validate_document(document)
    now = time.time_ns()
    rec = PolicyRecord(name, now, new_id("ANPA"), path, description, now, "v1", [PolicyVersion("v1", document, now)])
    view.put_policy(rec)
    return rec


def list_policies(view: IdentityView, scope: str = "All", only_attached: bool = False,
                  path_prefix: str = "/") -> list[PolicyRecord]:
    found: list[PolicyRecord] = []
    if scope in ("All", "AWS"):
        found += [canned_record(n) for n in sorted(CANNED)]
    if scope in ("All", "Local"):
        found += view.policies()
    found = [p for p in found if p.path.startswith(path_prefix)]
    if only_attached:
        counts = attachment_counts(view)
        found = [p for p in found if counts.get(p.name, 0)]
    return found


def _entities(view: IdentityView) -> list[UserRecord | GroupRecord]:
    return [*view.users(), *view.groups()]


def attachment_counts(view: IdentityView) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entity in _entities(view):
        for name in entity.policies:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _modifiable(view: IdentityView, name: str) -> PolicyRecord:
    if is_canned(name):
        raise UnmodifiableEntity(f"The canned policy {name} cannot be changed or deleted.")
    return get_policy(view, name)


@dataclass(frozen=True)
class RemovedPolicy:
    policy: PolicyRecord
    detached_from: list[str]  # "user/NAME", "group/NAME"


def delete_policy(view: IdentityView, name: str, *, force: bool = False) -> RemovedPolicy:
    """Delete a managed policy. As IAM's DeletePolicy, an attached policy, or one with versions
    besides the default, is a DeleteConflict; with `force` (`stowage policy remove`) it is
    detached from everything first."""
    rec = _modifiable(view, name)
    holders = [e for e in _entities(view) if name in e.policies]
    if not force:
        if holders:
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        if len(rec.versions) > 1:
            raise DeleteConflict("This policy has more than one version. Before you delete a policy, you must "
                                 "delete the policy's versions. The default version is deleted with the policy.")
    detached = []
    for entity in holders:
        entity.policies.remove(name)
        _save(view, entity)
        detached.append(f"{_kind(entity)}/{entity.name}")
    view.delete_policy(name)
    return RemovedPolicy(rec, detached)


def create_version(view: IdentityView, name: str, document: str, set_default: bool) -> PolicyVersion:
    rec = _modifiable(view, name)
    if len(rec.versions) >= MAX_VERSIONS:
        raise LimitExceeded(f"A managed policy can have up to {MAX_VERSIONS} versions. Before you create a new "
                            "version, you must delete an existing version.")
    validate_document(document)
    now = time.time_ns()
    version = PolicyVersion(f"v{rec.next_version}", document, now)
    rec.versions.append(version)
    rec.next_version += 1
    rec.updated_ns = now
    if set_default:
        rec.default_version = version.version_id
    view.put_policy(rec)
    return version


def get_version(view: IdentityView, name: str, version_id: str) -> PolicyVersion:
    check_version_id(version_id)
    found = get_policy(view, name).version(version_id)
    if found is None:
        raise NoSuchEntity(f"Policy {name} version {version_id} does not exist or is not attachable.")
    return found


def delete_version(view: IdentityView, name: str, version_id: str) -> None:
    rec = _modifiable(view, name)
    version = get_version(view, name, version_id)
    if version_id == rec.default_version:
        raise DeleteConflict("Cannot delete the default version of a policy.")
    rec.versions.remove(version)
    view.put_policy(rec)


def set_default_version(view: IdentityView, name: str, version_id: str) -> PolicyRecord:
    rec = _modifiable(view, name)
    get_version(view, name, version_id)
    rec.default_version = version_id
    rec.updated_ns = time.time_ns()
    view.put_policy(rec)
    return rec


# --- attaching and inline policies -------------------------------------------------------------


def _kind(entity: UserRecord | GroupRecord) -> EntityKind:
    return "user" if isinstance(entity, UserRecord) else "group"


def _entity(view: IdentityView, kind: EntityKind, name: str) -> UserRecord | GroupRecord:
    return get_user(view, name) if kind == "user" else get_group(view, name)


def _save(view: IdentityView, entity: UserRecord | GroupRecord) -> None:
    if isinstance(entity, UserRecord):
        view.put_user(entity)
    else:
        view.put_group(entity)


def attach(view: IdentityView, kind: EntityKind, entity_name: str, policy: str) -> UserRecord | GroupRecord:
    entity = _entity(view, kind, entity_name)
    get_policy(view, policy)
    if policy not in entity.policies:
        if len(entity.policies) >= MAX_ATTACHED:
            quota = "PoliciesPerUser" if kind == "user" else "PoliciesPerGroup"
            raise LimitExceeded(f"Cannot exceed quota for {quota}: {MAX_ATTACHED}")
        entity.policies.append(policy)
        _save(view, entity)
    return entity


def detach(view: IdentityView, kind: EntityKind, entity_name: str, policy: str) -> UserRecord | GroupRecord:
    entity = _entity(view, kind, entity_name)
    if policy not in entity.policies:
        raise NoSuchEntity(f"Policy {policy[:128]} is not attached to {kind} {entity_name}.")
    entity.policies.remove(policy)
    _save(view, entity)
    return entity


def put_inline(view: IdentityView, kind: EntityKind, entity_name: str, name: str, document: str) -> None:
    entity = _entity(view, kind, entity_name)
    check_name(name, "policyName")
    entity.inline[name] = validate_document(document)
    _save(view, entity)


def get_inline(view: IdentityView, kind: EntityKind, entity_name: str, name: str) -> str:
    found = _entity(view, kind, entity_name).inline.get(name)
    if found is None:
        raise NoSuchEntity(f"The {kind} policy with name {name[:128]} cannot be found.")
    return found


def delete_inline(view: IdentityView, kind: EntityKind, entity_name: str, name: str) -> None:
    entity = _entity(view, kind, entity_name)
    if entity.inline.pop(name, None) is None:
        raise NoSuchEntity(f"The {kind} policy with name {name[:128]} cannot be found.")
    _save(view, entity)


def list_inline(view: IdentityView, kind: EntityKind, entity_name: str) -> list[str]:
    return sorted(_entity(view, kind, entity_name).inline)

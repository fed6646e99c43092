"""The IAM actions the gateway answers: action name -> handler, each authorizing the caller for
`iam:<Action>` on the resource's ARN (users, groups and policies with their paths) before it
reads or changes anything, then calling the identity layer (appliance/iam/users.py, managed.py)
through IdentityAdmin, which runs the change in a worker thread (a policy document is parsed
there) and rebuilds the gateway's index before the answer goes out.

Responses carry what botocore's IAM model reads; a handler returns the XML inside
<ActionResult> (None: the action has no result element).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from appliance.engine import CredentialRecord, GroupRecord, IdentityView, PolicyRecord, PolicyVersion, UserRecord
from appliance.iam import managed, users
from appliance.iam.errors import InvalidInput, NoSuchEntity, ValidationError
from appliance.iam.managed import EntityKind
from appliance.iam.naming import (
    canned_policy_arn,
    check_path_prefix,
    group_arn,
    parse_policy_arn,
    policy_arn,
    user_arn,
)

from .iamcall import Call, members, quoted_document
from .xmlio import el, esc, iso_time

Handler = Callable[[Call], Awaitable[str | None]]


# --- XML shapes ----------------------------------------------------------------------------------


def _user(account: str, u: UserRecord) -> str:
    return (el("Path", u.path) + el("UserName", u.name) + el("UserId", u.user_id)
            + el("Arn", user_arn(account, u.path, u.name)) + el("CreateDate", iso_time(u.created_ns)))


def _group(account: str, g: GroupRecord) -> str:
    return (el("Path", g.path) + el("GroupName", g.name) + el("GroupId", g.group_id)
            + el("Arn", group_arn(account, g.path, g.name)) + el("CreateDate", iso_time(g.created_ns)))


def _arn_of(account: str, p: PolicyRecord) -> str:
    return canned_policy_arn(p.name) if managed.is_canned(p.name) else policy_arn(account, p.path, p.name)


def _policy(account: str, p: PolicyRecord, attachments: int, description: bool = True) -> str:
    return (el("PolicyName", p.name) + el("PolicyId", p.policy_id) + el("Arn", _arn_of(account, p))
            + el("Path", p.path) + el("DefaultVersionId", p.default_version) + el("AttachmentCount", attachments)
            + el("PermissionsBoundaryUsageCount", 0) + el("IsAttachable", True)
            + (el("Description", p.description) if description and p.description else "")
            + el("CreateDate", iso_time(p.created_ns)) + el("UpdateDate", iso_time(p.updated_ns or p.created_ns)))


def _version(v: PolicyVersion, default: str, document: bool) -> str:
    return ((f"<Document>{quoted_document(v.document)}</Document>" if document else "")
            + el("VersionId", v.version_id) + el("IsDefaultVersion", v.version_id == default)
            + el("CreateDate", iso_time(v.created_ns)))


def _key_metadata(c: CredentialRecord) -> str:
    return (el("UserName", c.user) + el("AccessKeyId", c.access_key)
            + el("Status", "Active" if c.active else "Inactive") + el("CreateDate", iso_time(c.created_ns)))


# --- resources -----------------------------------------------------------------------------------


def _user_arn(call: Call, name: str) -> str:
    u = call.admin.peek().user(name)
    return user_arn(call.account, u.path if u is not None else "/", name)


def _group_arn(call: Call, name: str) -> str:
    g = call.admin.peek().group(name)
    return group_arn(call.account, g.path if g is not None else "/", name)


def _subject(call: Call) -> str:
    """The user an action without UserName is about: the caller itself."""
    name = call.param("UserName")
    if name:
        return name
    if call.principal.kind != "user":
        raise InvalidInput("UserName is required: the root user's key is set in the appliance's configuration")
    return call.principal.name


def _resolve(view: IdentityView, account: str, arn: str) -> PolicyRecord:
    """The managed policy an ARN names (its path must match, as ARNs include it)."""
    ref = parse_policy_arn(arn, account)
    if not ref.canned and managed.is_canned(ref.name):
        raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
    rec = managed.get_policy(view, ref.name)
    if rec.path != ref.path:
        raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
    return rec


# --- users ---------------------------------------------------------------------------------------


async def create_user(call: Call) -> str:
    name, path = call.required("UserName"), call.param("Path", "/")
    call.allow("CreateUser", user_arn(call.account, path, name))
    u = await call.admin.write(lambda v: users.create_user(v, name, path))
    return f"<User>{_user(call.account, u)}</User>"


async def get_user(call: Call) -> str:
    if not call.param("UserName") and call.principal.kind == "root":
        return (f"<User>{el('UserId', call.account)}{el('Arn', call.principal.arn)}"
                f"{el('CreateDate', iso_time(call.admin.identities.created_ns))}</User>")
    name = _subject(call)
    call.allow("GetUser", _user_arn(call, name))
    u = await call.admin.read(lambda v: users.get_user(v, name))
    return f"<User>{_user(call.account, u)}</User>"


async def list_users(call: Call) -> str:
    prefix = check_path_prefix(call.param("PathPrefix", "/"))
    call.allow("ListUsers", f"arn:aws:iam::{call.account}:user{prefix}*")
    found = await call.admin.read(lambda v: users.list_users(v, prefix))
    page, tail = call.page(found, lambda u: u.name)
    return members("Users", [_user(call.account, u) for u in page]) + tail


async def delete_user(call: Call) -> None:
    name = call.required("UserName")
    call.allow("DeleteUser", _user_arn(call, name))
    await call.admin.write(lambda v: users.delete_user(v, name))


# --- access keys ---------------------------------------------------------------------------------


async def create_access_key(call: Call) -> str:
    name = _subject(call)
    call.allow("CreateAccessKey", _user_arn(call, name))
    cred, secret = await call.admin.write(lambda v: users.create_key(v, call.admin.master, name))
    return (f"<AccessKey>{el('UserName', name)}{el('AccessKeyId', cred.access_key)}{el('Status', 'Active')}"
            f"{el('SecretAccessKey', secret)}{el('CreateDate', iso_time(cred.created_ns))}</AccessKey>")


async def list_access_keys(call: Call) -> str:
    if not call.param("UserName") and call.principal.kind == "root":
        # paged like any list, so a bad MaxItems is refused and a Marker past the key honoured
        keys, tail = call.page([call.admin.identities.root_access_key], lambda k: k)
        return members("AccessKeyMetadata", [el("AccessKeyId", k) + el("Status", "Active") for k in keys]) + tail
    name = _subject(call)
    call.allow("ListAccessKeys", _user_arn(call, name))

    def run(v: IdentityView) -> list[CredentialRecord]:
        users.get_user(v, name)
        return users.keys_of(v, name)

    page, tail = call.page(await call.admin.read(run), lambda c: c.access_key)
    return members("AccessKeyMetadata", [_key_metadata(c) for c in page]) + tail


def _key_user(call: Call, access_key: str) -> tuple[str | None, str]:
    """(the user the key must belong to, the user whose ARN the action is on): UserName, else the
    caller; the root user, who has no key in the DB, may name any user's key by its id alone."""
    if call.param("UserName") or call.principal.kind == "user":
        name = _subject(call)
        return name, name
    cred = call.admin.peek().credential(access_key)
    if cred is None:
        raise NoSuchEntity(f"The Access Key with id {access_key[:128]} cannot be found.")
    return None, cred.user


async def update_access_key(call: Call) -> None:
    access_key, status = call.required("AccessKeyId"), call.required("Status")
    if status not in ("Active", "Inactive"):
        raise ValidationError(f"1 validation error detected: Value {status[:20]!r} at 'status' failed to satisfy "
                              "constraint: Member must satisfy enum value set: [Active, Inactive]")
    owner, subject = _key_user(call, access_key)
    call.allow("UpdateAccessKey", _user_arn(call, subject))
    await call.admin.write(lambda v: users.set_key_active(v, access_key, status == "Active", owner))


async def delete_access_key(call: Call) -> None:
    access_key = call.required("AccessKeyId")
    owner, subject = _key_user(call, access_key)
    call.allow("DeleteAccessKey", _user_arn(call, subject))
    await call.admin.write(lambda v: users.delete_key(v, access_key, owner))


# --- groups --------------------------------------------------------------------------------------


async def create_group(call: Call) -> str:
    name, path = call.required("GroupName"), call.param("Path", "/")
    call.allow("CreateGroup", group_arn(call.account, path, name))
    g = await call.admin.write(lambda v: users.create_group(v, name, path))
    return f"<Group>{_group(call.account, g)}</Group>"


async def get_group(call: Call) -> str:
    name = call.required("GroupName")
    call.allow("GetGroup", _group_arn(call, name))

    def run(v: IdentityView) -> tuple[GroupRecord, list[UserRecord]]:
        g = users.get_group(v, name)
        return g, [u for u in (v.user(m) for m in g.members) if u is not None]

    g, found = await call.admin.read(run)
    page, tail = call.page(found, lambda u: u.name)
    return f"<Group>{_group(call.account, g)}</Group>" + members("Users", [_user(call.account, u) for u in page]) + tail


async def list_groups(call: Call) -> str:
    prefix = check_path_prefix(call.param("PathPrefix", "/"))
    call.allow("ListGroups", f"arn:aws:iam::{call.account}:group{prefix}*")
    found = await call.admin.read(lambda v: users.list_groups(v, prefix))
    page, tail = call.page(found, lambda g: g.name)
    return members("Groups", [_group(call.account, g) for g in page]) + tail


async def delete_group(call: Call) -> None:
    name = call.required("GroupName")
    call.allow("DeleteGroup", _group_arn(call, name))
    await call.admin.write(lambda v: users.delete_group(v, name))


async def list_groups_for_user(call: Call) -> str:
    name = call.required("UserName")
    call.allow("ListGroupsForUser", _user_arn(call, name))

    def run(v: IdentityView) -> list[GroupRecord]:
        users.get_user(v, name)
        return users.groups_of_user(v, name)

    page, tail = call.page(await call.admin.read(run), lambda g: g.name)
    return members("Groups", [_group(call.account, g) for g in page]) + tail


async def add_user_to_group(call: Call) -> None:
    group, name = call.required("GroupName"), call.required("UserName")
    call.allow("AddUserToGroup", _group_arn(call, group))
    await call.admin.write(lambda v: users.add_member(v, group, name))


async def remove_user_from_group(call: Call) -> None:
    group, name = call.required("GroupName"), call.required("UserName")
    call.allow("RemoveUserFromGroup", _group_arn(call, group))
    await call.admin.write(lambda v: users.remove_member(v, group, name))


# --- managed policies ----------------------------------------------------------------------------


async def create_policy(call: Call) -> str:
    name, document = call.required("PolicyName"), call.required("PolicyDocument")
    path, description = call.param("Path", "/"), call.param("Description")
    call.allow("CreatePolicy", policy_arn(call.account, path, name))
    p = await call.admin.write(lambda v: managed.create_policy(v, name, document, path, description))
    return f"<Policy>{_policy(call.account, p, 0)}</Policy>"


async def get_policy(call: Call) -> str:
    arn = call.required("PolicyArn")
    call.allow("GetPolicy", arn)

    def run(v: IdentityView) -> tuple[PolicyRecord, int]:
        p = _resolve(v, call.account, arn)
        return p, managed.attachment_counts(v).get(p.name, 0)

    p, count = await call.admin.read(run)
    return f"<Policy>{_policy(call.account, p, count)}</Policy>"


async def list_policies(call: Call) -> str:
    scope = call.param("Scope", "All")
    if scope not in ("All", "AWS", "Local"):
        raise ValidationError(f"1 validation error detected: Value {scope[:20]!r} at 'scope' failed to satisfy "
                              "constraint: Member must satisfy enum value set: [All, AWS, Local]")
    prefix = check_path_prefix(call.param("PathPrefix", "/"))
    only_attached = call.flag("OnlyAttached")
    call.allow("ListPolicies", f"arn:aws:iam::{call.account}:policy{prefix}*")

    def run(v: IdentityView) -> tuple[list[PolicyRecord], dict[str, int]]:
        return managed.list_policies(v, scope, only_attached, prefix), managed.attachment_counts(v)

    found, counts = await call.admin.read(run)
    page, tail = call.page(found, lambda p: _arn_of(call.account, p))
    return members("Policies", [_policy(call.account, p, counts.get(p.name, 0), description=False)
                                for p in page]) + tail


async def delete_policy(call: Call) -> None:
    arn = call.required("PolicyArn")
    call.allow("DeletePolicy", arn)
    await call.admin.write(lambda v: managed.delete_policy(v, _resolve(v, call.account, arn).name))


async def get_policy_version(call: Call) -> str:
    arn, version_id = call.required("PolicyArn"), call.required("VersionId")
    call.allow("GetPolicyVersion", arn)

    def run(v: IdentityView) -> tuple[PolicyVersion, str]:
        p = _resolve(v, call.account, arn)
        return managed.get_version(v, p.name, version_id), p.default_version

    version, default = await call.admin.read(run)
    return f"<PolicyVersion>{_version(version, default, document=True)}</PolicyVersion>"


async def create_policy_version(call: Call) -> str:
    arn, document = call.required("PolicyArn"), call.required("PolicyDocument")
    set_default = call.flag("SetAsDefault")
    call.allow("CreatePolicyVersion", arn)

    def run(v: IdentityView) -> PolicyVersion:
        return managed.create_version(v, _resolve(v, call.account, arn).name, document, set_default)

    version = await call.admin.write(run)
    default = version.version_id if set_default else ""
    return f"<PolicyVersion>{_version(version, default, document=False)}</PolicyVersion>"


async def list_policy_versions(call: Call) -> str:
    arn = call.required("PolicyArn")
    call.allow("ListPolicyVersions", arn)
    p = await call.admin.read(lambda v: _resolve(v, call.account, arn))
    page, tail = call.page(p.versions, lambda ver: f"{int(ver.version_id[1:].split('.')[0]):010d}")
    return members("Versions", [_version(ver, p.default_version, document=False) for ver in page]) + tail


async def delete_policy_version(call: Call) -> None:
    arn, version_id = call.required("PolicyArn"), call.required("VersionId")
    call.allow("DeletePolicyVersion", arn)
    await call.admin.write(lambda v: managed.delete_version(v, _resolve(v, call.account, arn).name, version_id))


async def set_default_policy_version(call: Call) -> None:
    arn, version_id = call.required("PolicyArn"), call.required("VersionId")
    call.allow("SetDefaultPolicyVersion", arn)
    await call.admin.write(lambda v: managed.set_default_version(v, _resolve(v, call.account, arn).name,
                                                                 version_id))


# --- attaching, and inline policies -----------------------------------------------------------


def _entity_param(kind: EntityKind) -> str:
    return "UserName" if kind == "user" else "GroupName"


def _entity_arn(call: Call, kind: EntityKind, name: str) -> str:
    return _user_arn(call, name) if kind == "user" else _group_arn(call, name)


def _attach(kind: EntityKind, detach: bool) -> Handler:
    action = f"{'Detach' if detach else 'Attach'}{kind.capitalize()}Policy"

    async def handler(call: Call) -> None:
        name, arn = call.required(_entity_param(kind)), call.required("PolicyArn")
        call.allow(action, _entity_arn(call, kind, name), **{"iam:PolicyARN": arn})
        change = managed.detach if detach else managed.attach
        await call.admin.write(lambda v: change(v, kind, name, _resolve(v, call.account, arn).name))

    return handler


def _list_attached(kind: EntityKind) -> Handler:
    async def handler(call: Call) -> str:
        name = call.required(_entity_param(kind))
        prefix = check_path_prefix(call.param("PathPrefix", "/"))
        call.allow(f"ListAttached{kind.capitalize()}Policies", _entity_arn(call, kind, name))

        def run(v: IdentityView) -> list[PolicyRecord]:
            entity = users.get_user(v, name) if kind == "user" else users.get_group(v, name)
            found = [managed.get_policy(v, p) for p in entity.policies if managed.is_canned(p) or v.policy(p)]
            return [p for p in found if p.path.startswith(prefix)]

        page, tail = call.page(await call.admin.read(run), lambda p: p.name)
        return members("AttachedPolicies", [el("PolicyName", p.name) + el("PolicyArn", _arn_of(call.account, p))
                                            for p in page]) + tail

    return handler


def _put_inline(kind: EntityKind) -> Handler:
    async def handler(call: Call) -> None:
        name, pname = call.required(_entity_param(kind)), call.required("PolicyName")
        document = call.required("PolicyDocument")
        call.allow(f"Put{kind.capitalize()}Policy", _entity_arn(call, kind, name))
        await call.admin.write(lambda v: managed.put_inline(v, kind, name, pname, document))

    return handler


def _get_inline(kind: EntityKind) -> Handler:
    async def handler(call: Call) -> str:
        name, pname = call.required(_entity_param(kind)), call.required("PolicyName")
        call.allow(f"Get{kind.capitalize()}Policy", _entity_arn(call, kind, name))
        document = await call.admin.read(lambda v: managed.get_inline(v, kind, name, pname))
        return (el(_entity_param(kind), name) + el("PolicyName", pname)
                + f"<PolicyDocument>{quoted_document(document)}</PolicyDocument>")

    return handler


def _delete_inline(kind: EntityKind) -> Handler:
    async def handler(call: Call) -> None:
        name, pname = call.required(_entity_param(kind)), call.required("PolicyName")
        call.allow(f"Delete{kind.capitalize()}Policy", _entity_arn(call, kind, name))
        await call.admin.write(lambda v: managed.delete_inline(v, kind, name, pname))

    return handler


def _list_inline(kind: EntityKind) -> Handler:
    async def handler(call: Call) -> str:
        name = call.required(_entity_param(kind))
        call.allow(f"List{kind.capitalize()}Policies", _entity_arn(call, kind, name))
        found = await call.admin.read(lambda v: managed.list_inline(v, kind, name))
        page, tail = call.page(found, lambda n: n)
        return members("PolicyNames", [esc(n) for n in page]) + tail

    return handler


ACTIONS: dict[str, Handler] = {
    "CreateUser": create_user,
    "GetUser": get_user,
    "ListUsers": list_users,
    "DeleteUser": delete_user,
    "CreateAccessKey": create_access_key,
    "ListAccessKeys": list_access_keys,
    "UpdateAccessKey": update_access_key,
    "DeleteAccessKey": delete_access_key,
    "CreateGroup": create_group,
    "GetGroup": get_group,
    "ListGroups": list_groups,
    "DeleteGroup": delete_group,
    "ListGroupsForUser": list_groups_for_user,
    "AddUserToGroup": add_user_to_group,
    "RemoveUserFromGroup": remove_user_from_group,
    "CreatePolicy": create_policy,
    "GetPolicy": get_policy,
    "ListPolicies": list_policies,
    "DeletePolicy": delete_policy,
    "GetPolicyVersion": get_policy_version,
    "CreatePolicyVersion": create_policy_version,
    "ListPolicyVersions": list_policy_versions,
    "DeletePolicyVersion": delete_policy_version,
    "SetDefaultPolicyVersion": set_default_policy_version,
    "AttachUserPolicy": _attach("user", detach=False),
    "DetachUserPolicy": _attach("user", detach=True),
    "AttachGroupPolicy": _attach("group", detach=False),
    "DetachGroupPolicy": _attach("group", detach=True),
    "ListAttachedUserPolicies": _list_attached("user"),
    "ListAttachedGroupPolicies": _list_attached("group"),
    "PutUserPolicy": _put_inline("user"),
    "GetUserPolicy": _get_inline("user"),
    "DeleteUserPolicy": _delete_inline("user"),
    "ListUserPolicies": _list_inline("user"),
    "PutGroupPolicy": _put_inline("group"),
    "GetGroupPolicy": _get_inline("group"),
    "DeleteGroupPolicy": _delete_inline("group"),
    "ListGroupPolicies": _list_inline("group"),
}

"""Access control lists: canned ACLs, x-amz-grant-* headers, the AccessControlPolicy document,
and what a grant permits.

An ACL is stored as a list of grant dicts, {"type": "CanonicalUser" | "Group", "id": canonical id
or group URI, "permission": READ | WRITE | READ_ACP | WRITE_ACP | FULL_CONTROL}; None means never
set, which is the owner's FULL_CONTROL alone (`effective`). What each permission allows follows
S3's "Mapping of ACL permissions and access policy permissions":

    bucket READ       s3:ListBucket, s3:ListBucketVersions, s3:ListBucketMultipartUploads
    bucket WRITE      s3:PutObject, s3:DeleteObject (any key in the bucket), and, as S3 lets the
                      uploader, s3:AbortMultipartUpload and s3:ListMultipartUploadParts
    bucket READ_ACP   s3:GetBucketAcl          bucket WRITE_ACP   s3:PutBucketAcl
    object READ       s3:GetObject, s3:GetObjectVersion
    object READ_ACP   s3:GetObjectAcl(+Version)  object WRITE_ACP  s3:PutObjectAcl(+Version)
    FULL_CONTROL      all of the above; on an object also its tagging actions (S3 leaves those to
                      policies, which a grantee outside the account could not be given)

Grantees: a canonical id matches that principal; the group AllUsers matches everyone, anonymous
included; AuthenticatedUsers everyone who signed the request; LogDelivery nobody here.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from appliance.iam.policy import Principal

from .errors import S3Error
from .identity import canonical_id
from .xmlio import children, doc, esc, parse, text

Grant = dict[str, str]
ACL = list[Grant]

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY})
PUBLIC_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS})
# An ACL holds at most 100 grants (S3's "Access control list (ACL) overview"); AWS, and Ceph RGW
# after it, refuse more with MalformedACLError, from a document or from x-amz-grant-* headers.
MAX_GRANTS = 100
PERMISSIONS = ("FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP")
CANONICAL_USER = "CanonicalUser"
GROUP = "Group"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

GRANT_HEADERS = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}
BUCKET_CANNED = ("private", "public-read", "public-read-write", "authenticated-read", "log-delivery-write")
OBJECT_CANNED = ("private", "public-read", "public-read-write", "authenticated-read", "bucket-owner-read",
                 "bucket-owner-full-control")

# action -> the permission a grant must give; bucket-scoped ACL, then object-scoped ACL
BUCKET_ACL_ACTIONS: Mapping[str, str] = {
    "s3:ListBucket": "READ", "s3:ListBucketVersions": "READ", "s3:ListBucketMultipartUploads": "READ",
    "s3:PutObject": "WRITE", "s3:DeleteObject": "WRITE", "s3:AbortMultipartUpload": "WRITE",
    "s3:ListMultipartUploadParts": "WRITE",
    "s3:GetBucketAcl": "READ_ACP", "s3:PutBucketAcl": "WRITE_ACP",
}
OBJECT_ACL_ACTIONS: Mapping[str, str] = {
    "s3:GetObject": "READ", "s3:GetObjectVersion": "READ",
    "s3:GetObjectAttributes": "READ", "s3:GetObjectVersionAttributes": "READ",
    "s3:GetObjectAcl": "READ_ACP", "s3:GetObjectVersionAcl": "READ_ACP",
    "s3:PutObjectAcl": "WRITE_ACP", "s3:PutObjectVersionAcl": "WRITE_ACP",
    **{f"s3:{verb}Object{v}Tagging": "FULL_CONTROL" for verb in ("Get", "Put", "Delete") for v in ("", "Version")},
}


def grant(kind: str, grantee: str, permission: str) -> Grant:
    return {"type": kind, "id": grantee, "permission": permission}


def owner_grant(owner: str) -> Grant:
    return grant(CANONICAL_USER, owner, "FULL_CONTROL")


def effective(acl: ACL | None, owner: str) -> ACL:
    return [owner_grant(owner)] if acl is None else acl


def normalise(acl: ACL, owner: str) -> ACL | None:
    """What to store: None for the owner's FULL_CONTROL alone (the default every record starts with)."""
    return None if acl == [owner_grant(owner)] else acl


def is_public(acl: ACL | None) -> bool:
    """Grants anything to AllUsers or AuthenticatedUsers (S3's "public" ACL)."""
    return acl is not None and any(g["type"] == GROUP and g["id"] in PUBLIC_GROUPS for g in acl)


def owner_only(acl: ACL, owners: Iterable[str]) -> bool:
    """Grants nothing but FULL_CONTROL to the given owners (what BucketOwnerEnforced allows)."""
    allowed = set(owners)
    return all(g["type"] == CANONICAL_USER and g["id"] in allowed and g["permission"] == "FULL_CONTROL" for g in acl)


def permits(acl: ACL, principal: Principal, permission: str, *, ignore_public: bool) -> bool:
    """Whether some grant of `acl` gives `principal` the permission (FULL_CONTROL gives all)."""
    cid = canonical_id(principal)
    for g in acl:
        if g["permission"] != permission and g["permission"] != "FULL_CONTROL":
            continue
        if g["type"] == CANONICAL_USER:
            if g["id"] == cid and principal.kind != "anonymous":
                return True
        elif not ignore_public and (g["id"] == ALL_USERS or (g["id"] == AUTHENTICATED_USERS
                                                             and principal.kind != "anonymous")):
            return True
    return False


# --- ACLs a request asks for ---------------------------------------------------------------------


def canned(name: str, owner: str, bucket_owner: str, *, for_bucket: bool) -> ACL:
    """The grants of a canned ACL (x-amz-acl) on a new or existing bucket or object."""
    allowed = BUCKET_CANNED if for_bucket else OBJECT_CANNED
    if name not in allowed:
        raise S3Error("InvalidArgument", f"The canned ACL {name!r} is not valid here", ArgumentName="x-amz-acl",
                      ArgumentValue=name)
    acl = [owner_grant(owner)]
    if name in ("public-read", "public-read-write"):
        acl.append(grant(GROUP, ALL_USERS, "READ"))
    if name == "public-read-write":
        acl.append(grant(GROUP, ALL_USERS, "WRITE"))
    elif name == "authenticated-read":
        acl.append(grant(GROUP, AUTHENTICATED_USERS, "READ"))
    elif name == "log-delivery-write":
        acl += [grant(GROUP, LOG_DELIVERY, "WRITE"), grant(GROUP, LOG_DELIVERY, "READ_ACP")]
    elif name in ("bucket-owner-read", "bucket-owner-full-control") and bucket_owner != owner:
        acl.append(grant(CANONICAL_USER, bucket_owner, "READ" if name == "bucket-owner-read" else "FULL_CONTROL"))
    return acl


def has_acl_headers(headers: Mapping[str, str]) -> bool:
    return "x-amz-acl" in headers or any(h in headers for h in GRANT_HEADERS)


_GRANTEE = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))\s*(?:,|$)')


def _grantees(header: str, value: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(value):
        m = _GRANTEE.match(value, pos)
        if m is None or m.end() == pos:
            raise S3Error("InvalidArgument", f"Invalid grantee in {header}", ArgumentName=header, ArgumentValue=value)
        out.append((m[1], m[2] if m[2] is not None else m[3]))
        pos = m.end()
    if not out:
        raise S3Error("InvalidArgument", f"Invalid grantee in {header}", ArgumentName=header, ArgumentValue=value)
    return out


def header_acl(headers: Mapping[str, str], owner: str, bucket_owner: str, *, for_bucket: bool,
               known: Callable[[str], bool]) -> ACL | None:
    """The ACL a request's x-amz-acl or x-amz-grant-* headers ask for; None when it has neither.
    `known(canonical_id)` says whether a canonical id names a principal."""
    canned_name = headers.get("x-amz-acl")
    granted = [(h, perm) for h, perm in GRANT_HEADERS.items() if h in headers]
    if canned_name is not None and granted:
        raise S3Error("InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed")
    if canned_name is not None:
        return canned(canned_name.strip(), owner, bucket_owner, for_bucket=for_bucket)
    if not granted:
        return None
    acl: ACL = []
    for header, permission in granted:
        for kind, value in _grantees(header, headers[header]):
            acl.append(_grantee(kind.lower(), value, permission, known, header))
    _check_grant_count(len(acl))
    return acl


def _check_grant_count(count: int) -> None:
    if count > MAX_GRANTS:
        raise S3Error("MalformedACLError", f"An ACL may hold at most {MAX_GRANTS} grants; this one has {count}")


def _grantee(kind: str, value: str, permission: str, known: Callable[[str], bool], where: str) -> Grant:
    if kind == "id":
        if not known(value):
            raise S3Error("InvalidArgument", "Invalid id", ArgumentName=where, ArgumentValue=value)
        return grant(CANONICAL_USER, value, permission)
    if kind == "uri":
        if value not in GROUPS:
            raise S3Error("InvalidArgument", "Invalid group uri", ArgumentName=where, ArgumentValue=value)
        return grant(GROUP, value, permission)
    if kind in ("emailaddress", "amazoncustomerbyemail"):
        raise S3Error("UnresolvableGrantByEmailAddress")
    raise S3Error("InvalidArgument", f"Invalid grantee type {kind!r}", ArgumentName=where, ArgumentValue=value)


# --- the AccessControlPolicy document ---------------------------------------------------------


@dataclass(frozen=True)
class AccessControlPolicy:
    owner: str  # the Owner/ID the document names
    grants: ACL


def parse_acp(body: bytes, known: Callable[[str], bool]) -> AccessControlPolicy:
    """A PutBucketAcl/PutObjectAcl body. Grantees: CanonicalUser (ID), Group (URI); email
    grantees are refused (there are no e-mail addresses to resolve). The Owner with its ID, and
    the AccessControlList (which may be empty), are required, as on AWS (the schema's minOccurs;
    Ceph RGW refuses a policy without them too)."""
    root = parse(body, "AccessControlPolicy")
    _holds_only(root, "Owner", "AccessControlList")
    owners = children(root, "Owner")
    owner = (text(owners[0], "ID") or "").strip() if len(owners) == 1 else ""
    if not owner:
        raise S3Error("MalformedACLError")
    lists = children(root, "AccessControlList")
    if len(lists) != 1:
        raise S3Error("MalformedACLError")
    _holds_only(owners[0], "ID", "DisplayName")
    _holds_only(lists[0], "Grant")
    grants = children(lists[0], "Grant")
    _check_grant_count(len(grants))
    acl: ACL = []
    for g in grants:
        _holds_only(g, "Grantee", "Permission")
        permission = (text(g, "Permission") or "").strip()
        grantees = children(g, "Grantee")
        if permission not in PERMISSIONS or len(grantees) != 1:
            raise S3Error("MalformedACLError")
        who = grantees[0]
        kind = who.get(f"{{{XSI}}}type", "")
        if kind == CANONICAL_USER:
            _holds_only(who, "ID", "DisplayName")
            acl.append(_grantee("id", (text(who, "ID") or "").strip(), permission, known, "Grantee"))
        elif kind == GROUP:
            _holds_only(who, "URI")
            acl.append(_grantee("uri", (text(who, "URI") or "").strip(), permission, known, "Grantee"))
        elif kind == "AmazonCustomerByEmail":
            raise S3Error("UnresolvableGrantByEmailAddress")
        else:
            raise S3Error("MalformedACLError")
    return AccessControlPolicy(owner, acl)


def _holds_only(node: ET.Element, *names: str) -> None:
    """An element the schema does not allow here is refused, not ignored: a Group grantee with
    an <ID> as well, or a grant with a <Condition>, would otherwise be stored as something the
    sender did not write."""
    if any(isinstance(c.tag, str) and c.tag not in names for c in node):
        raise S3Error("MalformedACLError")


def acp_xml(owner_fields: str, acl: ACL, grantee_fields: Callable[[str], str]) -> bytes:
    """The AccessControlPolicy document; `owner_fields` and `grantee_fields(canonical id)` give
    the <ID>/<DisplayName> elements."""
    grants = []
    for g in acl:
        if g["type"] == CANONICAL_USER:
            who = (f'<Grantee xmlns:xsi="{XSI}" xsi:type="CanonicalUser">{grantee_fields(g["id"])}</Grantee>')
        else:
            who = f'<Grantee xmlns:xsi="{XSI}" xsi:type="Group"><URI>{esc(g["id"])}</URI></Grantee>'
        grants.append(f"<Grant>{who}<Permission>{esc(g['permission'])}</Permission></Grant>")
    return doc("AccessControlPolicy", [f"<Owner>{owner_fields}</Owner>",
                                       f"<AccessControlList>{''.join(grants)}</AccessControlList>"])

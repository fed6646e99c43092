"""S3 authorization: what each request asks for, in AWS's terms, and whether it is allowed.

For every routed operation, `required` names the checks it needs: the S3 action AWS uses (the
Version form when a versionId is given), the bucket and key it acts on, and the actions the
request implies (CopyObject and UploadPartCopy read their source with s3:GetObject; an ACL on a
write needs s3:PutObjectAcl, tags s3:PutObjectTagging, an ownership header on CreateBucket
s3:PutBucketOwnershipControls; a CopyObject that copies its source's tags, when it has some,
s3:GetObjectTagging on the source and s3:PutObjectTagging on the destination). DeleteObjects is
checked key by key by its handler (a refused key is an AccessDenied entry of the result), and
ListBuckets filters what it lists (`visible_buckets`).

`Authorizer.require` runs before the handler: for each check it builds the condition context
(`request_context` for what the request says, plus s3:VersionId and, only when some applicable
policy tests it, the object's tags as s3:ExistingObjectTag/<key>), and calls
appliance.iam.policy.authorize with the principal's identity policies and the bucket's policy.
When no policy decides, the ACL does (`acl_allows`): see acl.py for what each grant permits, and
docs/access-control.md for ownership and the public access block.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio

from appliance.config import Config
from appliance.engine import BucketRecord, ObjectStore, ObjectVersion
from appliance.engine.errors import NoSuchKey, NoSuchVersion
from appliance.iam.policy import (
    AuthzRequest,
    Decision,
    MalformedPolicy,
    Outcome,
    Policy,
    Principal,
    authorize,
    parse_policy,
    s3_arn,
    session_allows,
    time_context,
)
from appliance.iam.public import is_public

from . import acl as acls
from . import objlock
from .errors import S3Error
from .http import Request
from .identity import Directory, IdentitySource, canonical_id
from .objmeta import parse_copy_source, parse_tagging_header
from .routing import Op, Route

Conditions = dict[str, str | Sequence[str]]
log = logging.getLogger("stowage.s3")

OBJECT_WRITER = "ObjectWriter"
BUCKET_OWNER_PREFERRED = "BucketOwnerPreferred"
BUCKET_OWNER_ENFORCED = "BucketOwnerEnforced"
PAB_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")

# Bucket-scoped operations: one action on arn:aws:s3:::bucket.
BUCKET_ACTIONS: Mapping[Op, str] = {
    Op.DeleteBucket: "s3:DeleteBucket",
    Op.HeadBucket: "s3:ListBucket",
    Op.GetBucketLocation: "s3:GetBucketLocation",
    Op.GetBucketVersioning: "s3:GetBucketVersioning",
    Op.PutBucketVersioning: "s3:PutBucketVersioning",
    Op.GetBucketAcl: "s3:GetBucketAcl",
    Op.PutBucketAcl: "s3:PutBucketAcl",
    Op.GetBucketTagging: "s3:GetBucketTagging",
    Op.PutBucketTagging: "s3:PutBucketTagging",
    Op.DeleteBucketTagging: "s3:PutBucketTagging",  # AWS has no s3:DeleteBucketTagging
    Op.GetBucketLogging: "s3:GetBucketLogging",
    Op.PutBucketLogging: "s3:PutBucketLogging",
    Op.ListObjects: "s3:ListBucket",
    Op.ListObjectsV2: "s3:ListBucket",
    Op.ListObjectVersions: "s3:ListBucketVersions",
    Op.ListMultipartUploads: "s3:ListBucketMultipartUploads",
    Op.GetBucketPolicy: "s3:GetBucketPolicy",
    Op.PutBucketPolicy: "s3:PutBucketPolicy",
    Op.DeleteBucketPolicy: "s3:DeleteBucketPolicy",
    Op.GetBucketPolicyStatus: "s3:GetBucketPolicyStatus",
    Op.GetBucketOwnershipControls: "s3:GetBucketOwnershipControls",
    Op.PutBucketOwnershipControls: "s3:PutBucketOwnershipControls",
    Op.DeleteBucketOwnershipControls: "s3:PutBucketOwnershipControls",
    Op.GetPublicAccessBlock: "s3:GetBucketPublicAccessBlock",
    Op.PutPublicAccessBlock: "s3:PutBucketPublicAccessBlock",
    Op.DeletePublicAccessBlock: "s3:PutBucketPublicAccessBlock",
    Op.GetBucketEncryption: "s3:GetEncryptionConfiguration",
    Op.PutBucketEncryption: "s3:PutEncryptionConfiguration",
    Op.DeleteBucketEncryption: "s3:PutEncryptionConfiguration",
    Op.GetObjectLockConfiguration: "s3:GetBucketObjectLockConfiguration",
    Op.PutObjectLockConfiguration: "s3:PutBucketObjectLockConfiguration",
    Op.GetBucketCors: "s3:GetBucketCORS",
    Op.PutBucketCors: "s3:PutBucketCORS",
    Op.DeleteBucketCors: "s3:PutBucketCORS",  # AWS has no s3:DeleteBucketCORS
    Op.GetBucketNotificationConfiguration: "s3:GetBucketNotification",
    Op.PutBucketNotificationConfiguration: "s3:PutBucketNotification",
    Op.GetBucketReplication: "s3:GetReplicationConfiguration",
    Op.PutBucketReplication: "s3:PutReplicationConfiguration",
    Op.DeleteBucketReplication: "s3:PutReplicationConfiguration",  # AWS has no s3:DeleteReplicationConfiguration
    Op.GetBucketLifecycleConfiguration: "s3:GetLifecycleConfiguration",
    Op.PutBucketLifecycleConfiguration: "s3:PutLifecycleConfiguration",
    Op.DeleteBucketLifecycle: "s3:PutLifecycleConfiguration",  # AWS has no s3:DeleteLifecycleConfiguration
    Op.PutBucketIntelligentTieringConfiguration: "s3:PutIntelligentTieringConfiguration",
    Op.GetBucketIntelligentTieringConfiguration: "s3:GetIntelligentTieringConfiguration",
    Op.ListBucketIntelligentTieringConfigurations: "s3:GetIntelligentTieringConfiguration",
    # AWS has no s3:DeleteIntelligentTieringConfiguration
    Op.DeleteBucketIntelligentTieringConfiguration: "s3:PutIntelligentTieringConfiguration",
}

# Object-scoped operations: (action, action when the request names a versionId).
OBJECT_ACTIONS: Mapping[Op, tuple[str, str]] = {
    Op.GetObject: ("s3:GetObject", "s3:GetObjectVersion"),
    Op.RestoreObject: ("s3:RestoreObject", "s3:RestoreObject"),
    Op.HeadObject: ("s3:GetObject", "s3:GetObjectVersion"),
    Op.DeleteObject: ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    Op.GetObjectTagging: ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    Op.PutObjectTagging: ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    Op.DeleteObjectTagging: ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    Op.GetObjectAcl: ("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
    Op.PutObjectAcl: ("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
    Op.UploadPart: ("s3:PutObject", "s3:PutObject"),
    Op.CompleteMultipartUpload: ("s3:PutObject", "s3:PutObject"),
    Op.AbortMultipartUpload: ("s3:AbortMultipartUpload", "s3:AbortMultipartUpload"),
    Op.ListParts: ("s3:ListMultipartUploadParts", "s3:ListMultipartUploadParts"),
    Op.GetObjectRetention: ("s3:GetObjectRetention", "s3:GetObjectRetention"),
    Op.PutObjectRetention: ("s3:PutObjectRetention", "s3:PutObjectRetention"),
    Op.GetObjectLegalHold: ("s3:GetObjectLegalHold", "s3:GetObjectLegalHold"),
    Op.PutObjectLegalHold: ("s3:PutObjectLegalHold", "s3:PutObjectLegalHold"),
    Op.GetObjectAttributes: ("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
}
# Object operations AWS authorizes with a second action too (GetObjectAttributes needs the read
# of the object as well), in the same (plain, versionId) form.
ALSO_REQUIRED: Mapping[Op, tuple[str, str]] = {
    Op.GetObjectAttributes: ("s3:GetObject", "s3:GetObjectVersion"),
}

# Operations that create an object: s3:PutObject, plus what their ACL and tag headers imply.
OBJECT_WRITES = frozenset({Op.PutObject, Op.CopyObject, Op.CreateMultipartUpload, Op.UploadPartCopy})
# Checked by their handlers (per key; a filtered listing; POST Object as the signer of its form,
# known only once the form is read), or by nobody: a CORS preflight carries no credentials and
# is answered from the rules the bucket's owner published, as on AWS.
HANDLER_CHECKED = frozenset({Op.DeleteObjects, Op.ListBuckets, Op.PreflightRequest, Op.PostObject})
# Every operation `required` knows; optable refuses a handler for any other (fail closed).
AUTHORIZED = frozenset({*BUCKET_ACTIONS, *OBJECT_ACTIONS, *OBJECT_WRITES, *HANDLER_CHECKED, Op.CreateBucket})

# The actions S3 evaluates s3:ExistingObjectTag for (never PutObject or DeleteObject).
EXISTING_TAG_ACTIONS = frozenset({
    "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAcl", "s3:GetObjectVersionAcl", "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl", "s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging", "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging",
})
_EXISTING_TAG = "s3:existingobjecttag/"
_LIST_KEYS = (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys"))
_HEADER_KEYS = ("x-amz-acl", "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
                "x-amz-server-side-encryption-customer-algorithm", "x-amz-copy-source", "x-amz-metadata-directive",
                "x-amz-storage-class", "x-amz-content-sha256", *acls.GRANT_HEADERS)
_LISTINGS = frozenset({Op.ListObjects, Op.ListObjectsV2, Op.ListObjectVersions})
# The conditional writes and deletes, whose If-Match / If-None-Match are the s3:if-match and
# s3:if-none-match keys a bucket policy can require (AWS); a GET's conditions are not.
_CONDITIONAL = frozenset({Op.PutObject, Op.CopyObject, Op.CompleteMultipartUpload, Op.DeleteObject})
# Actions that only a policy grants, never an ACL or owning the bucket: AWS's GOVERNANCE bypass
# needs the permission explicitly, and the owner's users hold only what their policies give.
POLICY_ONLY_ACTIONS = frozenset({"s3:BypassGovernanceRetention"})


@dataclass(frozen=True, slots=True)
class Check:
    """One authorization question: `action` on the bucket, or on `key` in it."""

    action: str
    bucket: str
    key: str | None = None
    version_id: str | None = None  # the version whose ACL and tags count, and s3:VersionId
    bucket_policy: bool = True  # False: identity policies alone (CreateBucket: the bucket may not exist)
    # The action whose ACL grant answers for this one, when not itself: the ACL and tags a write
    # sets are the writer's to set when the write is (it will own what it creates).
    acl_as: str | None = None
    # Asked only when this object (bucket, key, versionId) has tags: a copy's copying of them.
    if_tagged: tuple[str, str, str | None] | None = None

    @property
    def resource(self) -> str:
        return s3_arn(self.bucket, self.key)


def required(op: Op, route: Route, headers: Mapping[str, str], copy_source: tuple[str, str, str | None] | None
             ) -> tuple[Check, ...]:
    """The checks a request needs before its handler may run (none for HANDLER_CHECKED ones)."""
    b, k = route.bucket, route.key
    vid = route.query.get("versionId")
    if op in BUCKET_ACTIONS:
        return (Check(BUCKET_ACTIONS[op], b),)
    if op in OBJECT_ACTIONS:
        pairs = [OBJECT_ACTIONS[op], *([ALSO_REQUIRED[op]] if op in ALSO_REQUIRED else [])]
        return (*(Check(versioned if vid is not None else plain, b, k, vid) for plain, versioned in pairs),
                *etag_read(op, b, k, headers.get("if-match")))
    if op is Op.CreateBucket:
        checks = [Check("s3:CreateBucket", b, bucket_policy=False)]
        if acls.has_acl_headers(headers):
            checks.append(Check("s3:PutBucketAcl", b, bucket_policy=False))
        if "x-amz-object-ownership" in headers:
            checks.append(Check("s3:PutBucketOwnershipControls", b, bucket_policy=False))
        if headers.get(objlock.BUCKET_LOCK_HEADER, "").lower() == "true":  # a versioned bucket with object lock
            checks += [Check("s3:PutBucketObjectLockConfiguration", b, bucket_policy=False),
                       Check("s3:PutBucketVersioning", b, bucket_policy=False)]
        return tuple(checks)
    if op in OBJECT_WRITES:
        checks = [Check("s3:PutObject", b, k)]
        if copy_source is not None:
            sb, sk, svid = copy_source
            checks.append(Check("s3:GetObjectVersion" if svid is not None else "s3:GetObject", sb, sk, svid))
        if op is not Op.UploadPartCopy:
            if acls.has_acl_headers(headers):
                checks.append(Check("s3:PutObjectAcl", b, k, acl_as="s3:PutObject"))
            tags_replaced = op is not Op.CopyObject or headers.get("x-amz-tagging-directive", "").upper() == "REPLACE"
            if "x-amz-tagging" in headers and tags_replaced:
                checks.append(Check("s3:PutObjectTagging", b, k, acl_as="s3:PutObject"))
            if copy_source is not None and not tags_replaced:
                # COPY (the default) reads the source's tags and writes them: AWS asks s3:GetObjectTagging
                # of the source and s3:PutObjectTagging of the destination when the source has tags
                # (knowledge center, "s3-troubleshoot-copy-between-buckets").
                sb, sk, svid = copy_source
                checks += [Check("s3:GetObjectVersionTagging" if svid is not None else "s3:GetObjectTagging",
                                 sb, sk, svid, if_tagged=copy_source),
                           Check("s3:PutObjectTagging", b, k, acl_as="s3:PutObject", if_tagged=copy_source)]
            checks += [Check(action, b, k) for action in objlock.write_actions(headers)]
        return (*checks, *etag_read(op, b, k, headers.get("if-match")))
    if op in HANDLER_CHECKED:
        return ()
    raise S3Error("AccessDenied")  # an operation nobody named the actions of: never reached (optable)


def etag_read(op: Op, bucket: str, key: str | None, if_match: str | None) -> tuple[Check, ...]:
    """s3:GetObject for a write or delete conditional on the current version's ETag (`if_match`:
    If-Match, or a DeleteObjects Object's ETag): comparing it reads it (AWS: If-Match writes need
    s3:PutObject and s3:GetObject; deletes with an ETag, not "*", s3:DeleteObject and s3:GetObject)."""
    if op not in _CONDITIONAL or if_match is None:
        return ()
    if op is Op.DeleteObject and if_match.strip() == "*":
        return ()
    return (Check("s3:GetObject", bucket, key),)


def request_tags(op: Op, headers: Mapping[str, str], body_tags: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """The tags a request sets (s3:RequestObjectTag/<k>): PutObjectTagging's document, or the
    x-amz-tagging header of a write."""
    if body_tags is not None:
        return body_tags
    if op in OBJECT_WRITES and "x-amz-tagging" in headers:
        return parse_tagging_header(headers["x-amz-tagging"])
    return None


_clock: tuple[int, dict[str, str]] = (0, {})


def _now_keys() -> dict[str, str]:
    """aws:CurrentTime and aws:EpochTime, worked out once a second."""
    global _clock
    second = int(time.time())
    if _clock[0] != second:
        _clock = (second, time_context(datetime.fromtimestamp(second, UTC)))
    return _clock[1]


def global_context(req: Request) -> Conditions:
    """The global condition keys of any request: aws:SourceIp, aws:SecureTransport, the time.
    Every evaluation of a request needs them, the stowage:* actions of the admin paths and the
    console as much as S3's: without them a Deny on a source range or on plain HTTP never applies."""
    return {"aws:SourceIp": req.remote.rpartition(":")[0], "aws:SecureTransport": "true" if req.tls else "false",
            **_now_keys()}


def request_context(req: Request, route: Route, op: Op, *, signed: bool, presigned: bool,
                    tags: Mapping[str, str] | None, signature_version: str = "AWS4-HMAC-SHA256") -> Conditions:
    """The condition keys the request itself supplies (the principal's are added by the policy
    module, s3:VersionId and s3:ExistingObjectTag per check)."""
    ctx = global_context(req)
    if signed:
        ctx["s3:signatureversion"] = signature_version  # "AWS" for SigV2
        ctx["s3:authType"] = "REST-QUERY-STRING" if presigned else "REST-HEADER"
    h = req.headers
    for name in _HEADER_KEYS:
        if name in h:
            ctx["s3:" + name] = h[name]
    if op in _CONDITIONAL:
        for name in ("if-match", "if-none-match"):
            if name in h:
                ctx["s3:" + name] = h[name]
    if op in _LISTINGS:
        for param, key in _LIST_KEYS:
            if param in route.query:
                ctx[key] = route.query[param]
    if tags is not None:
        ctx["s3:RequestObjectTagKeys"] = list(tags)
        for k, v in tags.items():
            ctx["s3:RequestObjectTag/" + k] = v
    return ctx


# --- bucket settings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublicAccessBlock:
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    @classmethod
    def of(cls, stored: Mapping[str, bool] | None) -> PublicAccessBlock:
        if not stored:  # most buckets: every request's view, so no generator for it
            return _NO_BLOCK
        g = stored.get
        return cls(bool(g("BlockPublicAcls", False)), bool(g("IgnorePublicAcls", False)),
                   bool(g("BlockPublicPolicy", False)), bool(g("RestrictPublicBuckets", False)))

    @classmethod
    def all_on(cls) -> PublicAccessBlock:
        return cls(True, True, True, True)

    def to_record(self) -> dict[str, bool]:
        return dict(zip(PAB_FIELDS, self.values(), strict=True))

    def values(self) -> tuple[bool, bool, bool, bool]:
        return (self.block_public_acls, self.ignore_public_acls, self.block_public_policy,
                self.restrict_public_buckets)


_NO_BLOCK = PublicAccessBlock()  # frozen: shared by every bucket without the settings


@dataclass(frozen=True, slots=True)
class ParsedPolicy:
    text: str
    policy: Policy
    public: bool
    tests_object_tags: bool


@dataclass(frozen=True, slots=True)
class BucketView:
    """A bucket's access-control settings, as evaluation needs them."""

    record: BucketRecord  # shared by concurrent requests (store.shared_bucket): never modified here
    owner: str  # canonical id
    ownership: str  # the effective Object Ownership
    pab: PublicAccessBlock
    policy: ParsedPolicy | None

    @property
    def acls_enabled(self) -> bool:
        return self.ownership != BUCKET_OWNER_ENFORCED

    @property
    def restrict_public(self) -> bool:
        return self.pab.restrict_public_buckets and self.policy is not None and self.policy.public


def tests_object_tags(policy: Policy) -> bool:
    return any(c.key.startswith(_EXISTING_TAG) for st in policy.statements for c in st.conditions)


# Parsing a 20 KiB policy takes milliseconds: bigger ones are parsed in a worker thread.
_PARSE_INLINE = 4096
_MAX_CACHED_POLICIES = 4096


def parse_bucket_policy(text: str | bytes, bucket: str) -> ParsedPolicy:
    """Parse a bucket policy (MalformedPolicy naming the problem)."""
    policy = parse_policy(text, "resource", name="bucket policy", bucket=bucket)
    source = text.decode() if isinstance(text, bytes) else text  # valid UTF-8: the parser checked
    return ParsedPolicy(source, policy, is_public(policy), tests_object_tags(policy))


def _deny_all(bucket: str, text: str) -> ParsedPolicy:
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]})
    return ParsedPolicy(text, parse_policy(doc, "resource", name="unreadable bucket policy", bucket=bucket),
                        False, False)


# --- the authorizer ------------------------------------------------------------------------------


@dataclass
class Authorizer:
    store: ObjectStore
    cfg: Config
    identities: IdentitySource
    directory: Directory = field(init=False)
    _policies: dict[str, ParsedPolicy] = field(default_factory=dict)
    _tag_tests: dict[int, tuple[Policy, bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = Directory(self.identities)

    # bucket settings

    def effective_ownership(self, rec: BucketRecord) -> str:
        return rec.ownership or self.cfg.s3.default_object_ownership

    async def policy_of(self, rec: BucketRecord) -> ParsedPolicy | None:
        if not rec.policy:
            return None
        cached = self._policies.get(rec.name)
        if cached is not None and cached.text == rec.policy:
            return cached
        try:
            if len(rec.policy) > _PARSE_INLINE:
                parsed = await trio.to_thread.run_sync(parse_bucket_policy, rec.policy, rec.name)
            else:
                parsed = parse_bucket_policy(rec.policy, rec.name)
        except MalformedPolicy as exc:
            # Stored policies were valid when put; one this version cannot read fails closed:
            # nobody but root (who may still get, replace and delete it) gets in.
            log.error("bucket %s: stored policy unreadable (%s); denying all access but root's", rec.name, exc)
            parsed = _deny_all(rec.name, rec.policy)
        if len(self._policies) >= _MAX_CACHED_POLICIES:
            self._policies.clear()
        self._policies[rec.name] = parsed
        return parsed

    async def view(self, rec: BucketRecord) -> BucketView:
        return BucketView(rec, self.directory.owner_id(rec.owner), self.effective_ownership(rec),
                          PublicAccessBlock.of(rec.public_access_block), await self.policy_of(rec))

    async def bucket_view(self, name: str) -> BucketView:
        return await self.view(self.store.shared_bucket(name))  # read-only, as is every view's record

    # evaluation

    def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        if principal.kind != "user":
            return ()
        return self.identities.identity_policies(principal)

    def _tests_tags(self, policies: Iterable[Policy]) -> bool:
        for p in policies:
            known = self._tag_tests.get(id(p))
            if known is None or known[0] is not p:
                if len(self._tag_tests) >= _MAX_CACHED_POLICIES:
                    self._tag_tests.clear()
                known = (p, tests_object_tags(p))
                self._tag_tests[id(p)] = known
            if known[1]:
                return True
        return False

    def _version(self, bucket: str, key: str | None, version_id: str | None) -> ObjectVersion | None:
        if key is None:
            return None
        try:
            return self.store.head_object(bucket, key, version_id)
        except (NoSuchKey, NoSuchVersion):
            return None  # the handler answers for a missing object

    def _object(self, check: Check) -> ObjectVersion | None:
        return self._version(check.bucket, check.key, check.version_id)

    def _has_tags(self, bucket: str, key: str, version_id: str | None) -> bool:
        v = self._version(bucket, key, version_id)
        return v is not None and bool(v.tags)

    async def decide(self, principal: Principal, check: Check, conditions: Conditions,
                     view: BucketView | None = None) -> bool:
        """Whether `principal` may do `check`, given the request's condition keys."""
        if check.bucket_policy and view is None:
            view = await self.bucket_view(check.bucket)
        identity = self.identity_policies(principal)
        policy = view.policy if view is not None else None
        ctx = conditions
        obj: ObjectVersion | None = None
        fetched = False
        if check.version_id is not None or (check.action in EXISTING_TAG_ACTIONS and (
                (policy is not None and policy.tests_object_tags) or self._tests_tags(identity))):
            ctx = dict(conditions)
            if check.version_id is not None:
                ctx["s3:VersionId"] = check.version_id
            if check.action in EXISTING_TAG_ACTIONS:
                obj, fetched = self._object(check), True
                for k, v in (obj.tags if obj is not None else {}).items():
                    ctx["s3:ExistingObjectTag/" + k] = v
        request = AuthzRequest(principal, check.action, check.resource, ctx)
        decision: Decision = authorize(request, identity, policy.policy if policy is not None else None,
                                       restrict_public_policy=view is not None and view.restrict_public)
        if decision.outcome is not Outcome.IMPLICIT_DENY or view is None:
            return decision.allowed
        acl_action = check.acl_as or check.action
        if check.key is not None and acl_action in acls.OBJECT_ACL_ACTIONS and not fetched:
            obj = self._object(check)
        # an ACL grant (or ownership) is narrowed by the key's session policy as a policy's Allow is
        return self.acl_allows(principal, acl_action, check.key, view, obj) and session_allows(request)

    def acl_allows(self, principal: Principal, action: str, key: str | None, view: BucketView,
                   obj: ObjectVersion | None) -> bool:
        """Whether the bucket's or object's ACL (or bucket ownership) grants the action.

        The bucket owner may do everything to its bucket, as the owning account may on AWS, and
        write and delete any key in it; reading an object takes a grant of the object's ACL,
        whose owner has FULL_CONTROL unless the ACL was changed. With BucketOwnerEnforced the
        ACLs are ignored and the bucket owner owns every object. Ownership never grants
        POLICY_ONLY_ACTIONS (the root user holds them through authorize, as the account does)."""
        if action in POLICY_ONLY_ACTIONS:
            return False
        who = canonical_id(principal)
        is_owner = principal.kind != "anonymous" and who == view.owner
        object_read = action in acls.OBJECT_ACL_ACTIONS
        if is_owner and (key is None or not object_read):
            return True
        if not view.acls_enabled:
            return is_owner
        ignore_public = view.pab.ignore_public_acls
        if not object_read:
            permission = acls.BUCKET_ACL_ACTIONS.get(action)
            return permission is not None and acls.permits(acls.effective(view.record.acl, view.owner), principal,
                                                           permission, ignore_public=ignore_public)
        if obj is None:
            return False
        owner = self.directory.owner_id(obj.owner)
        return acls.permits(acls.effective(obj.acl, owner), principal, acls.OBJECT_ACL_ACTIONS[action],
                            ignore_public=ignore_public)

    async def require(self, principal: Principal, checks: Sequence[Check], conditions: Conditions,
                      view: BucketView | None) -> None:
        """AccessDenied unless every check is allowed. `view`: the request's bucket, if it has one."""
        tagged: dict[tuple[str, str, str | None], bool] = {}
        for check in checks:
            if check.if_tagged is not None:
                if check.if_tagged not in tagged:
                    tagged[check.if_tagged] = self._has_tags(*check.if_tagged)
                if not tagged[check.if_tagged]:
                    continue
            own = view if view is not None and check.bucket == view.record.name else None
            if not await self.decide(principal, check, conditions, own):
                raise S3Error("AccessDenied")

    async def visible_buckets(self, principal: Principal, conditions: Conditions) -> list[BucketRecord]:
        """ListBuckets as MinIO answers it: everything for root or a caller allowed
        s3:ListAllMyBuckets, otherwise the buckets the caller may s3:ListBucket or
        s3:GetBucketLocation (possibly none); AccessDenied for anonymous callers and for an
        explicit Deny of s3:ListAllMyBuckets."""
        if principal.kind == "anonymous":
            raise S3Error("AccessDenied")
        buckets = self.store.list_buckets()
        listing = AuthzRequest(principal, "s3:ListAllMyBuckets", s3_arn(""), conditions)
        decision = authorize(listing, self.identity_policies(principal), None)
        if decision.allowed:
            return buckets
        if decision.outcome is Outcome.EXPLICIT_DENY:
            raise S3Error("AccessDenied")
        out = []
        for rec in buckets:
            view = await self.view(rec)
            for action in ("s3:ListBucket", "s3:GetBucketLocation"):
                if await self.decide(principal, Check(action, rec.name), conditions, view):
                    out.append(rec)
                    break
        return out


def copy_source_of(op: Op, headers: Mapping[str, str]) -> tuple[str, str, str | None] | None:
    if op in (Op.CopyObject, Op.UploadPartCopy):
        return parse_copy_source(headers["x-amz-copy-source"])
    return None


def new_bucket_settings(cfg: Config) -> tuple[str, dict[str, bool] | None]:
    """(ownership, public access block) a new bucket is created with (the [s3] defaults)."""
    ownership = cfg.s3.default_object_ownership
    pab = PublicAccessBlock.all_on().to_record() if cfg.s3.default_public_access_block else None
    return ("" if ownership == OBJECT_WRITER else ownership), pab


def ownership_of_header(headers: Mapping[str, str]) -> str | None:
    value = headers.get("x-amz-object-ownership")
    if value is None:
        return None
    if value not in (OBJECT_WRITER, BUCKET_OWNER_PREFERRED, BUCKET_OWNER_ENFORCED):
        raise S3Error("InvalidArgument", "Invalid x-amz-object-ownership header", ArgumentName="x-amz-object-ownership",
                      ArgumentValue=value)
    return value

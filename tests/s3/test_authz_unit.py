"""The gateway's authorization tables, pure: which S3 actions each operation needs (AWS's names),
the condition keys a request supplies, and the ACL grammar and its meaning."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from appliance.iam.policy import Principal
from s3gw import acl as acls
from s3gw.authz import AUTHORIZED, Check, copy_source_of, request_context, request_tags, required
from s3gw.errors import S3Error
from s3gw.http import Request
from s3gw.optable import OPERATIONS
from s3gw.routing import Op, route

VID = "V" * 32  # the shape of a version id this store issues
ALICE = Principal.user("alice", canonical_id="a" * 64)
BOB = Principal.user("bob", canonical_id="b" * 64)
ANON = Principal.anonymous()


def checks(method: str, target: str, headers: dict[str, str] | None = None) -> list[tuple[str, str]]:
    h = {"host": "x", **(headers or {})}
    r = route(method, target, "x", "", "x-amz-copy-source" in h)
    # a check asked only when the copy source has tags is marked so
    return [(c.action + (" if tagged" if c.if_tagged else ""), c.resource)
            for c in required(r.op, r, h, copy_source_of(r.op, h))]


@pytest.mark.parametrize(("method", "target", "headers", "expected"), [
    ("GET", "/b/k", {}, [("s3:GetObject", "arn:aws:s3:::b/k")]),
    ("HEAD", f"/b/k?versionId={VID}", {}, [("s3:GetObjectVersion", "arn:aws:s3:::b/k")]),
    ("PUT", "/b/k", {}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
    ("PUT", "/b/k", {"x-amz-acl": "public-read", "x-amz-tagging": "a=b"},
     [("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:PutObjectAcl", "arn:aws:s3:::b/k"),
      ("s3:PutObjectTagging", "arn:aws:s3:::b/k")]),
    ("PUT", "/b/k", {"x-amz-copy-source": f"/src/a%20b?versionId={VID}"},
     [("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:GetObjectVersion", "arn:aws:s3:::src/a b"),
      ("s3:GetObjectVersionTagging if tagged", "arn:aws:s3:::src/a b"),
      ("s3:PutObjectTagging if tagged", "arn:aws:s3:::b/k")]),
    ("PUT", "/b/k", {"x-amz-copy-source": "src/x", "x-amz-tagging": "a=b"},  # COPY directive: the source's tags
     [("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:GetObject", "arn:aws:s3:::src/x"),
      ("s3:GetObjectTagging if tagged", "arn:aws:s3:::src/x"), ("s3:PutObjectTagging if tagged", "arn:aws:s3:::b/k")]),
    ("PUT", "/b/k", {"x-amz-copy-source": "src/x", "x-amz-tagging-directive": "REPLACE", "x-amz-tagging": "a=b"},
     [("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:GetObject", "arn:aws:s3:::src/x"),
      ("s3:PutObjectTagging", "arn:aws:s3:::b/k")]),
    ("PUT", "/b/k?partNumber=1&uploadId=u", {"x-amz-copy-source": "src/x"},
     [("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:GetObject", "arn:aws:s3:::src/x")]),
    ("PUT", "/b/k?partNumber=1&uploadId=u", {}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
    ("POST", "/b/k?uploads", {"x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'},
     [("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:PutObjectAcl", "arn:aws:s3:::b/k")]),
    ("POST", "/b/k?uploadId=u", {}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
    ("DELETE", "/b/k?uploadId=u", {}, [("s3:AbortMultipartUpload", "arn:aws:s3:::b/k")]),
    ("GET", "/b/k?uploadId=u", {}, [("s3:ListMultipartUploadParts", "arn:aws:s3:::b/k")]),
    ("DELETE", "/b/k", {}, [("s3:DeleteObject", "arn:aws:s3:::b/k")]),
    ("DELETE", f"/b/k?versionId={VID}", {}, [("s3:DeleteObjectVersion", "arn:aws:s3:::b/k")]),
    ("GET", "/b/k?tagging", {}, [("s3:GetObjectTagging", "arn:aws:s3:::b/k")]),
    ("PUT", f"/b/k?tagging&versionId={VID}", {}, [("s3:PutObjectVersionTagging", "arn:aws:s3:::b/k")]),
    ("DELETE", "/b/k?tagging", {}, [("s3:DeleteObjectTagging", "arn:aws:s3:::b/k")]),
    ("GET", f"/b/k?acl&versionId={VID}", {}, [("s3:GetObjectVersionAcl", "arn:aws:s3:::b/k")]),
    ("PUT", "/b/k?acl", {}, [("s3:PutObjectAcl", "arn:aws:s3:::b/k")]),
    ("PUT", "/b", {}, [("s3:CreateBucket", "arn:aws:s3:::b")]),
    ("PUT", "/b", {"x-amz-acl": "private", "x-amz-object-ownership": "ObjectWriter"},
     [("s3:CreateBucket", "arn:aws:s3:::b"), ("s3:PutBucketAcl", "arn:aws:s3:::b"),
      ("s3:PutBucketOwnershipControls", "arn:aws:s3:::b")]),
    ("DELETE", "/b", {}, [("s3:DeleteBucket", "arn:aws:s3:::b")]),
    ("HEAD", "/b", {}, [("s3:ListBucket", "arn:aws:s3:::b")]),
    ("GET", "/b?list-type=2&prefix=p", {}, [("s3:ListBucket", "arn:aws:s3:::b")]),
    ("GET", "/b?versions", {}, [("s3:ListBucketVersions", "arn:aws:s3:::b")]),
    ("GET", "/b?uploads", {}, [("s3:ListBucketMultipartUploads", "arn:aws:s3:::b")]),
    ("GET", "/b?location", {}, [("s3:GetBucketLocation", "arn:aws:s3:::b")]),
    ("PUT", "/b?versioning", {}, [("s3:PutBucketVersioning", "arn:aws:s3:::b")]),
    ("GET", "/b?acl", {}, [("s3:GetBucketAcl", "arn:aws:s3:::b")]),
    ("PUT", "/b?acl", {}, [("s3:PutBucketAcl", "arn:aws:s3:::b")]),
    ("GET", "/b?policy", {}, [("s3:GetBucketPolicy", "arn:aws:s3:::b")]),
    ("PUT", "/b?policy", {}, [("s3:PutBucketPolicy", "arn:aws:s3:::b")]),
    ("DELETE", "/b?policy", {}, [("s3:DeleteBucketPolicy", "arn:aws:s3:::b")]),
    ("GET", "/b?policyStatus", {}, [("s3:GetBucketPolicyStatus", "arn:aws:s3:::b")]),
    ("GET", "/b?ownershipControls", {}, [("s3:GetBucketOwnershipControls", "arn:aws:s3:::b")]),
    ("DELETE", "/b?ownershipControls", {}, [("s3:PutBucketOwnershipControls", "arn:aws:s3:::b")]),
    ("GET", "/b?publicAccessBlock", {}, [("s3:GetBucketPublicAccessBlock", "arn:aws:s3:::b")]),
    ("DELETE", "/b?publicAccessBlock", {}, [("s3:PutBucketPublicAccessBlock", "arn:aws:s3:::b")]),
    ("POST", "/b?delete", {}, []),  # per key, in the handler
    ("GET", "/", {}, []),  # filtered by the handler
])
def test_actions_are_aws_names(method: str, target: str, headers: dict[str, str],
                               expected: list[tuple[str, str]]) -> None:
    assert checks(method, target, headers) == expected


def test_every_handled_operation_is_authorized() -> None:
    assert set(OPERATIONS) <= AUTHORIZED


@pytest.mark.parametrize("target", ["/b/k?policy", "/b/k?publicAccessBlock", "/b/k?ownershipControls"])
def test_bucket_subresources_on_objects_are_refused(target: str) -> None:
    assert route("GET", target, "x", "", False).op is Op.UnsupportedSubresource


def test_request_context() -> None:
    req = Request("GET", "/b?list-type=2&prefix=home%2F&max-keys=5", {"host": "x", "x-amz-acl": "private"},
                  None, "192.0.2.7:4567", True)  # type: ignore[arg-type]
    r = route(req.method, req.target, "x", "", False)
    ctx = request_context(req, r, r.op, signed=True, presigned=True, tags=None)
    assert ctx["aws:SourceIp"] == "192.0.2.7" and ctx["aws:SecureTransport"] == "true"
    assert ctx["s3:prefix"] == "home/" and ctx["s3:max-keys"] == "5" and "s3:delimiter" not in ctx
    assert ctx["s3:authType"] == "REST-QUERY-STRING" and ctx["s3:signatureversion"] == "AWS4-HMAC-SHA256"
    assert ctx["s3:x-amz-acl"] == "private"
    assert {"aws:CurrentTime", "aws:EpochTime"} <= ctx.keys()
    v6 = Request("GET", "/b/k", {"host": "x"}, None, "::1:80", False)  # type: ignore[arg-type]
    ctx = request_context(v6, route("GET", "/b/k", "x", "", False), Op.GetObject, signed=False, presigned=False,
                          tags={"team": "blue"})
    assert ctx["aws:SourceIp"] == "::1" and "s3:authType" not in ctx
    assert ctx["s3:RequestObjectTag/team"] == "blue" and ctx["s3:RequestObjectTagKeys"] == ["team"]
    assert request_tags(Op.PutObject, {"x-amz-tagging": "a=1&b=2"}, None) == {"a": "1", "b": "2"}
    assert request_tags(Op.GetObject, {"x-amz-tagging": "a=1"}, None) is None


def test_check_resource() -> None:
    assert Check("s3:ListAllMyBuckets", "").resource == "arn:aws:s3:::"
    assert Check("s3:GetObject", "b", "a/b c").resource == "arn:aws:s3:::b/a/b c"


# --- ACLs -----------------------------------------------------------------------------------------


def known(cid: str) -> bool:
    return cid in (ALICE.canonical_id, BOB.canonical_id)


def test_canned_acls() -> None:
    a, b = ALICE.canonical_id, BOB.canonical_id
    assert acls.canned("private", a, b, for_bucket=False) == [acls.owner_grant(a)]
    assert acls.canned("public-read-write", a, a, for_bucket=True)[1:] == [
        acls.grant("Group", acls.ALL_USERS, "READ"), acls.grant("Group", acls.ALL_USERS, "WRITE")]
    assert acls.canned("bucket-owner-full-control", a, b, for_bucket=False)[1:] == [
        acls.grant("CanonicalUser", b, "FULL_CONTROL")]
    assert acls.canned("bucket-owner-read", a, a, for_bucket=False) == [acls.owner_grant(a)]
    assert acls.canned("log-delivery-write", a, a, for_bucket=True)[1:] == [
        acls.grant("Group", acls.LOG_DELIVERY, "WRITE"), acls.grant("Group", acls.LOG_DELIVERY, "READ_ACP")]
    with pytest.raises(S3Error):
        acls.canned("log-delivery-write", a, a, for_bucket=False)
    with pytest.raises(S3Error):
        acls.canned("aws-exec-read", a, a, for_bucket=False)


def test_grant_headers() -> None:
    h = {"x-amz-grant-read": f'id="{BOB.canonical_id}", uri="{acls.AUTHENTICATED_USERS}"',
         "x-amz-grant-full-control": f"id={ALICE.canonical_id}"}
    got = acls.header_acl(h, ALICE.canonical_id, ALICE.canonical_id, for_bucket=False, known=known)
    assert got == [acls.grant("CanonicalUser", BOB.canonical_id, "READ"),
                   acls.grant("Group", acls.AUTHENTICATED_USERS, "READ"),
                   acls.grant("CanonicalUser", ALICE.canonical_id, "FULL_CONTROL")]
    assert acls.header_acl({}, "o", "o", for_bucket=True, known=known) is None
    for bad in ('id="nobody"', 'uri="http://example.com/g"', "nonsense", 'colour="blue"', ""):
        with pytest.raises(S3Error):
            acls.header_acl({"x-amz-grant-read": bad}, "o", "o", for_bucket=True, known=known)
    with pytest.raises(S3Error) as exc:
        acls.header_acl({"x-amz-grant-read": 'emailAddress="x@y.z"'}, "o", "o", for_bucket=True, known=known)
    assert exc.value.code == "UnresolvableGrantByEmailAddress"


def test_what_grants_permit() -> None:
    acl = [acls.owner_grant(ALICE.canonical_id), acls.grant("Group", acls.AUTHENTICATED_USERS, "READ"),
           acls.grant("CanonicalUser", BOB.canonical_id, "WRITE_ACP")]
    assert acls.permits(acl, ALICE, "WRITE", ignore_public=False)  # FULL_CONTROL gives everything
    assert acls.permits(acl, BOB, "READ", ignore_public=False)  # as an authenticated user
    assert not acls.permits(acl, BOB, "READ", ignore_public=True)
    assert acls.permits(acl, BOB, "WRITE_ACP", ignore_public=True)
    assert not acls.permits(acl, ANON, "READ", ignore_public=False)
    assert acls.permits([acls.grant("Group", acls.ALL_USERS, "READ")], ANON, "READ", ignore_public=False)
    assert acls.is_public(acl) and not acls.is_public([acls.owner_grant("x")]) and not acls.is_public(None)
    assert acls.owner_only([acls.owner_grant("x")], ["x"]) and not acls.owner_only(acl, [ALICE.canonical_id])


def test_access_control_policy_round_trip() -> None:
    acl = [acls.owner_grant(ALICE.canonical_id), acls.grant("Group", acls.ALL_USERS, "READ")]
    body = acls.acp_xml(f"<ID>{ALICE.canonical_id}</ID><DisplayName>alice</DisplayName>", acl,
                        lambda cid: f"<ID>{cid}</ID>")
    parsed = acls.parse_acp(body, known)
    assert parsed.owner == ALICE.canonical_id and parsed.grants == acl
    for bad in (b"<AccessControlPolicy><AccessControlList><Grant><Permission>READ</Permission></Grant>"
                b"</AccessControlList></AccessControlPolicy>",
                body.replace(b">READ<", b">PEEK<")):
        with pytest.raises(S3Error) as exc:
            acls.parse_acp(bad, known)
        assert exc.value.code == "MalformedACLError"


# --- the authorizer with stand-ins for the store and the identities -------------------------------


class _Store:
    def __init__(self, rec: Any) -> None:
        self.rec = rec

    def shared_bucket(self, name: str) -> Any:
        return self.rec

    def head_object(self, bucket: str, key: str, version_id: str | None = None) -> Any:
        from appliance.engine.errors import NoSuchKey

        raise NoSuchKey(bucket=bucket, key=key)


class _Identities:
    account_id = "000000000000"
    root = Principal.root(canonical_id="r" * 64)

    def authenticate(self, access_key: str) -> None:
        return None

    def refusal(self, access_key: str) -> str:
        return "InvalidAccessKeyId"

    def identity_policies(self, principal: Principal) -> tuple[()]:
        return ()

    def principal_for_user(self, name: str) -> None:
        return None

    def principal_by_canonical_id(self, canonical_id: str) -> Principal | None:
        return self.root if canonical_id == self.root.canonical_id else None

    def display_name(self, canonical_id: str) -> str:
        return "root" if canonical_id == self.root.canonical_id else ""


def test_an_unreadable_stored_policy_fails_closed_but_root_can_replace_it() -> None:
    from appliance.config import Config
    from appliance.engine import BucketRecord
    from s3gw.authz import Authorizer

    rec = BucketRecord("b", 1, owner="r" * 64, policy='{"Statement": "no longer valid"}')
    authz = Authorizer(_Store(rec), Config(), _Identities())  # type: ignore[arg-type]
    root = _Identities.root

    async def decide(principal: Principal, action: str, key: str | None = None) -> bool:
        return await authz.decide(principal, Check(action, "b", key), {})

    async def main() -> None:
        assert not await decide(root, "s3:GetObject", "k")
        assert not await decide(ANON, "s3:ListBucket")
        for action in ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"):
            assert await decide(root, action)

    trio.run(main)

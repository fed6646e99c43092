"""The policy evaluation table: (identity policies, bucket policy, request) -> decision.

Each case states what AWS decides for a request within one account; the comment on a case
says which rule it pins when the name is not enough.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from appliance.iam.policy import (
    AuthzRequest,
    Decision,
    Outcome,
    Policy,
    Principal,
    authorize,
    evaluate,
    parse_policy,
    s3_arn,
    time_context,
)

ACCT = "000000000000"
ALICE = Principal.user("alice")
BOB = Principal.user("bob")
ROOT = Principal.root()
ANON = Principal.anonymous()
OTHER = Principal.user("carol", account="111111111111")

St = dict[str, object]


def statement(effect: str, action: str | list[str], resource: str | list[str],
              condition: dict[str, object] | None) -> St:
    st: St = {"Effect": effect, "Action": action, "Resource": resource}
    if condition is not None:
        st["Condition"] = condition
    return st


def allow(action: str | list[str] = "s3:*", resource: str | list[str] = "*",
          when: dict[str, object] | None = None) -> St:
    return statement("Allow", action, resource, when)


def deny(action: str | list[str] = "s3:*", resource: str | list[str] = "*",
         when: dict[str, object] | None = None) -> St:
    return statement("Deny", action, resource, when)


def cond(**ops: Mapping[str, object]) -> dict[str, object]:
    return dict(ops)


def document(statements: Sequence[St], version: str | None = "2012-10-17") -> str:
    doc: dict[str, object] = {"Statement": list(statements)}
    if version is not None:
        doc["Version"] = version
    return json.dumps(doc)


@dataclass
class Case:
    id: str
    expect: str  # "allow", "deny" (explicit) or "implicit"
    identity: list[list[St]] = field(default_factory=list)  # one statement list per attached policy
    bucket: list[St] | None = None
    principal: Principal = ALICE
    action: str = "s3:GetObject"
    resource: str = "arn:aws:s3:::b/k"
    context: dict[str, str | list[str]] = field(default_factory=dict)
    acl: bool = False
    version: str | None = "2012-10-17"


def B(effect: str, principal: object, action: str | list[str] = "s3:*", resource: str | list[str] = "*",
      when: dict[str, object] | None = None, not_principal: bool = False) -> St:
    """A bucket-policy statement."""
    st = statement(effect, action, resource, when)
    st["NotPrincipal" if not_principal else "Principal"] = principal
    return st


USER_ARN = f"arn:aws:iam::{ACCT}:user/alice"
CAROL = Principal.user("carol", path="/team/")
CAROL_ARN = f"arn:aws:iam::{ACCT}:user/team/carol"
OWN_HOME = "arn:aws:s3:::b/${aws:username}/*"

CASES = [
    # --- allow / deny precedence --------------------------------------------------------------
    Case("identity-allow", "allow", [[allow("s3:GetObject")]]),
    Case("no-policies", "implicit"),
    Case("identity-other-action", "implicit", [[allow("s3:PutObject")]]),
    Case("deny-over-allow-same-policy", "deny", [[allow(), deny("s3:GetObject")]]),
    Case("deny-in-second-policy", "deny", [[allow()], [deny("s3:GetObject")]]),
    Case("bucket-deny-over-identity-allow", "deny", [[allow()]], [B("Deny", "*", "s3:GetObject")]),
    Case("bucket-allow-alone", "allow", [], [B("Allow", {"AWS": USER_ARN}, "s3:GetObject", "arn:aws:s3:::b/*")]),
    Case("bucket-allow-other-user", "implicit", [], [B("Allow", {"AWS": f"arn:aws:iam::{ACCT}:user/bob"})]),
    Case("identity-deny-over-bucket-allow", "deny", [[deny()]], [B("Allow", "*")]),
    # a user with a path is named by its whole ARN, as IAM shows it (user/PATH/NAME)
    Case("bucket-allow-user-with-path", "allow", [], [B("Allow", {"AWS": CAROL_ARN})],
         principal=CAROL),
    Case("bucket-deny-user-with-path", "deny", [[allow()]], [B("Deny", {"AWS": CAROL_ARN})],
         principal=CAROL),
    Case("bucket-deny-path-needed", "allow", [[allow()]], [B("Deny", {"AWS": f"arn:aws:iam::{ACCT}:user/carol"})],
         principal=CAROL),
    Case("acl-alone", "allow", acl=True),
    Case("acl-vs-bucket-deny", "deny", bucket=[B("Deny", "*")], acl=True),
    Case("acl-vs-identity-deny", "deny", [[deny("s3:Get*")]], acl=True),
    Case("deny-other-resource-allow-stands", "allow", [[allow(), deny("s3:*", "arn:aws:s3:::other/*")]]),
    # --- actions -------------------------------------------------------------------------------
    Case("action-s3-star", "allow", [[allow("s3:*")]], action="s3:PutObject"),
    Case("action-prefix-star", "allow", [[allow("s3:Get*")]], action="s3:GetObjectVersion"),
    Case("action-prefix-star-miss", "implicit", [[allow("s3:Get*")]], action="s3:PutObject"),
    Case("action-question-mark", "allow", [[allow("s3:Get?bject")]]),
    Case("action-question-is-one-char", "implicit", [[allow("s3:Get?bject")]], action="s3:GetOObject"),
    Case("action-star-everything", "allow", [[allow("*")]], action="iam:CreateUser", resource="*"),
    Case("action-case-insensitive-policy", "allow", [[allow("S3:GETOBJECT")]]),
    Case("action-case-insensitive-request", "allow", [[allow("s3:GetObject")]], action="s3:getobject"),
    Case("action-other-vendor", "implicit", [[allow("iam:*")]]),
    Case("action-list", "allow", [[allow(["s3:ListBucket", "s3:GetObject"])]]),
    Case("notaction-allows-rest", "allow", [[{"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "*"}]]),
    Case("notaction-excludes", "implicit", [[{"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}]],
         action="s3:DeleteObject"),
    Case("deny-notaction-hits-others", "deny",
         [[allow(), {"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"}]], action="s3:PutObject"),
    Case("deny-notaction-spares-listed", "allow",
         [[allow(), {"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"}]]),
    # --- resources -----------------------------------------------------------------------------
    Case("resource-star-spans-slashes", "allow", [[allow("s3:*", "arn:aws:s3:::b/*")]],
         resource="arn:aws:s3:::b/a/b/c"),
    Case("resource-objects-not-bucket", "implicit", [[allow("s3:*", "arn:aws:s3:::b/*")]],
         action="s3:ListBucket", resource="arn:aws:s3:::b"),
    Case("resource-bucket-not-objects", "implicit", [[allow("s3:*", "arn:aws:s3:::b")]]),
    Case("resource-question-mark", "allow", [[allow("s3:*", "arn:aws:s3:::b/a?c")]], resource="arn:aws:s3:::b/abc"),
    Case("resource-question-one-char", "implicit", [[allow("s3:*", "arn:aws:s3:::b/a?c")]],
         resource="arn:aws:s3:::b/abbc"),
    Case("resource-case-sensitive", "implicit", [[allow("s3:*", "arn:aws:s3:::b/Photos/*")]],
         resource="arn:aws:s3:::b/photos/x"),
    Case("resource-all-s3", "allow", [[allow("s3:*", "arn:aws:s3:::*")]], resource="arn:aws:s3:::x/y/z"),
    Case("resource-wildcard-crosses-bucket", "allow", [[allow("s3:*", "arn:aws:s3:::b*")]],
         resource="arn:aws:s3:::bucket2/x"),
    Case("resource-middle-star", "allow", [[allow("s3:*", "arn:aws:s3:::b/*/report-?.csv")]],
         resource="arn:aws:s3:::b/2024/05/report-1.csv"),
    Case("resource-middle-star-miss", "implicit", [[allow("s3:*", "arn:aws:s3:::b/*/report-?.csv")]],
         resource="arn:aws:s3:::b/2024/05/report-10.csv"),
    Case("notresource-allows-others", "allow",
         [[{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"}]]),
    Case("notresource-excludes", "implicit",
         [[{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"}]],
         resource="arn:aws:s3:::secret/x"),
    Case("deny-notresource-hits-others", "deny",
         [[allow(), {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/public/*"}]],
         resource="arn:aws:s3:::b/private/x"),
    Case("deny-notresource-spares-listed", "allow",
         [[allow(), {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/public/*"}]],
         resource="arn:aws:s3:::b/public/x"),
    Case("list-all-buckets-arn-star", "allow", [[allow("s3:ListAllMyBuckets", "arn:aws:s3:::*")]],
         action="s3:ListAllMyBuckets", resource=s3_arn()),
    Case("list-all-buckets-bucket-only", "implicit", [[allow("s3:ListAllMyBuckets", "arn:aws:s3:::b*")]],
         action="s3:ListAllMyBuckets", resource=s3_arn()),
    # --- principals (bucket policy) ------------------------------------------------------------
    Case("principal-star-anonymous", "allow", bucket=[B("Allow", "*", "s3:GetObject")], principal=ANON),
    Case("principal-aws-star-anonymous", "allow", bucket=[B("Allow", {"AWS": "*"}, "s3:GetObject")],
         principal=ANON),
    # The account principal delegates to the account (AWS): an Allow naming it grants its users
    # nothing their own identity policies do not (it granted every user of the account, a wrong
    # Allow); it names root itself; a Deny naming it binds every identity of the account.
    Case("principal-account-id-user", "implicit", bucket=[B("Allow", {"AWS": ACCT})]),
    Case("principal-account-root-arn-user", "implicit", bucket=[B("Allow", {"AWS": f"arn:aws:iam::{ACCT}:root"})]),
    Case("principal-account-id-root", "allow", bucket=[B("Allow", {"AWS": ACCT})], principal=ROOT),
    Case("principal-account-root-arn-root", "allow", bucket=[B("Allow", {"AWS": f"arn:aws:iam::{ACCT}:root"})],
         principal=ROOT),
    Case("principal-account-user-with-identity-allow", "allow", [[allow()]], [B("Allow", {"AWS": ACCT})]),
    Case("principal-account-deny-binds-users", "deny", [[allow()]], [B("Deny", {"AWS": ACCT})]),
    Case("principal-account-root-arn-deny-binds-users", "deny", [[allow()]],
         [B("Deny", {"AWS": f"arn:aws:iam::{ACCT}:root"})]),
    Case("principal-account-not-anonymous", "implicit", bucket=[B("Allow", {"AWS": ACCT})], principal=ANON),
    Case("principal-user-arn", "allow", bucket=[B("Allow", {"AWS": [USER_ARN]})]),
    Case("principal-user-arn-other", "implicit", bucket=[B("Allow", {"AWS": USER_ARN})], principal=BOB),
    Case("principal-user-wildcard", "allow", bucket=[B("Allow", {"AWS": f"arn:aws:iam::{ACCT}:user/*"})],
         principal=BOB),
    Case("principal-user-wildcard-not-anonymous", "implicit",
         bucket=[B("Allow", {"AWS": f"arn:aws:iam::{ACCT}:user/*"})], principal=ANON),
    Case("principal-other-account", "implicit", bucket=[B("Allow", {"AWS": "111111111111"})]),
    Case("principal-other-account-member", "implicit", bucket=[B("Allow", {"AWS": "111111111111"})], principal=OTHER),
    Case("notprincipal-deny-spares-listed", "allow", [[allow()]],
         [B("Deny", {"AWS": USER_ARN}, not_principal=True)]),
    Case("notprincipal-deny-hits-others", "deny", [[allow()]],
         [B("Deny", {"AWS": USER_ARN}, not_principal=True)], principal=BOB),
    Case("notprincipal-deny-hits-anonymous", "deny", bucket=[B("Allow", "*"),
                                                            B("Deny", {"AWS": ACCT}, not_principal=True)],
         principal=ANON),
    Case("canonical-user", "allow", bucket=[B("Allow", {"CanonicalUser": "c0ffee"})],
         principal=Principal.user("alice", canonical_id="c0ffee")),
    Case("service-principal-never-matches", "implicit", bucket=[B("Allow", {"Service": "logging.s3.amazonaws.com"})]),
    # --- conditions: strings -------------------------------------------------------------------
    Case("string-equals", "allow", [[allow(when=cond(StringEquals={"s3:x-amz-acl": "private"}))]],
         context={"s3:x-amz-acl": "private"}),
    Case("string-equals-miss", "implicit", [[allow(when=cond(StringEquals={"s3:x-amz-acl": "private"}))]],
         context={"s3:x-amz-acl": "public-read"}),
    Case("string-equals-value-case", "implicit", [[allow(when=cond(StringEquals={"s3:x-amz-acl": "private"}))]],
         context={"s3:x-amz-acl": "PRIVATE"}),
    Case("condition-key-case-insensitive", "allow", [[allow(when=cond(StringEquals={"S3:X-AMZ-ACL": "private"}))]],
         context={"s3:x-amz-acl": "private"}),
    Case("context-key-case-insensitive", "allow", [[allow(when=cond(StringEquals={"s3:x-amz-acl": "private"}))]],
         context={"S3:X-Amz-Acl": "private"}),
    Case("string-equals-missing", "implicit", [[allow(when=cond(StringEquals={"s3:x-amz-acl": "private"}))]]),
    Case("string-not-equals", "allow", [[allow(when=cond(StringNotEquals={"s3:x-amz-acl": "public-read"}))]],
         context={"s3:x-amz-acl": "private"}),
    Case("string-not-equals-missing-is-true", "allow",
         [[allow(when=cond(StringNotEquals={"s3:x-amz-acl": "public-read"}))]]),
    Case("string-equals-ignore-case", "allow",
         [[allow(when=cond(StringEqualsIgnoreCase={"s3:x-amz-acl": "PUBLIC-READ"}))]],
         context={"s3:x-amz-acl": "public-read"}),
    Case("string-not-equals-ignore-case", "implicit",
         [[allow(when=cond(StringNotEqualsIgnoreCase={"s3:x-amz-acl": "PUBLIC-READ"}))]],
         context={"s3:x-amz-acl": "public-read"}),
    Case("string-equals-star-is-literal", "implicit", [[allow(when=cond(StringEquals={"s3:prefix": "home/*"}))]],
         context={"s3:prefix": "home/alice/"}),
    Case("string-like", "allow", [[allow(when=cond(StringLike={"s3:prefix": "home/*"}))]],
         context={"s3:prefix": "home/alice/"}),
    Case("string-like-miss", "implicit", [[allow(when=cond(StringLike={"s3:prefix": "home/*"}))]],
         context={"s3:prefix": "work/"}),
    Case("string-not-like", "allow", [[allow(when=cond(StringNotLike={"s3:prefix": "secret*"}))]],
         context={"s3:prefix": "home/"}),
    Case("values-or", "allow", [[allow(when=cond(StringEquals={"s3:x-amz-acl": ["private", "bucket-owner-read"]}))]],
         context={"s3:x-amz-acl": "bucket-owner-read"}),
    Case("negated-values-nor", "implicit",
         [[allow(when=cond(StringNotEquals={"s3:x-amz-acl": ["private", "bucket-owner-read"]}))]],
         context={"s3:x-amz-acl": "bucket-owner-read"}),
    Case("keys-and", "implicit",
         [[allow(when=cond(StringEquals={"s3:x-amz-acl": "private", "s3:prefix": "a/"}))]],
         context={"s3:x-amz-acl": "private", "s3:prefix": "b/"}),
    Case("operators-and", "implicit",
         [[allow(when=cond(StringEquals={"s3:x-amz-acl": "private"}, Bool={"aws:SecureTransport": "true"}))]],
         context={"s3:x-amz-acl": "private", "aws:SecureTransport": "false"}),
    Case("operators-and-all-true", "allow",
         [[allow(when=cond(StringEquals={"s3:x-amz-acl": "private"}, Bool={"aws:SecureTransport": "true"}))]],
         context={"s3:x-amz-acl": "private", "aws:SecureTransport": "true"}),
    Case("tag-condition", "allow", [[allow(when=cond(StringEquals={"s3:ExistingObjectTag/team": "blue"}))]],
         context={"s3:ExistingObjectTag/team": "blue"}),
    Case("derived-username", "allow", [[allow(when=cond(StringEquals={"aws:username": "alice"}))]]),
    Case("derived-principal-type-anonymous", "allow",
         bucket=[B("Allow", "*", when=cond(StringEquals={"aws:PrincipalType": "Anonymous"}))], principal=ANON),
    Case("derived-principal-arn-like", "allow",
         bucket=[B("Allow", "*", when=cond(ArnLike={"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:user/*"}))]),
    Case("arn-not-like-denies-root", "deny",
         bucket=[B("Deny", "*", when=cond(ArnNotLike={"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:user/*"}))],
         principal=ROOT),
    Case("arn-not-like-spares-users", "allow", [[allow()]],
         bucket=[B("Deny", "*", when=cond(ArnNotLike={"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:user/*"}))]),
    Case("arn-not-equals", "allow",
         bucket=[B("Allow", "*", when=cond(ArnNotEquals={"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:user/bob"}))]),
    Case("arn-like-star-does-not-cross-colon", "implicit",
         bucket=[B("Allow", "*", when=cond(ArnLike={"aws:SourceArn": "arn:aws:*:::b"}))],
         context={"aws:SourceArn": "arn:aws:s3:x:::b"}),
    # --- conditions: numbers, dates, booleans, binary -------------------------------------------
    Case("numeric-le", "allow", [[allow(when=cond(NumericLessThanEquals={"s3:max-keys": "100"}))]],
         context={"s3:max-keys": "50"}),
    Case("numeric-le-miss", "implicit", [[allow(when=cond(NumericLessThanEquals={"s3:max-keys": 100}))]],
         context={"s3:max-keys": "500"}),
    Case("numeric-equals-decimal", "allow", [[allow(when=cond(NumericEquals={"s3:max-keys": "10"}))]],
         context={"s3:max-keys": "10.0"}),
    Case("numeric-not-equals", "allow", [[allow(when=cond(NumericNotEquals={"s3:max-keys": "10"}))]],
         context={"s3:max-keys": "11"}),
    Case("numeric-lt", "implicit", [[allow(when=cond(NumericLessThan={"s3:max-keys": "10"}))]],
         context={"s3:max-keys": "10"}),
    Case("numeric-gt", "allow", [[allow(when=cond(NumericGreaterThan={"s3:max-keys": "-1.5"}))]],
         context={"s3:max-keys": "0"}),
    Case("numeric-ge", "allow", [[allow(when=cond(NumericGreaterThanEquals={"s3:max-keys": "1e2"}))]],
         context={"s3:max-keys": "100"}),
    Case("numeric-request-not-a-number", "implicit", [[allow(when=cond(NumericGreaterThan={"s3:max-keys": "1"}))]],
         context={"s3:max-keys": "lots"}),
    Case("date-greater-than", "allow",
         [[allow(when=cond(DateGreaterThan={"aws:CurrentTime": "2020-01-01T00:00:00Z"}))]],
         context={"aws:CurrentTime": "2024-06-01T12:00:00Z"}),
    Case("date-less-than-miss", "implicit",
         [[allow(when=cond(DateLessThan={"aws:CurrentTime": "2020-01-01T00:00:00Z"}))]],
         context={"aws:CurrentTime": "2024-06-01T12:00:00Z"}),
    Case("date-epoch-policy-vs-iso", "allow", [[allow(when=cond(DateLessThan={"aws:CurrentTime": "1893456000"}))]],
         context={"aws:CurrentTime": "2024-06-01T12:00:00Z"}),
    Case("date-epoch-time-key", "allow",
         [[allow(when=cond(DateGreaterThanEquals={"aws:EpochTime": "2024-06-01T12:00:00Z"}))]],
         context={"aws:EpochTime": "1717243200"}),
    Case("date-equals-offsets", "allow",
         [[allow(when=cond(DateEquals={"aws:CurrentTime": "2024-06-01T14:00:00+02:00"}))]],
         context={"aws:CurrentTime": "2024-06-01T12:00:00Z"}),
    Case("date-not-equals", "implicit", [[allow(when=cond(DateNotEquals={"aws:CurrentTime": "2024-06-01"}))]],
         context={"aws:CurrentTime": "2024-06-01T00:00:00Z"}),
    Case("date-le-from-time-context", "allow",
         [[allow(when=cond(DateLessThanEquals={"aws:CurrentTime": "2030-01-01T00:00:00Z"}))]],
         context=dict(time_context(__import__("datetime").datetime(2025, 1, 1)))),
    Case("bool-true", "allow", [[allow(when=cond(Bool={"aws:SecureTransport": "true"}))]],
         context={"aws:SecureTransport": "true"}),
    Case("bool-false-request", "implicit", [[allow(when=cond(Bool={"aws:SecureTransport": True}))]],
         context={"aws:SecureTransport": "false"}),
    Case("bool-deny-insecure", "deny",
         [[allow()]], [B("Deny", "*", when=cond(Bool={"aws:SecureTransport": False}))],
         context={"aws:SecureTransport": "false"}),
    Case("binary-equals", "allow", [[allow(when=cond(BinaryEquals={"s3:x-amz-meta-blob": "QmluYXJ5"}))]],
         context={"s3:x-amz-meta-blob": "QmluYXJ5"}),
    # --- conditions: IP addresses ---------------------------------------------------------------
    Case("ip-v4-cidr", "allow", [[allow(when=cond(IpAddress={"aws:SourceIp": "192.0.2.0/24"}))]],
         context={"aws:SourceIp": "192.0.2.77"}),
    Case("ip-v4-cidr-miss", "implicit", [[allow(when=cond(IpAddress={"aws:SourceIp": "192.0.2.0/24"}))]],
         context={"aws:SourceIp": "192.0.3.1"}),
    Case("ip-v4-single", "allow", [[allow(when=cond(IpAddress={"aws:SourceIp": ["10.9.9.9", "192.0.2.1"]}))]],
         context={"aws:SourceIp": "192.0.2.1"}),
    Case("ip-v6-cidr", "allow", [[allow(when=cond(IpAddress={"aws:SourceIp": "2001:db8::/32"}))]],
         context={"aws:SourceIp": "2001:db8:1::5"}),
    Case("ip-v4-vs-v6-cidr", "implicit", [[allow(when=cond(IpAddress={"aws:SourceIp": "2001:db8::/32"}))]],
         context={"aws:SourceIp": "192.0.2.1"}),
    Case("ip-v4-mapped-request", "allow", [[allow(when=cond(IpAddress={"aws:SourceIp": "192.0.2.0/24"}))]],
         context={"aws:SourceIp": "::ffff:192.0.2.9"}),
    Case("not-ip-deny", "deny", [[allow(), deny(when=cond(NotIpAddress={"aws:SourceIp": "10.0.0.0/8"}))]],
         context={"aws:SourceIp": "192.0.2.1"}),
    Case("not-ip-deny-inside", "allow", [[allow(), deny(when=cond(NotIpAddress={"aws:SourceIp": "10.0.0.0/8"}))]],
         context={"aws:SourceIp": "10.1.2.3"}),
    Case("ip-missing", "implicit", [[allow(when=cond(IpAddress={"aws:SourceIp": "0.0.0.0/0"}))]]),
    Case("not-ip-missing-is-true", "deny", [[allow(), deny(when=cond(NotIpAddress={"aws:SourceIp": "10.0.0.0/8"}))]]),
    Case("ip-request-garbage", "implicit", [[allow(when=cond(IpAddress={"aws:SourceIp": "0.0.0.0/0"}))]],
         context={"aws:SourceIp": "not-an-ip"}),
    # --- Null and IfExists ----------------------------------------------------------------------
    Case("null-true-absent", "allow", [[allow(when=cond(Null={"s3:x-amz-server-side-encryption": "true"}))]]),
    Case("null-true-present", "implicit", [[allow(when=cond(Null={"s3:x-amz-server-side-encryption": "true"}))]],
         context={"s3:x-amz-server-side-encryption": "AES256"}),
    Case("null-false-present", "allow", [[allow(when=cond(Null={"s3:x-amz-server-side-encryption": False}))]],
         context={"s3:x-amz-server-side-encryption": "AES256"}),
    Case("null-false-absent-deny-unencrypted", "deny",
         [[allow(), deny("s3:PutObject", when=cond(Null={"s3:x-amz-server-side-encryption": "true"}))]],
         action="s3:PutObject"),
    Case("if-exists-absent", "allow", [[allow(when=cond(StringEqualsIfExists={"s3:x-amz-acl": "private"}))]]),
    Case("if-exists-present-miss", "implicit", [[allow(when=cond(StringEqualsIfExists={"s3:x-amz-acl": "private"}))]],
         context={"s3:x-amz-acl": "public-read"}),
    Case("if-exists-present-hit", "allow", [[allow(when=cond(StringEqualsIfExists={"s3:x-amz-acl": "private"}))]],
         context={"s3:x-amz-acl": "private"}),
    Case("numeric-if-exists-absent", "allow", [[allow(when=cond(NumericLessThanIfExists={"s3:max-keys": "10"}))]]),
    Case("ip-if-exists-absent", "allow", [[allow(when=cond(IpAddressIfExists={"aws:SourceIp": "10.0.0.0/8"}))]]),
    Case("bool-if-exists-present-miss", "implicit", [[allow(when=cond(BoolIfExists={"aws:SecureTransport": "true"}))]],
         context={"aws:SecureTransport": "false"}),
    # --- set qualifiers -------------------------------------------------------------------------
    Case("for-any-value-hit", "allow",
         [[allow(when=cond(**{"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["team", "cost"]}}))]],
         context={"s3:RequestObjectTagKeys": ["owner", "team"]}),
    Case("for-any-value-miss", "implicit",
         [[allow(when=cond(**{"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["team", "cost"]}}))]],
         context={"s3:RequestObjectTagKeys": ["owner"]}),
    Case("for-any-value-missing-key", "implicit",
         [[allow(when=cond(**{"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": "team"}}))]]),
    Case("for-all-values-subset", "allow",
         [[allow(when=cond(**{"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "cost"]}}))]],
         context={"s3:RequestObjectTagKeys": ["cost", "team"]}),
    Case("for-all-values-not-subset", "implicit",
         [[allow(when=cond(**{"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "cost"]}}))]],
         context={"s3:RequestObjectTagKeys": ["cost", "owner"]}),
    Case("for-all-values-missing-key-is-true", "allow",
         [[allow(when=cond(**{"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": "team"}}))]]),
    Case("for-all-values-empty-list-is-missing", "allow",
         [[allow(when=cond(**{"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": "team"}}))]],
         context={"s3:RequestObjectTagKeys": []}),
    Case("for-all-values-not-equals-none-listed", "allow",
         [[allow(when=cond(**{"ForAllValues:StringNotEquals": {"s3:RequestObjectTagKeys": ["secret", "pii"]}}))]],
         context={"s3:RequestObjectTagKeys": ["team", "cost"]}),
    Case("for-all-values-not-equals-one-listed", "implicit",
         [[allow(when=cond(**{"ForAllValues:StringNotEquals": {"s3:RequestObjectTagKeys": ["secret", "pii"]}}))]],
         context={"s3:RequestObjectTagKeys": ["team", "pii"]}),
    Case("for-any-value-not-equals", "allow",
         [[allow(when=cond(**{"ForAnyValue:StringNotEquals": {"s3:RequestObjectTagKeys": ["team"]}}))]],
         context={"s3:RequestObjectTagKeys": ["team", "cost"]}),
    Case("for-any-value-not-equals-all-listed", "implicit",
         [[allow(when=cond(**{"ForAnyValue:StringNotEquals": {"s3:RequestObjectTagKeys": ["team"]}}))]],
         context={"s3:RequestObjectTagKeys": ["team"]}),
    Case("for-any-value-like", "allow",
         [[allow(when=cond(**{"ForAnyValue:StringLike": {"s3:RequestObjectTagKeys": "proj-*"}}))]],
         context={"s3:RequestObjectTagKeys": ["x", "proj-7"]}),
    Case("deny-for-any-value-missing-key-does-not-deny", "allow",
         [[allow(), deny(when=cond(**{"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": "secret"}}))]]),
    Case("deny-for-all-values-missing-key-denies", "deny",
         [[allow(), deny(when=cond(**{"ForAllValues:StringNotLike": {"s3:RequestObjectTagKeys": "ok-*"}}))]]),
    Case("multivalued-without-qualifier-any", "allow",
         [[allow(when=cond(StringEquals={"s3:RequestObjectTagKeys": "team"}))]],
         context={"s3:RequestObjectTagKeys": ["owner", "team"]}),
    Case("for-all-values-if-exists-absent", "allow",
         [[allow(when=cond(**{"ForAnyValue:StringEqualsIfExists": {"s3:RequestObjectTagKeys": "team"}}))]]),
    # --- policy variables -----------------------------------------------------------------------
    Case("var-username-own-prefix", "allow", [[allow("s3:*", "arn:aws:s3:::home/${aws:username}/*")]],
         resource="arn:aws:s3:::home/alice/notes.txt"),
    Case("var-username-other-prefix", "implicit", [[allow("s3:*", "arn:aws:s3:::home/${aws:username}/*")]],
         resource="arn:aws:s3:::home/bob/notes.txt"),
    Case("var-missing-no-match", "implicit",
         bucket=[B("Allow", "*", "s3:GetObject", "arn:aws:s3:::home/${aws:username}/*")], principal=ANON,
         resource="arn:aws:s3:::home/anonymous/x"),
    Case("var-default-value", "allow",
         bucket=[B("Allow", "*", "s3:GetObject", "arn:aws:s3:::home/${aws:username, 'guest'}/*")], principal=ANON,
         resource="arn:aws:s3:::home/guest/x"),
    Case("var-in-condition", "allow", [[allow(when=cond(StringLike={"s3:prefix": "home/${aws:username}/*"}))]],
         action="s3:ListBucket", resource="arn:aws:s3:::b", context={"s3:prefix": "home/alice/docs/"}),
    Case("var-in-condition-other", "implicit", [[allow(when=cond(StringLike={"s3:prefix": "home/${aws:username}/*"}))]],
         action="s3:ListBucket", resource="arn:aws:s3:::b", context={"s3:prefix": "home/bob/"}),
    Case("var-string-equals", "allow", [[allow(when=cond(StringEquals={"s3:prefix": "${aws:username}/"}))]],
         context={"s3:prefix": "alice/"}),
    Case("var-key-case-insensitive", "allow", [[allow("s3:*", "arn:aws:s3:::home/${AWS:UserName}/*")]],
         resource="arn:aws:s3:::home/alice/x"),
    Case("var-any-context-key", "allow", [[allow("s3:*", "arn:aws:s3:::b/${s3:prefix}*")]],
         resource="arn:aws:s3:::b/reports/1", context={"s3:prefix": "reports/"}),
    Case("var-value-is-literal", "implicit", [[allow("s3:*", "arn:aws:s3:::home/${aws:username}/*")]],
         principal=Principal.user("a*"), resource="arn:aws:s3:::home/abc/x"),
    Case("var-value-literal-star-matches-itself", "allow", [[allow("s3:*", "arn:aws:s3:::home/${aws:username}/*")]],
         principal=Principal.user("a*"), resource="arn:aws:s3:::home/a*/x"),
    Case("var-multivalued-key-cannot-substitute", "implicit", [[allow("s3:*", "arn:aws:s3:::b/${s3:tags}")]],
         resource="arn:aws:s3:::b/x", context={"s3:tags": ["x", "y"]}),
    # A variable without a value would turn a negated element into "matches everything"; AWS
    # holds such a statement invalid: an Allow grants nothing, a Deny here still denies.
    Case("var-missing-negated-condition", "implicit",
         bucket=[B("Allow", "*", when=cond(StringNotEquals={"s3:prefix": "${aws:username}"}))], principal=ANON,
         context={"s3:prefix": "x"}),
    Case("var-missing-negated-condition-default", "allow",
         bucket=[B("Allow", "*", when=cond(StringNotEquals={"s3:prefix": "${aws:username, 'x'}"}))], principal=ANON,
         context={"s3:prefix": "y"}),
    Case("var-missing-notresource-allow", "implicit",
         bucket=[{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "NotResource": OWN_HOME}],
         principal=ANON),
    Case("var-missing-notresource-deny", "deny", [[allow()]],
         bucket=[{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "NotResource": OWN_HOME}],
         principal=ANON, acl=True),
    Case("var-missing-not-like-deny", "deny",
         bucket=[B("Deny", "*", when=cond(StringNotLike={"s3:prefix": "${aws:username}/*"}))], principal=ANON,
         context={"s3:prefix": "x"}, acl=True),
    Case("var-present-notresource", "allow",
         [[{"Effect": "Allow", "Action": "s3:*", "NotResource": OWN_HOME}]]),
    Case("escape-star", "allow", [[allow("s3:*", "arn:aws:s3:::b/${*}")]], resource="arn:aws:s3:::b/*"),
    Case("escape-star-is-not-wildcard", "implicit", [[allow("s3:*", "arn:aws:s3:::b/${*}")]],
         resource="arn:aws:s3:::b/x"),
    Case("escape-question", "allow", [[allow("s3:*", "arn:aws:s3:::b/what${?}")]], resource="arn:aws:s3:::b/what?"),
    Case("escape-question-is-not-wildcard", "implicit", [[allow("s3:*", "arn:aws:s3:::b/what${?}")]],
         resource="arn:aws:s3:::b/whatX"),
    Case("escape-dollar", "allow", [[allow("s3:*", "arn:aws:s3:::b/${$}{aws:username}")]],
         resource="arn:aws:s3:::b/${aws:username}"),
    Case("version-2008-no-variables", "allow", [[allow("s3:*", "arn:aws:s3:::home/${aws:username}/*")]],
         resource="arn:aws:s3:::home/${aws:username}/x", version="2008-10-17"),
    Case("version-2008-no-substitution", "implicit", [[allow("s3:*", "arn:aws:s3:::home/${aws:username}/*")]],
         resource="arn:aws:s3:::home/alice/x", version="2008-10-17"),
    Case("version-missing-no-substitution", "implicit", [[allow("s3:*", "arn:aws:s3:::home/${aws:username}/*")]],
         resource="arn:aws:s3:::home/alice/x", version=None),
    # --- the account root (authorize) -----------------------------------------------------------
    Case("root-no-policies", "allow", principal=ROOT, action="s3:DeleteBucket", resource="arn:aws:s3:::b"),
    Case("root-bucket-deny", "deny", bucket=[B("Deny", "*")], principal=ROOT),
    Case("root-bucket-deny-account", "deny", bucket=[B("Deny", {"AWS": ACCT})], principal=ROOT),
    Case("root-may-put-policy-despite-deny", "allow", bucket=[B("Deny", "*")], principal=ROOT,
         action="s3:PutBucketPolicy", resource="arn:aws:s3:::b"),
    Case("root-may-get-policy-despite-deny", "allow", bucket=[B("Deny", "*")], principal=ROOT,
         action="s3:GetBucketPolicy", resource="arn:aws:s3:::b"),
    Case("root-may-delete-policy-despite-deny", "allow", bucket=[B("Deny", "*")], principal=ROOT,
         action="s3:DeleteBucketPolicy", resource="arn:aws:s3:::b"),
    Case("root-policy-status-not-exempt", "deny", bucket=[B("Deny", "*")], principal=ROOT,
         action="s3:GetBucketPolicyStatus", resource="arn:aws:s3:::b"),
    Case("root-deny-for-users-only", "allow", bucket=[B("Deny", {"AWS": f"arn:aws:iam::{ACCT}:user/*"})],
         principal=ROOT),
    Case("user-may-not-put-policy-when-denied", "deny", [[allow()]], [B("Deny", "*")],
         action="s3:PutBucketPolicy", resource="arn:aws:s3:::b"),
]


def _policies(case: Case) -> tuple[list[Policy], Policy | None]:
    identity = [parse_policy(document(sts, case.version), "identity", name=f"p{i}")
                for i, sts in enumerate(case.identity)]
    bucket = None if case.bucket is None else parse_policy(document(case.bucket, case.version), "resource")
    return identity, bucket


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_policy_table(case: Case) -> None:
    identity, bucket = _policies(case)
    request = AuthzRequest(case.principal, case.action, case.resource, case.context)
    decision = authorize(request, identity, bucket, case.acl)
    expected = {"allow": Outcome.ALLOW, "deny": Outcome.EXPLICIT_DENY, "implicit": Outcome.IMPLICIT_DENY}
    assert decision.outcome is expected[case.expect], str(decision)
    assert decision.allowed == (case.expect == "allow")


def test_decision_names_the_deciding_statement() -> None:
    pol = parse_policy(document([allow(), {**deny("s3:DeleteObject"), "Sid": "NoDelete"}]), "identity",
                       name="team")
    d = evaluate(AuthzRequest(ALICE, "s3:DeleteObject", "arn:aws:s3:::b/k"), [pol], None)
    assert d == Decision(Outcome.EXPLICIT_DENY, "identity", "team", 1, "NoDelete")
    assert str(d) == "ExplicitDeny by identity policy 'team' Statement[1] Sid 'NoDelete'"
    d = evaluate(AuthzRequest(ALICE, "s3:GetObject", "arn:aws:s3:::b/k"), [pol], None)
    assert (d.outcome, d.policy, d.statement) == (Outcome.ALLOW, "team", 0)
    bucket = parse_policy(document([B("Allow", "*", "s3:GetObject")]), "resource")
    d = evaluate(AuthzRequest(ANON, "s3:GetObject", "arn:aws:s3:::b/k"), [], bucket)
    assert (d.source, d.policy) == ("resource", "bucket policy")
    assert str(evaluate(AuthzRequest(ANON, "s3:PutObject", "arn:aws:s3:::b/k"), [], bucket)) == "ImplicitDeny"
    assert str(evaluate(AuthzRequest(ANON, "s3:PutObject", "arn:aws:s3:::b/k"), [], None, True)) == "Allow (acl)"


def test_restrict_public_policy_blocks_anonymous_allows_only() -> None:
    bucket = parse_policy(document([B("Allow", "*", "s3:GetObject"), B("Deny", "*", "s3:DeleteObject")]), "resource")
    get = AuthzRequest(ANON, "s3:GetObject", "arn:aws:s3:::b/k")
    assert evaluate(get, [], bucket).allowed
    assert evaluate(get, [], bucket, restrict_public_policy=True).outcome is Outcome.IMPLICIT_DENY
    # Callers of the account keep what the policy grants them; Deny statements still apply.
    assert evaluate(AuthzRequest(ALICE, "s3:GetObject", "arn:aws:s3:::b/k"), [], bucket,
                    restrict_public_policy=True).allowed
    delete = AuthzRequest(ALICE, "s3:DeleteObject", "arn:aws:s3:::b/k")
    assert evaluate(delete, [], bucket, True, restrict_public_policy=True).outcome is Outcome.EXPLICIT_DENY


def test_context_derived_from_principal() -> None:
    ctx = AuthzRequest(Principal.user("alice", user_id="AIDAEXAMPLE"), "s3:GetObject", "x").ctx
    assert ctx["aws:username"] == ("alice",)
    assert ctx["aws:userid"] == ("AIDAEXAMPLE",)
    assert ctx["aws:principaltype"] == ("User",)
    assert ctx["aws:principalarn"] == (USER_ARN,)
    assert AuthzRequest(CAROL, "s3:GetObject", "x").ctx["aws:principalarn"] == (CAROL_ARN,)
    root = AuthzRequest(ROOT, "s3:GetObject", "x").ctx
    assert root["aws:principaltype"] == ("Account",) and root["aws:userid"] == (ACCT,)
    assert "aws:username" not in root
    anon = AuthzRequest(ANON, "s3:GetObject", "x").ctx
    assert anon["aws:principaltype"] == ("Anonymous",) and "aws:principalarn" not in anon
    # The caller's context wins over the derived keys.
    assert AuthzRequest(ALICE, "a:b", "x", {"AWS:UserName": "eve"}).ctx["aws:username"] == ("eve",)


def test_time_context() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    assert time_context(datetime(2024, 6, 1, 12, 0, tzinfo=UTC)) == {
        "aws:CurrentTime": "2024-06-01T12:00:00Z", "aws:EpochTime": "1717243200"}
    assert time_context(datetime(2024, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))["aws:EpochTime"] == \
        "1717243200"


def test_s3_arn() -> None:
    assert s3_arn("b") == "arn:aws:s3:::b"
    assert s3_arn("b", "a/b c") == "arn:aws:s3:::b/a/b c"
    assert s3_arn("b", "") == "arn:aws:s3:::b/"
    assert s3_arn() == "arn:aws:s3:::"

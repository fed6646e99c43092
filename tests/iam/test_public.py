"""is_public: S3's "meaning of public" for bucket policies."""

from __future__ import annotations

import json

import pytest

from appliance.iam.canned import CANNED
from appliance.iam.policy import AuthzRequest, Principal, authorize, parse_policy
from appliance.iam.public import is_public

ACCT = "000000000000"


def bucket_policy(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def grant(principal: object = "*", effect: str = "Allow", condition: dict[str, object] | None = None,
          not_principal: bool = False) -> dict[str, object]:
    st: dict[str, object] = {"Effect": effect, "NotPrincipal" if not_principal else "Principal": principal,
                             "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    if condition is not None:
        st["Condition"] = condition
    return st


CASES = [
    ("anonymous", [grant("*")], True),
    ("aws-star", [grant({"AWS": "*"})], True),
    ("deny-only", [grant("*", "Deny")], False),
    ("account", [grant({"AWS": ACCT})], False),
    ("account-root-arn", [grant({"AWS": f"arn:aws:iam::{ACCT}:root"})], False),
    ("user", [grant({"AWS": [f"arn:aws:iam::{ACCT}:user/alice", f"arn:aws:iam::{ACCT}:user/bob"]})], False),
    ("user-and-star", [grant({"AWS": [f"arn:aws:iam::{ACCT}:user/alice", "*"]})], True),
    ("wildcard-user", [grant({"AWS": f"arn:aws:iam::{ACCT}:user/*"})], True),
    ("canonical-user", [grant({"CanonicalUser": "abc123"})], False),
    ("service", [grant({"Service": "logging.s3.amazonaws.com"})], False),
    ("notprincipal-allow", [grant({"AWS": ACCT}, not_principal=True)], True),
    ("one-public-statement", [grant({"AWS": ACCT}), grant("*")], True),
    ("source-ip", [grant("*", condition={"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/48"]}})], False),
    ("source-ip-wide-v4", [grant("*", condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}})], True),
    ("source-ip-wide-v6", [grant("*", condition={"IpAddress": {"aws:SourceIp": "::/0"}})], True),
    ("source-ip-slash-8", [grant("*", condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})], False),
    ("not-ip-address", [grant("*", condition={"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}})], True),
    ("ip-if-exists", [grant("*", condition={"IpAddressIfExists": {"aws:SourceIp": "192.0.2.0/24"}})], True),
    ("source-vpce", [grant("*", condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}})], False),
    ("source-vpc-wildcard", [grant("*", condition={"StringLike": {"aws:SourceVpc": "vpc-*"}})], True),
    ("source-vpc-like-fixed", [grant("*", condition={"StringLike": {"aws:SourceVpc": "vpc-91237329"}})], False),
    ("source-account", [grant("*", condition={"StringEquals": {"aws:SourceAccount": ACCT}})], False),
    ("source-arn", [grant("*", condition={"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::logs"}})], False),
    ("principal-org", [grant("*", condition={"StringEquals": {"aws:PrincipalOrgID": "o-123"}})], False),
    ("userid-fixed", [grant("*", condition={"StringEquals": {"aws:userid": "AIDAEXAMPLE"}})], False),
    ("userid-role-pattern", [grant("*", condition={"StringLike": {"aws:userid": "AROLEID:*"}})], True),
    ("variable-is-not-fixed", [grant("*", condition={"StringEquals": {"aws:SourceAccount": "${aws:username}"}})],
     True),
    ("not-equals", [grant("*", condition={"StringNotEquals": {"aws:SourceAccount": ACCT}})], True),
    ("for-all-values", [grant("*", condition={"ForAllValues:StringEquals": {"aws:SourceAccount": ACCT}})], True),
    ("for-any-value", [grant("*", condition={"ForAnyValue:StringEquals": {"aws:SourceAccount": ACCT}})], False),
    ("other-key", [grant("*", condition={"StringEquals": {"s3:prefix": "public/"}})], True),
    ("secure-transport", [grant("*", condition={"Bool": {"aws:SecureTransport": "true"}})], True),
]


@pytest.mark.parametrize(("statements", "public"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_is_public(statements: list[dict[str, object]], public: bool) -> None:
    assert is_public(parse_policy(bucket_policy(*statements), "resource", bucket="b")) is public


def test_identity_policies_are_never_public() -> None:
    assert not any(is_public(parse_policy(text, "identity")) for text in CANNED.values())


def test_public_policy_grants_anonymous_reads() -> None:
    policy = parse_policy(bucket_policy(grant("*")), "resource", bucket="b")
    request = AuthzRequest(Principal.anonymous(), "s3:GetObject", "arn:aws:s3:::b/photo.jpg")
    assert authorize(request, [], policy).allowed
    assert not authorize(request, [], policy, restrict_public_policy=is_public(policy)).allowed

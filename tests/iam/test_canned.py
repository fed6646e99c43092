"""The canned policies parse, and grant what their names promise."""

from __future__ import annotations

import pytest

from appliance.iam.canned import CANNED
from appliance.iam.policy import AuthzRequest, Principal, authorize, parse_policy, s3_arn

ALICE = Principal.user("alice")

EXPECTED = {
    # (action, resource): which canned policies allow it
    ("s3:GetObject", s3_arn("b", "k")): {"readonly", "readwrite", "admin"},
    ("s3:ListBucket", s3_arn("b")): {"readonly", "readwrite", "admin"},
    ("s3:ListAllMyBuckets", s3_arn()): {"readonly", "readwrite", "admin"},
    ("s3:GetBucketLocation", s3_arn("b")): {"readonly", "readwrite", "admin"},
    ("s3:PutObject", s3_arn("b", "k")): {"writeonly", "readwrite", "admin"},
    ("s3:DeleteObject", s3_arn("b", "k")): {"readwrite", "admin"},
    ("s3:PutBucketPolicy", s3_arn("b")): {"readwrite", "admin"},
    ("iam:CreateUser", "arn:aws:iam::000000000000:user/bob"): {"admin"},
    ("stowage:PutPosixAttributes", s3_arn("b", "k")): {"admin"},
}


def test_names() -> None:
    assert set(CANNED) == {"readonly", "writeonly", "readwrite", "admin"}


@pytest.mark.parametrize(("action", "resource"), list(EXPECTED), ids=[a for a, _ in EXPECTED])
def test_canned_grants(action: str, resource: str) -> None:
    request = AuthzRequest(ALICE, action, resource)
    allowed = {name for name, text in CANNED.items()
               if authorize(request, [parse_policy(text, "identity", name=name)], None).allowed}
    assert allowed == EXPECTED[(action, resource)]

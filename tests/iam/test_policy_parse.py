"""Parsing policy documents: the golden MalformedPolicy messages, what is accepted, and hostile
input (hypothesis): the parser returns a Policy or raises MalformedPolicy, never anything else.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.engine.errors import StowageError
from appliance.iam.document import MAX_POLICY_BYTES
from appliance.iam.policy import (
    AuthzRequest,
    MalformedPolicy,
    Policy,
    PolicyKind,
    Principal,
    authorize,
    parse_policy,
)

OK = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
BUCKET_OK = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}


def doc(*statements: dict[str, Any], **top: Any) -> str:
    body: dict[str, Any] = {"Version": "2012-10-17", **top}
    if statements:
        body["Statement"] = list(statements) if len(statements) > 1 else statements[0]
    return json.dumps(body)


def with_cond(condition: dict[str, Any]) -> str:
    return doc({**OK, "Condition": condition})


GOLDEN: list[tuple[str, PolicyKind, str | bytes, str]] = [
    # --- the document ---------------------------------------------------------------------------
    ("invalid-json", "identity", '{"Statement": ', "Policies must be valid JSON: Expecting value at line 1 column 15"),
    ("not-an-object", "identity", '["Statement"]', "Policies must be valid JSON and the first byte must be '{'"),
    ("empty", "identity", "  \n", "Policies must not be empty"),
    ("trailing-garbage", "identity", '{"Statement": {}} x',
     "Policies must be valid JSON: Extra data at line 1 column 19"),
    ("duplicate-key", "identity", '{"Statement": 1, "Statement": 2}',
     'Policies must be valid JSON: duplicate key "Statement"'),
    ("nan", "identity", '{"Statement": NaN}', "Policies must be valid JSON: NaN is not a JSON value"),
    ("too-large", "resource", doc(*[BUCKET_OK] * 250),
     f"Policies must not exceed 20480 bytes (this one has {len(doc(*[BUCKET_OK] * 250))})"),
    ("invalid-utf8", "identity", b'{"Statement": "\xff"}', "Policies must be valid UTF-8 text"),
    ("utf16", "identity", json.dumps({"Statement": OK}).encode("utf-16"), "Policies must be valid UTF-8 text"),
    ("lone-surrogate", "identity", doc({**OK, "Sid": "\ud800"}), "Sid must be valid UTF-8 text"),
    ("unknown-top-field", "identity", doc(OK, Statements=[]), 'Unknown field "Statements" in the policy'),
    ("bad-version", "identity", doc(OK, Version="2012-10-18"),
     'The policy must contain a valid version string (2012-10-17 or 2008-10-17), not "2012-10-18"'),
    ("version-number", "identity", doc(OK, Version=2012), "Version must be a string"),
    ("id-number", "identity", doc(OK, Id=5), "Id must be a string"),
    ("missing-statement", "identity", doc(), "Missing required field Statement"),
    ("empty-statement", "identity", doc(Statement=[]), "Statement must not be an empty list"),
    ("statement-string", "identity", doc(Statement="Allow"), "Statement must be a JSON object"),
    # --- statements -----------------------------------------------------------------------------
    ("unknown-statement-field", "identity", doc({**OK, "Principle": "*"}), 'Unknown field "Principle" in a statement'),
    ("statement-index", "identity", doc(OK, {**OK, "Effect": "Permit"}),
     'Statement[1]: Invalid effect: "Permit" (Allow or Deny)'),
    ("missing-effect", "identity", doc({"Action": "s3:GetObject", "Resource": "*"}), "Missing required field Effect"),
    ("effect-lower-case", "identity", doc({**OK, "Effect": "allow"}), 'Invalid effect: "allow" (Allow or Deny)'),
    ("effect-boolean", "identity", doc({**OK, "Effect": True}), "Effect must be a string"),
    ("missing-action", "identity", doc({"Effect": "Allow", "Resource": "*"}), "Policy statement must contain actions"),
    ("action-and-notaction", "identity", doc({**OK, "NotAction": "s3:PutObject"}),
     "A statement must not have both Action and NotAction"),
    ("empty-action-list", "identity", doc({**OK, "Action": []}), "Action must not be an empty list"),
    ("action-number", "identity", doc({**OK, "Action": [1]}), "Action must be a string or a list of strings"),
    ("action-object", "identity", doc({"Effect": "Allow", "NotAction": {"s3": "*"}, "Resource": "*"}),
     "NotAction must be a string or a list of strings"),
    ("action-no-vendor", "identity", doc({**OK, "Action": "GetObject"}),
     'Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. ("GetObject")'),
    ("action-bad-characters", "identity", doc({**OK, "Action": "s3:Get Object"}),
     'Action "s3:Get Object" is not valid'),
    ("missing-resource", "identity", doc({"Effect": "Allow", "Action": "s3:*"}),
     "Policy statement must contain resources"),
    ("resource-and-notresource", "identity", doc({**OK, "NotResource": "*"}),
     "A statement must not have both Resource and NotResource"),
    ("resource-not-arn", "identity", doc({**OK, "Resource": "mybucket/*"}),
     'Resource "mybucket/*" must be in ARN format or "*"'),
    ("resource-s3-region", "identity", doc({**OK, "Resource": "arn:aws:s3:us-east-1::b"}),
     'Resource "arn:aws:s3:us-east-1::b" is not an S3 ARN (arn:aws:s3:::bucket or arn:aws:s3:::bucket/key)'),
    ("resource-empty-bucket", "identity", doc({**OK, "Resource": "arn:aws:s3:::"}),
     'Resource "arn:aws:s3:::" must be in ARN format or "*"'),
    ("identity-principal", "identity", doc({**OK, "Principal": "*"}), "Policy document should not specify a principal"),
    ("identity-notprincipal", "identity", doc({**OK, "NotPrincipal": {"AWS": "*"}}),
     "Policy document should not specify a principal"),
    ("identity-sid", "identity", doc({**OK, "Sid": "my sid"}),
     'Statement IDs (SID) must be alpha-numeric, not "my sid"'),
    ("duplicate-sid", "resource", doc({**BUCKET_OK, "Sid": "a"}, {**BUCKET_OK, "Sid": "a"}),
     "Statement IDs (SID) in a single policy must be unique"),
    # --- bucket policies ------------------------------------------------------------------------
    ("missing-principal", "resource", doc(OK), "Missing required field Principal"),
    ("principal-and-notprincipal", "resource", doc({**BUCKET_OK, "NotPrincipal": "*"}),
     "A statement must not have both Principal and NotPrincipal"),
    ("principal-name", "resource", doc({**BUCKET_OK, "Principal": "alice"}),
     'Invalid principal in policy: Principal must be "*" or an object such as '
     '{"AWS": "arn:aws:iam::123456789012:user/name"}'),
    ("principal-empty", "resource", doc({**BUCKET_OK, "Principal": {}}),
     "Invalid principal in policy: Principal is empty"),
    ("principal-type", "resource", doc({**BUCKET_OK, "Principal": {"Federated": "x"}}),
     'Invalid principal in policy: unknown principal type "Federated"'),
    ("principal-aws-name", "resource", doc({**BUCKET_OK, "Principal": {"AWS": "alice"}}),
     'Invalid principal in policy: "AWS":"alice"'),
    ("principal-short-account", "resource",
     doc({"Effect": "Deny", "NotPrincipal": {"AWS": ["12345"]}, "Action": "s3:*", "Resource": "*"}),
     'Invalid principal in policy: "AWS":"12345"'),
    ("invalid-action", "resource", doc({**BUCKET_OK, "Action": "s3:GetObjekt"}),
     'Policy has invalid action: "s3:GetObjekt"'),
    ("invalid-action-pattern", "resource", doc({**BUCKET_OK, "Action": ["s3:Get*", "s3:Frob*"]}),
     'Policy has invalid action: "s3:Frob*"'),
    ("iam-action", "resource", doc({**BUCKET_OK, "Action": "iam:CreateUser"}),
     'Policy has invalid action: "iam:CreateUser"'),
    ("iam-resource", "resource", doc({**BUCKET_OK, "Resource": "arn:aws:iam::000000000000:user/x"}),
     'Policy has invalid resource: "arn:aws:iam::000000000000:user/x"'),
    ("other-bucket", "resource", doc({**BUCKET_OK, "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::other/*"]}),
     'Policy has invalid resource: "arn:aws:s3:::other/*" is not in bucket "b"'),
    # --- conditions -----------------------------------------------------------------------------
    ("condition-list", "identity", doc({**OK, "Condition": []}), "Condition must be a JSON object"),
    ("unknown-operator", "identity", with_cond({"StringEqualz": {"s3:prefix": "a"}}),
     'Invalid Condition type : "StringEqualz"'),
    ("operator-case", "identity", with_cond({"stringequals": {"s3:prefix": "a"}}),
     'Invalid Condition type : "stringequals"'),
    ("null-if-exists", "identity", with_cond({"NullIfExists": {"s3:prefix": "true"}}),
     'Invalid Condition type : "NullIfExists"'),
    ("null-with-qualifier", "identity", with_cond({"ForAnyValue:Null": {"s3:prefix": "true"}}),
     'Invalid Condition type : "ForAnyValue:Null"'),
    ("unknown-qualifier", "identity", with_cond({"ForSomeValues:StringEquals": {"s3:prefix": "a"}}),
     'Invalid Condition type : "ForSomeValues:StringEquals"'),
    ("operator-without-keys", "identity", with_cond({"StringEquals": {}}),
     'Condition "StringEquals" must name at least one condition key'),
    ("operator-body-string", "identity", with_cond({"StringEquals": "s3:prefix"}),
     'Condition "StringEquals" must be a JSON object'),
    ("key-without-vendor", "identity", with_cond({"StringEquals": {"prefix": "a"}}),
     'Policy has an invalid condition key: "prefix" (keys are prefaced by a vendor, e.g. aws:SourceIp)'),
    ("no-values", "identity", with_cond({"StringEquals": {"s3:prefix": []}}),
     'Condition "StringEquals" key "s3:prefix" must have at least one value'),
    ("null-value", "identity", with_cond({"StringEquals": {"s3:prefix": None}}),
     'Condition "StringEquals" key "s3:prefix" values must be strings, numbers or booleans'),
    ("nested-value", "identity", with_cond({"StringEquals": {"s3:prefix": [["a"]]}}),
     'Condition "StringEquals" key "s3:prefix" values must be strings, numbers or booleans'),
    ("bad-cidr", "identity", with_cond({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}),
     'Condition "IpAddress" key "aws:SourceIp": "10.0.0.0/33" is not an IP address or CIDR block'),
    ("bad-ipv6", "identity", with_cond({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::g/32"]}}),
     'Condition "NotIpAddress" key "aws:SourceIp": "2001:db8::g/32" is not an IP address or CIDR block'),
    ("bad-date", "identity", with_cond({"DateLessThan": {"aws:CurrentTime": "next tuesday"}}),
     'Condition "DateLessThan" key "aws:CurrentTime": "next tuesday" is not a date'),
    ("bad-number", "identity", with_cond({"NumericLessThan": {"s3:max-keys": "ten"}}),
     'Condition "NumericLessThan" key "s3:max-keys": "ten" is not a number'),
    ("long-number", "identity", with_cond({"NumericLessThan": {"s3:max-keys": "1" * 65}}),
     f'Condition "NumericLessThan" key "s3:max-keys": "{"1" * 65}" is not a number'),
    ("variable-in-number", "identity", with_cond({"NumericEquals": {"s3:max-keys": "${s3:prefix}"}}),
     'Condition "NumericEquals" key "s3:max-keys": "${s3:prefix}" is not a number'),
    ("bad-bool", "identity", with_cond({"Bool": {"aws:SecureTransport": "yes"}}),
     'Condition "Bool" key "aws:SecureTransport": "yes" is not a boolean (true or false)'),
    ("bad-null", "identity", with_cond({"Null": {"s3:prefix": "maybe"}}),
     'Condition "Null" key "s3:prefix": "maybe" is not a boolean (true or false)'),
    ("bad-base64", "identity", with_cond({"BinaryEquals": {"s3:x": "!!"}}),
     'Condition "BinaryEquals" key "s3:x": "!!" is not base64'),
    ("bad-arn", "identity", with_cond({"ArnLike": {"aws:SourceArn": "bucket"}}),
     'Condition "ArnLike" key "aws:SourceArn": "bucket" is not an ARN'),
    ("short-arn", "identity", with_cond({"ArnEquals": {"aws:SourceArn": "arn:aws:s3::b"}}),
     'Condition "ArnEquals" key "aws:SourceArn": "arn:aws:s3::b" is not an ARN'),
]


@pytest.mark.parametrize(("kind", "text", "message"), [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN])
def test_golden_malformed_messages(kind: PolicyKind, text: str | bytes, message: str) -> None:
    with pytest.raises(MalformedPolicy) as info:
        parse_policy(text, kind, bucket="b" if kind == "resource" else None)
    assert info.value.message == message
    assert info.value.code == "MalformedPolicy"
    assert isinstance(info.value, StowageError)
    assert info.value.message.isascii()


ACCEPTED: list[tuple[str, PolicyKind, str]] = [
    ("minimal", "identity", json.dumps({"Statement": OK})),
    ("version-2008", "identity", doc(OK, Version="2008-10-17")),
    ("statement-list-and-id", "identity", doc(OK, {**OK, "Sid": "Second1"}, Id="my policy id")),
    ("all-elements", "resource", doc({
        "Sid": "any text at all: bucket policies allow it", "Effect": "Deny",
        "NotPrincipal": {"AWS": ["000000000000", "arn:aws:iam::000000000000:root",
                                 "arn:aws:iam::000000000000:user/alice", "arn:aws:iam::*:user/ops-*"],
                         "CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
                         "Service": "logging.s3.amazonaws.com"},
        "NotAction": ["s3:Get*", "S3:LISTBUCKET", "stowage:PutPosixAttributes"],
        "NotResource": ["arn:aws:s3:::b", "arn:aws:s3:::b/${aws:username}/*"],
        "Condition": {"ForAnyValue:StringLikeIfExists": {"s3:RequestObjectTagKeys": ["a*", "b?"]},
                      "NumericLessThan": {"s3:max-keys": 1000}, "Bool": {"aws:SecureTransport": False},
                      "IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32", "10.1.2.3"]},
                      "DateGreaterThan": {"aws:CurrentTime": ["2020-01-01", "2020-01-01T00:00:00.000Z", "1577836800"]},
                      "Null": {"s3:x-amz-server-side-encryption": True},
                      "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"},
                      "BinaryEquals": {"s3:x-amz-meta-b": "QmluYXJ5"}},
    })),
    ("resource-star-in-bucket-policy", "resource", doc({**BUCKET_OK, "Resource": "*"})),
    ("bucket-wildcard-resource", "resource", doc({**BUCKET_OK, "Resource": "arn:aws:s3:::b*/*"})),
    ("iam-resources-in-identity", "identity", doc({"Effect": "Allow", "Action": "iam:*",
                                                   "Resource": "arn:aws:iam::000000000000:user/${aws:username}"})),
    ("unknown-s3-action-in-identity", "identity", doc({**OK, "Action": "s3:SomethingNew"})),
    ("empty-condition", "identity", doc({**OK, "Condition": {}})),
    ("unicode", "identity", doc({**OK, "Resource": "arn:aws:s3:::b/ünïcødé/✓"})),
]


@pytest.mark.parametrize(("kind", "text"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_accepted(kind: PolicyKind, text: str) -> None:
    policy = parse_policy(text, kind, bucket="b" if kind == "resource" else None, name="n")
    assert isinstance(policy, Policy) and policy.kind == kind and policy.name == "n"
    assert len(policy.statements) == len(policy.allows) + len(policy.denies)


def test_size_limit_is_bytes_not_characters() -> None:
    filler = "é" * (MAX_POLICY_BYTES["identity"] // 2 + 100)
    text = json.dumps({"Id": filler, "Statement": OK}, ensure_ascii=False)
    assert len(text) < MAX_POLICY_BYTES["identity"] < len(text.encode())
    with pytest.raises(MalformedPolicy, match="must not exceed"):
        parse_policy(text, "identity")


def test_huge_integer_is_not_converted() -> None:
    # A JSON number with 5,000 digits: int() refuses it (ValueError), so it must stay text.
    text = with_cond({"NumericLessThan": {"s3:max-keys": "N"}}).replace('"N"', "9" * 5000)
    with pytest.raises(MalformedPolicy, match="is not a number"):
        parse_policy(text, "identity")
    text = with_cond({"NumericLessThan": {"s3:max-keys": "N"}}).replace('"N"', "9" * 60)
    policy = parse_policy(text, "identity")
    request = AuthzRequest(Principal.user("a"), "s3:GetObject", "arn:aws:s3:::b/k", {"s3:max-keys": "7"})
    assert authorize(request, [policy], None).allowed


def test_pathological_wildcards_are_fast() -> None:
    # A naive glob-to-regex translation backtracks exponentially on this pair.
    pattern = "arn:aws:s3:::b/" + "*a" * 40 + "*b"
    policy = parse_policy(doc({**OK, "Resource": pattern}), "identity")
    request = AuthzRequest(Principal.user("a"), "s3:GetObject", "arn:aws:s3:::b/" + "a" * 1000)
    assert not authorize(request, [policy], None).allowed


# --- hypothesis: hostile and random documents ----------------------------------------------------

ELEMENT_NAMES = ["Version", "Id", "Statement", "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                 "Resource", "NotResource", "Condition", "AWS", "CanonicalUser", "Service", "StringEquals",
                 "ForAllValues:StringLike", "NumericLessThanIfExists", "IpAddress", "Null", "DateEquals", "Bool",
                 "ArnLike", "BinaryEquals", "aws:SourceIp", "s3:prefix", "aws:username"]
SCALARS = ["2012-10-17", "2008-10-17", "Allow", "Deny", "*", "s3:*", "s3:GetObject", "s3:Get*", "arn:aws:s3:::b/*",
           "arn:aws:s3:::b", "arn:aws:iam::000000000000:user/a", "000000000000", "10.0.0.0/8", "::1", "true",
           "2020-01-01T00:00:00Z", "${aws:username}", "${*}", "${x, 'y''z'}", "a*?b", "QmluYXJ5", "1e309", "-0"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(SCALARS) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(ELEMENT_NAMES) | st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


def _must_parse_or_refuse(text: str | bytes, kind: PolicyKind) -> None:
    try:
        policy = parse_policy(text, kind, bucket="b")
    except MalformedPolicy as e:
        assert e.message and e.message.isascii()
        return
    # Whatever was accepted must evaluate without error.
    assert isinstance(policy, Policy)
    for principal in (Principal.root(), Principal.user("a"), Principal.anonymous()):
        request = AuthzRequest(principal, "s3:GetObject", "arn:aws:s3:::b/k",
                               {"aws:SourceIp": "10.1.2.3", "s3:prefix": ["a", "b"], "aws:CurrentTime": "x"})
        identity = [policy] if kind == "identity" else []
        authorize(request, identity, policy if kind == "resource" else None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, kind=st.sampled_from(["identity", "resource"]))
def test_fuzz_json_documents(value: object, kind: PolicyKind) -> None:
    _must_parse_or_refuse(json.dumps(value), kind)


@settings(max_examples=400, deadline=None)
@given(statement=st.dictionaries(st.sampled_from(ELEMENT_NAMES[3:12]), json_values, max_size=7),
       kind=st.sampled_from(["identity", "resource"]))
def test_fuzz_statements(statement: dict[str, object], kind: PolicyKind) -> None:
    _must_parse_or_refuse(json.dumps({"Version": "2012-10-17", "Statement": [statement]}), kind)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzz_bytes(data: bytes) -> None:
    _must_parse_or_refuse(data, "resource")


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(min_value=0), insert=st.text(max_size=5))
def test_fuzz_mutated_valid_policy(cut: int, insert: str) -> None:
    base = ACCEPTED[3][2]
    i = cut % (len(base) + 1)
    _must_parse_or_refuse(base[:i] + insert + base[i + len(insert):], "resource")


@pytest.mark.parametrize("text", [
    "[" * 100_000,
    '{"Statement":' + "[" * 5000 + "]" * 5000 + "}",
    '{"Statement":' + '{"a":' * 3000 + "1" + "}" * 3000 + "}",
    '{"Version": "' + "x" * 30_000 + '"}',
    '{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringLike": {"s3:prefix": "'
    + "*" * 15_000 + '"}}}}',
])
def test_hostile_inputs(text: str) -> None:
    _must_parse_or_refuse(text, "identity")


def test_non_text_input_is_refused() -> None:
    with pytest.raises(MalformedPolicy):
        parse_policy(123, "identity")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_policy(doc(OK), "group")  # type: ignore[arg-type]

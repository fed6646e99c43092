"""An access key's own limits (appliance/iam/keylimits.py): a session policy narrows the key to
what both its user's policies and the session policy allow (an explicit Deny in either wins), and
an expiry after which the key is refused with ExpiredToken. Pure evaluation first, then the real
daemon with boto3 (one daemon for the module's scenario), through recover-metadata."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from appliance.engine.errors import StowageError
from appliance.iam.keylimits import MAX_SESSION_POLICY_BYTES, check_expiry, check_session_policy
from appliance.iam.policy import AuthzRequest, Outcome, Principal, authorize, parse_policy, s3_arn
from tests.polling import wait_for


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(action: str | list[str], resource: str | list[str], effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


READ_A = _doc(_allow(["s3:GetObject", "s3:ListBucket"], ["arn:aws:s3:::aaa", "arn:aws:s3:::aaa/*"]),
              _allow("s3:GetObject", "arn:aws:s3:::aaa/secret/*", "Deny"))


def _decide(principal: Principal, action: str, resource: str, identity: str | None) -> Outcome:
    policies = [parse_policy(identity, "identity", name="id")] if identity else []
    return authorize(AuthzRequest(principal, action, resource), policies, None).outcome


@pytest.mark.parametrize("identity, action, resource, outcome", [
    (_doc(_allow("s3:*", "*")), "s3:GetObject", s3_arn("aaa", "k"), Outcome.ALLOW),  # in both
    (_doc(_allow("s3:*", "*")), "s3:PutObject", s3_arn("aaa", "k"), Outcome.IMPLICIT_DENY),  # not in the session
    (_doc(_allow("s3:*", "*")), "s3:GetObject", s3_arn("bbb", "k"), Outcome.IMPLICIT_DENY),
    (_doc(_allow("s3:PutObject", "*")), "s3:GetObject", s3_arn("aaa", "k"), Outcome.IMPLICIT_DENY),  # not the user's
    (_doc(_allow("s3:*", "*")), "s3:GetObject", s3_arn("aaa", "secret/k"), Outcome.EXPLICIT_DENY),  # session's Deny
    (_doc(_allow("s3:*", "*"), _allow("s3:ListBucket", "*", "Deny")), "s3:ListBucket", s3_arn("aaa"),
     Outcome.EXPLICIT_DENY),  # the user's Deny
    (None, "s3:GetObject", s3_arn("aaa", "k"), Outcome.IMPLICIT_DENY),  # a session policy grants nothing alone
])
def test_a_session_policy_intersects_the_users_policies(identity: str | None, action: str, resource: str,
                                                        outcome: Outcome) -> None:
    limited = replace(Principal.user("alice"), session=parse_policy(READ_A, "identity", name="session"))
    assert _decide(limited, action, resource, identity) is outcome
    # the same principal without the key's session policy has what its user has
    if identity is not None and outcome is not Outcome.EXPLICIT_DENY and "PutObject\"" not in identity:
        assert _decide(Principal.user("alice"), action, resource, identity) is Outcome.ALLOW


def test_a_session_policy_narrows_even_the_root_user() -> None:
    root = replace(Principal.root(), session=parse_policy(READ_A, "identity", name="session"))
    assert _decide(root, "s3:GetObject", s3_arn("aaa", "k"), None) is Outcome.ALLOW
    assert _decide(root, "s3:DeleteBucket", s3_arn("aaa"), None) is Outcome.IMPLICIT_DENY
    assert _decide(root, "s3:PutBucketPolicy", s3_arn("aaa"), None) is Outcome.IMPLICIT_DENY


@pytest.mark.parametrize("text, code", [
    ("{not json", "MalformedPolicyDocument"),
    ("[]", "MalformedPolicyDocument"),
    ('"a string"', "MalformedPolicyDocument"),
    ("{}", "MalformedPolicyDocument"),
    ('{"a":' * 2000 + "1" + "}" * 2000, "MalformedPolicyDocument"),  # nesting
    (_doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}), "MalformedPolicyDocument"),
    (_doc({"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}), "MalformedPolicyDocument"),
    (_doc({"Effect": "Allow", "Action": 7, "Resource": "*"}), "MalformedPolicyDocument"),
    (_doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"Bogus": {"a": "b"}}}),
     "MalformedPolicyDocument"),
    ('{"Version":"2012-10-17","Statement":[],"Statement":[]}', "MalformedPolicyDocument"),
    (_doc(_allow("s3:GetObject", "arn:aws:s3:::" + "x" * MAX_SESSION_POLICY_BYTES)), "LimitExceeded"),
    ("\ud800", "MalformedPolicyDocument"),  # not encodable as UTF-8
])
def test_hostile_session_policies_are_refused(text: str, code: str) -> None:
    with pytest.raises(StowageError) as exc:
        check_session_policy(text)
    assert exc.value.code == code


def test_expiry_checks() -> None:
    assert check_expiry(0, future=True) == 0
    for bad in (-1, "2030", True, 1.5, 10**30):
        with pytest.raises(StowageError, match="expires_ns"):
            check_expiry(bad, future=False)
    with pytest.raises(StowageError, match="passed"):
        check_expiry(time.time_ns() - 1, future=True)
    assert check_expiry(5, future=False) == 5  # an imported key may have expired already


# --- the real daemon ---------------------------------------------------------------------------


def _client(daemon: Any, ak: str, sk: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=daemon.endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                               retries={"max_attempts": 1}))


def _code(fn: Any) -> str:
    with pytest.raises(ClientError) as exc:
        fn()
    return str(exc.value.response["Error"]["Code"])


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def test_limited_and_expiring_keys_through_the_gateway_and_recover_metadata(daemon: Any, tmp_path: Any) -> None:
    root = daemon.s3()
    for bucket in ("aaa", "bbb"):
        root.create_bucket(Bucket=bucket)
        root.put_object(Bucket=bucket, Key="k", Body=b"v")
    root.put_object(Bucket="aaa", Key="secret/k", Body=b"s")
    first = json.loads(daemon.cli("user", "add", "alice", "--policy", "readwrite", "--json").stdout)
    _client(daemon, first["access_key"], first["secret_key"]).create_bucket(Bucket="alice-own")  # alice owns it
    daemon.cli("key", "delete", first["access_key"])  # room for two more keys (IAM's quota)
    policy = tmp_path / "session.json"
    policy.write_text(READ_A)
    later = time.time_ns() + 3600 * 10**9
    made = json.loads(daemon.cli("key", "create", "alice", "--policy-file", str(policy), "--expires", _iso(later),
                                 "--json").stdout)
    assert made["session_policy"] == READ_A and abs(made["expires_ns"] - later) < 10**6

    def limited_as_its_session_policy_says(key: Any) -> None:
        assert key.get_object(Bucket="aaa", Key="k")["Body"].read() == b"v"
        assert [o["Key"] for o in key.list_objects_v2(Bucket="aaa")["Contents"]] == ["k", "secret/k"]
        assert _code(lambda: key.put_object(Bucket="aaa", Key="x", Body=b"x")) == "AccessDenied"  # user may
        assert _code(lambda: key.get_object(Bucket="bbb", Key="k")) == "AccessDenied"
        assert _code(lambda: key.get_object(Bucket="aaa", Key="secret/k")) == "AccessDenied"  # session's Deny
        assert _code(lambda: key.create_bucket(Bucket="ccc")) == "AccessDenied"
        # the owner's rights over its bucket are narrowed too, as the policies' Allow is
        assert _code(lambda: key.put_object(Bucket="alice-own", Key="x", Body=b"x")) == "AccessDenied"

    limited = _client(daemon, made["access_key"], made["secret_key"])
    limited_as_its_session_policy_says(limited)

    # hostile or impossible limits are refused by the CLI, and nothing is created
    bad = tmp_path / "bad.json"
    bad.write_text(_doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}))
    r = daemon.cli("key", "create", "alice", "--policy-file", str(bad), check=False)
    assert r.returncode != 0 and "session policy" in r.stderr, r.stderr
    r = daemon.cli("key", "create", "alice", "--expires", "2001-01-01T00:00:00Z", check=False)
    assert r.returncode != 0 and "passed" in r.stderr
    r = daemon.cli("key", "create", "alice", "--expires", "next tuesday", check=False)
    assert r.returncode != 0 and "ISO 8601" in r.stderr

    # an expiring key works until its time, then is refused with ExpiredToken
    # (15 s ahead: the CLI's start on a loaded machine must not outlast it; were it to, the key is
    # refused, and only then, for the right reason)
    expiry_ns = time.time_ns() + 15 * 10**9
    soon = json.loads(daemon.cli("key", "create", "alice", "--expires", _iso(expiry_ns), "--json").stdout)
    expiring = _client(daemon, soon["access_key"], soon["secret_key"])
    try:
        assert expiring.get_object(Bucket="bbb", Key="k")["Body"].read() == b"v"  # no session policy: alice's rights
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ExpiredToken" and time.time_ns() >= expiry_ns, exc.response

    def refused() -> bool:
        try:
            expiring.head_bucket(Bucket="bbb")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] in ("ExpiredToken", "400"), exc.response
            return True
        return False

    wait_for(refused, timeout=60, what="the key to expire", interval=0.2)
    assert _code(lambda: expiring.list_buckets()) == "ExpiredToken"

    listing = daemon.cli("key", "list", "alice").stdout
    assert "session policy" in listing and "(expired)" in listing, listing
    shown = daemon.cli("key", "show", made["access_key"]).stdout
    assert '"arn:aws:s3:::aaa/secret/*"' in shown and "expires:    " + _iso(later)[:19] in shown, shown

    # the limits are in the record, so they survive a rebuild of the metadata DB from the journal
    daemon.stop()
    shutil.move(str(daemon.data_dir / "meta"), str(tmp_path / "meta.old"))
    daemon.cli("recover-metadata")
    daemon.start()
    again = json.loads(daemon.cli("key", "show", made["access_key"], "--json").stdout)
    assert (again["session_policy"], again["expires_ns"]) == (READ_A, made["expires_ns"])
    limited_as_its_session_policy_says(_client(daemon, made["access_key"], made["secret_key"]))
    assert _code(lambda: _client(daemon, soon["access_key"], soon["secret_key"]).list_buckets()) == "ExpiredToken"

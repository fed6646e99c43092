"""The IAM query API on the S3 endpoint, against the real daemon: the `aws iam` CLI and boto3's
IAM client unchanged, the keys it makes used with boto3's S3 client (authentication: active,
inactive and deleted keys, disabled users), IAM's authorization of `iam:*` actions, IAM's error
codes and statuses, and hostile requests (bad names and encodings, huge documents and bodies)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import DaemonProc, running

AWS = str(Path(sys.executable).parent / "aws")
NS = "{https://iam.amazonaws.com/doc/2010-05-08/}"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def doc(effect: str, action: str | list[str], resource: str | list[str] = "*") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": action,
                                                               "Resource": resource}]})


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProc]:
    proc = DaemonProc(tmp_path_factory.mktemp("iam") / "data", ["--no-mount"])
    with running(proc):
        yield proc


def client(d: DaemonProc, service: str, ak: str | None = None, sk: str | None = None) -> Any:
    return boto3.client(service, endpoint_url=d.endpoint, aws_access_key_id=ak or d.access_key,
                        aws_secret_access_key=sk or d.secret_key, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def aws(d: DaemonProc, *args: str, ak: str | None = None, sk: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": ak or d.access_key, "AWS_SECRET_ACCESS_KEY": sk or d.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_MAX_ATTEMPTS": "1"}
    r = subprocess.run([AWS, "--endpoint-url", d.endpoint, "--output", "json", "iam", *args], env=env,
                       capture_output=True, text=True, timeout=120)
    if check and r.returncode:
        raise AssertionError(f"aws iam {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def raw(d: DaemonProc, body: bytes, *, method: str = "POST", region: str = "us-east-1", query: str = "",
        ak: str | None = None, sk: str | None = None, headers: dict[str, str] | None = None,
        sign: bool = True) -> tuple[int, ET.Element | None, bytes]:
    """A SigV4-signed IAM request with exactly this body: (status, parsed XML or None, raw bytes)."""
    netloc = urlsplit(d.endpoint).netloc
    url = f"http://{netloc}/" + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": FORM, **(headers or {})})
    if sign:
        SigV4Auth(Credentials(ak or d.access_key, sk or d.secret_key), "iam", region).add_auth(req)
    conn = http.client.HTTPConnection(netloc, timeout=30)
    try:
        conn.request(method, "/" + (f"?{query}" if query else ""), body=body,
                     headers={k: (v.decode() if isinstance(v, bytes) else v) for k, v in req.headers.items()})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, ET.fromstring(data), data
    except ET.ParseError:
        return resp.status, None, data


def code_of(tree: ET.Element | None) -> str:
    assert tree is not None
    found = tree.find(f"{NS}Error/{NS}Code")
    assert found is not None and found.text
    assert tree.find(f"{NS}RequestId") is not None
    return found.text


def test_aws_cli_creates_a_user_a_key_and_a_policy_then_the_key_is_used(d: DaemonProc) -> None:
    user = json.loads(aws(d, "create-user", "--user-name", "cli-user", "--path", "/cli/").stdout)["User"]
    assert user["Path"] == "/cli/" and user["UserId"].startswith("AIDA") and user["Arn"].endswith(":user/cli/cli-user")
    key = json.loads(aws(d, "create-access-key", "--user-name", "cli-user").stdout)["AccessKey"]
    ak, sk = key["AccessKeyId"], key["SecretAccessKey"]
    assert key["Status"] == "Active" and sk
    policy = json.loads(aws(d, "create-policy", "--policy-name", "cli-s3", "--policy-document",
                            doc("Allow", "s3:*", "arn:aws:s3:::*")).stdout)["Policy"]
    aws(d, "attach-user-policy", "--user-name", "cli-user", "--policy-arn", policy["Arn"])
    attached = json.loads(aws(d, "list-attached-user-policies", "--user-name", "cli-user").stdout)
    assert attached["AttachedPolicies"] == [{"PolicyName": "cli-s3", "PolicyArn": policy["Arn"]}]
    got = json.loads(aws(d, "get-policy-version", "--policy-arn", policy["Arn"], "--version-id", "v1").stdout)
    assert got["PolicyVersion"]["Document"]["Statement"][0]["Action"] == "s3:*"
    assert got["PolicyVersion"]["IsDefaultVersion"] is True

    s3 = client(d, "s3", ak, sk)
    s3.create_bucket(Bucket="cli-user-bucket")
    s3.put_object(Bucket="cli-user-bucket", Key="k", Body=b"v")
    assert s3.get_object(Bucket="cli-user-bucket", Key="k")["Body"].read() == b"v"

    # an inactive key is unknown to S3, as AWS answers; active again, it works again
    iam = client(d, "iam")
    iam.update_access_key(UserName="cli-user", AccessKeyId=ak, Status="Inactive")
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="cli-user-bucket")
    assert error(exc) == ("InvalidAccessKeyId", 403)
    listed = iam.list_access_keys(UserName="cli-user")["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [(ak, "Inactive")]
    iam.update_access_key(UserName="cli-user", AccessKeyId=ak, Status="Active")
    assert s3.list_objects_v2(Bucket="cli-user-bucket")["KeyCount"] == 1

    # a disabled user's keys are denied; enabled again, they work
    d.cli("user", "disable", "cli-user")
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="cli-user-bucket")
    assert error(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        client(d, "iam", ak, sk).list_users()
    assert error(exc) == ("AccessDenied", 403)
    d.cli("user", "enable", "cli-user")
    assert s3.list_objects_v2(Bucket="cli-user-bucket")["KeyCount"] == 1

    # a deleted key is unknown
    iam.delete_access_key(UserName="cli-user", AccessKeyId=ak)
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="cli-user-bucket")
    assert error(exc) == ("InvalidAccessKeyId", 403)
    r = aws(d, "get-user", ak=ak, sk=sk, check=False)
    assert r.returncode != 0 and "InvalidClientTokenId" in r.stderr
    # the secret is nowhere in the daemon's log
    assert sk not in d.log_tail(100_000)


def test_iam_actions_need_iam_permissions(d: DaemonProc) -> None:
    iam = client(d, "iam")
    iam.create_user(UserName="plain")
    key = iam.create_access_key(UserName="plain")["AccessKey"]
    plain = client(d, "iam", key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as exc:
        plain.list_users()
    assert error(exc) == ("AccessDenied", 403)
    assert "iam:ListUsers" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        plain.create_user(UserName="escalation")
    assert error(exc) == ("AccessDenied", 403)

    # self-service through a policy variable: its own keys, nobody else's
    iam.put_user_policy(UserName="plain", PolicyName="own-keys", PolicyDocument=doc(
        "Allow", ["iam:CreateAccessKey", "iam:ListAccessKeys", "iam:GetUser"],
        "arn:aws:iam::*:user/${aws:username}"))
    assert plain.get_user()["User"]["UserName"] == "plain"
    assert [k["AccessKeyId"] for k in plain.list_access_keys()["AccessKeyMetadata"]] == [key["AccessKeyId"]]
    with pytest.raises(ClientError) as exc:
        plain.list_access_keys(UserName="cli-user")
    assert error(exc) == ("AccessDenied", 403)

    # an explicit deny wins over the canned admin policy
    iam.attach_user_policy(UserName="plain", PolicyArn="arn:aws:iam::aws:policy/admin")
    assert any(u["UserName"] == "plain" for u in plain.list_users()["Users"])
    iam.put_user_policy(UserName="plain", PolicyName="no-deletes", PolicyDocument=doc("Deny", "iam:Delete*"))
    with pytest.raises(ClientError) as exc:
        plain.delete_user(UserName="cli-user")
    assert error(exc) == ("AccessDenied", 403)
    assert "explicit deny" in exc.value.response["Error"]["Message"]
    plain.create_group(GroupName="made-by-plain")


def test_boto3_iam_surface_and_error_codes(d: DaemonProc) -> None:
    iam = client(d, "iam")
    account = iam.get_user()["User"]["Arn"].split(":")[4]
    assert len(account) == 12 and account.isdigit()

    # users
    iam.create_user(UserName="surface")
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName="SURFACE")
    assert error(exc) == ("EntityAlreadyExists", 409)
    with pytest.raises(ClientError) as exc:
        iam.get_user(UserName="nobody")
    assert error(exc) == ("NoSuchEntity", 404)
    iam.create_access_key(UserName="surface")
    iam.create_access_key(UserName="surface")
    with pytest.raises(ClientError) as exc:
        iam.create_access_key(UserName="surface")
    assert error(exc) == ("LimitExceeded", 409)
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName="surface")
    assert error(exc) == ("DeleteConflict", 409)

    # groups
    iam.create_group(GroupName="surface-g", Path="/teams/")
    iam.add_user_to_group(GroupName="surface-g", UserName="surface")
    got = iam.get_group(GroupName="surface-g")
    assert got["Group"]["Arn"] == f"arn:aws:iam::{account}:group/teams/surface-g"
    assert [u["UserName"] for u in got["Users"]] == ["surface"]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="surface")["Groups"]] == ["surface-g"]
    assert "surface-g" in [g["GroupName"] for g in iam.list_groups(PathPrefix="/teams/")["Groups"]]
    with pytest.raises(ClientError) as exc:
        iam.delete_group(GroupName="surface-g")
    assert error(exc) == ("DeleteConflict", 409)
    iam.remove_user_from_group(GroupName="surface-g", UserName="surface")
    with pytest.raises(ClientError) as exc:
        iam.remove_user_from_group(GroupName="surface-g", UserName="surface")
    assert error(exc) == ("NoSuchEntity", 404)

    # managed policies and their versions
    arn = iam.create_policy(PolicyName="surface-p", Path="/p/", Description="a <test> & more",
                            PolicyDocument=doc("Allow", "s3:GetObject"))["Policy"]["Arn"]
    assert arn == f"arn:aws:iam::{account}:policy/p/surface-p"
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    assert policy["Description"] == "a <test> & more" and policy["DefaultVersionId"] == "v1"
    for i in range(4):
        v = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc("Allow", f"s3:Get{i}*"),
                                      SetAsDefault=i == 3)["PolicyVersion"]
        assert v["VersionId"] == f"v{i + 2}"
    with pytest.raises(ClientError) as exc:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc("Allow", "s3:*"))
    assert error(exc) == ("LimitExceeded", 409)
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [
        ("v1", False), ("v2", False), ("v3", False), ("v4", False), ("v5", True)]
    with pytest.raises(ClientError) as exc:
        iam.delete_policy_version(PolicyArn=arn, VersionId="v5")
    assert error(exc) == ("DeleteConflict", 409)
    iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    with pytest.raises(ClientError) as exc:
        iam.get_policy_version(PolicyArn=arn, VersionId="v2")
    assert error(exc) == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as exc:
        iam.get_policy(PolicyArn=f"arn:aws:iam::{account}:policy/surface-p")  # the path is part of the ARN
    assert error(exc) == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName="bad", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}')
    assert error(exc) == ("MalformedPolicyDocument", 400)

    # attaching: users and groups, canned and own
    iam.attach_user_policy(UserName="surface", PolicyArn=arn)
    iam.attach_user_policy(UserName="surface", PolicyArn="arn:aws:iam::aws:policy/readonly")
    iam.attach_group_policy(GroupName="surface-g", PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 2
    assert [p["PolicyName"] for p in iam.list_attached_user_policies(UserName="surface")["AttachedPolicies"]] == [
        "readonly", "surface-p"]
    assert [p["PolicyArn"] for p in iam.list_attached_group_policies(GroupName="surface-g")["AttachedPolicies"]] == [
        arn]
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=arn)
    assert error(exc) == ("DeleteConflict", 409)
    with pytest.raises(ClientError) as exc:
        iam.attach_user_policy(UserName="surface", PolicyArn="arn:aws:iam::aws:policy/nonesuch")
    assert error(exc) == ("NoSuchEntity", 404)
    listed = iam.list_policies(Scope="AWS")["Policies"]
    assert {p["PolicyName"] for p in listed} == {"admin", "readonly", "readwrite", "writeonly"}
    attached = iam.list_policies(OnlyAttached=True)["Policies"]
    assert {"surface-p", "readonly"} <= {p["PolicyName"] for p in attached}
    iam.detach_user_policy(UserName="surface", PolicyArn=arn)
    iam.detach_group_policy(GroupName="surface-g", PolicyArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.detach_group_policy(GroupName="surface-g", PolicyArn=arn)
    assert error(exc) == ("NoSuchEntity", 404)

    # inline policies
    iam.put_user_policy(UserName="surface", PolicyName="inl", PolicyDocument=doc("Deny", "s3:DeleteBucket"))
    got_inline = iam.get_user_policy(UserName="surface", PolicyName="inl")
    assert got_inline["PolicyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert iam.list_user_policies(UserName="surface")["PolicyNames"] == ["inl"]
    iam.delete_user_policy(UserName="surface", PolicyName="inl")
    with pytest.raises(ClientError) as exc:
        iam.get_user_policy(UserName="surface", PolicyName="inl")
    assert error(exc) == ("NoSuchEntity", 404)

    # paging: MaxItems and Marker
    for i in range(5):
        iam.create_user(UserName=f"page{i}", Path="/paging/")
    first = iam.list_users(PathPrefix="/paging/", MaxItems=2)
    assert [u["UserName"] for u in first["Users"]] == ["page0", "page1"] and first["IsTruncated"]
    rest = iam.list_users(PathPrefix="/paging/", Marker=first["Marker"])
    assert [u["UserName"] for u in rest["Users"]] == ["page2", "page3", "page4"] and not rest["IsTruncated"]
    names = [u["UserName"] for u in iam.get_paginator("list_users").paginate(
        PathPrefix="/paging/", PaginationConfig={"PageSize": 2}).build_full_result()["Users"]]
    assert names == [f"page{i}" for i in range(5)]

    # deleting in AWS's order
    for k in iam.list_access_keys(UserName="surface")["AccessKeyMetadata"]:
        iam.delete_access_key(UserName="surface", AccessKeyId=k["AccessKeyId"])
    iam.detach_user_policy(UserName="surface", PolicyArn="arn:aws:iam::aws:policy/readonly")
    iam.delete_user(UserName="surface")
    iam.delete_group(GroupName="surface-g")
    for v in ("v1", "v3", "v4"):
        iam.delete_policy_version(PolicyArn=arn, VersionId=v)
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.get_policy(PolicyArn=arn)
    assert error(exc) == ("NoSuchEntity", 404)


@pytest.mark.parametrize(("params", "code"), [
    ({"Action": "CreateUser", "UserName": "has space"}, "ValidationError"),
    ({"Action": "CreateUser", "UserName": "x" * 65}, "ValidationError"),
    ({"Action": "CreateUser", "UserName": "<script>"}, "ValidationError"),
    ({"Action": "CreateUser", "UserName": "ok", "Path": "no-slash"}, "ValidationError"),
    ({"Action": "CreateUser"}, "ValidationError"),
    ({"Action": "CreateGroup", "GroupName": "a\x00b"}, "ValidationError"),
    ({"Action": "CreatePolicy", "PolicyName": "p", "PolicyDocument": "[" * 10_000}, "MalformedPolicyDocument"),
    ({"Action": "CreatePolicy", "PolicyName": "p", "PolicyDocument": "not json"}, "MalformedPolicyDocument"),
    ({"Action": "CreatePolicy", "PolicyName": "p", "PolicyDocument": doc("Allow", "s3:*") + "x" * 30_000},
     "LimitExceeded"),
    ({"Action": "GetPolicy", "PolicyArn": "arn:aws:iam::123456789012:policy/elsewhere"}, "NoSuchEntity"),
    ({"Action": "GetPolicy", "PolicyArn": "not an arn at all, no"}, "ValidationError"),
    ({"Action": "UpdateAccessKey", "AccessKeyId": "STWNOSUCHKEY00000000", "Status": "Sleeping"}, "ValidationError"),
    ({"Action": "ListUsers", "MaxItems": "0"}, "ValidationError"),
    ({"Action": "ListUsers", "MaxItems": "99999999999999999999"}, "ValidationError"),
    ({"Action": "ListUsers", "MaxItems": "\u00b2"}, "ValidationError"),  # isdigit(), yet no int()
    ({"Action": "ListGroups", "MaxItems": "9" * 5000}, "ValidationError"),
    ({"Action": "ListPolicies", "Scope": "Everything"}, "ValidationError"),
    ({"Action": "ListPolicies", "OnlyAttached": "maybe"}, "ValidationError"),
    ({"Action": "FrobnicateUser"}, "InvalidAction"),
    ({"Action": "ListUsers", "Version": "2009-01-01"}, "InvalidAction"),
    ({"Version": "2010-05-08"}, "MissingAction"),
])
def test_hostile_parameters(d: DaemonProc, params: dict[str, str], code: str) -> None:
    status, tree, _ = raw(d, urlencode({"Version": "2010-05-08", **params}).encode())
    assert code_of(tree) == code
    assert status == {"ValidationError": 400, "MalformedPolicyDocument": 400, "LimitExceeded": 409,
                      "NoSuchEntity": 404, "InvalidAction": 400, "MissingAction": 400}[code]


@pytest.mark.parametrize("body", [
    b"Action=ListUsers&Version=2010-05-08&UserName=%ff%fe",  # not UTF-8
    b"Action=ListUsers&Version=2010-05-08&\xff=1",
    b"Action=ListUsers&Version=2010-05-08&novalue",  # a field without '='
    b"Action=ListUsers&Version=2010-05-08&Action=DeleteUser",  # a parameter twice
    b"&".join(b"p%d=1" % i for i in range(300)) + b"&Action=ListUsers",  # too many parameters
])
def test_malformed_form_bodies(d: DaemonProc, body: bytes) -> None:
    status, tree, _ = raw(d, body)
    assert (status, code_of(tree)) == (404, "MalformedQueryString")


def test_authentication_failures_speak_iam(d: DaemonProc) -> None:
    body = b"Action=ListUsers&Version=2010-05-08"
    status, tree, _ = raw(d, body, sk="wrong-secret")
    assert (status, code_of(tree)) == (403, "SignatureDoesNotMatch")
    status, tree, _ = raw(d, body, ak="STWNOSUCHKEY00000000")
    assert (status, code_of(tree)) == (403, "InvalidClientTokenId")
    status, tree, data = raw(d, body, region="mars-1")
    assert (status, code_of(tree)) == (400, "IncompleteSignature")
    assert b"expecting 'us-east-1'" in data
    status, tree, _ = raw(d, body, method="PUT")
    assert (status, code_of(tree)) == (400, "InvalidAction")
    # GET with the parameters in the query string is the query API too
    status, tree, _ = raw(d, b"", method="GET", query="Action=ListUsers&Version=2010-05-08")
    assert status == 200 and tree is not None and tree.tag == f"{NS}ListUsersResponse"
    # a body past the cap is refused, not buffered
    status, tree, _ = raw(d, b"Action=ListUsers&Version=2010-05-08&Pad=" + b"x" * 300_000)
    assert (status, code_of(tree)) == (400, "InvalidInput")
    # the gateway still answers S3 (requests not signed for IAM never reach the IAM API)
    assert "Buckets" in client(d, "s3").list_buckets()


def test_secrets_never_in_plain_text_at_rest(d: DaemonProc) -> None:
    iam = client(d, "iam")
    iam.create_user(UserName="at-rest")
    key = iam.create_access_key(UserName="at-rest")["AccessKey"]
    secrets = [key["SecretAccessKey"]]
    secrets.append(json.loads(d.cli("user", "add", "at-rest-cli", "--json").stdout)["secret_key"])
    d.cli("snapshot-metadata")
    d.stop()
    try:
        found = [str(p) for p in d.data_dir.rglob("*") if p.is_file() and p.name != "credentials.toml"
                 and any(s.encode() in p.read_bytes() for s in secrets)]
        assert found == []
        assert not any(s in d.log_tail(100_000) for s in secrets)
    finally:
        d.start()
    # unwrapped again after the restart
    assert "Buckets" in client(d, "s3", key["AccessKeyId"], key["SecretAccessKey"]).list_buckets()


def test_unsupported_parameters_are_refused_not_ignored(d: DaemonProc) -> None:
    """IAM tags and permission boundaries are not implemented: a request carrying them is refused
    (501 NotImplemented) and changes nothing, instead of succeeding without them."""
    iam = client(d, "iam")
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName="tagged", Tags=[{"Key": "team", "Value": "a"}])
    assert error(exc) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as exc:
        iam.get_user(UserName="tagged")
    assert error(exc) == ("NoSuchEntity", 404)


def test_error_messages_quoting_the_request_stay_xml(d: DaemonProc) -> None:
    """An error message that quoted a control character of the request (a Version or Action of
    \\x00, a user name in NoSuchEntity) went out as `&#x0;`, which XML 1.0 cannot hold: botocore
    refused the whole answer (ResponseParserError instead of the error)."""
    for params in ({"Action": "ListUsers", "Version": "\x00\x01"}, {"Action": "ListUsers\x00", "Version": "2010-05-08"},
                   {"Action": "DeleteGroup", "Version": "2010-05-08", "GroupName": "g\x00\x1f"}):
        status, tree, data = raw(d, urlencode(params).encode())
        assert tree is not None and status in (400, 404), data
        assert code_of(tree) in ("InvalidAction", "ValidationError", "NoSuchEntity"), data
    with pytest.raises(ClientError) as exc:
        client(d, "iam").get_group(GroupName="g\x00")
    assert error(exc)[0] in ("ValidationError", "NoSuchEntity")


@pytest.mark.parametrize(("params", "member"), [
    ({"Action": "GetUser", "UserName": "has space"}, "userName"),
    ({"Action": "DeleteUser", "UserName": "u" * 65}, "userName"),
    ({"Action": "GetUser", "UserName": ""}, "userName"),
    ({"Action": "CreateAccessKey", "UserName": "<script>"}, "userName"),
    ({"Action": "ListAccessKeys", "UserName": "a/b"}, "userName"),
    ({"Action": "GetGroup", "GroupName": "g" * 5000}, "groupName"),
    ({"Action": "AddUserToGroup", "GroupName": "g", "UserName": "a\tb"}, "userName"),
    ({"Action": "GetUserPolicy", "UserName": "validname", "PolicyName": "p q"}, "policyName"),
    ({"Action": "DeleteAccessKey", "AccessKeyId": "A" * 5000}, "accessKeyId"),
    ({"Action": "UpdateAccessKey", "AccessKeyId": "STW!", "Status": "Active"}, "accessKeyId"),
    ({"Action": "GetPolicyVersion", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess", "VersionId": "1"},
     "versionId"),
])
def test_malformed_names_are_validation_errors_for_every_action(d: DaemonProc, params: dict[str, str],
                                                                member: str) -> None:
    """A name or id IAM's constraints refuse was looked up anyway and answered 404 NoSuchEntity
    (a statement about what exists) by every action but the Create ones; AWS answers 400
    ValidationError, naming the member, before it looks anything up."""
    status, tree, data = raw(d, urlencode({"Version": "2010-05-08", **params}).encode())
    assert (status, code_of(tree)) == (400, "ValidationError"), data
    assert f"at '{member}'".encode() in data


def test_root_list_access_keys_pages_like_every_list(d: DaemonProc) -> None:
    """ListAccessKeys by the root user without UserName answered its key whatever MaxItems and
    Marker said: MaxItems=0 or "lots" was accepted and ignored, and a Marker past the key listed
    it again. It now pages as every IAM list does."""
    for max_items in ("0", "lots", "1001"):
        status, tree, _ = raw(d, urlencode({"Action": "ListAccessKeys", "Version": "2010-05-08",
                                            "MaxItems": max_items}).encode())
        assert (status, code_of(tree)) == (400, "ValidationError")
    iam = client(d, "iam")
    keys = iam.list_access_keys(MaxItems=1)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [d.access_key]
    assert iam.list_access_keys(Marker=d.access_key)["AccessKeyMetadata"] == []

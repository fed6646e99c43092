"""Conditional deletes (AWS, general purpose buckets since 2025): DeleteObject with If-Match, and
an Object's ETag in DeleteObjects, delete only when the key's current version matches ("*": when
there is one); a mismatch is 412 PreconditionFailed and deletes nothing, a key with no current
version is 404 NoSuchKey. An ETag compared needs s3:GetObject as well as s3:DeleteObject, and a
bucket policy can require the condition through s3:if-match (AWS's "Enforce conditional deletes")."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from .conftest import Raw
from .test_policy_matrix import s3_client


def _err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    r = exc.value.response
    return int(r["ResponseMetadata"]["HTTPStatusCode"]), str(r["Error"]["Code"])


def _keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_delete_object_if_match(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key="k", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert _err(exc) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    with pytest.raises(ClientError) as exc:  # a list of ETags none of which matches
        s3.delete_object(Bucket=bucket, Key="k", IfMatch='"aa", "bb"')
    assert _err(exc) == (412, "PreconditionFailed")
    assert s3.delete_object(Bucket=bucket, Key="k", IfMatch=etag)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _keys(s3, bucket) == []
    for cond in (etag, "*"):  # nothing left to match
        with pytest.raises(ClientError) as exc:
            s3.delete_object(Bucket=bucket, Key="k", IfMatch=cond)
        assert _err(exc) == (404, "NoSuchKey")


def test_delete_object_if_match_star_and_unquoted_etag(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="a", Body=b"a")["ETag"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    s3.delete_object(Bucket=bucket, Key="a", IfMatch=etag.strip('"'))  # as the aws CLI's examples send it
    s3.delete_object(Bucket=bucket, Key="b", IfMatch="*")
    assert _keys(s3, bucket) == []


def test_versioned_bucket_a_conditional_delete_adds_a_marker_once(s3: Any, bucket: str) -> None:
    """Evaluated against the current version: once a delete marker is current, there is no
    object to match, and no second marker is stacked."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    r = s3.delete_object(Bucket=bucket, Key="k", IfMatch=etag)
    assert r["DeleteMarker"] is True
    for cond in (etag, "*"):
        with pytest.raises(ClientError) as exc:
            s3.delete_object(Bucket=bucket, Key="k", IfMatch=cond)
        assert _err(exc) == (404, "NoSuchKey")
    versions = s3.list_object_versions(Bucket=bucket)
    assert len(versions["Versions"]) == 1 and len(versions["DeleteMarkers"]) == 1


def test_if_match_beside_a_version_id_is_refused(s3: Any, bucket: str) -> None:
    """DeleteObject's If-Match beside a versionId, and a DeleteObjects Object's ETag beside its
    VersionId, are the same request: refused with the same error, and nothing is deleted."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key="k", VersionId=r["VersionId"], IfMatch=r["ETag"])
    assert _err(exc) == (501, "NotImplemented")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "VersionId": r["VersionId"],
                                                                "ETag": r["ETag"]}]})
    assert [(e["Code"], e["Message"]) for e in out["Errors"]] == [
        ("NotImplemented", exc.value.response["Error"]["Message"])]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v1"


def test_delete_objects_with_etags(s3: Any, bucket: str) -> None:
    tags = {k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode())["ETag"] for k in ("a", "b", "c", "d")}
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": tags["a"]},
        {"Key": "b", "ETag": tags["a"]},  # another key's ETag
        {"Key": "c"},
        {"Key": "gone", "ETag": tags["a"]},
    ]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a", "c"]
    assert sorted((e["Key"], e["Code"]) for e in r["Errors"]) == [("b", "PreconditionFailed"), ("gone", "NoSuchKey")]
    assert _keys(s3, bucket) == ["b", "d"]


def test_delete_objects_etag_in_hostile_xml(raw: Raw, s3: Any, bucket: str) -> None:
    """The ETag element's text is compared, never trusted: odd bytes fail the condition."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for etag in ("", " ", "&lt;&amp;&gt;", "\u00e9" * 300, '"' * 50):
        body = (f"<Delete><Object><Key>k</Key><ETag>{etag}</ETag></Object></Delete>").encode()
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        status, _, out = raw.request("POST", f"/{bucket}?delete", body, {"Content-MD5": md5})
        assert status == 200 and b"<Deleted>" not in out, (etag, out)
        assert b"<Code>PreconditionFailed</Code>" in out, (etag, out)
    assert _keys(s3, bucket) == ["k"]


@pytest.fixture(scope="module")
def users(s3d: Any) -> dict[str, Any]:
    """IAM users: `deleter` may only DeleteObject, `reader` DeleteObject and GetObject, `writer`
    only PutObject."""
    iam = boto3.client("iam", endpoint_url=s3d.endpoint, aws_access_key_id=s3d.access_key,
                       aws_secret_access_key=s3d.secret_key, region_name="us-east-1")
    out = {}
    for name, actions in (("deleter", ["s3:DeleteObject"]), ("reader", ["s3:DeleteObject", "s3:GetObject"]),
                          ("writer", ["s3:PutObject"])):
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        out[name] = s3_client(s3d.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    return out


def test_an_etag_condition_needs_get_object(s3: Any, bucket: str, users: dict[str, Any]) -> None:
    """AWS: a conditional delete with an ETag needs s3:DeleteObject and s3:GetObject; with "*"
    s3:DeleteObject alone."""
    tags = {k: s3.put_object(Bucket=bucket, Key=k, Body=b"x")["ETag"] for k in ("a", "b", "c")}
    with pytest.raises(ClientError) as exc:
        users["deleter"].delete_object(Bucket=bucket, Key="a", IfMatch=tags["a"])
    assert _err(exc) == (403, "AccessDenied")
    r = users["deleter"].delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a", "ETag": tags["a"]}]})
    assert [e["Code"] for e in r["Errors"]] == ["AccessDenied"]
    assert _keys(s3, bucket) == ["a", "b", "c"]
    users["deleter"].delete_object(Bucket=bucket, Key="b", IfMatch="*")
    users["reader"].delete_object(Bucket=bucket, Key="a", IfMatch=tags["a"])
    assert _keys(s3, bucket) == ["c"]


def test_a_bucket_policy_can_require_the_condition(s3: Any, bucket: str, users: dict[str, Any]) -> None:
    """AWS's "Enforce conditional deletes": a Deny of s3:DeleteObject where s3:if-match is absent."""
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"Null": {"s3:if-match": "true"}}}]}))
    tags = {k: s3.put_object(Bucket=bucket, Key=k, Body=b"x")["ETag"] for k in ("a", "b", "c")}
    with pytest.raises(ClientError) as exc:
        users["reader"].delete_object(Bucket=bucket, Key="a")
    assert _err(exc) == (403, "AccessDenied")
    objects = [{"Key": "b"}, {"Key": "c", "ETag": tags["c"]}]
    r = users["reader"].delete_objects(Bucket=bucket, Delete={"Objects": objects})
    assert [e["Key"] for e in r["Errors"]] == ["b"] and [d["Key"] for d in r["Deleted"]] == ["c"]
    users["reader"].delete_object(Bucket=bucket, Key="a", IfMatch=tags["a"])
    assert _keys(s3, bucket) == ["b"]


def test_a_conditional_put_key_is_in_the_policy_context(s3: Any, bucket: str, users: dict[str, Any]) -> None:
    """The same keys for conditional writes (AWS's "Enforce conditional writes"): a Deny of
    s3:PutObject where s3:if-none-match is absent refuses a plain PUT and lets a conditional one in."""
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"Null": {"s3:if-none-match": "true"}}}]}))
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert _err(exc) == (403, "AccessDenied")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", IfNoneMatch="*")
    assert _keys(s3, bucket) == ["k"]


def test_a_conditional_write_on_an_etag_needs_get_object(s3: Any, bucket: str, users: dict[str, Any]) -> None:
    """AWS: a write with If-Match needs s3:PutObject and s3:GetObject (the ETag compared is read);
    If-None-Match s3:PutObject alone."""
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    with pytest.raises(ClientError) as exc:
        users["writer"].put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch=etag)
    assert _err(exc) == (403, "AccessDenied")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    users["writer"].put_object(Bucket=bucket, Key="new", Body=b"x", IfNoneMatch="*")
    assert _keys(s3, bucket) == ["k", "new"]

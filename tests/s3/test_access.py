"""Access control against the real daemon: root and anonymous callers, bucket policies, ACLs,
Object Ownership and the public access block, as AWS S3 behaves (docs/access-control.md)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import running

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def denied(call: Any, *args: Any, **kw: Any) -> str:
    """The error code of a call that must fail (403 AccessDenied, mostly)."""
    with pytest.raises(ClientError) as exc:
        call(*args, **kw)
    return code(exc) if status(exc) != 403 else "AccessDenied" if code(exc) in ("AccessDenied", "403") else code(exc)


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow_anyone(actions: str | list[str], resource: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Principal": "*", "Action": actions, "Resource": resource}
    if condition:
        st["Condition"] = condition
    return st


@pytest.fixture(scope="module")
def anon(s3d: Any) -> Any:
    return boto3.client("s3", endpoint_url=s3d.endpoint, region_name="us-east-1",
                        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


def http_get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


# --- root and anonymous ---------------------------------------------------------------------------


def test_anonymous_gets_nothing_by_default(s3: Any, anon: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    assert denied(anon.get_object, Bucket=bucket, Key="k") == "AccessDenied"
    assert denied(anon.head_object, Bucket=bucket, Key="k") == "AccessDenied"
    assert denied(anon.list_objects_v2, Bucket=bucket) == "AccessDenied"
    assert denied(anon.put_object, Bucket=bucket, Key="new", Body=b"x") == "AccessDenied"
    assert denied(anon.delete_object, Bucket=bucket, Key="k") == "AccessDenied"
    assert denied(anon.list_buckets) == "AccessDenied"
    assert denied(anon.create_bucket, Bucket="anon-made") == "AccessDenied"
    assert denied(anon.get_bucket_acl, Bucket=bucket) == "AccessDenied"
    # a bucket that does not exist is a 404 for anyone, as on AWS
    assert denied(anon.get_object, Bucket="no-such-bucket-anon", Key="k") == "NoSuchBucket"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret"


def test_public_read_by_bucket_policy(s3: Any, anon: Any, s3d: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="pub/a.txt", Body=b"hello")
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_policy(Bucket=bucket)
    assert code(exc) == "NoSuchBucketPolicy" and status(exc) == 404
    doc = policy(allow_anyone("s3:GetObject", f"arn:aws:s3:::{bucket}/*"))
    s3.put_bucket_policy(Bucket=bucket, Policy=doc)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(doc)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    assert anon.get_object(Bucket=bucket, Key="pub/a.txt")["Body"].read() == b"hello"
    assert anon.head_object(Bucket=bucket, Key="pub/a.txt")["ContentLength"] == 5
    assert http_get(f"{s3d.endpoint}/{bucket}/pub/a.txt") == 200
    # GetObject without ListBucket: a missing key is 403, as AWS hides what exists
    assert denied(anon.get_object, Bucket=bucket, Key="pub/missing") == "AccessDenied"
    assert denied(anon.list_objects_v2, Bucket=bucket) == "AccessDenied"
    assert denied(anon.put_object, Bucket=bucket, Key="pub/b", Body=b"x") == "AccessDenied"
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(
        allow_anyone("s3:GetObject", f"arn:aws:s3:::{bucket}/*"),
        allow_anyone("s3:ListBucket", f"arn:aws:s3:::{bucket}")))
    assert [o["Key"] for o in anon.list_objects_v2(Bucket=bucket)["Contents"]] == ["pub/a.txt"]
    assert denied(anon.get_object, Bucket=bucket, Key="pub/missing") == "NoSuchKey"
    s3.delete_bucket_policy(Bucket=bucket)
    assert denied(anon.get_object, Bucket=bucket, Key="pub/a.txt") == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_policy_status(Bucket=bucket)
    assert code(exc) == "NoSuchBucketPolicy"


def test_policy_with_a_fixed_principal_is_not_public(s3: Any, bucket: str) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=policy({
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/alice"}, "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}))
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False


@pytest.mark.parametrize(("doc", "words"), [
    ("{not json", "valid JSON"),
    (policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::B/*"}),
     "invalid action"),
    (policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}),
     "is not in bucket"),
    (policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::B/*"}), "Principal"),
    (json.dumps({"Version": "2012-10-17", "Statement": []}), "empty"),
])
def test_malformed_policies_are_refused_naming_the_problem(s3: Any, bucket: str, doc: str, words: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_policy(Bucket=bucket, Policy=doc.replace("arn:aws:s3:::B/", f"arn:aws:s3:::{bucket}/"))
    assert code(exc) == "MalformedPolicy" and status(exc) == 400
    assert words.lower() in exc.value.response["Error"]["Message"].lower()


def test_public_read_by_acl(s3: Any, anon: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="open", Body=b"o", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="closed", Body=b"c")
    assert anon.get_object(Bucket=bucket, Key="open")["Body"].read() == b"o"
    assert denied(anon.get_object, Bucket=bucket, Key="closed") == "AccessDenied"
    grants = s3.get_object_acl(Bucket=bucket, Key="open")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in grants
    # object READ does not let anyone list the bucket; a public-read bucket ACL does
    assert denied(anon.list_objects_v2, Bucket=bucket) == "AccessDenied"
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert sorted(o["Key"] for o in anon.list_objects_v2(Bucket=bucket)["Contents"]) == ["closed", "open"]
    assert denied(anon.get_object, Bucket=bucket, Key="closed") == "AccessDenied"
    # explicit grants through headers and through the AccessControlPolicy document
    s3.put_object_acl(Bucket=bucket, Key="closed", GrantRead=f'uri="{ALL_USERS}"')
    assert anon.get_object(Bucket=bucket, Key="closed")["Body"].read() == b"c"
    acl = s3.get_object_acl(Bucket=bucket, Key="closed")
    s3.put_object_acl(Bucket=bucket, Key="closed", AccessControlPolicy={"Owner": acl["Owner"], "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": acl["Owner"]["ID"]}, "Permission": "FULL_CONTROL"}]})
    assert denied(anon.get_object, Bucket=bucket, Key="closed") == "AccessDenied"
    assert s3.get_object_acl(Bucket=bucket, Key="closed")["Grants"] == [
        {"Grantee": {"Type": "CanonicalUser", "ID": acl["Owner"]["ID"], "DisplayName": acl["Owner"]["DisplayName"]},
         "Permission": "FULL_CONTROL"}]


def test_acls_on_copies_and_multipart_uploads(s3: Any, anon: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"s", ACL="public-read")
    s3.copy_object(Bucket=bucket, Key="copy-private", CopySource={"Bucket": bucket, "Key": "src"})
    assert denied(anon.get_object, Bucket=bucket, Key="copy-private") == "AccessDenied"  # never inherited
    s3.copy_object(Bucket=bucket, Key="copy-public", CopySource={"Bucket": bucket, "Key": "src"}, ACL="public-read")
    assert anon.get_object(Bucket=bucket, Key="copy-public")["Body"].read() == b"s"
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ACL="public-read")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"m")["ETag"]
    assert denied(anon.get_object, Bucket=bucket, Key="mp") == "AccessDenied"  # not there yet
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert anon.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"m"


def test_public_read_write_bucket_takes_anonymous_writes(s3: Any, anon: Any, bucket: str) -> None:
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    anon.put_object(Bucket=bucket, Key="dropped", Body=b"from anyone")
    assert s3.get_object(Bucket=bucket, Key="dropped")["Body"].read() == b"from anyone"
    # ObjectWriter: the anonymous writer owns it; the bucket's READ lists it but does not read it
    assert s3.get_object_acl(Bucket=bucket, Key="dropped")["Owner"]["DisplayName"] == "anonymous"
    assert denied(anon.get_object, Bucket=bucket, Key="dropped") == "AccessDenied"
    anon.delete_object(Bucket=bucket, Key="dropped")
    # the ACL of what a writer creates is the writer's to set (s3:PutObjectAcl comes with WRITE)
    anon.put_object(Bucket=bucket, Key="shared", Body=b"for all", ACL="public-read")
    assert anon.get_object(Bucket=bucket, Key="shared")["Body"].read() == b"for all"
    anon.delete_object(Bucket=bucket, Key="shared")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_acl_errors(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.put_object_acl(Bucket=bucket, Key="k", GrantRead='emailAddress="a@example.com"')
    assert code(exc) == "UnresolvableGrantByEmailAddress"
    with pytest.raises(ClientError) as exc:
        s3.put_object_acl(Bucket=bucket, Key="k", GrantRead='id="no-such-canonical-id"')
    assert code(exc) == "InvalidArgument"
    with pytest.raises(ClientError) as exc:
        s3.put_object_acl(Bucket=bucket, Key="k", GrantRead='uri="http://example.com/groups/mine"')
    assert code(exc) == "InvalidArgument"
    with pytest.raises(ClientError) as exc:
        s3.put_object_acl(Bucket=bucket, Key="k", ACL="public-read", GrantRead=f'uri="{ALL_USERS}"')
    assert code(exc) == "InvalidRequest"
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_acl(Bucket=bucket, ACL="bucket-owner-full-control")  # an object-only canned ACL
    assert code(exc) == "InvalidArgument"


# --- the public access block ----------------------------------------------------------------------


PAB_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
           "RestrictPublicBuckets": True}


def pab(**flags: bool) -> dict[str, bool]:
    return {name: flags.get(name, False) for name in PAB_ALL}


def test_public_access_block_overrides_policy_and_acl(s3: Any, anon: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_public_access_block(Bucket=bucket)
    assert code(exc) == "NoSuchPublicAccessBlockConfiguration" and status(exc) == 404
    s3.put_object(Bucket=bucket, Key="by-acl", Body=b"a", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="by-policy", Body=b"p")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(allow_anyone("s3:GetObject", f"arn:aws:s3:::{bucket}/by-policy")))
    assert anon.get_object(Bucket=bucket, Key="by-acl")["Body"].read() == b"a"
    assert anon.get_object(Bucket=bucket, Key="by-policy")["Body"].read() == b"p"

    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=pab(IgnorePublicAcls=True))
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == pab(IgnorePublicAcls=True)
    assert denied(anon.get_object, Bucket=bucket, Key="by-acl") == "AccessDenied"
    assert anon.get_object(Bucket=bucket, Key="by-policy")["Body"].read() == b"p"

    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=pab(RestrictPublicBuckets=True))
    assert anon.get_object(Bucket=bucket, Key="by-acl")["Body"].read() == b"a"
    assert denied(anon.get_object, Bucket=bucket, Key="by-policy") == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="by-policy")["Body"].read() == b"p"  # the account still can

    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=pab(BlockPublicAcls=True))
    assert denied(s3.put_object, Bucket=bucket, Key="x", Body=b"x", ACL="public-read") == "AccessDenied"
    assert denied(s3.put_object_acl, Bucket=bucket, Key="by-policy", ACL="public-read") == "AccessDenied"
    assert denied(s3.put_bucket_acl, Bucket=bucket, ACL="public-read") == "AccessDenied"
    s3.put_object(Bucket=bucket, Key="x", Body=b"x", ACL="private")
    assert anon.get_object(Bucket=bucket, Key="by-acl")["Body"].read() == b"a"  # existing grants still count

    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=pab(BlockPublicPolicy=True))
    s3.delete_bucket_policy(Bucket=bucket)
    assert denied(s3.put_bucket_policy, Bucket=bucket, Policy=policy(
        allow_anyone("s3:GetObject", f"arn:aws:s3:::{bucket}/*"))) == "AccessDenied"
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(allow_anyone(
        "s3:GetObject", f"arn:aws:s3:::{bucket}/*", {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}})))

    s3.delete_public_access_block(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_public_access_block(Bucket=bucket)
    assert code(exc) == "NoSuchPublicAccessBlockConfiguration"


# --- conditions -----------------------------------------------------------------------------------


def test_source_ip_condition(s3: Any, anon: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(allow_anyone(
        "s3:GetObject", f"arn:aws:s3:::{bucket}/*", {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8"]}})))
    assert anon.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(allow_anyone(
        "s3:GetObject", f"arn:aws:s3:::{bucket}/*", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})))
    assert denied(anon.get_object, Bucket=bucket, Key="k") == "AccessDenied"


def test_prefix_condition_on_listing(s3: Any, anon: Any, bucket: str) -> None:
    for key in ("public/a", "public/b", "private/c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(allow_anyone(
        "s3:ListBucket", f"arn:aws:s3:::{bucket}", {"StringLike": {"s3:prefix": "public/*"}})))
    assert [o["Key"] for o in anon.list_objects_v2(Bucket=bucket, Prefix="public/")["Contents"]] == [
        "public/a", "public/b"]
    assert denied(anon.list_objects_v2, Bucket=bucket, Prefix="private/") == "AccessDenied"
    assert denied(anon.list_objects_v2, Bucket=bucket) == "AccessDenied"  # no prefix at all


def test_secure_transport_deny_binds_root_but_not_for_the_policy_itself(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy({
        "Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}))
    assert denied(s3.get_object, Bucket=bucket, Key="k") == "AccessDenied"
    assert denied(s3.put_bucket_versioning, Bucket=bucket,
                  VersioningConfiguration={"Status": "Enabled"}) == "AccessDenied"
    # the root user may always read, replace and delete the bucket policy that locks it out
    assert "TLSOnly" in s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_existing_object_tag_condition(s3: Any, anon: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="shared", Body=b"s", Tagging="visibility=public")
    s3.put_object(Bucket=bucket, Key="kept", Body=b"k", Tagging="visibility=private")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(allow_anyone(
        "s3:GetObject", f"arn:aws:s3:::{bucket}/*",
        {"StringEquals": {"s3:ExistingObjectTag/visibility": "public"}})))
    assert anon.get_object(Bucket=bucket, Key="shared")["Body"].read() == b"s"
    assert denied(anon.get_object, Bucket=bucket, Key="kept") == "AccessDenied"
    s3.put_object_tagging(Bucket=bucket, Key="kept", Tagging={"TagSet": [{"Key": "visibility", "Value": "public"}]})
    assert anon.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"k"


def test_request_object_tag_condition(s3: Any, anon: Any, bucket: str) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(
        allow_anyone(["s3:PutObject", "s3:PutObjectTagging"], f"arn:aws:s3:::{bucket}/*",
                     {"StringEquals": {"s3:RequestObjectTag/team": "blue"}}),
        allow_anyone("s3:PutObjectTagging", f"arn:aws:s3:::{bucket}/*",
                     {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "stage"]}})))
    anon.put_object(Bucket=bucket, Key="blue", Body=b"b", Tagging="team=blue")
    assert denied(anon.put_object, Bucket=bucket, Key="red", Body=b"r", Tagging="team=red") == "AccessDenied"
    assert denied(anon.put_object, Bucket=bucket, Key="none", Body=b"n") == "AccessDenied"
    anon.put_object_tagging(Bucket=bucket, Key="blue", Tagging={"TagSet": [{"Key": "stage", "Value": "x"}]})
    assert denied(anon.put_object_tagging, Bucket=bucket, Key="blue",
                  Tagging={"TagSet": [{"Key": "owner", "Value": "x"}]}) == "AccessDenied"
    assert s3.get_object_tagging(Bucket=bucket, Key="blue")["TagSet"] == [{"Key": "stage", "Value": "x"}]


def test_delete_objects_reports_refused_keys(s3: Any, anon: Any, bucket: str) -> None:
    for key in ("tmp/a", "keep/b"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(allow_anyone("s3:DeleteObject", f"arn:aws:s3:::{bucket}/tmp/*")))
    r = anon.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "tmp/a"}, {"Key": "keep/b"}]})
    assert [d["Key"] for d in r["Deleted"]] == ["tmp/a"]
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("keep/b", "AccessDenied")]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["keep/b"]


def test_copy_needs_read_on_the_source(s3: Any, anon: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src/secret", Body=b"s")
    s3.put_object(Bucket=bucket, Key="src/open", Body=b"o")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(
        allow_anyone("s3:PutObject", f"arn:aws:s3:::{bucket}/dst/*"),
        allow_anyone("s3:GetObject", f"arn:aws:s3:::{bucket}/src/open")))
    anon.copy_object(Bucket=bucket, Key="dst/1", CopySource={"Bucket": bucket, "Key": "src/open"})
    assert s3.get_object(Bucket=bucket, Key="dst/1")["Body"].read() == b"o"
    assert denied(anon.copy_object, Bucket=bucket, Key="dst/2",
                  CopySource={"Bucket": bucket, "Key": "src/secret"}) == "AccessDenied"
    assert denied(anon.copy_object, Bucket=bucket, Key="src/3",
                  CopySource={"Bucket": bucket, "Key": "src/open"}) == "AccessDenied"


def test_version_actions(s3: Any, anon: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    vid = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(allow_anyone("s3:GetObject", f"arn:aws:s3:::{bucket}/*")))
    assert anon.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"
    assert denied(anon.get_object, Bucket=bucket, Key="k", VersionId=vid) == "AccessDenied"
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(allow_anyone(
        "s3:GetObjectVersion", f"arn:aws:s3:::{bucket}/*", {"StringEquals": {"s3:VersionId": vid}})))
    assert anon.get_object(Bucket=bucket, Key="k", VersionId=vid)["Body"].read() == b"v1"


# --- Object Ownership and buckets -----------------------------------------------------------------


def test_ownership_controls(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_ownership_controls(Bucket=bucket)
    assert code(exc) == "OwnershipControlsNotFoundError" and status(exc) == 404
    for value in ("BucketOwnerPreferred", "BucketOwnerEnforced", "ObjectWriter"):
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": value}]})
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": value}]
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_ownership_controls(Bucket=bucket)
    assert code(exc) == "OwnershipControlsNotFoundError"
    # ACLs cannot be disabled while the bucket ACL grants to others
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert code(exc) == "InvalidBucketAclWithObjectOwnership"


def test_bucket_owner_enforced_ignores_existing_grants(s3: Any, anon: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    assert anon.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert denied(anon.get_object, Bucket=bucket, Key="k") == "AccessDenied"
    assert [g["Permission"] for g in s3.get_object_acl(Bucket=bucket, Key="k")["Grants"]] == ["FULL_CONTROL"]


def test_create_bucket_with_acl_and_ownership(s3: Any, anon: Any) -> None:
    s3.create_bucket(Bucket="acl-at-birth", ACL="public-read")
    assert anon.list_objects_v2(Bucket="acl-at-birth")["KeyCount"] == 0
    s3.create_bucket(Bucket="enforced-at-birth", ObjectOwnership="BucketOwnerEnforced")
    rules = s3.get_bucket_ownership_controls(Bucket="enforced-at-birth")["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="enforced-public", ObjectOwnership="BucketOwnerEnforced", ACL="public-read")
    assert code(exc) == "InvalidBucketAclWithObjectOwnership"


def test_list_buckets_root_sees_all(s3: Any, bucket: str) -> None:
    r = s3.list_buckets()
    assert bucket in [b["Name"] for b in r["Buckets"]]
    assert r["Owner"]["DisplayName"] == "root"


def test_presigned_url_of_root_still_works(s3: Any, s3d: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    signer = s3d.s3(signature_version="s3v4")
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
    assert http_get(url) == 200


# --- the [s3] defaults: AWS's current ones ----------------------------------------------------------


@pytest.fixture(scope="module")
def aws_defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.s3.conftest import DaemonProc

    root = tmp_path_factory.mktemp("awsdefaults")
    cfg = root / "stowage.toml"
    cfg.write_text('[s3]\nregion = "eu-west-1"\ndefault_object_ownership = "BucketOwnerEnforced"\n'
                   "default_public_access_block = true\n")
    d = DaemonProc(root / "data", ["--no-mount", "--config", str(cfg)])
    with running(d):
        yield d


def test_aws_current_defaults_from_the_toml(aws_defaults: Any) -> None:
    s3 = boto3.client("s3", endpoint_url=aws_defaults.endpoint, aws_access_key_id=aws_defaults.access_key,
                      aws_secret_access_key=aws_defaults.secret_key, region_name="eu-west-1",
                      config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="modern", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    rules = s3.get_bucket_ownership_controls(Bucket="modern")["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert s3.get_public_access_block(Bucket="modern")["PublicAccessBlockConfiguration"] == PAB_ALL
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="modern", Key="k", Body=b"x", ACL="public-read")
    assert code(exc) == "AccessControlListNotSupported"
    s3.put_object(Bucket="modern", Key="k", Body=b"x", ACL="bucket-owner-full-control")
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_policy(Bucket="modern", Policy=policy(allow_anyone("s3:GetObject", "arn:aws:s3:::modern/*")))
    assert code(exc) == "AccessDenied"
    # outside us-east-1, the owner re-creating its bucket hears 409 BucketAlreadyOwnedByYou
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="modern", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert code(exc) == "BucketAlreadyOwnedByYou" and status(exc) == 409


# --- the aws CLI ----------------------------------------------------------------------------------


def test_aws_cli_policy_and_anonymous_read(s3: Any, s3d: Any, bucket: str, tmp_path: Path) -> None:
    from tests.clients.conftest import clean_env, require, run

    exe = require("aws")
    env = clean_env(tmp_path, {"AWS_ACCESS_KEY_ID": s3d.access_key, "AWS_SECRET_ACCESS_KEY": s3d.secret_key,
                               "AWS_DEFAULT_REGION": "us-east-1"})
    base = [exe, "--endpoint-url", s3d.endpoint]
    s3.put_object(Bucket=bucket, Key="site/index.html", Body=b"<h1>hi</h1>")
    doc = tmp_path / "policy.json"
    doc.write_text(policy(allow_anyone("s3:GetObject", f"arn:aws:s3:::{bucket}/site/*")))
    run([*base, "s3api", "put-bucket-policy", "--bucket", bucket, "--policy", f"file://{doc}"], env)
    shown = json.loads(run([*base, "s3api", "get-bucket-policy", "--bucket", bucket], env).stdout)
    assert json.loads(shown["Policy"])["Statement"][0]["Action"] == "s3:GetObject"
    status_out = json.loads(run([*base, "s3api", "get-bucket-policy-status", "--bucket", bucket], env).stdout)
    assert status_out["PolicyStatus"]["IsPublic"] is True
    anonymous = [*base, "--no-sign-request"]
    out = run([*anonymous, "s3", "cp", f"s3://{bucket}/site/index.html", "-"], env).stdout
    assert out == "<h1>hi</h1>"
    r = run([*anonymous, "s3", "ls", f"s3://{bucket}/"], env, check=False)
    assert r.returncode != 0 and "AccessDenied" in r.stderr
    run([*base, "s3api", "put-public-access-block", "--bucket", bucket, "--public-access-block-configuration",
         "RestrictPublicBuckets=true"], env)
    r = run([*anonymous, "s3", "cp", f"s3://{bucket}/site/index.html", "-"], env, check=False)
    assert r.returncode != 0 and "403" in r.stderr

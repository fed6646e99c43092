"""Service and bucket operations through boto3 against the real daemon."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_create_list_head_delete(s3: Any) -> None:
    s3.create_bucket(Bucket="alpha-bucket")
    s3.create_bucket(Bucket="beta.bucket")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names == sorted(names)
    assert {"alpha-bucket", "beta.bucket"} <= set(names)
    head = s3.head_bucket(Bucket="alpha-bucket")
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert s3.get_bucket_location(Bucket="alpha-bucket").get("LocationConstraint") in (None, "")
    s3.delete_bucket(Bucket="alpha-bucket")
    assert "alpha-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="alpha-bucket")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_create_twice_in_us_east_1_resets_the_acl(s3: Any) -> None:
    """AWS's us-east-1 legacy: the owner re-creating its bucket gets 200 and a private ACL (in
    any other region 409 BucketAlreadyOwnedByYou: tests/s3/test_access.py)."""
    s3.create_bucket(Bucket="twice")
    s3.put_bucket_acl(Bucket="twice", ACL="public-read")
    assert len(s3.get_bucket_acl(Bucket="twice")["Grants"]) == 2
    s3.create_bucket(Bucket="twice")
    grants = s3.get_bucket_acl(Bucket="twice")["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]


def test_create_with_location_constraint(s3: Any) -> None:
    s3.create_bucket(Bucket="located", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.head_bucket(Bucket="located")


@pytest.mark.parametrize("name", ["ab", "UPPER", "a" * 64, "-leading", "trailing-", "two..dots", "192.168.1.1",
                                  "under_score", "xn--punycode"])
def test_invalid_bucket_names(s3: Any, name: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert code(exc) == "InvalidBucketName"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_delete_bucket_holding_only_unfinished_uploads(s3: Any) -> None:
    """As AWS and RGW: unfinished multipart uploads do not keep a bucket (`aws s3 rb --force`
    deletes the objects, then the bucket); they go with it."""
    s3.create_bucket(Bucket="mp-only")
    uid = s3.create_multipart_upload(Bucket="mp-only", Key="k")["UploadId"]
    s3.upload_part(Bucket="mp-only", Key="k", UploadId=uid, PartNumber=1, Body=b"x" * 1000)
    s3.delete_bucket(Bucket="mp-only")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="mp-only")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.create_bucket(Bucket="mp-only")
    assert s3.list_multipart_uploads(Bucket="mp-only").get("Uploads", []) == []
    s3.delete_bucket(Bucket="mp-only")


def test_delete_nonempty_and_missing(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert code(exc) == "BucketNotEmpty"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket="no-such-bucket-here")
    assert code(exc) == "NoSuchBucket"
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="no-such-bucket-here")
    assert code(exc) == "NoSuchBucket"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x")
    assert code(exc) == "NoSuchBucket"


def test_versioning_config_roundtrip(s3: Any, bucket: str) -> None:
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_acl_reads_and_unsupported_subresources(s3: Any, bucket: str) -> None:
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Grants"][0]["Permission"] == "FULL_CONTROL"
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_accelerate_configuration(Bucket=bucket)
    assert code(exc) == "NotImplemented"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501

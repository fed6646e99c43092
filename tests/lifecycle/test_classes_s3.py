"""Storage classes through S3 (the real daemon, boto3): what each operation reports, the
refusal of unknown classes, and an in-place class change by CopyObject."""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import create_test_bucket

BODY = os.urandom(2 << 20)


def test_classes_reported_as_aws_does(daemon: Any, request: pytest.FixtureRequest) -> None:
    s3 = daemon.s3()
    b = create_test_bucket(s3, request, "sc")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=b, Key="std", Body=BODY)
    s3.put_object(Bucket=b, Key="ia", Body=BODY, StorageClass="STANDARD_IA")
    assert "StorageClass" not in s3.head_object(Bucket=b, Key="std")  # STANDARD is omitted
    assert s3.head_object(Bucket=b, Key="ia")["StorageClass"] == "STANDARD_IA"
    assert s3.get_object(Bucket=b, Key="ia")["StorageClass"] == "STANDARD_IA"
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=b)["Contents"]}
    assert listed == {"ia": "STANDARD_IA", "std": "STANDARD"}
    versions = {v["Key"]: v["StorageClass"] for v in s3.list_object_versions(Bucket=b)["Versions"]}
    assert versions == listed
    up = s3.create_multipart_upload(Bucket=b, Key="mp", StorageClass="GLACIER_IR")
    s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 100)
    assert s3.list_parts(Bucket=b, Key="mp", UploadId=up["UploadId"])["StorageClass"] == "GLACIER_IR"
    assert s3.list_multipart_uploads(Bucket=b)["Uploads"][0]["StorageClass"] == "GLACIER_IR"

    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=b, Key="bad", Body=b"x", StorageClass="FROZEN")
    assert e.value.response["Error"]["Code"] == "InvalidStorageClass"
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=b, Key="bad", StorageClass="FROZEN")
    assert e.value.response["Error"]["Code"] == "InvalidStorageClass"

    # an in-place class change: a new version in the new class with the same content and ETag
    before = s3.head_object(Bucket=b, Key="std")
    s3.copy_object(Bucket=b, Key="std", CopySource={"Bucket": b, "Key": "std"}, StorageClass="GLACIER_IR")
    after = s3.head_object(Bucket=b, Key="std")
    assert after["StorageClass"] == "GLACIER_IR" and after["ETag"] == before["ETag"]
    assert after["VersionId"] != before["VersionId"]
    assert s3.get_object(Bucket=b, Key="std")["Body"].read() == BODY

"""The header half of the not-implemented table (s3gw/refusedheaders.py), walked entry by entry
against the real daemon: each header answers 501 NotImplemented on each operation it names and
changes nothing; the expected-owner headers are checked against the appliance's account."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from s3gw.refusedheaders import REFUSED_HEADERS
from s3gw.routing import Op

from .conftest import Raw, error_code

# one request shape per operation the table names: (method, path suffix after /bucket/key)
SHAPES = {
    Op.PutObject: ("PUT", "", {}),
    Op.CopyObject: ("PUT", "", {"x-amz-copy-source": "{bucket}/src"}),
    Op.CreateMultipartUpload: ("POST", "?uploads", {}),
    Op.DeleteObject: ("DELETE", "", {}),
    Op.AbortMultipartUpload: ("DELETE", "?uploadId={upload}", {}),
}
VALUES = {"x-amz-website-redirect-location": "/elsewhere", "x-amz-write-offset-bytes": "0",
          "x-amz-if-match-last-modified-time": "Wed, 01 Jan 2025 00:00:00 GMT", "x-amz-if-match-size": "3",
          "x-amz-if-match-initiated-time": "Wed, 01 Jan 2025 00:00:00 GMT", "x-amz-object-lock-event-hold": "ON",
          "x-amz-object-lock-event-hold-duration-days": "1", "x-amz-object-lock-event-hold-duration-years": "1"}
CASES = [(h, op) for h, (ops, _) in REFUSED_HEADERS.items() for op in sorted(ops)]


def test_every_operation_of_the_table_has_a_request_shape() -> None:
    assert {op for _, op in CASES} <= set(SHAPES)
    assert set(REFUSED_HEADERS) == set(VALUES)


@pytest.mark.parametrize(("header", "op"), CASES, ids=[f"{h}-{op}" for h, op in CASES])
def test_a_refused_header_answers_501_and_changes_nothing(raw: Raw, s3: Any, bucket: str, header: str,
                                                          op: Op) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    s3.put_object(Bucket=bucket, Key="k", Body=b"before")
    method, suffix, extra = SHAPES[op]
    uploads = [s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]] if "{upload}" in suffix else []
    suffix = suffix.format(upload=uploads[0] if uploads else "")
    headers = {k: v.format(bucket=bucket) for k, v in extra.items()} | {header: VALUES[header]}
    status, _, body = raw.request(method, f"/{bucket}/k{suffix}", b"after" if method == "PUT" else b"", headers)
    assert (status, error_code(body)) == (501, "NotImplemented")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"before"
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == uploads


def _account(d: Any) -> str:
    iam = boto3.client("iam", endpoint_url=d.endpoint, aws_access_key_id=d.access_key,
                       aws_secret_access_key=d.secret_key, region_name="us-east-1",
                       config=Config(retries={"max_attempts": 1}))
    return str(iam.get_user()["User"]["Arn"].split(":")[4])


def test_expected_bucket_owner_is_the_appliance_account(s3d: Any, s3: Any, bucket: str) -> None:
    account = _account(s3d)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner=account)
    assert s3.head_object(Bucket=bucket, Key="k", ExpectedBucketOwner=account)["ContentLength"] == 1
    other = "111122223333" if account != "111122223333" else "444455556666"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k2", Body=b"x", ExpectedBucketOwner=other)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="k3", CopySource={"Bucket": bucket, "Key": "k"},
                       ExpectedSourceBucketOwner=other)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["k"]

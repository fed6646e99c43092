"""GetObjectAttributes: ETag, Checksum, ObjectParts (paged, with the parts' checksums),
StorageClass and ObjectSize of single-part and multipart objects, versions, errors and the two
actions AWS authorizes it with."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import boto3
import pytest
from awscrt import checksums as crt
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from s3gw.routing import Op, operation
from tests.s3.conftest import error_code

MIB = 1024 * 1024
ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def attrs(s3: Any, bucket: str, key: str, **kw: Any) -> dict[str, Any]:
    r = s3.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=kw.pop("names", ALL), **kw)
    r.pop("ResponseMetadata")
    return dict(r)


def multipart(s3: Any, bucket: str, key: str, data: list[bytes], alg: str | None = None,
              **create: Any) -> dict[str, Any]:
    extra = {"ChecksumAlgorithm": alg} if alg else {}
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra, **create)["UploadId"]
    parts = []
    for i, d in enumerate(data, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i, Body=d, **extra)
        parts.append({"PartNumber": i, "ETag": r["ETag"], **({f"Checksum{alg}": r[f"Checksum{alg}"]} if alg else {})})
    return dict(s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts}))


def test_single_part_object(s3d: Any, s3: Any, bucket: str) -> None:
    body = os.urandom(3000)
    put = s3.put_object(Bucket=bucket, Key="one", Body=body, ChecksumAlgorithm="CRC64NVME", StorageClass="STANDARD_IA")
    r = attrs(s3, bucket, "one")
    assert r["ETag"] == put["ETag"].strip('"')  # unquoted, as AWS writes it here
    assert r["Checksum"] == {"ChecksumCRC64NVME": put["ChecksumCRC64NVME"], "ChecksumType": "FULL_OBJECT"}
    assert (r["StorageClass"], r["ObjectSize"]) == ("STANDARD_IA", 3000)
    assert "ObjectParts" not in r and "LastModified" in r
    # only what was asked for; no checksum when the object has none
    assert set(attrs(s3, bucket, "one", names=["ObjectSize", "ETag"])) == {"ObjectSize", "ETag", "LastModified"}
    s3d.s3(request_checksum_calculation="when_required").put_object(Bucket=bucket, Key="plain", Body=b"abc")
    r = attrs(s3, bucket, "plain")
    assert "Checksum" not in r and (r["StorageClass"], r["ObjectSize"]) == ("STANDARD", 3)


def test_composite_multipart_parts_and_paging(s3: Any, bucket: str) -> None:
    data = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(10)]
    done = multipart(s3, bucket, "mp", data, "SHA256")
    r = attrs(s3, bucket, "mp")
    composite = base64.b64encode(hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in data)).digest()).decode()
    assert done["ChecksumSHA256"] == f"{composite}-3"
    # AWS reports the composite checksum here without the part count, which ObjectParts gives
    assert r["Checksum"] == {"ChecksumSHA256": composite, "ChecksumType": "COMPOSITE"}
    assert (r["ETag"], r["ObjectSize"]) == (done["ETag"].strip('"'), sum(map(len, data)))
    sums = [base64.b64encode(hashlib.sha256(d).digest()).decode() for d in data]
    parts = r["ObjectParts"]
    assert (parts["TotalPartsCount"], parts["IsTruncated"], parts["MaxParts"]) == (3, False, 1000)
    assert parts["Parts"] == [{"PartNumber": i, "Size": len(d), "ChecksumSHA256": sums[i - 1]}
                              for i, d in enumerate(data, 1)]
    page = attrs(s3, bucket, "mp", names=["ObjectParts"], MaxParts=2)["ObjectParts"]
    assert (page["IsTruncated"], page["NextPartNumberMarker"], [p["PartNumber"] for p in page["Parts"]]) == (
        True, 2, [1, 2])
    page = attrs(s3, bucket, "mp", names=["ObjectParts"], MaxParts=2, PartNumberMarker=2)["ObjectParts"]
    assert (page["IsTruncated"], page["PartNumberMarker"], [p["PartNumber"] for p in page["Parts"]]) == (
        False, 2, [3])


def test_full_object_and_unchecksummed_multipart(s3: Any, bucket: str) -> None:
    data = [os.urandom(5 * MIB), os.urandom(100)]
    multipart(s3, bucket, "full", data, "CRC64NVME")
    r = attrs(s3, bucket, "full")
    whole = base64.b64encode(crt.crc64nvme(b"".join(data)).to_bytes(8, "big")).decode()
    assert r["Checksum"] == {"ChecksumCRC64NVME": whole, "ChecksumType": "FULL_OBJECT"}
    assert [p["ChecksumCRC64NVME"] for p in r["ObjectParts"]["Parts"]] == [
        base64.b64encode(crt.crc64nvme(d).to_bytes(8, "big")).decode() for d in data]
    # without a checksum AWS gives the part count but not the parts
    multipart(s3, bucket, "bare", data)
    r = attrs(s3, bucket, "bare")
    assert "Checksum" not in r and r["ObjectParts"]["TotalPartsCount"] == 2 and "Parts" not in r["ObjectParts"]


def test_versions_delete_markers_and_missing_keys(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"second!")
    assert attrs(s3, bucket, "k")["ObjectSize"] == 7
    old = attrs(s3, bucket, "k", VersionId=v1)
    assert (old["ObjectSize"], old["VersionId"]) == (5, v1)
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as exc:
        attrs(s3, bucket, "k")
    assert code(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        attrs(s3, bucket, "k", VersionId=marker)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    with pytest.raises(ClientError) as exc:
        attrs(s3, bucket, "never")
    assert code(exc) == "NoSuchKey"


def test_attribute_names_are_checked(raw: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    status, _, body = raw.request("GET", f"/{bucket}/k?attributes")
    assert (status, error_code(body)) == (400, "InvalidRequest")
    status, _, body = raw.request("GET", f"/{bucket}/k?attributes", headers={"x-amz-object-attributes": "ETag,Colour"})
    assert (status, error_code(body)) == (400, "InvalidArgument")
    status, _, body = raw.request("GET", f"/{bucket}/k?attributes", headers={"x-amz-object-attributes": "ObjectSize"})
    assert status == 200 and b"<ObjectSize>1</ObjectSize>" in body and b"<GetObjectAttributesResponse" in body


def test_routing() -> None:
    assert operation("GET", "b", "k", {"attributes": ""}, False) is Op.GetObjectAttributes
    assert operation("HEAD", "b", "k", {"attributes": ""}, False) is Op.MethodNotAllowed
    assert operation("GET", "b", "", {"attributes": ""}, False) is Op.UnsupportedSubresource


def test_needs_both_actions(s3d: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    anon = boto3.client("s3", endpoint_url=s3d.endpoint, region_name="us-east-1",
                        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))

    def grant(*actions: str) -> None:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": list(actions), "Resource": f"arn:aws:s3:::{bucket}/*"}]}))

    grant("s3:GetObjectAttributes")
    with pytest.raises(ClientError) as exc:
        attrs(anon, bucket, "k")
    assert code(exc) == "AccessDenied"
    grant("s3:GetObject")
    with pytest.raises(ClientError) as exc:
        attrs(anon, bucket, "k")
    assert code(exc) == "AccessDenied"
    grant("s3:GetObject", "s3:GetObjectAttributes")
    assert attrs(anon, bucket, "k")["ObjectSize"] == 1

"""Multipart uploads through boto3: the full flow, part copy, checks, listing, abort."""

from __future__ import annotations

import hashlib
import os
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_multipart_roundtrip_etag_and_no_upload_left(s3: Any, bucket: str) -> None:
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(123)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="video/x", Metadata={"m": "1"})
    uid = up["UploadId"]
    parts = []
    for i, data in enumerate(parts_data, 1):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=i, Body=data)
        assert r["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        parts.append({"PartNumber": i, "ETag": r["ETag"]})
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert [p["Size"] for p in listed["Parts"]] == [len(d) for d in parts_data]
    page = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid, MaxParts=2)
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 2
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid,
                                                     PartNumberMarker=2)["Parts"]] == [3]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
    want = hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts_data)).hexdigest() + "-3"
    assert done["ETag"] == f'"{want}"'
    g = s3.get_object(Bucket=bucket, Key="mp")
    assert g["Body"].read() == b"".join(parts_data)
    assert g["ContentType"] == "video/x" and g["Metadata"] == {"m": "1"}
    assert s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)["Body"].read() == parts_data[1]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert code(exc) == "NoSuchUpload"


def test_a_copy_keeps_the_parts_its_etag_names(s3: Any, bucket: str) -> None:
    """A copy by reference keeps the source's "-N" ETag, so it keeps its parts (partNumber
    reads, PartsCount, ObjectParts) and their checksums, with the metadata copied or replaced."""
    data = [os.urandom(5 * MIB), b"tail" * 10]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")["UploadId"]
    parts = [{"PartNumber": i, "ETag": s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=i, Body=d,
                                                       ChecksumAlgorithm="CRC32")["ETag"],
              "ChecksumCRC32": s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"][i - 1]["ChecksumCRC32"]}
             for i, d in enumerate(data, 1)]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
    src = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    for key, extra in (("copy", {}), ("replaced", {"MetadataDirective": "REPLACE", "Metadata": {"n": "1"}})):
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": "mp"}, **extra)
        head = s3.head_object(Bucket=bucket, Key=key, PartNumber=2, ChecksumMode="ENABLED")
        assert head["ETag"] == src["ETag"] and head["PartsCount"] == 2 and head["ContentLength"] == len(data[1])
        assert s3.get_object(Bucket=bucket, Key=key, PartNumber=1)["Body"].read() == data[0]
        whole = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert whole["ChecksumCRC32"] == src["ChecksumCRC32"]  # the composite "-2" checksum
        attrs = s3.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["ObjectParts"])
        assert attrs["ObjectParts"]["TotalPartsCount"] == 2


def test_complete_location_is_the_url_of_the_object(s3: Any, s3d: Any, raw: Any, bucket: str) -> None:
    """CompleteMultipartUpload's Location is a URL that names the new object: the key URL-encoded
    (it was put in raw: a key with a space, '%' or '#' made no URL, or another object's)."""
    key = "dir/a b+c%41d#e\u00e9"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=b"located")["ETag"]
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert done["Key"] == key
    assert done["Location"] == f"{s3d.endpoint}/{bucket}/{quote(key)}"
    status, _, body = raw.request("GET", urlsplit(done["Location"]).path)
    assert (status, body) == (200, b"located")


def test_complete_errors(s3: Any, bucket: str) -> None:
    uid = s3.create_multipart_upload(Bucket=bucket, Key="e")["UploadId"]
    small = [s3.upload_part(Bucket=bucket, Key="e", UploadId=uid, PartNumber=n, Body=b"x" * 100)["ETag"]
             for n in (1, 2)]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": small[0]}, {"PartNumber": 2, "ETag": small[1]}]})
    assert code(exc) == "EntityTooSmall"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": small[1]}, {"PartNumber": 1, "ETag": small[0]}]})
    assert code(exc) == "InvalidPartOrder"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]})
    assert code(exc) == "InvalidPart"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 7, "ETag": small[0]}]})
    assert code(exc) == "InvalidPart"
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="e", UploadId=uid, PartNumber=10001, Body=b"x")
    assert code(exc) == "InvalidArgument"
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="e", UploadId="nope", PartNumber=1, Body=b"x")
    assert code(exc) == "NoSuchUpload"
    # a single small part is fine (the last part may be small)
    s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": small[0]}]})
    assert s3.get_object(Bucket=bucket, Key="e")["Body"].read() == b"x" * 100


def test_abort_and_list_uploads(s3: Any, bucket: str) -> None:
    ids = {}
    for k in ["u/a", "u/b", "v/c", "w"]:
        ids[k] = s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]
    r = s3.list_multipart_uploads(Bucket=bucket)
    assert sorted(u["Key"] for u in r["Uploads"]) == ["u/a", "u/b", "v/c", "w"]
    r = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [c["Prefix"] for c in r["CommonPrefixes"]] == ["u/", "v/"]
    assert [u["Key"] for u in r["Uploads"]] == ["w"]
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="u/")
    assert [u["Key"] for u in r["Uploads"]] == ["u/a", "u/b"]
    r = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert r["IsTruncated"] and len(r["Uploads"]) == 2
    r2 = s3.list_multipart_uploads(Bucket=bucket, KeyMarker=r["NextKeyMarker"],
                                   UploadIdMarker=r["NextUploadIdMarker"])
    assert [u["Key"] for u in r2["Uploads"]] == ["v/c", "w"]
    s3.abort_multipart_upload(Bucket=bucket, Key="u/a", UploadId=ids["u/a"])
    with pytest.raises(ClientError) as exc:
        s3.abort_multipart_upload(Bucket=bucket, Key="u/a", UploadId=ids["u/a"])
    assert code(exc) == "NoSuchUpload"
    assert "u/a" not in [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]]
    # several uploads of one key list in initiation order (S3's order), page by page too
    same = [s3.create_multipart_upload(Bucket=bucket, Key="same")["UploadId"] for _ in range(8)]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket, Prefix="same")["Uploads"]] == same
    paged, marker = [], {}
    while True:
        r = s3.list_multipart_uploads(Bucket=bucket, Prefix="same", MaxUploads=3, **marker)
        paged += [u["UploadId"] for u in r.get("Uploads", [])]
        if not r["IsTruncated"]:
            break
        marker = {"KeyMarker": r["NextKeyMarker"], "UploadIdMarker": r["NextUploadIdMarker"]}
    assert paged == same


def test_upload_part_copy_with_range(s3: Any, bucket: str) -> None:
    src = os.urandom(16 * MIB)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{6 * MIB - 1}")
    p2 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "src"},
                             CopySourceRange=f"bytes={8 * MIB}-{14 * MIB - 1}")
    assert p1["CopyPartResult"]["ETag"] == f'"{hashlib.md5(src[:6 * MIB]).hexdigest()}"'
    p3 = s3.upload_part(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=3, Body=b"tail")
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]},
        {"PartNumber": 3, "ETag": p3["ETag"]}]})
    got = s3.get_object(Bucket=bucket, Key="assembled")["Body"].read()
    assert got == src[:6 * MIB] + src[8 * MIB:14 * MIB] + b"tail"
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(Bucket=bucket, Key="assembled2", UploadId=s3.create_multipart_upload(
            Bucket=bucket, Key="assembled2")["UploadId"], PartNumber=1, CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange=f"bytes=0-{20 * MIB}")
    # AWS: 400 InvalidArgument, not the 416 InvalidRange of a GET
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (code(exc), exc.value.response["Error"]["Message"]) == (
        "InvalidArgument", f"Range specified is not valid for source object of size: {16 * MIB}")
    assert exc.value.response["Error"]["ArgumentValue"] == f"bytes=0-{20 * MIB}"


def test_multipart_with_checksums(s3: Any, bucket: str) -> None:
    data = [os.urandom(5 * MIB), os.urandom(1000)]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ck", ChecksumAlgorithm="CRC32")["UploadId"]
    parts = []
    for i, d in enumerate(data, 1):
        r = s3.upload_part(Bucket=bucket, Key="ck", UploadId=uid, PartNumber=i, Body=d, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": i, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="ck", UploadId=uid, MultipartUpload={"Parts": parts})
    assert done["ChecksumCRC32"].endswith("-2")
    g = s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert g["Body"].read() == b"".join(data)

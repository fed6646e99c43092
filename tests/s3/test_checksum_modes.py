"""Checksums as AWS defines them: BadDigest for every mismatch, and multipart uploads with a
checksum algorithm and type (COMPOSITE "-N" or FULL_OBJECT, CRC64NVME included)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from typing import Any

import pytest
from awscrt import checksums as crt
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.s3.conftest import error_code

MIB = 1024 * 1024
DIGESTS = {
    "CRC32": lambda d: crt.crc32(d).to_bytes(4, "big"),
    "CRC32C": lambda d: crt.crc32c(d).to_bytes(4, "big"),
    "CRC64NVME": lambda d: crt.crc64nvme(d).to_bytes(8, "big"),
    "SHA1": lambda d: hashlib.sha1(d).digest(),
    "SHA256": lambda d: hashlib.sha256(d).digest(),
}


def b64(alg: str, data: bytes) -> str:
    return base64.b64encode(DIGESTS[alg](data)).decode()


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def upload_parts(s3: Any, bucket: str, key: str, uid: str, data: list[bytes], alg: str) -> list[dict[str, Any]]:
    parts = []
    for i, d in enumerate(data, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i, Body=d, ChecksumAlgorithm=alg)
        assert r[f"Checksum{alg}"] == b64(alg, d)
        parts.append({"PartNumber": i, "ETag": r["ETag"], f"Checksum{alg}": r[f"Checksum{alg}"]})
    return parts


# --- BadDigest ------------------------------------------------------------------------------------


def test_checksum_mismatches_are_bad_digest(s3: Any, raw: Any, bucket: str) -> None:
    body = b"hello checksums"
    # the checksum sent is not of the algorithm the SDK header names
    status, _, resp = raw.request("PUT", f"/{bucket}/k", body, headers={
        "x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-crc32c": b64("CRC32C", body)})
    assert (status, error_code(resp)) == (400, "BadDigest")
    for alg in DIGESTS:
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=bucket, Key="k", Body=body, **{f"Checksum{alg}": b64(alg, b"other")})
        assert code(exc) == "BadDigest" and exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=body,
                       ChecksumCRC32=b64("CRC32", b"other"))
    assert code(exc) == "BadDigest"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="k")
    assert exc.value.response["Error"]["Code"] == "404"


def test_composite_completion_checked_against_the_parts(s3: Any, bucket: str) -> None:
    data = [os.urandom(5 * MIB), os.urandom(1000)]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="c", ChecksumAlgorithm="SHA256")["UploadId"]
    parts = upload_parts(s3, bucket, "c", uid, data, "SHA256")
    composite = base64.b64encode(hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in data)).digest())
    expected = f"{composite.decode()}-2"
    # the object's composite checksum in the completion's header: a wrong one is BadDigest
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=uid, MultipartUpload={"Parts": parts},
                                     ChecksumSHA256=f"{b64('SHA256', b'x')}-2")
    assert code(exc) == "BadDigest"
    # a part checksum that is not the part's is InvalidPart; a missing one InvalidRequest
    wrong = [dict(parts[0], ChecksumSHA256=b64("SHA256", b"x")), parts[1]]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=uid, MultipartUpload={"Parts": wrong})
    assert code(exc) == "InvalidPart"
    bare = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=uid, MultipartUpload={"Parts": bare})
    assert code(exc) == "InvalidRequest" and "missing for part 1" in str(exc.value)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=uid, MultipartUpload={"Parts": parts},
                                        ChecksumSHA256=expected)
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (expected, "COMPOSITE")
    h = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert (h["ChecksumSHA256"], h["ChecksumType"]) == (expected, "COMPOSITE")
    # a part of a composite object reports that part's checksum
    p2 = s3.get_object(Bucket=bucket, Key="c", PartNumber=2, ChecksumMode="ENABLED")
    assert p2["Body"].read() == data[1] and p2["ChecksumSHA256"] == b64("SHA256", data[1])


@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_multipart(s3: Any, bucket: str, alg: str) -> None:
    data = [os.urandom(5 * MIB), os.urandom(5 * MIB + 7), os.urandom(3)]
    whole = b"".join(data)
    kwargs: dict[str, str] = {"ChecksumAlgorithm": alg}
    if alg != "CRC64NVME":  # CRC64NVME is full-object by default; the others composite
        kwargs["ChecksumType"] = "FULL_OBJECT"
    created = s3.create_multipart_upload(Bucket=bucket, Key=alg, **kwargs)
    assert (created["ChecksumAlgorithm"], created["ChecksumType"]) == (alg, "FULL_OBJECT")
    uid = created["UploadId"]
    parts = upload_parts(s3, bucket, alg, uid, data, alg)
    listed = s3.list_parts(Bucket=bucket, Key=alg, UploadId=uid)
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == (alg, "FULL_OBJECT")
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key=alg, UploadId=uid, MultipartUpload={"Parts": parts},
                                     ChecksumType="FULL_OBJECT", **{f"Checksum{alg}": b64(alg, whole[1:])})
    assert code(exc) == "BadDigest"
    with pytest.raises(ClientError) as exc:  # the upload's mode, not another
        s3.complete_multipart_upload(Bucket=bucket, Key=alg, UploadId=uid, MultipartUpload={"Parts": parts},
                                     ChecksumType="COMPOSITE")
    assert code(exc) == "InvalidRequest"
    done = s3.complete_multipart_upload(Bucket=bucket, Key=alg, UploadId=uid, MultipartUpload={"Parts": parts},
                                        ChecksumType="FULL_OBJECT", MpuObjectSize=len(whole),
                                        **{f"Checksum{alg}": b64(alg, whole)})
    assert (done[f"Checksum{alg}"], done["ChecksumType"]) == (b64(alg, whole), "FULL_OBJECT")
    g = s3.get_object(Bucket=bucket, Key=alg, ChecksumMode="ENABLED")
    assert g["Body"].read() == whole  # botocore checks the full-object checksum as it reads
    assert (g[f"Checksum{alg}"], g["ChecksumType"]) == (b64(alg, whole), "FULL_OBJECT")
    # a part of a full-object upload has no checksum of its own to report
    assert f"Checksum{alg}" not in s3.head_object(Bucket=bucket, Key=alg, PartNumber=1, ChecksumMode="ENABLED")


def test_full_object_checksum_from_s3transfer(s3: Any, bucket: str) -> None:
    """boto3's upload_fileobj with a whole-file checksum makes a FULL_OBJECT upload and states
    the checksum on completion."""
    data = os.urandom(11 * MIB)
    cfg = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_fileobj(io.BytesIO(data), bucket, "t", Config=cfg, ExtraArgs={"ChecksumCRC32": b64("CRC32", data)})
    h = s3.head_object(Bucket=bucket, Key="t", ChecksumMode="ENABLED")
    assert (h["ChecksumCRC32"], h["ChecksumType"], h["ETag"].endswith('-3"')) == (b64("CRC32", data), "FULL_OBJECT",
                                                                                   True)
    with pytest.raises(ClientError) as exc:
        s3.upload_fileobj(io.BytesIO(data), bucket, "t2", Config=cfg, ExtraArgs={"ChecksumCRC32": b64("CRC32", b"")})
    assert code(exc) == "BadDigest"


def test_checksum_type_and_algorithm_must_go_together(s3: Any, bucket: str) -> None:
    for kwargs in ({"ChecksumAlgorithm": "SHA256", "ChecksumType": "FULL_OBJECT"},
                   {"ChecksumAlgorithm": "SHA1", "ChecksumType": "FULL_OBJECT"},
                   {"ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "COMPOSITE"},
                   {"ChecksumType": "FULL_OBJECT"}):
        with pytest.raises(ClientError) as exc:
            s3.create_multipart_upload(Bucket=bucket, Key="x", **kwargs)
        assert code(exc) == "InvalidRequest", kwargs
    created = s3.create_multipart_upload(Bucket=bucket, Key="x", ChecksumAlgorithm="CRC32C")
    assert (created["ChecksumAlgorithm"], created["ChecksumType"]) == ("CRC32C", "COMPOSITE")
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["ChecksumAlgorithm"], u["ChecksumType"]) for u in uploads] == [("CRC32C", "COMPOSITE")]
    # an upload without an algorithm takes no object checksum on completion
    uid = s3.create_multipart_upload(Bucket=bucket, Key="plain")["UploadId"]
    r = s3.upload_part(Bucket=bucket, Key="plain", UploadId=uid, PartNumber=1, Body=b"abc")
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="plain", UploadId=uid, ChecksumCRC32=b64("CRC32", b"abc"),
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]})
    assert code(exc) == "InvalidRequest"


def test_copied_parts_get_the_upload_checksum(s3: Any, bucket: str) -> None:
    src = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst", ChecksumAlgorithm="CRC32C")["UploadId"]
    copied = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1,
                                 CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{5 * MIB - 1}")
    assert copied["CopyPartResult"]["ChecksumCRC32C"] == b64("CRC32C", src[:5 * MIB])
    r = s3.upload_part(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=2, Body=src[5 * MIB:])
    assert r["ChecksumCRC32C"] == b64("CRC32C", src[5 * MIB:])  # computed though the client sent none
    parts = [{"PartNumber": 1, "ETag": copied["CopyPartResult"]["ETag"],
              "ChecksumCRC32C": copied["CopyPartResult"]["ChecksumCRC32C"]},
             {"PartNumber": 2, "ETag": r["ETag"], "ChecksumCRC32C": r["ChecksumCRC32C"]}]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=uid, MultipartUpload={"Parts": parts},
                                        MpuObjectSize=len(src))
    raw_sums = DIGESTS["CRC32C"](src[:5 * MIB]) + DIGESTS["CRC32C"](src[5 * MIB:])
    assert done["ChecksumCRC32C"] == f"{b64('CRC32C', raw_sums)}-2"
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == src


def test_object_size_must_match(s3: Any, bucket: str) -> None:
    uid = s3.create_multipart_upload(Bucket=bucket, Key="s")["UploadId"]
    r = s3.upload_part(Bucket=bucket, Key="s", UploadId=uid, PartNumber=1, Body=b"abc")
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="s", UploadId=uid, MpuObjectSize=4,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]})
    assert code(exc) == "InvalidRequest"

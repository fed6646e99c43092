"""Object operations through boto3 against the real daemon: put/get/head/delete, metadata,
ranges, conditional requests, checksums, copy, tagging, DeleteObjects, presigned URLs."""

from __future__ import annotations

import base64
import hashlib
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
from botocore.exceptions import ClientError

from tests.polling import url_refused, wait_for


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def test_put_get_head_delete_with_metadata(s3: Any, bucket: str) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)
    r = s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=body, ContentType="application/x-test",
                      Metadata={"color": "blue", "Mixed-Case": "v"}, CacheControl="max-age=60",
                      ContentDisposition='attachment; filename="x.bin"', ContentEncoding="identity",
                      ContentLanguage="en", Expires=datetime(2030, 1, 1, tzinfo=UTC))
    assert r["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    g = s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert g["Body"].read() == body
    assert g["ContentType"] == "application/x-test"
    assert g["Metadata"] == {"color": "blue", "mixed-case": "v"}
    assert g["CacheControl"] == "max-age=60"
    assert g["ContentDisposition"] == 'attachment; filename="x.bin"'
    assert g["ContentEncoding"] == "identity"
    assert g["ContentLanguage"] == "en"
    assert g["ETag"] == r["ETag"]
    h = s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert h["ContentLength"] == len(body)
    assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-id-2"]
    s3.delete_object(Bucket=bucket, Key="dir/obj.bin")
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert status(exc) == 404
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert code(exc) == "NoSuchKey"
    s3.delete_object(Bucket=bucket, Key="never-existed")  # 204, like S3


def test_empty_object_and_default_content_type(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    g = s3.get_object(Bucket=bucket, Key="empty")
    assert g["Body"].read() == b""
    assert g["ContentLength"] == 0
    assert g["ContentType"] == "binary/octet-stream"
    assert g["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'


def test_unicode_and_odd_keys(s3: Any, bucket: str) -> None:
    keys = ["déjà vu/ünïcode ✓.txt", "a+b=c&d?e#f", "  spaces  ", "x" * 1024, "/leading/slash", "per%cent",
            "tab\tkey", "new\nline"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed, key=lambda s: s.encode()) == sorted(keys, key=lambda s: s.encode())


def test_key_too_long(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="x" * 1025, Body=b"x")
    assert code(exc) == "KeyTooLongError"
    assert status(exc) == 400


def test_ranges(s3: Any, bucket: str) -> None:
    body = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    for spec, want in [("bytes=0-0", body[:1]), ("bytes=10-19", body[10:20]), ("bytes=10000-", body[10000:]),
                       ("bytes=-5", body[-5:]), ("bytes=100-999999", body[100:])]:
        g = s3.get_object(Bucket=bucket, Key="r", Range=spec)
        assert g["Body"].read() == want, spec
        assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
        start = len(body) - len(want) if spec.startswith("bytes=-") else int(spec[6:].split("-")[0])
        assert g["ContentRange"] == f"bytes {start}-{start + len(want) - 1}/{len(body)}"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert code(exc) == "InvalidRange"
    assert status(exc) == 416
    g = s3.get_object(Bucket=bucket, Key="r", Range="bytes=5-2")  # invalid: ignored
    assert g["Body"].read() == body
    # RFC 9110: the unit is case-insensitive and the range set may have whitespace around it
    for spec in ("Bytes=10-19", "BYTES=10-19", "bytes= 10-19", "bytes=10-19 "):
        g = s3.get_object(Bucket=bucket, Key="r", Range=spec)
        assert (g["ResponseMetadata"]["HTTPStatusCode"], g["Body"].read()) == (206, body[10:20]), spec
    # positions beyond int()'s 4,300 digits were a 500 InternalError (a ValueError)
    huge = "9" * 5000
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={huge}-")
    assert code(exc) == "InvalidRange"
    for spec in (f"bytes=100-{huge}", f"bytes=-{huge}"):
        g = s3.get_object(Bucket=bucket, Key="r", Range=spec)
        want = body[100:] if spec.startswith("bytes=100") else body
        assert (g["ResponseMetadata"]["HTTPStatusCode"], g["Body"].read()) == (206, want), spec[:12]


def test_range_positions_are_ascii_digits() -> None:
    """`\\d` also matched other scripts' digits, which int() takes: a malformed range, ignored."""
    from s3gw.objmeta import parse_range

    assert parse_range("bytes=\u0661-\u0662", 100) is None
    assert parse_range("bytes=1-2", 100) == (1, 3)


def test_response_overrides(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain")
    g = s3.get_object(Bucket=bucket, Key="o", ResponseContentType="image/png", ResponseCacheControl="no-cache",
                      ResponseContentDisposition="inline", ResponseContentLanguage="fr",
                      ResponseContentEncoding="gzip", ResponseExpires=datetime(2031, 1, 1, tzinfo=UTC))
    assert g["ContentType"] == "image/png"
    assert g["CacheControl"] == "no-cache"
    assert g["ContentDisposition"] == "inline"
    assert g["ContentLanguage"] == "fr"
    assert g["ContentEncoding"] == "gzip"


def test_conditional_get_and_head(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"data")["ETag"]
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime.now(UTC) + timedelta(days=1)
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"data"
    for kwargs, want in [({"IfMatch": '"nope"'}, 412), ({"IfNoneMatch": etag}, 304),
                         ({"IfModifiedSince": future}, 304), ({"IfUnmodifiedSince": past}, 412)]:
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key="c", **kwargs)
        assert status(exc) == want, kwargs
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket=bucket, Key="c", **kwargs)
        assert status(exc) == want, kwargs
    # If-Match true wins over a failing If-Unmodified-Since; If-None-Match false beats If-Modified-Since
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=past)["Body"].read() == b"data"
    s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"other"', IfModifiedSince=past)
    # If-Match compares strongly (RFC 9110 13.1.1): a weak tag never matches; If-None-Match weakly
    weak = "W/" + etag
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket, Key="c", IfMatch=weak)
        assert status(exc) == 412
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket, Key="c", IfNoneMatch=weak)
        assert status(exc) == 304
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "c"}, CopySourceIfMatch=weak)
    assert status(exc) == 412


def test_conditional_put(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="p", Body=b"one", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="p", Body=b"two", IfNoneMatch="*")
    assert status(exc) == 412
    assert code(exc) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="p", Body=b"two", IfMatch='"0123"')
    assert status(exc) == 412
    with pytest.raises(ClientError) as exc:  # a weak tag never satisfies If-Match
        s3.put_object(Bucket=bucket, Key="p", Body=b"two", IfMatch="W/" + etag)
    assert status(exc) == 412
    s3.put_object(Bucket=bucket, Key="p", Body=b"three", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="p")["Body"].read() == b"three"


def test_conditional_writes_over_a_delete_marker(s3: Any, bucket: str) -> None:
    """A delete marker as current version is no object (GET is 404 NoSuchKey; the engine's
    current-version record never holds a marker), as conditional deletes read it: If-Match is
    404 NoSuchKey for "*" and for the ETag under the marker, as for a key that never existed;
    If-None-Match: * writes. PutObject, CopyObject and CompleteMultipartUpload alike, and a
    refused one writes nothing."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"source")["ETag"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    s3.delete_object(Bucket=bucket, Key="k")
    up = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="k", UploadId=up, PartNumber=1, Body=b"part")["ETag"]
    writes = {
        "put": lambda **kw: s3.put_object(Bucket=bucket, Body=b"two", **kw),
        "copy": lambda **kw: s3.copy_object(Bucket=bucket, CopySource={"Bucket": bucket, "Key": "src"}, **kw),
        "complete": lambda **kw: s3.complete_multipart_upload(
            Bucket=bucket, UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part}]}, **kw),
    }
    for key in ("k", "never-written"):
        for name, write in writes.items():
            if name == "complete" and key != "k":
                continue  # the upload is k's
            for cond in ("*", etag):
                with pytest.raises(ClientError) as exc:
                    write(Key=key, IfMatch=cond)
                assert (status(exc), code(exc)) == (404, "NoSuchKey"), (key, name, cond)
    versions = s3.list_object_versions(Bucket=bucket, Prefix="k")
    assert len(versions["Versions"]) == 1 and len(versions["DeleteMarkers"]) == 1
    s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"


async def test_concurrent_conditional_puts_one_winner(s3d: Any, bucket: str) -> None:
    clients = [s3d.s3() for _ in range(8)]
    outcomes: list[int] = []

    def attempt(i: int) -> None:
        try:
            clients[i].put_object(Bucket=bucket, Key="race", Body=f"writer {i}".encode() * 1000, IfNoneMatch="*")
            outcomes.append(200)
        except ClientError as e:
            outcomes.append(int(e.response["ResponseMetadata"]["HTTPStatusCode"]))

    async with trio.open_nursery() as n:
        for i in range(8):
            n.start_soon(trio.to_thread.run_sync, attempt, i)
    assert sorted(outcomes) == [200] + [412] * 7
    body = clients[0].get_object(Bucket=bucket, Key="race")["Body"].read()
    assert body.startswith(b"writer ")


@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_checksums_stored_and_returned(s3: Any, bucket: str, alg: str) -> None:
    body = os.urandom(100_000)
    r = s3.put_object(Bucket=bucket, Key=f"ck-{alg}", Body=body, ChecksumAlgorithm=alg)
    assert r[f"Checksum{alg}"]
    g = s3.get_object(Bucket=bucket, Key=f"ck-{alg}", ChecksumMode="ENABLED")
    assert g["Body"].read() == body  # botocore validates the returned checksum while reading
    assert g[f"Checksum{alg}"] == r[f"Checksum{alg}"]
    h = s3.head_object(Bucket=bucket, Key=f"ck-{alg}", ChecksumMode="ENABLED")
    assert h[f"Checksum{alg}"] == r[f"Checksum{alg}"]
    assert f"Checksum{alg}" not in s3.head_object(Bucket=bucket, Key=f"ck-{alg}")


def test_wrong_checksum_and_md5_rejected(s3: Any, bucket: str) -> None:
    wrong = base64.b64encode(b"\0\0\0\0").decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"hello", ChecksumCRC32=wrong)
    assert code(exc) == "BadDigest"
    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"hello", ContentMD5=bad_md5)
    assert code(exc) == "BadDigest"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"hello", ContentMD5="not-base64!")
    assert code(exc) == "InvalidDigest"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="bad")
    assert status(exc) == 404  # nothing became visible
    good_md5 = base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    s3.put_object(Bucket=bucket, Key="good", Body=b"hello", ContentMD5=good_md5)


def test_metadata_limit(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 2100})
    assert code(exc) == "MetadataTooLarge"
    s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"ok": "v" * 1900})


def test_copy_object(s3: Any, bucket: str) -> None:
    body = os.urandom(200_000)
    src = s3.put_object(Bucket=bucket, Key="src", Body=body, ContentType="text/a", Metadata={"k": "v"},
                        Tagging="t1=v1")
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == src["ETag"]
    g = s3.get_object(Bucket=bucket, Key="dst")
    assert g["Body"].read() == body
    assert g["ContentType"] == "text/a"
    assert g["Metadata"] == {"k": "v"}
    assert s3.get_object_tagging(Bucket=bucket, Key="dst")["TagSet"] == [{"Key": "t1", "Value": "v1"}]
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   ContentType="text/b", Metadata={"n": "w"}, TaggingDirective="REPLACE", Tagging="t2=v2")
    g = s3.head_object(Bucket=bucket, Key="dst2")
    assert (g["ContentType"], g["Metadata"]) == ("text/b", {"n": "w"})
    assert s3.get_object_tagging(Bucket=bucket, Key="dst2")["TagSet"] == [{"Key": "t2", "Value": "v2"}]
    with pytest.raises(ClientError) as exc:  # to itself without changes
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert code(exc) == "InvalidRequest"
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"updated": "yes"})
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"updated": "yes"}
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == body
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="d3", CopySource={"Bucket": bucket, "Key": "src"},
                       CopySourceIfMatch='"nope"')
    assert status(exc) == 412
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="d3", CopySource={"Bucket": bucket, "Key": "src"},
                       CopySourceIfNoneMatch=src["ETag"])
    assert status(exc) == 412
    s3.copy_object(Bucket=bucket, Key="d3", CopySource={"Bucket": bucket, "Key": "src"},
                   CopySourceIfMatch=src["ETag"], CopySourceIfModifiedSince=datetime(2000, 1, 1, tzinfo=UTC))
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="d4", CopySource={"Bucket": bucket, "Key": "missing"})
    assert code(exc) == "NoSuchKey"


def test_tagging(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=two%20words")
    assert s3.head_object(Bucket=bucket, Key="t")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]}
    assert tags == {"a": "1", "b": "two words"}
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "z", "Value": "9"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "z", "Value": "9"}]
    assert s3.get_object(Bucket=bucket, Key="t")["Body"].read() == b"x"
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    too_many = {"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]}
    with pytest.raises(ClientError) as exc:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging=too_many)
    assert code(exc) == "InvalidTag"
    with pytest.raises(ClientError) as exc:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "k" * 129, "Value": "v"}]})
    assert code(exc) == "InvalidTag"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="t2", Body=b"x", Tagging="&".join(f"k{i}=v" for i in range(11)))
    assert code(exc) == "InvalidTag"
    with pytest.raises(ClientError) as exc:
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    assert code(exc) == "NoSuchKey"


def test_delete_objects_quiet_and_verbose(s3: Any, bucket: str) -> None:
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/0"}, {"Key": "d/1"}, {"Key": "nope"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["d/0", "d/1", "nope"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/2"}, {"Key": "d/3"}], "Quiet": True})
    assert "Deleted" not in r and "Errors" not in r
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d/4"]


def test_presigned_get_and_put(s3d: Any, bucket: str) -> None:
    s3 = s3d.s3(signature_version="s3v4")  # boto3 presigns with SigV2 unless told; we speak SigV4
    s3.put_object(Bucket=bucket, Key="pre sign/ü", Body=b"presigned body")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre sign/ü"}, ExpiresIn=60)
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"presigned body"
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=60)
    req = urllib.request.Request(put_url, data=b"uploaded", method="PUT")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"uploaded"
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=1)
    wait_for(lambda: url_refused(expired), timeout=30, what="the presigned URL to expire")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(expired)
    assert exc.value.code == 403
    assert b"<Code>AccessDenied</Code>" in exc.value.read()
    tampered = url.replace("Signature=", "Signature=0")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(tampered[:-1])
    assert exc.value.code == 403


def test_wrong_secret_and_unknown_key(s3d: Any, bucket: str) -> None:
    import boto3
    from botocore.config import Config

    for ak, sk, want in [(s3d.access_key, "wrong-secret", "SignatureDoesNotMatch"),
                         ("AKNOSUCHKEY", "whatever", "InvalidAccessKeyId")]:
        c = boto3.client("s3", endpoint_url=s3d.endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                         region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                                retries={"max_attempts": 1}))
        with pytest.raises(ClientError) as exc:
            c.list_objects_v2(Bucket=bucket)
        assert code(exc) == want
        assert status(exc) == 403


def test_large_object_streams(s3: Any, bucket: str) -> None:
    body = os.urandom(40 * 1024 * 1024 + 3)
    s3.put_object(Bucket=bucket, Key="big", Body=body)
    got = s3.get_object(Bucket=bucket, Key="big")["Body"]
    h = hashlib.sha256()
    n = 0
    for piece in iter(lambda: got.read(1 << 20), b""):
        h.update(piece)
        n += len(piece)
    assert n == len(body)
    assert h.digest() == hashlib.sha256(body).digest()


def test_acls_are_owner_only_when_disabled(s3: Any, bucket: str) -> None:
    """A bucket with ACLs disabled (BucketOwnerEnforced): owner-only canned ACLs pass, grants are refused."""
    s3.put_bucket_ownership_controls(Bucket=bucket,
                                     OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.put_object(Bucket=bucket, Key="a", Body=b"x", ACL="private")
    s3.put_object(Bucket=bucket, Key="b", Body=b"x", ACL="bucket-owner-full-control")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="c", Body=b"x", ACL="public-read")
    assert code(exc) == "AccessControlListNotSupported"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="c", Body=b"x", GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"')
    assert code(exc) == "AccessControlListNotSupported"
    assert "c" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    s3.put_object_acl(Bucket=bucket, Key="a", ACL="private")
    with pytest.raises(ClientError) as exc:
        s3.put_object_acl(Bucket=bucket, Key="a", ACL="public-read")
    assert code(exc) == "AccessControlListNotSupported"
    owner = s3.get_object_acl(Bucket=bucket, Key="a")["Owner"]
    with pytest.raises(ClientError) as exc:
        s3.put_object_acl(Bucket=bucket, Key="a", AccessControlPolicy={
            "Owner": owner, "Grants": [{"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                                        "Permission": "READ"}]})
    assert code(exc) == "AccessControlListNotSupported"
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    assert code(exc) == "AccessControlListNotSupported"
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"x"

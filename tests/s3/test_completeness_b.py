"""Issue 12, part B: S3 behaviours real clients hit, checked through boto3 (and raw requests
where boto3 cannot make the request): repeated completion, conditional writes, version ids in
unversioned buckets, partNumber reads, bad percent-escapes, racing part uploads, bucket
tagging, ListBuckets paging, listing options, the bucket's region and CopyObject onto itself."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.s3.conftest import Raw, error_code

MIB = 1024 * 1024
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def headers_of(resp: dict[str, Any]) -> dict[str, str]:
    return dict(resp["ResponseMetadata"]["HTTPHeaders"])


def _multipart(s3: Any, bucket: str, key: str, datas: list[bytes]) -> tuple[str, list[dict[str, Any]]]:
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n,
                                                      Body=d)["ETag"]} for n, d in enumerate(datas, 1)]
    return uid, parts


# --- 1. CompleteMultipartUpload sent again -----------------------------------------------------


@pytest.mark.parametrize("versioned", [False, True])
def test_repeated_completion_answers_the_same(s3: Any, bucket: str, versioned: bool) -> None:
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    uid, parts = _multipart(s3, bucket, "mp", [os.urandom(5 * MIB), b"tail"])
    first = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
    again = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
    for field in ("ETag", "Location", "Bucket", "Key"):
        assert again[field] == first[field]
    assert again.get("VersionId") == first.get("VersionId")
    assert (first.get("VersionId") is not None) == versioned
    # another part list is not the same completion
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts[:1]})
    assert code(exc) == "NoSuchUpload"
    # once the version it created is no longer the current one, the upload is just gone
    s3.put_object(Bucket=bucket, Key="mp", Body=b"newer")
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
    assert code(exc) == "NoSuchUpload"
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"newer"


def test_repeated_completion_after_a_delete_is_no_such_upload(s3: Any, bucket: str) -> None:
    uid, parts = _multipart(s3, bucket, "gone", [b"only"])
    s3.complete_multipart_upload(Bucket=bucket, Key="gone", UploadId=uid, MultipartUpload={"Parts": parts})
    s3.delete_object(Bucket=bucket, Key="gone")
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="gone", UploadId=uid, MultipartUpload={"Parts": parts})
    assert code(exc) == "NoSuchUpload"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="gone")
    assert status(exc) == 404


# --- 2. conditional writes ---------------------------------------------------------------------


def test_if_none_match_with_an_etag_on_put(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch=etag)
    assert (status(exc), code(exc)) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as exc:  # a list that holds the current ETag
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch=f'"{"0" * 32}", {etag}')
    assert status(exc) == 412
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch=f'"{"0" * 32}"')  # another ETag: proceed
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    x_etag = s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfNoneMatch=etag)["ETag"]  # nothing there
    with pytest.raises(ClientError) as exc:  # a copy onto it is a write like any other
        s3.copy_object(Bucket=bucket, Key="absent", CopySource={"Bucket": bucket, "Key": "k"}, IfNoneMatch=x_etag)
    assert status(exc) == 412
    s3.copy_object(Bucket=bucket, Key="absent", CopySource={"Bucket": bucket, "Key": "k"}, IfNoneMatch=f'"{"0" * 32}"')
    assert s3.get_object(Bucket=bucket, Key="absent")["Body"].read() == b"two"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"three", IfNoneMatch="*")
    assert status(exc) == 412


def test_if_none_match_with_an_etag_on_complete(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="mp", Body=b"old")["ETag"]
    uid, parts = _multipart(s3, bucket, "mp", [b"new"])
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts},
                                     IfNoneMatch=etag)
    assert (status(exc), code(exc)) == (412, "PreconditionFailed")
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts},
                                        IfNoneMatch=f'"{"1" * 32}"')
    assert done["ETag"].endswith('-1"')
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"new"


def test_if_match_on_a_missing_key_is_no_such_key(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="nothing", Body=b"x", IfMatch=f'"{"0" * 32}"')
    assert (status(exc), code(exc)) == (404, "NoSuchKey")
    uid, parts = _multipart(s3, bucket, "nothing", [b"x"])
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="nothing", UploadId=uid, MultipartUpload={"Parts": parts},
                                     IfMatch=f'"{"0" * 32}"')
    assert (status(exc), code(exc)) == (404, "NoSuchKey")


# --- 3. no version id where versioning was never enabled ---------------------------------------


def test_no_version_id_for_writes_into_a_never_versioned_bucket(s3: Any, bucket: str) -> None:
    responses = [
        s3.put_object(Bucket=bucket, Key="k", Body=b"x"),
        s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k"}),
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "1"}]}),
        s3.get_object_tagging(Bucket=bucket, Key="k"),
        s3.delete_object_tagging(Bucket=bucket, Key="k"),
        s3.put_object_acl(Bucket=bucket, Key="k", ACL="private"),
        s3.delete_object(Bucket=bucket, Key="c"),
    ]
    uid, parts = _multipart(s3, bucket, "mp", [b"x"])
    responses.append(s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                                  MultipartUpload={"Parts": parts}))
    for r in responses:
        assert "x-amz-version-id" not in headers_of(r), r
    # a suspended bucket did have versioning: its writes are the "null" version, and say so
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"y")["VersionId"] == "null"
    assert s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": []})["VersionId"] == "null"


# --- 4. partNumber reads -----------------------------------------------------------------------


def test_part_number_reads(s3: Any, bucket: str) -> None:
    datas = [os.urandom(5 * MIB), b"second part"]
    uid, parts = _multipart(s3, bucket, "mp", datas)
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
    h = s3.head_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert (h["PartsCount"], h["ContentLength"]) == (2, len(datas[1]))
    assert h["ContentRange"] == f"bytes {len(datas[0])}-{len(datas[0]) + len(datas[1]) - 1}/{sum(map(len, datas))}"
    assert s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)["Body"].read() == datas[1]
    assert "PartsCount" not in s3.head_object(Bucket=bucket, Key="mp")  # only with partNumber, as AWS
    for read in (s3.head_object, s3.get_object):
        with pytest.raises(ClientError) as exc:
            read(Bucket=bucket, Key="mp", PartNumber=3)
        assert status(exc) == 416
        with pytest.raises(ClientError) as exc:
            read(Bucket=bucket, Key="not-yet", PartNumber=1)
        assert status(exc) == 404
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=3)
    assert code(exc) == "InvalidPartNumber"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="not-yet", PartNumber=1)
    assert code(exc) == "NoSuchKey"


def test_part_number_one_of_a_single_part_object(s3: Any, bucket: str) -> None:
    """As AWS: a ranged read of the whole object (206), no parts count; part 2 is not there."""
    s3.put_object(Bucket=bucket, Key="single", Body=b"0123456789")
    g = s3.get_object(Bucket=bucket, Key="single", PartNumber=1)
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert g["Body"].read() == b"0123456789"
    assert g["ContentRange"] == "bytes 0-9/10" and "PartsCount" not in g
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="single", PartNumber=2)
    assert (status(exc), code(exc)) == (416, "InvalidPartNumber")


# --- 5. invalid percent-escapes ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["a%ZZb", "trailing%", "half%4", "%g0"])
def test_invalid_percent_escape_is_invalid_uri(raw: Raw, bucket: str, key: str) -> None:
    for method in ("GET", "PUT"):
        st, _, body = raw.request(method, f"/{bucket}/{key}", b"x" if method == "PUT" else b"")
        assert (st, error_code(body)) == (400, "InvalidURI"), body
        assert ET.fromstring(body).findtext("Message") == "Couldn't parse the specified URI."


# --- 6. the same part uploaded twice at once ---------------------------------------------------


def test_racing_part_uploads_last_to_complete_wins(s3: Any, raw: Raw, bucket: str) -> None:
    uid = s3.create_multipart_upload(Bucket=bucket, Key="race")["UploadId"]
    slow, fast = os.urandom(256 * 1024), os.urandom(128 * 1024)
    path = f"/{bucket}/race?partNumber=1&uploadId={quote(uid, safe='')}"
    head = raw.head("PUT", path, slow, {"x-amz-content-sha256": hashlib.sha256(slow).hexdigest()}, length=len(slow))
    sock = socket.create_connection((raw.host, raw.port), timeout=30)
    try:
        sock.sendall(head + slow[:1000])  # the first upload starts, and stalls mid-body
        time.sleep(0.3)
        fast_etag = s3.upload_part(Bucket=bucket, Key="race", UploadId=uid, PartNumber=1, Body=fast)["ETag"]
        sock.sendall(slow[1000:])  # ... and completes after the second one
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply
    slow_etag = f'"{hashlib.md5(slow).hexdigest()}"'
    assert slow_etag.encode() in reply
    listed = s3.list_parts(Bucket=bucket, Key="race", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(1, slow_etag, len(slow))]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="race", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": fast_etag}]})
    assert code(exc) == "InvalidPart"
    s3.complete_multipart_upload(Bucket=bucket, Key="race", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": slow_etag}]})
    assert s3.get_object(Bucket=bucket, Key="race")["Body"].read() == slow


def test_racing_part_uploads_in_threads(s3: Any, s3d: Any, bucket: str) -> None:
    """Many uploads of one part number at once: whatever order they commit in, the part that
    ListParts reports is a whole one, and its ETag completes the upload with its bytes."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key="many")["UploadId"]
    bodies = [bytes([i]) * (64 * 1024 + i) for i in range(6)]
    errors: list[BaseException] = []

    def upload(body: bytes) -> None:
        try:
            s3d.s3().upload_part(Bucket=bucket, Key="many", UploadId=uid, PartNumber=1, Body=body)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    (part,) = s3.list_parts(Bucket=bucket, Key="many", UploadId=uid)["Parts"]
    winner = next(b for b in bodies if f'"{hashlib.md5(b).hexdigest()}"' == part["ETag"])
    s3.complete_multipart_upload(Bucket=bucket, Key="many", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="many")["Body"].read() == winner


# --- 7. bucket tagging -------------------------------------------------------------------------


def test_bucket_tagging_put_get_delete(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert (status(exc), code(exc)) == (404, "NoSuchTagSet")
    tags = [{"Key": "team", "Value": "storage"}, {"Key": "cost centre", "Value": "€ 42"}, {"Key": "empty", "Value": ""}]
    r = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    assert sorted(got, key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"])
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "only", "Value": "1"}]})  # replaces
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "only", "Value": "1"}]
    assert s3.delete_bucket_tagging(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(exc) == "NoSuchTagSet"
    s3.delete_bucket_tagging(Bucket=bucket)  # nothing to delete is no error
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket="no-such-bucket-here")
    assert code(exc) == "NoSuchBucket"


def _tags(n: int, key_len: int = 3, value_len: int = 1) -> list[dict[str, str]]:
    return [{"Key": f"{i:03d}".ljust(key_len, "k"), "Value": "v" * value_len} for i in range(n)]


@pytest.mark.parametrize("tags", [
    _tags(51),
    _tags(1, key_len=129),
    _tags(1, value_len=257),
    [{"Key": "aws:cloudformation", "Value": "x"}],
], ids=["51-tags", "key-129", "value-257", "aws-prefix"])
def test_bucket_tagging_limits(s3: Any, bucket: str, tags: list[dict[str, str]]) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert (status(exc), code(exc)) == (400, "InvalidTag")
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(exc) == "NoSuchTagSet"


def test_bucket_tagging_at_the_limits_and_duplicates(s3: Any, raw: Raw, bucket: str) -> None:
    at_limit = _tags(49) + _tags(1, key_len=128, value_len=256)
    at_limit[-1]["Key"] = "z" * 128
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": at_limit})
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50
    for doc in (b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag>"
                b"<Tag><Key>a</Key><Value>2</Value></Tag></TagSet></Tagging>",  # a key twice
                b"<Tagging><TagSet><Tag><Key></Key><Value>1</Value></Tag></TagSet></Tagging>"):  # an empty key
        md5 = base64.b64encode(hashlib.md5(doc).digest()).decode()
        st, _, body = raw.request("PUT", f"/{bucket}?tagging", doc, {"Content-MD5": md5})
        assert (st, error_code(body)) == (400, "InvalidTag")
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50


def test_bucket_tagging_needs_its_own_actions(s3d: Any, s3: Any, bucket: str) -> None:
    made = json.loads(s3d.cli("user", "add", "tagger", "--json").stdout)
    user = boto3.client("s3", endpoint_url=s3d.endpoint, aws_access_key_id=made["access_key"],
                        aws_secret_access_key=made["secret_key"], region_name="us-east-1",
                        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "1"}]})
    for call in (lambda: user.get_bucket_tagging(Bucket=bucket),
                 lambda: user.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": []}),
                 lambda: user.delete_bucket_tagging(Bucket=bucket)):
        with pytest.raises(ClientError) as exc:
            call()
        assert code(exc) == "AccessDenied"
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": made["arn"]},
        "Action": ["s3:GetBucketTagging", "s3:PutBucketTagging"], "Resource": f"arn:aws:s3:::{bucket}"}]})
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert user.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "a", "Value": "1"}]
    user.delete_bucket_tagging(Bucket=bucket)  # AWS: DeleteBucketTagging is s3:PutBucketTagging
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(exc) == "NoSuchTagSet"
    s3.delete_bucket_policy(Bucket=bucket)


# --- 8. ListBuckets paging and filtering -------------------------------------------------------


def test_list_buckets_pages_and_filters(s3: Any) -> None:
    names = [f"lbp-{c}" for c in "abcde"]
    for n in names:
        s3.create_bucket(Bucket=n)
    s3.create_bucket(Bucket="lbq-other")
    seen: list[str] = []
    kw: dict[str, Any] = {"Prefix": "lbp-", "MaxBuckets": 2}
    pages = 0
    while True:
        r = s3.list_buckets(**kw)
        pages += 1
        assert r["Prefix"] == "lbp-"
        assert len(r["Buckets"]) <= 2
        seen += [b["Name"] for b in r["Buckets"]]
        if "ContinuationToken" not in r:
            break
        kw["ContinuationToken"] = r["ContinuationToken"]
    assert seen == names and pages == 3
    everything = s3.list_buckets()
    assert "ContinuationToken" not in everything and "Prefix" not in everything
    assert {"lbq-other", *names} <= {b["Name"] for b in everything["Buckets"]}
    assert [b["Name"] for b in s3.list_buckets(Prefix="lbp-", BucketRegion="us-east-1")["Buckets"]] == names
    assert s3.list_buckets(Prefix="lbp-", BucketRegion="eu-west-1")["Buckets"] == []
    assert s3.list_buckets(Prefix="nothing-starts-like-this")["Buckets"] == []
    for bad in ({"MaxBuckets": 10001}, {"ContinuationToken": "%%%not-a-token"}, {"ContinuationToken": ""},
                {"ContinuationToken": "bGJwLWE=!"}):  # a token with junk after it is no token
        with pytest.raises(ClientError) as exc:
            s3.list_buckets(**bad)
        assert code(exc) == "InvalidArgument", bad


def test_list_buckets_max_buckets_must_be_positive(raw: Raw) -> None:
    for value in ("0", "-1", "ten"):
        st, _, body = raw.request("GET", f"/?max-buckets={value}")
        assert (st, error_code(body)) == (400, "InvalidArgument"), value


# --- 9. listing options ------------------------------------------------------------------------


def test_list_objects_v2_fetch_owner(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert "Owner" not in s3.list_objects_v2(Bucket=bucket)["Contents"][0]
    owner = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"][0]["Owner"]
    assert owner["ID"] == s3.list_buckets()["Owner"]["ID"]


ODD_KEY = "dir one/a+b&c=d%e\u00e9\x01"  # \x01: no XML 1.0 document can hold it unless it is encoded


def _listing(raw: Raw, path: str) -> ET.Element:
    st, _, body = raw.request("GET", path)
    assert st == 200, body
    return ET.fromstring(body)


def test_encoding_type_url_on_every_listing(s3: Any, raw: Raw, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key=ODD_KEY, Body=b"x")
    # CreateMultipartUpload's answer names the key unencoded, which botocore cannot parse here
    st, _, body = raw.request("POST", f"/{bucket}/{quote(ODD_KEY)}?uploads")
    assert st == 200, body
    uid = body.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
    s3.upload_part(Bucket=bucket, Key=ODD_KEY, UploadId=uid, PartNumber=1, Body=b"p")
    encoded = quote(ODD_KEY, safe="/").replace("%20", "+")
    # botocore asks for encoding-type=url on its own and decodes the answer; asked explicitly, it does not
    assert s3.list_objects(Bucket=bucket)["Contents"][0]["Key"] == ODD_KEY
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"] == ODD_KEY
    assert s3.list_object_versions(Bucket=bucket)["Versions"][0]["Key"] == ODD_KEY
    assert s3.list_objects_v2(Bucket=bucket, EncodingType="url")["Contents"][0]["Key"] == encoded
    assert s3.list_multipart_uploads(Bucket=bucket, EncodingType="url")["Uploads"][0]["Key"] == encoded
    for path, item in ((f"/{bucket}?encoding-type=url", "Contents/Key"),
                       (f"/{bucket}?list-type=2&encoding-type=url", "Contents/Key"),
                       (f"/{bucket}?versions&encoding-type=url", "Version/Key"),
                       (f"/{bucket}?uploads&encoding-type=url", "Upload/Key"),
                       (f"/{bucket}/{quote(ODD_KEY)}?uploadId={quote(uid, safe='')}&encoding-type=url", "Key")):
        root = _listing(raw, path)
        assert root.findtext(f"{NS}EncodingType") == "url", path
        assert root.findtext(NS + item.replace("/", "/" + NS)) == encoded, path
    # without it, ListParts names the key as it is
    st, _, body = raw.request("GET", f"/{bucket}/{quote(ODD_KEY)}?uploadId={quote(uid, safe='')}")
    assert st == 200 and b"<Key>dir one/a+b&amp;c=d%e\xc3\xa9&#x1;</Key>" in body and b"EncodingType" not in body
    st, _, body = raw.request("GET", f"/{bucket}/{quote(ODD_KEY)}?uploadId={quote(uid, safe='')}&encoding-type=xml")
    assert (st, error_code(body)) == (400, "InvalidArgument")


def test_optional_object_attributes_restore_status(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for listing, items in ((s3.list_objects_v2, "Contents"), (s3.list_objects, "Contents"),
                           (s3.list_object_versions, "Versions")):
        r = listing(Bucket=bucket, OptionalObjectAttributes=["RestoreStatus"])
        assert [o["Key"] for o in r[items]] == ["k"]
        assert "RestoreStatus" not in r[items][0]  # nothing is archived, so nothing is restored


def test_optional_object_attributes_unknown_value(raw: Raw, bucket: str) -> None:
    st, _, body = raw.request("GET", f"/{bucket}?list-type=2", headers={"x-amz-optional-object-attributes": "Size"})
    assert (st, error_code(body)) == (400, "InvalidArgument")


# --- 10. the bucket's region -------------------------------------------------------------------


def test_location_and_region_in_us_east_1(s3: Any, bucket: str) -> None:
    assert s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") is None
    assert headers_of(s3.head_bucket(Bucket=bucket))["x-amz-bucket-region"] == "us-east-1"
    assert s3.head_bucket(Bucket=bucket)["BucketRegion"] == "us-east-1"


def test_location_and_region_in_a_configured_region(daemon_factory: Any, tmp_path: Path) -> None:
    config = tmp_path / "region.toml"
    config.write_text('[s3]\nregion = "eu-central-1"\n')
    d = daemon_factory(["--no-mount", "--config", str(config)], name="region")
    s3 = boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=d.access_key,
                      aws_secret_access_key=d.secret_key, region_name="eu-central-1",
                      config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="central", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    assert s3.get_bucket_location(Bucket="central")["LocationConstraint"] == "eu-central-1"
    assert s3.head_bucket(Bucket="central")["BucketRegion"] == "eu-central-1"
    (b,) = s3.list_buckets(BucketRegion="eu-central-1")["Buckets"]
    assert (b["Name"], b["BucketRegion"]) == ("central", "eu-central-1")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="missing")
    assert status(exc) == 404


# --- 11. CopyObject onto itself ----------------------------------------------------------------


def test_copy_onto_itself_with_changes(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"payload", Metadata={"a": "1"}, Tagging="t=1",
                  ContentType="text/plain")
    src = {"Bucket": bucket, "Key": "k"}
    with pytest.raises(ClientError) as exc:  # no change at all
        s3.copy_object(Bucket=bucket, Key="k", CopySource=src)
    assert (status(exc), code(exc)) == (400, "InvalidRequest")
    with pytest.raises(ClientError) as exc:  # COPY of everything is no change either
        s3.copy_object(Bucket=bucket, Key="k", CopySource=src, MetadataDirective="COPY", TaggingDirective="COPY")
    assert code(exc) == "InvalidRequest"
    s3.put_object(Bucket=bucket, Key="report-versionId.txt", Body=b"x")  # the key's name is not a version id
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="report-versionId.txt",
                       CopySource={"Bucket": bucket, "Key": "report-versionId.txt"})
    assert code(exc) == "InvalidRequest"

    s3.copy_object(Bucket=bucket, Key="k", CopySource=src, MetadataDirective="REPLACE", Metadata={"b": "2"},
                   ContentType="application/json")
    h = s3.head_object(Bucket=bucket, Key="k")
    assert (h["Metadata"], h["ContentType"]) == ({"b": "2"}, "application/json")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "t", "Value": "1"}]  # COPY

    s3.copy_object(Bucket=bucket, Key="k", CopySource=src, TaggingDirective="REPLACE", Tagging="u=2&v=3")
    assert sorted(t["Key"] for t in s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]) == ["u", "v"]
    assert s3.head_object(Bucket=bucket, Key="k")["Metadata"] == {"b": "2"}  # metadata COPY

    s3.copy_object(Bucket=bucket, Key="k", CopySource=src, StorageClass="STANDARD_IA")
    h = s3.head_object(Bucket=bucket, Key="k")
    assert h["StorageClass"] == "STANDARD_IA" and h["Metadata"] == {"b": "2"}

    r = s3.copy_object(Bucket=bucket, Key="k", CopySource=src, ChecksumAlgorithm="SHA256")
    want = base64.b64encode(hashlib.sha256(b"payload").digest()).decode()
    assert r["CopyObjectResult"]["ChecksumSHA256"] == want
    h = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == want and h["StorageClass"] == "STANDARD_IA"
    with pytest.raises(ClientError) as exc:  # the same algorithm again changes nothing
        s3.copy_object(Bucket=bucket, Key="k", CopySource=src, ChecksumAlgorithm="SHA256")
    assert code(exc) == "InvalidRequest"
    r = s3.copy_object(Bucket=bucket, Key="k", CopySource=src, ChecksumAlgorithm="CRC32C")
    h = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert "ChecksumCRC32C" in h and "ChecksumSHA256" not in h
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"payload"


def test_copy_with_a_checksum_algorithm_to_another_key(s3: Any, bucket: str) -> None:
    uid, parts = _multipart(s3, bucket, "mp", [os.urandom(5 * MIB), b"end"])
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
    body = s3.get_object(Bucket=bucket, Key="mp")["Body"].read()
    r = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mp"},
                       ChecksumAlgorithm="CRC32")
    h = s3.head_object(Bucket=bucket, Key="copy", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == r["CopyObjectResult"]["ChecksumCRC32"]
    import zlib
    assert base64.b64decode(h["ChecksumCRC32"]) == zlib.crc32(body).to_bytes(4, "big")
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": "mp"},
                       ChecksumAlgorithm="MD4")
    assert code(exc) == "InvalidRequest"


def test_copy_directive_values_are_checked(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for kw in ({"MetadataDirective": "MOVE"}, {"TaggingDirective": "DROP"}):
        with pytest.raises(ClientError) as exc:
            s3.copy_object(Bucket=bucket, Key="k2", CopySource={"Bucket": bucket, "Key": "k"}, **kw)
        assert code(exc) == "InvalidArgument"


# --- operations of the API that are not served are refused, not served by another ---------------


def test_rename_object_is_refused_and_writes_nothing(s3: Any, bucket: str) -> None:
    """RenameObject is PUT /bucket/key?renameObject: it must not become a PutObject of an empty body."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    s3.put_object(Bucket=bucket, Key="dst", Body=b"destination")
    with pytest.raises(ClientError) as exc:
        s3.rename_object(Bucket=bucket, Key="dst", RenameSource=f"{bucket}/src")
    assert (status(exc), code(exc)) == (501, "NotImplemented")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"destination"
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"source"

"""Header values that are not plain ASCII: UTF-8 user metadata signed as the bytes sent (what
most SDKs and s3cmd do), and x-amz-tagging as clients URL-encode it."""

from __future__ import annotations

import os
from email.header import decode_header, make_header
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.handlers import validate_ascii_metadata

TEXT = "日本語 ü ✓"
META_OPS = ("PutObject", "CopyObject", "CreateMultipartUpload")


def decoded(value: str) -> str:
    """An x-amz-meta-* value as it comes back (RFC 2047 for non-ASCII, as AWS sends it)."""
    return str(make_header(decode_header(value)))


def utf8_client(s3d: Any) -> Any:
    """boto3 made to behave like the SDKs that send UTF-8 metadata: botocore refuses non-ASCII
    metadata and would send a str header as latin-1, so its check is removed and, once the
    request is signed (over the UTF-8 text), the header is handed to http.client as the UTF-8
    bytes themselves. The bytes on the wire are then the bytes signed."""
    s3 = s3d.s3()
    for op in META_OPS:
        s3.meta.events.unregister(f"before-parameter-build.s3.{op}", validate_ascii_metadata)

    def as_utf8_bytes(request: Any, **_: Any) -> None:
        for name in list(request.headers.keys()):
            if name.lower().startswith("x-amz-meta-"):
                value = request.headers[name]
                text = value.decode() if isinstance(value, bytes) else value
                del request.headers[name]
                request.headers[name] = text.encode().decode("latin-1")

    s3.meta.events.register("before-send.s3", as_utf8_bytes)
    return s3


def test_utf8_metadata_signed_as_sent(s3d: Any, s3: Any, bucket: str) -> None:
    c = utf8_client(s3d)
    c.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"title": TEXT, "plain": "ascii"})
    meta = s3.head_object(Bucket=bucket, Key="m")["Metadata"]
    assert meta["plain"] == "ascii" and decoded(meta["title"]) == TEXT
    c.copy_object(Bucket=bucket, Key="m2", CopySource={"Bucket": bucket, "Key": "m"}, MetadataDirective="REPLACE",
                  Metadata={"title": "copié"})
    assert decoded(s3.head_object(Bucket=bucket, Key="m2")["Metadata"]["title"]) == "copié"
    uid = c.create_multipart_upload(Bucket=bucket, Key="mp", Metadata={"title": TEXT})["UploadId"]
    r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"part")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]})
    assert decoded(s3.head_object(Bucket=bucket, Key="mp")["Metadata"]["title"]) == TEXT
    # other bytes than the ones signed are still refused
    def swap(request: Any, **_: Any) -> None:
        del request.headers["x-amz-meta-title"]
        request.headers["x-amz-meta-title"] = "日本語 ü ✗".encode().decode("latin-1")

    c.meta.events.register_last("before-send.s3.PutObject", swap)
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"title": TEXT})
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_latin1_and_encoded_word_metadata(s3d: Any, s3: Any, bucket: str) -> None:
    # botocore itself (its ASCII check removed) sends "ü" as one latin-1 byte, signed as UTF-8
    s3.meta.events.unregister("before-parameter-build.s3.PutObject", validate_ascii_metadata)
    try:
        s3.put_object(Bucket=bucket, Key="l", Body=b"x", Metadata={"name": "Müller"})
    finally:
        s3.meta.events.register("before-parameter-build.s3.PutObject", validate_ascii_metadata)
    assert decoded(s3.head_object(Bucket=bucket, Key="l")["Metadata"]["name"]) == "Müller"
    # an RFC 2047 encoded-word is decoded before it is stored, as AWS does
    s3.put_object(Bucket=bucket, Key="w", Body=b"x", Metadata={"name": "=?UTF-8?B?5pel5pys?="})
    back = s3.head_object(Bucket=bucket, Key="w")["Metadata"]["name"]
    assert decoded(back) == "日本" and back != "=?UTF-8?B?5pel5pys?="


@pytest.mark.parametrize(("header", "tags"), [
    ("a", {"a": ""}),
    ("a=b&", {"a": "b"}),
    ("a=b&&c=d", {"a": "b", "c": "d"}),
    ("project=blue%20sky&owner=M%C3%BCller", {"project": "blue sky", "owner": "Müller"}),
    ("k+x=v+w&empty=", {"k x": "v w", "empty": ""}),
])
def test_tagging_header_as_clients_encode_it(s3: Any, bucket: str, header: str, tags: dict[str, str]) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging=header)
    got = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]}
    assert got == tags


def test_tagging_header_on_multipart_and_copy(s3: Any, bucket: str) -> None:
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="solo&team=a%2Fb")["UploadId"]
    r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=os.urandom(100))
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="mp")["TagSet"] == [
        {"Key": "solo", "Value": ""}, {"Key": "team", "Value": "a/b"}]
    s3.copy_object(Bucket=bucket, Key="cp", CopySource={"Bucket": bucket, "Key": "mp"}, TaggingDirective="REPLACE",
                   Tagging="fresh&")
    assert s3.get_object_tagging(Bucket=bucket, Key="cp")["TagSet"] == [{"Key": "fresh", "Value": ""}]
    with pytest.raises(ClientError) as exc:  # the escapes must make UTF-8
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", Tagging="k=%FF")
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"

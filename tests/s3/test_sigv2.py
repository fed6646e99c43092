"""Signature Version 2: boto3's default presigned URLs, the `Authorization: AWS key:signature`
header (boto3 with signature_version="s3"), what is refused (a wrong signature, an expired URL,
a stale Date, an unknown key), the condition keys a policy sees, and allow_sigv2 = false."""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.polling import wait_for
from tests.s3.conftest import DaemonProc, error_code

KEY = "dir/ünï code+&=x.txt"


def fetch(url: str, method: str = "GET", data: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """The URL as a browser or curl uses it: no headers of ours (urllib would add a Content-Type)."""
    u = urlsplit(url)
    c = http.client.HTTPConnection(u.netloc, timeout=30)
    try:
        c.request(method, f"{u.path}?{u.query}", body=data or None)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def with_query(url: str, **changes: str) -> str:
    u = urlsplit(url)
    q = dict(parse_qsl(u.query, keep_blank_values=True))
    q.update(changes)
    return urlunsplit(u._replace(query=urlencode(q)))


def test_boto3_default_presigned_url_is_sigv2(s3d: Any, bucket: str) -> None:
    s3 = s3d.s3()  # no signature_version: boto3 presigns S3 URLs with SigV2
    body = os.urandom(5000)
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": KEY}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in put and "X-Amz-Signature" not in put
    status, _, resp = fetch(put, "PUT", body)
    assert status == 200, resp
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": KEY,
                                                          "ResponseContentType": "text/x-signed"}, ExpiresIn=300)
    status, headers, got = fetch(url)
    assert (status, got, headers["content-type"]) == (200, body, "text/x-signed")
    # the response-* parameter is signed: changed, the URL no longer verifies
    status, _, resp = fetch(with_query(url, **{"response-content-type": "text/html"}))
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")
    head = s3.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket}, ExpiresIn=300)
    status, _, listing = fetch(head)
    assert status == 200 and b"<Key>dir/" in listing


def test_sigv2_refusals(s3d: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = s3d.s3().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    sig = dict(parse_qsl(urlsplit(url).query))["Signature"]
    forged = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    status, _, resp = fetch(with_query(url, Signature=forged))
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")
    status, _, resp = fetch(with_query(url, AWSAccessKeyId="NOSUCHKEY0000000"))
    assert (status, error_code(resp)) == (403, "InvalidAccessKeyId")
    expired = s3d.s3().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1)
    wait_for(lambda: fetch(expired)[0] == 403, timeout=30, what="the presigned URL to expire")
    status, _, resp = fetch(expired)
    assert (status, error_code(resp)) == (403, "AccessDenied") and b"Request has expired" in resp
    status, _, resp = fetch(with_query(url, Expires="soon"))
    assert (status, error_code(resp)) == (403, "AccessDenied")
    # another key's path with this key's signature
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")
    status, _, resp = fetch(url.replace("/k?", "/other?"))
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")


def test_sigv2_header_auth(s3d: Any, s3: Any, bucket: str) -> None:
    v2 = s3d.s3(signature_version="s3")  # botocore's HmacV1: Authorization: AWS key:signature
    data = os.urandom(6 * 1024 * 1024)
    v2.put_object(Bucket=bucket, Key=KEY, Body=b"v2 body", Metadata={"who": "v2"}, Tagging="a=b",
                  ContentType="text/plain")
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"v2 body"
    h = v2.head_object(Bucket=bucket, Key=KEY)
    assert (h["Metadata"], h["ContentType"]) == ({"who": "v2"}, "text/plain")
    assert v2.get_object_tagging(Bucket=bucket, Key=KEY)["TagSet"] == [{"Key": "a", "Value": "b"}]
    uid = v2.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    parts = [{"PartNumber": n, "ETag": v2.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=n,
                                                        Body=chunk)["ETag"]}
             for n, chunk in ((1, data[:5 * 1024 * 1024]), (2, data[5 * 1024 * 1024:]))]
    assert [p["PartNumber"] for p in v2.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]] == [1, 2]
    v2.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
    assert v2.get_object(Bucket=bucket, Key="mp", Range="bytes=0-9")["Body"].read() == data[:10]
    assert sorted(o["Key"] for o in v2.list_objects_v2(Bucket=bucket)["Contents"]) == sorted([KEY, "mp"])
    v2.put_object_acl(Bucket=bucket, Key="mp", ACL="public-read")
    v2.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "mp"}]})
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [KEY]


def v2_signed(s3d: Any, method: str, path: str, date: str, secret: str | None = None) -> dict[str, str]:
    """Headers of a SigV2 request as botocore signs it, with the Date we choose."""

    class Dated(HmacV1Auth):
        def _get_date(self) -> str:
            return date

    req = AWSRequest(method=method, url=f"{s3d.endpoint}{path}")
    Dated(Credentials(s3d.access_key, secret or s3d.secret_key)).add_auth(req)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in req.headers.items()}


def test_sigv2_header_refusals(s3d: Any, raw: Any, bucket: str) -> None:
    s3d.s3(signature_version="s3").put_object(Bucket=bucket, Key="k", Body=b"x")
    now = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    status, _, body = raw.request("GET", f"/{bucket}/k", headers=v2_signed(s3d, "GET", f"/{bucket}/k", now),
                                  sign=False)
    assert (status, body) == (200, b"x")
    hour_ago = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 3600))
    status, _, resp = raw.request("GET", f"/{bucket}/k", headers=v2_signed(s3d, "GET", f"/{bucket}/k", hour_ago),
                                  sign=False)
    assert (status, error_code(resp)) == (403, "RequestTimeTooSkewed")
    status, _, resp = raw.request("GET", f"/{bucket}/k", sign=False,
                                  headers=v2_signed(s3d, "GET", f"/{bucket}/k", now, secret="wrong"))
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")
    status, _, resp = raw.request("GET", f"/{bucket}/k", headers={"Authorization": "AWS nocolon", "Date": now},
                                  sign=False)
    assert (status, error_code(resp)) == (400, "InvalidArgument")
    # a header the signer did not see: every x-amz-* header is part of a SigV2 signature
    h = v2_signed(s3d, "GET", f"/{bucket}/k", now)
    status, _, resp = raw.request("GET", f"/{bucket}/k", headers={**h, "x-amz-meta-added": "1"}, sign=False)
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")


def test_signature_version_is_a_condition_key(s3d: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"StringEquals": {"s3:signatureversion": "AWS", "s3:authType": "REST-QUERY-STRING"}}}]}))
    v2_url = s3d.s3().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
    status, _, resp = fetch(v2_url)
    assert (status, error_code(resp)) == (403, "AccessDenied")
    assert s3d.s3(signature_version="s3").get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"  # a header
    v4_url = s3d.s3(signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
    assert fetch(v4_url)[0] == 200


@pytest.fixture(scope="module")
def v4_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp("v4only")
    (base / "stowage.toml").write_text("[s3]\nallow_sigv2 = false\n")
    d = DaemonProc(base / "data", ["--no-mount", "--config", str(base / "stowage.toml")])
    d.start()
    yield d
    d.stop(timeout=30)


def test_sigv2_can_be_turned_off(v4_only: Any) -> None:
    s3 = v4_only.s3()
    s3.create_bucket(Bucket="only-v4")
    s3.put_object(Bucket="only-v4", Key="k", Body=b"x")
    status, _, resp = fetch(s3.generate_presigned_url("get_object", Params={"Bucket": "only-v4", "Key": "k"}))
    assert (status, error_code(resp)) == (400, "InvalidRequest")
    with pytest.raises(ClientError) as exc:
        v4_only.s3(signature_version="s3").get_object(Bucket="only-v4", Key="k")
    assert exc.value.response["Error"]["Code"] == "InvalidRequest"

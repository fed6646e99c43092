"""SigV2 verification (s3gw/sigv2.py) against botocore's own V2 signers, header and query, for
path-style and virtual-hosted requests, subresources, and the headers a presigned URL carries
in its query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from s3gw.errors import S3Error
from s3gw.routing import route
from s3gw.sigv2 import authenticate_v2, is_sigv2

AK, SK = "AKIDEXAMPLE", "secret/key+example"


def secret_for(access_key: str) -> str | None:
    return SK if access_key == AK else None


def verify(req: AWSRequest, domain: str = "", now: datetime | None = None) -> Any:
    url = req.url.split("://", 1)[1]
    host, _, target = url.partition("/")
    headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in req.headers.items()}
    r = route(req.method, "/" + target, host, domain, False)
    assert is_sigv2(r.query, headers)
    return authenticate_v2(req.method, r.raw_path, r.raw_query, r.query, headers, r.bucket, r.virtual_host,
                           secret_for, now)


def header_signed(method: str, url: str, headers: dict[str, str] | None = None,
                  auth_path: str | None = None) -> AWSRequest:
    req = AWSRequest(method=method, url=url, headers=headers or {})
    req.auth_path = auth_path
    HmacV1Auth(Credentials(AK, SK)).add_auth(req)
    return req


@pytest.mark.parametrize(("url", "auth_path"), [
    ("http://h:9000/bucket/a%20key/%C3%BC.txt", None),
    ("http://h:9000/bucket/k?uploadId=abc-_d&partNumber=3", None),
    ("http://h:9000/bucket/k?versionId=v%2D" + "1" * 30 + "&response-content-type=text%2Fplain&x=ignored", None),
    ("http://h:9000/bucket?acl", "/bucket/"),
    ("http://bucket.s3.local:9000/dir/k?tagging", "/bucket/dir/k"),
])
def test_header_auth_verifies(url: str, auth_path: str | None) -> None:
    req = header_signed("PUT", url, {"x-amz-meta-a": "1", "Content-Type": "text/plain", "Content-MD5": "abc="},
                        auth_path)
    result = verify(req, domain="s3.local")
    assert (result.access_key, result.algorithm, result.presigned) == (AK, "AWS", False)


def test_header_auth_refusals() -> None:
    req = header_signed("GET", "http://h:9000/bucket/k")
    req.headers["x-amz-meta-new"] = "added after signing"
    with pytest.raises(S3Error) as exc:
        verify(req)
    assert exc.value.code == "SignatureDoesNotMatch" and exc.value.fields["StringToSign"].startswith("GET\n")
    req = header_signed("GET", "http://h:9000/bucket/k")
    with pytest.raises(S3Error) as exc:
        verify(req, now=datetime.now(UTC) + timedelta(minutes=20))
    assert exc.value.code == "RequestTimeTooSkewed"
    req = AWSRequest(method="GET", url="http://h:9000/bucket/k")
    HmacV1Auth(Credentials("OTHER", SK)).add_auth(req)
    with pytest.raises(S3Error) as exc:
        verify(req)
    assert exc.value.code == "InvalidAccessKeyId"


def test_presigned_query_verifies_and_expires() -> None:
    req = AWSRequest(method="GET", url="http://h:9000/bucket/k%2By?response-content-disposition=a%3Bb",
                     headers={"x-amz-security-token": "tok"})
    HmacV1QueryAuth(Credentials(AK, SK), expires=60).add_auth(req)
    assert "x-amz-security-token=tok" in req.url  # botocore moves the x-amz-* headers into the query
    bare = AWSRequest(method="GET", url=req.url)  # the URL alone, as a browser sends it
    result = verify(bare)
    assert (result.presigned, result.algorithm) == (True, "AWS")
    with pytest.raises(S3Error) as exc:
        verify(bare, now=datetime.now(UTC) + timedelta(seconds=120))
    assert exc.value.code == "AccessDenied" and exc.value.message == "Request has expired"
    both = AWSRequest(method="GET", url=req.url, headers={"Authorization": "AWS x:y"})
    with pytest.raises(S3Error) as exc:
        verify(both)
    assert exc.value.code == "InvalidArgument"

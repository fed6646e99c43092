"""SigV4 verification against botocore's own signer (header auth and presigned URLs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import unquote_plus, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from s3gw.errors import S3Error
from s3gw.sigv4 import authenticate

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CREDS = Credentials(AK, SK)


def secret_for(ak: str) -> str | None:
    return SK if ak == AK else None


def _split(url: str) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(url)
    query: dict[str, str] = {}
    for item in parts.query.split("&"):
        if item:
            k, _, v = item.partition("=")
            query[unquote_plus(k)] = unquote_plus(v)
    return parts.path, parts.query, query


def _headers(req: AWSRequest) -> dict[str, str]:
    h = {k.lower(): v for k, v in req.headers.items()}
    h["host"] = urlsplit(req.url).netloc
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in h.items()}


def signed(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None,
           region: str = "us-east-1") -> tuple[AWSRequest, datetime]:
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    S3SigV4Auth(CREDS, "s3", region).add_auth(req)
    when = datetime.strptime(req.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return req, when


def verify(req: AWSRequest, now: datetime, method: str | None = None) -> object:
    path, raw_query, query = _split(req.url)
    return authenticate(method or req.method, path, raw_query, query, _headers(req), secret_for, now)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9000/bucket/key",
    "http://127.0.0.1:9000/bucket/d%C3%A9j%C3%A0%20vu/a%2Bb%3Dc%21%27%28%29%2A",
    "http://127.0.0.1:9000/bucket?list-type=2&prefix=a%2Fb%20c&max-keys=10",
    "http://127.0.0.1:9000/bucket/k?uploads",
    "http://127.0.0.1:9000/bucket/k?partNumber=3&uploadId=abc%2Fdef",
    "http://bucket.s3.local:9000/some//double/./dot/../key",
])
def test_botocore_header_signatures_verify(url: str) -> None:
    req, now = signed("PUT", url, b"hello", {"x-amz-meta-a": "  spaced   value ", "Content-Type": "text/plain"})
    result = verify(req, now)
    assert result.access_key == AK  # type: ignore[attr-defined]
    assert result.payload_hash == req.headers["X-Amz-Content-SHA256"]  # type: ignore[attr-defined]


def test_any_change_breaks_the_signature() -> None:
    req, now = signed("PUT", "http://127.0.0.1:9000/bucket/key", b"hello", {"x-amz-meta-a": "1"})
    req.headers["x-amz-meta-a"] = "2"
    with pytest.raises(S3Error) as exc:
        verify(req, now)
    assert exc.value.code == "SignatureDoesNotMatch"
    assert exc.value.status == 403
    req, now = signed("PUT", "http://127.0.0.1:9000/bucket/key")
    with pytest.raises(S3Error) as exc:
        verify(req, now, method="DELETE")
    assert exc.value.code == "SignatureDoesNotMatch"


def test_unknown_key_skew_and_unsigned_headers() -> None:
    req, now = signed("GET", "http://127.0.0.1:9000/bucket/key")
    with pytest.raises(S3Error) as exc:
        path, raw_query, query = _split(req.url)
        authenticate("GET", path, raw_query, query, _headers(req), lambda ak: None, now)
    assert exc.value.code == "InvalidAccessKeyId"
    with pytest.raises(S3Error) as exc:
        verify(req, now + timedelta(minutes=16))
    assert exc.value.code == "RequestTimeTooSkewed"
    verify(req, now + timedelta(minutes=14))
    req.headers["x-amz-meta-sneaky"] = "1"
    with pytest.raises(S3Error) as exc:
        verify(req, now)
    assert exc.value.code == "AccessDenied"


def test_anonymous_and_malformed() -> None:
    with pytest.raises(S3Error) as exc:
        authenticate("GET", "/b", "", {}, {"host": "x"}, secret_for)
    assert exc.value.code == "AccessDenied"
    for bad in ("AWS4-HMAC-SHA256 Credential=AK/2020/us-east-1/s3/aws4_request",
                "AWS4-HMAC-SHA256 Credential=AK, SignedHeaders=host, Signature=00",
                "Bearer xyz"):
        with pytest.raises(S3Error) as exc:
            authenticate("GET", "/b", "", {}, {"host": "x", "authorization": bad, "x-amz-date": "20200101T000000Z",
                                               "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, secret_for)
        assert exc.value.code == "AuthorizationHeaderMalformed", bad
        assert exc.value.status == 400


def _presign(url: str, expires: int, method: str = "GET") -> tuple[AWSRequest, datetime]:
    req = AWSRequest(method=method, url=url)
    S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=expires).add_auth(req)
    _, _, query = _split(req.url)
    when = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return req, when


def test_presigned_urls_verify_and_expire() -> None:
    req, when = _presign("http://127.0.0.1:9000/bucket/a%20key?versionId=xyz", 60)
    result = verify(req, when + timedelta(seconds=30))
    assert result.presigned  # type: ignore[attr-defined]
    assert result.payload_hash == "UNSIGNED-PAYLOAD"  # type: ignore[attr-defined]
    with pytest.raises(S3Error) as exc:
        verify(req, when + timedelta(seconds=61))
    assert exc.value.code == "AccessDenied"
    assert "expired" in exc.value.message
    tampered = AWSRequest(method="GET", url=req.url.replace("a%20key", "b%20key"))
    with pytest.raises(S3Error) as exc:
        verify(tampered, when)
    assert exc.value.code == "SignatureDoesNotMatch"


def test_presign_expiry_limit() -> None:
    req, when = _presign("http://127.0.0.1:9000/bucket/key", 604801)
    with pytest.raises(S3Error) as exc:
        verify(req, when)
    assert exc.value.code == "AuthorizationQueryParametersError"


@pytest.mark.parametrize("expires", ["6_0", "%2B60", "%20%2060", "%D9%A6%D9%A0"])
def test_presign_expiry_must_be_ascii_digits(expires: str) -> None:
    """int() takes 6_0, +60, " 60" and Arabic-Indic digits; X-Amz-Expires is plain digits."""
    req, when = _presign("http://127.0.0.1:9000/bucket/key", 60)
    bent = AWSRequest(method="GET", url=req.url.replace("X-Amz-Expires=60", f"X-Amz-Expires={expires}"))
    assert bent.url != req.url
    with pytest.raises(S3Error) as exc:
        verify(bent, when)
    assert exc.value.code == "AuthorizationQueryParametersError"


@pytest.mark.parametrize("amz_date", ["20261208T2500Z", "20261208T25000Z", "20261208T2500000Z"])
def test_x_amz_date_needs_every_digit(amz_date: str) -> None:
    """strptime reads 20261208T2500Z as 02:50:00 (one-digit fields): refused, as AWS does."""
    from tests.s3.conftest import sign_v4

    h = sign_v4("GET", "/bucket/key", {"host": "127.0.0.1:9000"}, "UNSIGNED-PAYLOAD", AK, SK, amz_date)
    h.pop("_signature")
    with pytest.raises(S3Error) as e:
        authenticate("GET", "/bucket/key", "", {}, h, secret_for, datetime(2026, 12, 8, 2, 50, tzinfo=UTC))
    assert (e.value.code, e.value.status) == ("AccessDenied", 403)

"""AWS Signature Version 2 (HMAC-SHA1), for the clients that still sign with it: boto3's
generate_presigned_url without a signature_version, `aws s3 presign` of CLI v1, `s3cmd signurl`
(and s3cmd with signature_v2 = True), older SDKs and backup appliances. Every client that speaks
SigV4 uses SigV4; `[s3] allow_sigv2 = false` refuses V2 as a SigV4-only AWS region does.

Two forms: the header `Authorization: AWS <AccessKeyId>:<Signature>` with a Date (or x-amz-date)
within 15 minutes of ours, and the query string `AWSAccessKeyId`, `Expires` (epoch seconds, the
URL is refused after it) and `Signature`. The signature is base64(HMAC-SHA1(secret, StringToSign)):

    METHOD \\n Content-MD5 \\n Content-Type \\n Date (or Expires) \\n
    x-amz-name:value \\n ... (every x-amz-* header, lower-case, sorted)  CanonicalizedResource

CanonicalizedResource is /bucket/key (the bucket named even when the host names it) followed by
the subresources AWS lists (acl, uploadId, versionId, response-content-type, ...), sorted. Where
clients disagree on a detail (a subresource value as sent or decoded, the path as sent or
re-encoded, a Date signed although x-amz-date is present, UTF-8 header values) each reading is
tried, as sigv4.py does for its own ambiguities. Every x-amz-* header is signed by definition,
so a presigned URL's holder cannot add one. A V2 request carries no payload hash of its own:
its body is checked by Content-MD5 (signed) and x-amz-content-sha256 or x-amz-checksum-*.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from .errors import S3Error
from .numbers import digits
from .sigv4 import MAX_SKEW, AuthResult, amz_datetime, as_sent, declared_payload, uri_encode

ALGORITHM = "AWS"  # the value of s3:signatureversion for SigV2
# The query parameters that are part of the signed resource: AWS's list as botocore and s3cmd sign it.
SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory", "lifecycle", "location",
    "logging", "metrics", "notification", "object-lock", "partNumber", "policy", "replication", "requestPayment",
    "restore", "select", "select-type", "storageClass", "tagging", "torrent", "uploadId", "uploads", "versionId",
    "versioning", "versions", "website", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "response-content-language", "response-content-type", "response-expires",
})
_QUERY_PARAMS = ("AWSAccessKeyId", "Signature", "Expires")


def is_sigv2(query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
    auth = headers.get("authorization", "")
    return auth.startswith("AWS ") or ("Signature" in query and "AWSAccessKeyId" in query)


def _resources(raw_path: str, raw_query: str, bucket: str, virtual_host: bool) -> list[str]:
    """The CanonicalizedResource readings clients produce."""
    prefix = "/" + bucket if virtual_host else ""
    decoded = unquote(raw_path)
    paths = dict.fromkeys((raw_path, uri_encode(decoded, keep_slash=True), decoded))
    if not virtual_host and bucket and decoded == "/" + bucket:
        paths[f"{raw_path}/"] = None  # the bucket itself is /bucket/ (AWS's form for virtual hosts; botocore's)
    fields = [item.partition("=") for item in raw_query.split("&") if item]
    subs = sorted(((unquote(n), eq, v) for n, eq, v in fields if unquote(n) in SUBRESOURCES), key=lambda f: f[0])
    queries = dict.fromkeys("&".join(f"{n}{eq}{fmt(v)}" for n, eq, v in subs) for fmt in (unquote, str))
    return [prefix + p + (f"?{q}" if q else "") for p, q in itertools.product(paths, queries)]


def _amz_headers(headers: Mapping[str, str], query: Mapping[str, str], presigned: bool) -> str:
    """Every x-amz-* header (a presigned URL's x-amz-* query parameters too: botocore moves
    headers such as x-amz-security-token there), one `name:value` line each, sorted."""
    found = {k: v.strip() for k, v in headers.items() if k.startswith("x-amz-")}
    if presigned:
        for k, v in query.items():
            if k.lower().startswith("x-amz-"):
                found.setdefault(k.lower(), v.strip())
    return "".join(f"{k}:{found[k]}\n" for k in sorted(found))


def _sign(secret: str, text: str) -> str:
    mac = hmac.new(secret.encode(), text.encode("utf-8", "surrogateescape"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def _when(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError, OverflowError):  # Overflow: year 9999 at -1400
        pass
    try:
        return amz_datetime(value)
    except ValueError:
        return None


def _header_claims(headers: Mapping[str, str], now: datetime) -> tuple[str, str, list[str]]:
    """(access key, signature, the Date readings) of `Authorization: AWS key:signature`."""
    access_key, colon, signature = headers["authorization"][4:].strip().partition(":")
    if not colon or not access_key or not signature:
        raise S3Error("InvalidArgument", "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
                      ArgumentName="Authorization", ArgumentValue=headers["authorization"][:64])
    amz_date, date = headers.get("x-amz-date"), headers.get("date")
    when = _when(amz_date or date or "")
    if when is None:
        raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    if abs(now - when) > MAX_SKEW:
        raise S3Error("RequestTimeTooSkewed", RequestTime=amz_date or date or "",
                      ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"), MaxAllowedSkewMilliseconds="900000")
    # with x-amz-date, AWS signs an empty Date line; some clients sign their Date header anyway
    dates = ["", date] if amz_date and date else [date or ""]
    return access_key, signature, dates


def _query_claims(query: Mapping[str, str], now: datetime) -> tuple[str, str, list[str]]:
    if not all(query.get(p) for p in _QUERY_PARAMS):
        raise S3Error("AccessDenied", "Query-string authentication requires the Signature, Expires and "
                      "AWSAccessKeyId parameters")
    expires = query["Expires"]
    at = digits(expires)
    if at is None:
        raise S3Error("AccessDenied", "Invalid date (should be seconds since epoch): " + expires[:32])
    if now.timestamp() > at:
        raise S3Error("AccessDenied", "Request has expired", Expires=datetime.fromtimestamp(at, UTC)
                      .strftime("%Y-%m-%dT%H:%M:%SZ"), ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    # a '+' of the base64 signature that was not percent-encoded arrives as a space
    return query["AWSAccessKeyId"], query["Signature"].replace(" ", "+"), [expires]


def authenticate_v2(
    method: str,
    raw_path: str,
    raw_query: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    bucket: str,
    virtual_host: bool,
    secret_for: Callable[[str], str | None],
    now: datetime | None = None,
) -> AuthResult:
    """Verify a SigV2 header or presigned query (is_sigv2), or raise the S3Error AWS would send."""
    now = now or datetime.now(UTC)
    presigned = "authorization" not in headers
    if not presigned and "Signature" in query:
        raise S3Error("InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                      "Signature query string parameter or the Authorization header should be specified",
                      ArgumentName="Authorization", ArgumentValue=headers["authorization"][:64])
    access_key, signature, dates = _query_claims(query, now) if presigned else _header_claims(headers, now)
    secret = secret_for(access_key)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)
    standard = f"{method}\n{headers.get('content-md5', query.get('content-md5', '')).strip()}\n" \
               f"{headers.get('content-type', query.get('content-type', '')).strip()}\n"
    amz = _amz_headers(headers, query, presigned)
    candidates: Iterable[tuple[str, str, str]] = itertools.product(
        dates, dict.fromkeys((as_sent(amz), amz)), _resources(raw_path, raw_query, bucket, virtual_host))
    first = ""
    for date, amz_lines, resource in candidates:
        text = f"{standard}{date}\n{amz_lines}{resource}"
        if hmac.compare_digest(_sign(secret, text), signature):
            return AuthResult(access_key, declared_payload(headers), signature, "", "", b"", presigned, ALGORITHM)
        first = first or text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    raise S3Error("SignatureDoesNotMatch", AWSAccessKeyId=access_key, StringToSign=first,
                  SignatureProvided=signature, StringToSignBytes=" ".join(f"{b:02x}" for b in first.encode()))

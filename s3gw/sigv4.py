"""AWS Signature Version 4: header auth and presigned query strings (sans-IO).

`authenticate` turns a request's method, raw path, raw query and headers into an `AuthResult`
(who signed it, the payload-hash mode, and the key/seed needed to verify aws-chunked bodies),
or raises the S3Error AWS would send. Checks run in AWS's order: shape, access key, clock skew,
signature. The canonical URI is the decoded path re-encoded with AWS's rules; the path exactly
as sent is also accepted, for clients that sign their own (already encoded) path.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote, unquote

from .errors import S3Error
from .numbers import digits

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
# The query parameters of a presigned URL that authenticate it: each may appear once
_PRESIGN_PARAMS = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                             "X-Amz-SignedHeaders", "X-Amz-Expires", "X-Amz-Security-Token",
                             "X-Amz-Content-Sha256"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SPACES = re.compile(r"\s+")
_UNRESERVED = "-_.~"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AMZ_DATE = re.compile("[0-9]{8}T[0-9]{6}Z")


@dataclass(frozen=True, slots=True)
class AuthResult:
    access_key: str
    payload_hash: str  # hex sha256, UNSIGNED-PAYLOAD, or a STREAMING-* mode
    signature: str  # the request signature: the seed for aws-chunked chunk signatures
    amz_date: str
    scope: str  # date/region/service/aws4_request
    signing_key: bytes
    presigned: bool
    algorithm: str = ALGORITHM  # s3:signatureversion: "AWS4-HMAC-SHA256", or "AWS" for SigV2 (sigv2.py)


def uri_encode(value: str, *, keep_slash: bool) -> str:
    return quote(value, safe=_UNRESERVED + ("/" if keep_slash else ""))


def canonical_query(raw_query: str, *, drop_signature: bool) -> str:
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        name = unquote(name)
        if drop_signature and name == "X-Amz-Signature":
            continue
        pairs.append((uri_encode(name, keep_slash=False), uri_encode(unquote(value), keep_slash=False)))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def as_sent(text: str) -> str:
    """Header text as the bytes its sender put on the wire. The HTTP shell decodes header bytes
    as latin-1, so UTF-8 arrives as mojibake: re-decoded here (bytes that are not UTF-8 kept as
    surrogates), it encodes (utf-8, surrogateescape) back to exactly what was sent and signed."""
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return text
    return raw.decode("utf-8", "surrogateescape")


def canonical_headers(headers: Mapping[str, str], signed: list[str]) -> str:
    lines = []
    for name in signed:
        value = headers.get(name)
        if value is None:
            raise S3Error("SignatureDoesNotMatch", f"The header {name} is signed but was not sent.")
        lines.append(f"{name}:{_SPACES.sub(' ', value.strip())}\n")
    return "".join(lines)


@lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


def sign(key: bytes, string_to_sign: str) -> str:
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@dataclass(frozen=True, slots=True)
class _Claims:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    amz_date: str
    payload_hash: str
    presigned: bool
    expires: int = 0


def _parse_credential(value: str, error: str, expected_service: str) -> tuple[str, str, str, str]:
    parts = value.split("/")
    if len(parts) != 5 or not all(parts):
        raise S3Error(error, "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; "
                      "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    access_key, date, region, service, terminal = parts
    if terminal != "aws4_request":
        raise S3Error(error, f"The authorization header is malformed; incorrect terminal \"{terminal}\". "
                      "This endpoint uses \"aws4_request\".")
    if service != expected_service:
        raise S3Error(error, f"The authorization header is malformed; incorrect service \"{service}\". "
                      f"This endpoint belongs to \"{expected_service}\".")
    if not re.fullmatch(r"\d{8}", date):
        raise S3Error(error, "The authorization header is malformed; the credential date is invalid.")
    return access_key, date, region, service


def _parse_header_auth(auth: str, headers: Mapping[str, str], service: str, body_sha256: str | None) -> _Claims:
    if not auth.startswith(ALGORITHM + " "):
        if auth.startswith("AWS "):
            raise S3Error("InvalidRequest", "The authorization mechanism you have provided is not supported. "
                          "Please use AWS4-HMAC-SHA256.")
        raise S3Error("AuthorizationHeaderMalformed", "The authorization header is malformed; "
                      "the authorization header requires three components: Credential, SignedHeaders, "
                      "and Signature.")
    fields: dict[str, str] = {}
    for part in auth[len(ALGORITHM) + 1 :].split(","):
        name, eq, value = part.strip().partition("=")
        if eq:
            fields[name] = value.strip()
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        raise S3Error("AuthorizationHeaderMalformed", "The authorization header is malformed; "
                      "the authorization header requires three components: Credential, SignedHeaders, "
                      "and Signature.")
    access_key, date, region, service = _parse_credential(fields["Credential"], "AuthorizationHeaderMalformed",
                                                          service)
    amz_date = headers.get("x-amz-date")
    if amz_date is None:
        raw = headers.get("date")
        if raw is None:
            raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
        try:
            amz_date = parsedate_to_datetime(raw).astimezone(UTC).strftime(AMZ_DATE_FORMAT)
        except (TypeError, ValueError, OverflowError):  # Overflow: year 9999 at -1400
            raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header") from None
    # S3 signs the payload hash its client states; every other service signs the body's hash
    payload = headers.get("x-amz-content-sha256") if body_sha256 is None else body_sha256
    if payload is None:
        raise S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    payload = payload.strip()
    if payload not in (UNSIGNED, *STREAMING_MODES) and not _HEX64.match(payload):
        raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                      "STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
                      "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
                      ArgumentName="x-amz-content-sha256", ArgumentValue=payload)
    return _Claims(access_key, date, region, service, fields["SignedHeaders"].lower().split(";"),
                   fields["Signature"].lower(), amz_date, payload, presigned=False)


def _repeated_presign_param(raw_query: str) -> str | None:
    """The first authentication parameter the query holds twice. The query dict keeps one of
    them, and the canonical query drops every X-Amz-Signature: a second signature appended to a
    valid URL was ignored, and a second X-Amz-Date or X-Amz-Expires is ambiguous."""
    seen: set[str] = set()
    for item in raw_query.split("&"):
        name = unquote(item.partition("=")[0].replace("+", " "))
        if name in _PRESIGN_PARAMS:
            if name in seen:
                return name
            seen.add(name)
    return None


def _parse_presigned(query: Mapping[str, str], headers: Mapping[str, str], service: str,
                     raw_query: str) -> _Claims:
    err = "AuthorizationQueryParametersError"
    repeated = _repeated_presign_param(raw_query)
    if repeated:
        raise S3Error(err, f"The {repeated} query parameter may only be given once.")
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise S3Error(err, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
    missing = [p for p in ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders",
                           "X-Amz-Expires") if p not in query]
    if missing:
        raise S3Error(err, "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                      "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                      "X-Amz-Expires parameters.")
    access_key, date, region, service = _parse_credential(query["X-Amz-Credential"], err, service)
    raw_expires = query["X-Amz-Expires"]
    expires = digits(raw_expires)
    if expires is None:
        if raw_expires.startswith("-") and digits(raw_expires[1:]) is not None:
            raise S3Error(err, "X-Amz-Expires must be non-negative")
        raise S3Error(err, "X-Amz-Expires should be a number")
    if expires > MAX_PRESIGN_EXPIRES:
        raise S3Error(err, "X-Amz-Expires must be less than a week (in seconds) that is 604800")
    payload = query.get("X-Amz-Content-Sha256") or UNSIGNED
    return _Claims(access_key, date, region, service, query["X-Amz-SignedHeaders"].lower().split(";"),
                   query["X-Amz-Signature"].lower(), query["X-Amz-Date"], payload, presigned=True,
                   expires=expires)


def amz_datetime(value: str) -> datetime:
    """An X-Amz-Date (yyyyMMdd'T'HHmmss'Z'), or ValueError. Its fields must have all their
    digits: strptime takes one-digit fields, so 20261208T2500Z read as 02:50:00."""
    if not _AMZ_DATE.fullmatch(value):
        raise ValueError(f"not an X-Amz-Date: {value[:32]!r}")
    return datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=UTC)


@lru_cache(maxsize=64)
def _amz_date(value: str) -> datetime:
    """Requests of one second carry the same X-Amz-Date: parsed once (strptime costs ~20 us)."""
    return amz_datetime(value)


def _parse_amz_date(value: str, presigned: bool) -> datetime:
    try:
        return _amz_date(value)
    except ValueError:
        if presigned:
            raise S3Error("AuthorizationQueryParametersError",
                          "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"") from None
        raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header") from None


def is_presigned(query: Mapping[str, str]) -> bool:
    return "X-Amz-Signature" in query or "X-Amz-Credential" in query or "X-Amz-Algorithm" in query


def is_anonymous(query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
    """No authentication at all: no Authorization header, no presigned (or SigV2) query."""
    return "authorization" not in headers and not is_presigned(query) and not (
        "Signature" in query and "AWSAccessKeyId" in query)


def declared_payload(headers: Mapping[str, str]) -> str:
    """The payload mode of a request without a SigV4 signature (anonymous, or SigV2): its body is
    checked against the payload hash it declares, if any; an aws-chunked body can only be the
    unsigned kind (the signed kinds chain from a SigV4 signature)."""
    payload = headers.get("x-amz-content-sha256", UNSIGNED).strip()
    if payload in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        raise S3Error("AccessDenied", "A signed aws-chunked body needs a SigV4-signed request")
    if payload not in (UNSIGNED, STREAMING_UNSIGNED_TRAILER) and not _HEX64.match(payload):
        raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                      "STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.",
                      ArgumentName="x-amz-content-sha256", ArgumentValue=payload)
    return payload


def anonymous(headers: Mapping[str, str]) -> AuthResult:
    """The AuthResult of an unsigned request."""
    return AuthResult("", declared_payload(headers), "", "", "", b"", False, "")


def authenticate(
    method: str,
    raw_path: str,
    raw_query: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    secret_for: Callable[[str], str | None],
    now: datetime | None = None,
    *,
    region: str | None = None,
    service: str = "s3",
    body_sha256: str | None = None,
) -> AuthResult:
    """Verify the request's SigV4 signature; headers are lower-case names with joined values.
    `region`: the only region a credential scope may name (None: any). `service`: the one the
    scope must name; for a service other than S3 (IAM's query API), `body_sha256` is the hex
    SHA-256 of the body the caller read, which the signature covers."""
    auth = headers.get("authorization")
    if auth is not None and is_presigned(query):
        raise S3Error("InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                      "parameter, Signature query string parameter or the Authorization header should be specified",
                      ArgumentName="Authorization", ArgumentValue=auth[:64])
    if auth is not None:
        claims = _parse_header_auth(auth, headers, service, body_sha256)
    elif is_presigned(query):
        claims = _parse_presigned(query, headers, service, raw_query)
    elif "Signature" in query and "AWSAccessKeyId" in query:
        # A SigV2 presigned URL (what aws CLI v1 `s3 presign` and s3cmd `signurl` make by default):
        # answered as a SigV4-only AWS region does, not as an anonymous request.
        raise S3Error("InvalidRequest", "The authorization mechanism you have provided is not supported. "
                      "Please use AWS4-HMAC-SHA256.")
    else:
        raise S3Error("AccessDenied")
    if region is not None and claims.region != region:
        # AWS's wording; botocore reads <Region> to re-sign for the right one
        if claims.presigned:
            raise S3Error("AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter; "
                          f"the region '{claims.region}' is wrong; expecting '{region}'", Region=region)
        raise S3Error("AuthorizationHeaderMalformed", "The authorization header is malformed; "
                      f"the region '{claims.region}' is wrong; expecting '{region}'", Region=region)

    secret = secret_for(claims.access_key)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=claims.access_key)

    now = now or datetime.now(UTC)
    when = _parse_amz_date(claims.amz_date, claims.presigned)
    if claims.date != claims.amz_date[:8]:
        raise S3Error("AuthorizationHeaderMalformed" if not claims.presigned else "AuthorizationQueryParametersError",
                      f"Invalid credential date \"{claims.date}\". This date is not the same as X-Amz-Date: "
                      f"\"{claims.amz_date[:8]}\".")
    if claims.presigned:
        if when - now > MAX_SKEW:
            raise S3Error("AccessDenied", "Request is not valid yet")
        if now > when + timedelta(seconds=claims.expires):
            expired = S3Error("AccessDenied", "Request has expired")
            expired.fields = {
                "X-Amz-Expires": str(claims.expires),
                "Expires": (when + timedelta(seconds=claims.expires)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
            raise expired
    elif abs(now - when) > MAX_SKEW:
        raise S3Error("RequestTimeTooSkewed", RequestTime=claims.amz_date,
                      ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"), MaxAllowedSkewMilliseconds="900000")

    if "host" not in claims.signed_headers:
        raise S3Error("AuthorizationHeaderMalformed" if not claims.presigned else "AuthorizationQueryParametersError",
                      "The host header must be signed.")
    # Every x-amz-* header must be signed, in a presigned URL too: the URL's holder could
    # otherwise add x-amz-copy-source (turning a PUT into a copy of anything the signer may
    # read), x-amz-meta-*, x-amz-tagging, ... to a request the signer never saw.
    unsigned = sorted(n for n in headers if n.startswith("x-amz-") and n not in claims.signed_headers
                      and n != "x-amz-content-sha256")
    if unsigned:
        raise S3Error("AccessDenied", "There were headers present in the request which were not signed",
                      HeadersNotSigned=", ".join(unsigned))

    scope = f"{claims.date}/{claims.region}/{claims.service}/aws4_request"
    key = signing_key(secret, claims.date, claims.region, claims.service)
    cquery = canonical_query(raw_query, drop_signature=claims.presigned)
    cheaders = canonical_headers(headers, claims.signed_headers)
    # Non-ASCII header values (x-amz-meta-* in UTF-8): AWS signs the bytes as sent, which most
    # SDKs sign too; botocore signs the UTF-8 of a str it sends as latin-1. Both are accepted.
    renderings = dict.fromkeys((as_sent(cheaders), cheaders))
    first_sts = ""
    first_cr = ""
    for cpath, rendered in itertools.product(dict.fromkeys((uri_encode(unquote(raw_path), keep_slash=True),
                                                             raw_path)), renderings):
        tail = f"{cquery}\n{rendered}\n{';'.join(claims.signed_headers)}\n{claims.payload_hash}"
        creq = f"{method}\n{cpath}\n{tail}"
        sts = string_to_sign(claims.amz_date, scope, creq)
        if hmac.compare_digest(sign(key, sts), claims.signature):
            return AuthResult(claims.access_key, claims.payload_hash, claims.signature, claims.amz_date,
                              scope, key, claims.presigned)
        if not first_sts:  # shown in the error as text: bytes that were not UTF-8 become U+FFFD
            first_sts, first_cr = sts, creq.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    raise S3Error("SignatureDoesNotMatch", AWSAccessKeyId=claims.access_key, StringToSign=first_sts,
                  SignatureProvided=claims.signature, CanonicalRequest=first_cr)

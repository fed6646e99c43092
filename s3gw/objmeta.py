"""Object metadata at the HTTP edge: request headers -> PutMeta, a version -> response headers,
the response-* query overrides, tags (x-amz-tagging and the Tagging document), conditional
requests and Range.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

from appliance.engine import CONTENT_HEADERS, ObjectVersion, PutMeta, unquote_etag

from .checksums import header_name
from .errors import S3Error
from .numbers import MAX_DIGITS
from .routing import check_version_id
from .xmlio import http_date

MAX_USER_META = 2048
# AWS: "The PUT request header is limited to 8 KB in size" (of which user metadata 2 KB). The
# shell's cap ([s3] max_header_bytes, 64 KiB) bounds every request; the headers a write stores,
# which go back out on every GET and HEAD, are held to AWS's. Only those count: a replica's
# own headers (a sealed replica's segment list) are not the object's.
MAX_PUT_HEADERS = 8 * 1024
MAX_TAGS = 10
# What a storage class name may look like; which names exist is the engine's to say (AWS's and
# the configured ones: appliance/engine/classes.py), and it answers InvalidStorageClass.
STORAGE_CLASS_NAME = re.compile("[A-Z0-9_]{1,64}")
DEFAULT_CONTENT_TYPE = "binary/octet-stream"


def validate_tags(tags: dict[str, str], *, limit: int = MAX_TAGS, what: str = "Object") -> dict[str, str]:
    """AWS's rules for a tag set: at most `limit` tags (10 on an object, 50 on a bucket), keys of
    1-128 and values of 0-256 characters, no key in the reserved aws: namespace. Duplicate keys
    are refused where the tag set is parsed."""
    if len(tags) > limit:
        raise S3Error("InvalidTag", f"{what} tags cannot be greater than {limit}")
    for k, v in tags.items():
        if not 1 <= len(k) <= 128:
            raise S3Error("InvalidTag", "The TagKey you have provided is invalid")
        if len(v) > 256:
            raise S3Error("InvalidTag", "The TagValue you have provided is invalid")
        if k.startswith("aws:"):
            raise S3Error("InvalidTag", "Your TagKey cannot be prefixed with aws:")
    return tags


def _form_decode(text: str) -> str:
    """One URL-encoded (form) field of a header as text: the percent-escapes and any raw bytes
    (the shell hands header bytes over as latin-1) must make UTF-8."""
    raw = text.replace("+", " ")
    try:
        data = unquote_to_bytes(raw.encode("latin-1"))
    except UnicodeEncodeError:  # not from the wire: already text
        data = unquote_to_bytes(raw)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded "
                      "URL query parameters without tag name duplicates.") from None


def parse_tagging_header(value: str) -> dict[str, str]:
    """x-amz-tagging: URL-encoded `key=value` fields joined by `&`, read as a query string is: a
    key without `=` has an empty value and empty fields are skipped (what Go's url.ParseQuery,
    and so MinIO, do; AWS accepts these headers too)."""
    tags: dict[str, str] = {}
    for field in value.split("&"):
        if not field:
            continue
        name, _, text = field.partition("=")
        k, v = _form_decode(name), _form_decode(text)
        if k in tags:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
        tags[k] = v
    return validate_tags(tags)


def header_text(value: str) -> str:
    """A header value as the text its sender meant. Header bytes reach the gateway as latin-1:
    UTF-8 (what most clients send) is re-decoded, other bytes stay latin-1 (botocore sends a str
    as latin-1). A value that is an RFC 2047 encoded-word (=?UTF-8?B?...?=) is decoded, as AWS
    decodes x-amz-meta-* values before storing them (and encodes them again when it answers)."""
    try:
        text = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        text = value
    if text.startswith("=?") and text.rstrip().endswith("?="):
        try:
            return str(make_header(decode_header(text)))
        except (HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
            return text
    return text


_STORED_HEADERS = frozenset({"content-type", "x-amz-tagging", *CONTENT_HEADERS})


def put_meta(headers: dict[str, str], *, with_tags: bool = True) -> PutMeta:
    stored = sum(len(k) + len(v) + 4 for k, v in headers.items()  # "name: value\r\n"
                 if k in _STORED_HEADERS or k.startswith("x-amz-meta-"))
    if stored > MAX_PUT_HEADERS:
        raise S3Error("RequestHeaderSectionTooLarge", MaxSizeAllowed=str(MAX_PUT_HEADERS))
    meta = PutMeta(content_type=headers.get("content-type", ""))
    for name in CONTENT_HEADERS:
        if name in headers:
            value = headers[name]
            if name == "content-encoding":  # aws-chunked is transport framing, never stored
                value = ",".join(p for p in (s.strip() for s in value.split(",")) if p and p != "aws-chunked")
                if not value:
                    continue
            meta.headers[name] = value
    size = 0
    for name, raw in headers.items():
        if name.startswith("x-amz-meta-"):
            short, value = name[len("x-amz-meta-"):], header_text(raw)
            meta.user_meta[short] = value
            size += len(short.encode()) + len(value.encode())
    if size > MAX_USER_META:
        raise S3Error("MetadataTooLarge", Size=str(size), MaxSizeAllowed=str(MAX_USER_META))
    sc = headers.get("x-amz-storage-class")
    if sc is not None:
        if not STORAGE_CLASS_NAME.fullmatch(sc):
            raise S3Error("InvalidStorageClass", StorageClassRequested=sc)
        meta.storage_class = sc
    if with_tags and "x-amz-tagging" in headers:
        meta.tags = parse_tagging_header(headers["x-amz-tagging"])
    return meta


def version_headers(v: ObjectVersion, *, versioned: bool, checksum_mode: bool) -> list[tuple[str, str]]:
    out = [
        ("ETag", f'"{v.etag}"'),
        ("Last-Modified", http_date(v.last_modified_ns)),
        ("Content-Type", _stored_header(v.content_type or DEFAULT_CONTENT_TYPE)),
        ("Accept-Ranges", "bytes"),
    ]
    for name, value in v.headers.items():
        out.append((name.title(), _stored_header(value)))
    for name, value in v.user_meta.items():
        out.append((f"x-amz-meta-{name}", _header_safe(value)))
    if versioned or v.version_id != "null":
        out.append(("x-amz-version-id", v.version_id))
    if v.tags:
        out.append(("x-amz-tagging-count", str(len(v.tags))))
    if v.storage_class and v.storage_class != "STANDARD":
        out.append(("x-amz-storage-class", v.storage_class))
    if checksum_mode and v.checksums:
        for alg, value in v.checksums.items():
            out.append((header_name(alg), value))
        if v.checksum_type:
            out.append(("x-amz-checksum-type", v.checksum_type))
    return out


RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110's token
# what a header value may not hold: controls other than tab (CR/LF would split the response)
_HEADER_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def header_value(name: str, value: str) -> str:
    """`value`, which is to be a response header, if a header can carry it; else InvalidArgument
    (naming `name`), as AWS refuses it, rather than failing (and dropping the connection) when
    the response is sent."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise S3Error("InvalidArgument", "Header value cannot be represented using ISO-8859-1.",
                      ArgumentName=name, ArgumentValue=value) from None
    if _HEADER_UNSAFE.search(value):
        # not echoed: a control character cannot be written in the XML error either
        raise S3Error("InvalidArgument", "Header value contains a control character.", ArgumentName=name)
    return value


def response_overrides(query: dict[str, str]) -> dict[str, str]:
    """The response-* query parameters of a GET/HEAD as header name -> value."""
    return {header: header_value(param, query[param]) for param, header in RESPONSE_OVERRIDES.items()
            if param in query}


def _header_safe(value: str) -> str:
    """Metadata that is not ASCII goes out RFC 2047-encoded, as AWS does; so does metadata holding
    a control character, which a stored value may: an encoded-word (=?UTF-8?B?DQo=?=) is decoded
    before it is stored. Sent as it is, a CR or LF would split the response head, and every GET
    and HEAD of the object would drop the connection."""
    if value.isascii() and not _HEADER_UNSAFE.search(value):
        return value
    return _encoded_word(value)


def _stored_header(value: str) -> str:
    """A stored Content-Type, Cache-Control, ... as it was sent (latin-1 passes, byte for byte).
    Versions written before POST form fields were checked (header_value) may hold a control
    character or text outside latin-1: such a value goes out RFC 2047-encoded, as metadata does,
    rather than splitting the response head and making every GET and HEAD drop the connection."""
    if not _HEADER_UNSAFE.search(value):
        try:
            value.encode("latin-1")
            return value
        except UnicodeEncodeError:
            pass
    return _encoded_word(value)


def _encoded_word(value: str) -> str:
    return "=?UTF-8?Q?" + quote(value, safe="").replace("%", "=") + "?="


def _parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        d = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _etag_matches(header: str, etag: str, *, strong: bool = False) -> bool:
    wanted = [unquote_etag(e, strong=strong) for e in header.split(",")]
    return "*" in wanted or etag in wanted


def check_conditions(headers: dict[str, str], v: ObjectVersion, *, prefix: str = "") -> None:
    """RFC 7232 order, as S3 applies it. prefix="x-amz-copy-source-" for copy sources (all 412)."""
    modified = datetime.fromtimestamp(v.last_modified_ns // 1_000_000_000, UTC)
    if_match = headers.get(prefix + "if-match")
    if_none_match = headers.get(prefix + "if-none-match")
    if_unmod = _parse_http_date(headers.get(prefix + "if-unmodified-since"))
    if_mod = _parse_http_date(headers.get(prefix + "if-modified-since"))
    not_modified = "PreconditionFailed" if prefix else "NotModified"
    extra = {} if prefix else {"ETag": f'"{v.etag}"', "Last-Modified": http_date(v.last_modified_ns)}
    if if_match is not None:
        if not _etag_matches(if_match, v.etag, strong=True):
            raise S3Error("PreconditionFailed", Condition="If-Match")
    elif if_unmod is not None and modified > if_unmod:
        raise S3Error("PreconditionFailed", Condition="If-Unmodified-Since")
    if if_none_match is not None:
        if _etag_matches(if_none_match, v.etag):
            raise S3Error(not_modified, headers=extra) if not prefix else S3Error(
                "PreconditionFailed", Condition="If-None-Match")
    elif if_mod is not None and modified <= if_mod:
        raise S3Error(not_modified, headers=extra) if not prefix else S3Error(
            "PreconditionFailed", Condition="If-Modified-Since")


# RFC 9110 14.1-14.2: the unit is case-insensitive, and the range set (a list) may have
# whitespace around it; [0-9], not \d, which also matches other scripts' digits
_RANGE = re.compile(r"bytes=[ \t]*([0-9]*)-([0-9]*)[ \t]*", re.IGNORECASE)
_BEYOND = 1 << 64  # a position with more digits than any object size has: past its end


def _position(raw: str) -> int:
    """A range's byte position; int() refuses more than 4,300 digits, and no object is that large."""
    return _BEYOND if len(raw) > MAX_DIGITS else int(raw)


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """A single byte range -> [start, end) or None (whole object); unsatisfiable -> InvalidRange."""
    if not value:
        return None
    m = _RANGE.fullmatch(value.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # multiple or malformed ranges: ignored, the whole object is returned
    first, last = m.group(1), m.group(2)
    if first:
        start = _position(first)
        end = _position(last) + 1 if last else size
        if last and end <= start:
            return None
        if start >= size:
            raise S3Error("InvalidRange", headers={"Content-Range": f"bytes */{size}"},
                          RangeRequested=value, ActualObjectSize=str(size))
        return start, min(end, size)
    suffix = _position(last)
    if suffix == 0 or size == 0:
        raise S3Error("InvalidRange", headers={"Content-Range": f"bytes */{size}"},
                      RangeRequested=value, ActualObjectSize=str(size))
    return max(0, size - suffix), size


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    from urllib.parse import unquote

    path, _, query = value.partition("?")
    try:
        path = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidArgument", "Invalid copy source encoding") from None
    path = path.lstrip("/")
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Invalid copy source object key", ArgumentName="x-amz-copy-source",
                      ArgumentValue=value)
    version_id = None
    if query:
        for item in query.split("&"):
            k, _, v = item.partition("=")
            if k == "versionId":
                version_id = unquote(v)
    if version_id:
        check_version_id(version_id)
    return bucket, key, version_id

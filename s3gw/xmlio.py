"""S3 XML in and out.

Output: small string builders (listings of 1000 keys are built often; templates are fast and
the escaping is explicit). Input: expat driving an ElementTree builder, with the namespace
stripped; anything that is not the expected document raises MalformedXML. A document with a
DOCTYPE is refused where the DOCTYPE starts, so no entity is ever declared, expanded (the
"billion laughs") or fetched. Request bodies are size-capped before they get here, and parsed
in a worker thread (body.read_xml).
"""

from __future__ import annotations

import functools
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import quote
from xml.parsers import expat
from xml.sax.saxutils import escape as _escape

from .errors import S3Error

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Characters written as a reference: those XML 1.0 cannot hold, and CR, which a parser reads
# back as LF (a key "a\r\nb" would be listed as "a\nb", a key that does not exist).
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]")


_NEEDS_ESCAPE = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]")


_ESCAPED_BYTES = b"&<>" + bytes([*range(0x00, 0x09), *range(0x0B, 0x20)])


def needs_escape(value: str) -> bool:
    """Whether esc() would change `value`: the one check a listing makes over all the text of a
    page. On its UTF-8 bytes, where deleting a set of bytes is ~5x faster than _NEEDS_ESCAPE's
    scan of the text: ASCII bytes stand only for themselves in UTF-8, and U+FFFE/U+FFFF have
    one encoding each."""
    raw = value.encode("utf-8", "surrogatepass")
    return (len(raw.translate(None, _ESCAPED_BYTES)) != len(raw)
            or b"\xef\xbf\xbe" in raw or b"\xef\xbf\xbf" in raw)


def esc(value: str) -> str:
    if not _NEEDS_ESCAPE.search(value):  # most values: one scan instead of four
        return value
    value = _escape(value)
    if _INVALID_XML_CHARS.search(value):
        value = _INVALID_XML_CHARS.sub(lambda m: f"&#x{ord(m.group()):x};", value)
    return value


def url_encode(value: str) -> str:
    """encoding-type=url: what AWS does and what botocore's unquote_plus undoes."""
    return quote(value, safe="/").replace("%20", "+")


@functools.lru_cache(maxsize=4096)
def iso_seconds(seconds: int) -> str:
    """iso_time's text up to the milliseconds, for a whole second since the epoch."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))


def iso_time(ns: int) -> str:
    """ISO 8601 with milliseconds, UTC (a listing formats one per key: the seconds part of
    objects written together is formatted once)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{iso_seconds(seconds)}{rest // 1_000_000:03d}Z"


def http_date(ns: int) -> str:
    return _http_date(ns // 1_000_000_000)


@functools.lru_cache(maxsize=4096)
def _http_date(seconds: int) -> str:
    """Last-Modified of every GET and HEAD: objects written in one second share one strftime."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(seconds))


def el(name: str, value: str | int | bool | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{esc(str(value))}</{name}>"


def doc(root: str, parts: Iterable[str | bytes]) -> bytes:
    """The document of these elements (text, or already encoded). Encoded piece by piece and
    joined once: a listing's document is a few hundred kilobytes, and joining it as text and
    then encoding that took 4x as long (two such buffers at once: fresh pages every time)."""
    out = [f'{HEAD}<{root} xmlns="{NS}">'.encode()]
    out += [p.encode() if isinstance(p, str) else p for p in parts]
    out.append(f"</{root}>".encode())
    return b"".join(out)


# --- input --------------------------------------------------------------------------------------


def _strip(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _Forbidden(Exception):
    """The document declares a DTD or an entity."""


def _refuse(*_: object) -> NoReturn:
    raise _Forbidden()


def _qualified(name: str) -> str:
    """expat's "uri}local" as ElementTree's "{uri}local"."""
    return "{" + name if "}" in name else name


def _tree(body: bytes) -> ET.Element:
    """ET.fromstring, minus DTDs: expat calls the DOCTYPE handler as soon as it reads
    `<!DOCTYPE name`, before any declaration in it is processed, and the parse stops there.
    Without a DTD an entity reference other than the five predefined ones is a parse error."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.StartElementHandler = lambda name, attrs: builder.start(
        _qualified(name), {_qualified(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda name: builder.end(_qualified(name))
    parser.CharacterDataHandler = builder.data
    parser.Parse(body, True)
    return builder.close()


def parse(body: bytes, root: str) -> ET.Element:
    """Parse a request document whose root element must be `root` (namespace ignored)."""
    if not body.strip():
        raise S3Error("MalformedXML")
    try:
        tree = _tree(body)
    except (expat.ExpatError, _Forbidden, ValueError, LookupError):  # Lookup: encoding="bogus"
        raise S3Error("MalformedXML") from None
    for node in tree.iter():
        if isinstance(node.tag, str):
            node.tag = _strip(node.tag)
    if tree.tag != root:
        raise S3Error("MalformedXML")
    return tree


def children(node: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in node if c.tag == name]


def text(node: ET.Element, name: str, default: str | None = None) -> str | None:
    found = children(node, name)
    if not found:
        return default
    if len(found) > 1:
        raise S3Error("MalformedXML")
    return found[0].text or ""


def parse_tagging(body: bytes) -> dict[str, str]:
    root = parse(body, "Tagging")
    tagsets = children(root, "TagSet")
    if len(tagsets) != 1:
        raise S3Error("MalformedXML")
    tags: dict[str, str] = {}
    for tag in children(tagsets[0], "Tag"):
        key, value = text(tag, "Key"), text(tag, "Value")
        if key is None or value is None:
            raise S3Error("MalformedXML")
        if key in tags:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
        tags[key] = value
    return tags


def parse_versioning(body: bytes) -> str:
    root = parse(body, "VersioningConfiguration")
    status = text(root, "Status")
    if status not in ("Enabled", "Suspended"):
        raise S3Error("IllegalVersioningConfigurationException",
                      "The versioning configuration specified in the request is invalid.")
    mfa = text(root, "MfaDelete")
    if mfa not in (None, "Disabled"):
        raise S3Error("NotImplemented", "MFA Delete is not supported.")
    return status


# An Object's conditions on its time and size (as x-amz-if-match-* on DeleteObject; AWS: directory
# buckets only): not implemented, so refused rather than deleting what the client meant to keep.
# Its ETag (as If-Match on DeleteObject) is served.
DELETE_CONDITIONS = ("LastModifiedTime", "Size")


@dataclass(frozen=True, slots=True)
class DeleteEntry:
    """An <Object> of DeleteObjects: its key, version id and ETag condition (If-Match)."""

    key: str
    version_id: str | None = None
    etag: str | None = None


def parse_delete(body: bytes) -> tuple[bool, list[DeleteEntry]]:
    root = parse(body, "Delete")
    quiet = (text(root, "Quiet") or "false").strip().lower() == "true"
    objects: list[DeleteEntry] = []
    for obj in children(root, "Object"):
        for name in DELETE_CONDITIONS:
            if children(obj, name):
                raise S3Error("NotImplemented", f"Conditional deletes ({name} in DeleteObjects) are not implemented.")
        key = text(obj, "Key")
        if key is None:
            raise S3Error("MalformedXML")
        objects.append(DeleteEntry(key, text(obj, "VersionId"), text(obj, "ETag")))
    if not objects or len(objects) > 1000:
        raise S3Error("MalformedXML")
    return quiet, objects


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """A <Part> of CompleteMultipartUpload: its number, ETag and the checksums the client lists."""

    number: int
    etag: str
    checksums: dict[str, str] = field(default_factory=dict)  # ALGORITHM -> base64


def parse_complete(body: bytes) -> list[CompletedPart]:
    root = parse(body, "CompleteMultipartUpload")
    parts: list[CompletedPart] = []
    for part in children(root, "Part"):
        num, etag = text(part, "PartNumber"), text(part, "ETag")
        if num is None or etag is None:
            raise S3Error("MalformedXML")
        try:
            n = int(num)
        except ValueError:
            raise S3Error("MalformedXML") from None
        sums = {c.tag[len("Checksum"):].upper(): (c.text or "").strip() for c in part
                if c.tag.startswith("Checksum")}
        parts.append(CompletedPart(n, etag.strip().strip('"'), sums))
    if not parts:
        raise S3Error("MalformedXML")
    return parts


def parse_location(body: bytes) -> str:
    if not body.strip():
        return ""
    root = parse(body, "CreateBucketConfiguration")
    for child in root:
        if child.tag in ("Tags", "Bucket", "Location"):  # tags at creation; directory buckets
            raise S3Error("NotImplemented", f"CreateBucketConfiguration's {child.tag} is not implemented.")
        if child.tag != "LocationConstraint":
            raise S3Error("MalformedXML")
    return (text(root, "LocationConstraint") or "").strip()

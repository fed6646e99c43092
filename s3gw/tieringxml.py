"""The IntelligentTieringConfiguration document in and out, with AWS's validation.

MalformedXML for what does not fit the schema (an unknown or repeated element, no Tiering, a
Status other than Enabled/Disabled, an AccessTier other than ARCHIVE_ACCESS/DEEP_ARCHIVE_ACCESS,
a Days that is not an integer); InvalidArgument for values the schema allows but S3 refuses
(an Id that does not match the `id` parameter or is too long, Days out of range: 90-730 for
ARCHIVE_ACCESS, 180-730 for DEEP_ARCHIVE_ACCESS, a tier named twice, a Deep Archive period not
longer than the Archive one, a duplicate tag key); InvalidTag for a bad tag. Input goes through
xmlio.parse: no DTD, no entities, size-capped before parsing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from appliance.engine import TieringConfigRecord

from .errors import S3Error
from .lifecyclexml import _tag
from .numbers import digits
from .xmlio import children, el, esc, parse, text

MAX_ID = 64
DAYS = {"ARCHIVE_ACCESS": (90, 730), "DEEP_ARCHIVE_ACCESS": (180, 730)}
ROOT = "IntelligentTieringConfiguration"


def _malformed() -> S3Error:
    return S3Error("MalformedXML")


def _only(node: ET.Element, allowed: tuple[str, ...], once: bool = True) -> None:
    tags = [c.tag for c in node]
    if any(t not in allowed for t in tags) or (once and len(tags) != len(set(tags))):
        raise _malformed()


def _filter(node: ET.Element | None) -> tuple[str, dict[str, str]]:
    if node is None:
        return "", {}
    _only(node, ("Prefix", "Tag", "And"))
    if len(node) > 1:
        raise _malformed()  # one of Prefix, Tag and And
    if not len(node):
        return "", {}
    form = node[0]
    if form.tag == "Prefix":
        return form.text or "", {}
    if form.tag == "Tag":
        k, v = _tag(form)
        return "", {k: v}
    _only(form, ("Prefix", "Tag"), once=False)
    if len(children(form, "Prefix")) > 1 or not len(form):
        raise _malformed()
    tags: dict[str, str] = {}
    for t in children(form, "Tag"):
        k, v = _tag(t)
        if k in tags:
            raise S3Error("InvalidArgument", "Duplicate Tag Keys are not allowed.")
        tags[k] = v
    return text(form, "Prefix") or "", tags


def parse_tiering(body: bytes, bucket: str, config_id: str) -> TieringConfigRecord:
    root = parse(body, ROOT)
    _only(root, ("Id", "Filter", "Status", "Tiering"), once=False)
    for name in ("Id", "Filter", "Status"):
        if len(children(root, name)) > 1:
            raise _malformed()
    given_id, status = text(root, "Id"), text(root, "Status")
    if given_id is None or status is None:
        raise _malformed()
    if status not in ("Enabled", "Disabled"):
        raise _malformed()
    if given_id != config_id:
        raise S3Error("InvalidArgument", "The ID in the configuration does not match the id parameter",
                      ArgumentName="id", ArgumentValue=config_id)
    filters = children(root, "Filter")
    prefix, tags = _filter(filters[0] if filters else None)
    days: dict[str, int] = {}
    tierings = children(root, "Tiering")
    if not tierings:
        raise _malformed()
    for node in tierings:
        _only(node, ("AccessTier", "Days"))
        tier, value = text(node, "AccessTier"), digits((text(node, "Days") or "").strip(), 9)
        if tier not in DAYS or value is None:
            raise _malformed()
        if tier in days:
            raise S3Error("InvalidArgument", f"AccessTier {tier} is specified more than once")
        lo, hi = DAYS[tier]
        if not lo <= value <= hi:
            raise S3Error("InvalidArgument", f"Days for {tier} must be between {lo} and {hi}",
                          ArgumentName="Days", ArgumentValue=str(value))
        days[tier] = value
    archive, deep = days.get("ARCHIVE_ACCESS", 0), days.get("DEEP_ARCHIVE_ACCESS", 0)
    if archive and deep and deep <= archive:
        raise S3Error("InvalidArgument", "Days for DEEP_ARCHIVE_ACCESS must be greater than for ARCHIVE_ACCESS")
    return TieringConfigRecord(bucket, config_id, status, prefix, tags, archive, deep)


def check_id(config_id: str | None) -> str:
    """The `id` query parameter (required by Put, Get and Delete)."""
    if not config_id:
        raise S3Error("InvalidArgument", "Missing required parameter: id", ArgumentName="id", ArgumentValue="")
    if len(config_id) > MAX_ID:
        raise S3Error("InvalidArgument", f"The id must be at most {MAX_ID} characters", ArgumentName="id",
                      ArgumentValue=config_id)
    return config_id


def _tag_xml(k: str, v: str) -> str:
    return f"<Tag>{el('Key', k)}{el('Value', v)}</Tag>"


def tiering_xml(rec: TieringConfigRecord) -> str:
    """One configuration, as Get answers it and List lists it (without the XML declaration)."""
    if rec.tags and (rec.prefix or len(rec.tags) > 1):
        inner = (el("Prefix", rec.prefix) if rec.prefix else "") + "".join(_tag_xml(k, v) for k, v in rec.tags.items())
        filt = f"<Filter><And>{inner}</And></Filter>"
    elif rec.tags:
        filt = "<Filter>" + "".join(_tag_xml(k, v) for k, v in rec.tags.items()) + "</Filter>"
    elif rec.prefix:
        filt = f"<Filter>{el('Prefix', rec.prefix)}</Filter>"
    else:
        filt = ""
    tiers = [("ARCHIVE_ACCESS", rec.archive_days), ("DEEP_ARCHIVE_ACCESS", rec.deep_archive_days)]
    tiering = "".join(f"<Tiering>{el('AccessTier', t)}{el('Days', d)}</Tiering>" for t, d in tiers if d)
    return f"<Id>{esc(rec.config_id)}</Id>{filt}{el('Status', rec.status)}{tiering}"

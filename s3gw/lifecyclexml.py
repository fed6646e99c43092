"""The LifecycleConfiguration document in and out, with AWS's validation and its error codes.

MalformedXML for what does not fit the schema (an unknown element, a missing or repeated one,
both or neither of two exclusive ones, a non-integer number, a bad Status); InvalidArgument for
values the schema allows but S3 refuses (a Days that is not positive, a Date not at midnight
UTC, a duplicate rule ID, NewerNoncurrentVersions outside 1-100, the 30-day minimum of the
infrequent-access classes, tags with ExpiredObjectDeleteMarker or AbortIncompleteMultipartUpload);
InvalidStorageClass for a transition to a class that does not exist or to STANDARD. Input goes
through xmlio.parse: no DTD, no entities, size-capped before parsing.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from appliance.engine import LifecycleRule, NoncurrentTransition, RuleFilter, Transition

from .errors import S3Error
from .numbers import digits
from .xmlio import children, doc, el, parse, text

MAX_RULES = 1000
MAX_ID = 255
MAX_NEWER = 100
IA_CLASSES = ("STANDARD_IA", "ONEZONE_IA")
IA_MIN_DAYS = 30
FILTER_ELEMENTS = ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And")
RULE_ELEMENTS = {"ID", "Status", "Prefix", "Filter", "Expiration", "Transition", "NoncurrentVersionExpiration",
                 "NoncurrentVersionTransition", "AbortIncompleteMultipartUpload"}


def _malformed() -> S3Error:
    return S3Error("MalformedXML")


def _only(node: ET.Element, allowed: set[str] | tuple[str, ...]) -> None:
    if any(c.tag not in allowed for c in node):
        raise _malformed()


def _int(node: ET.Element, name: str) -> int | None:
    raw = text(node, name)
    if raw is None:
        return None
    raw = raw.strip()
    value = digits(raw.removeprefix("-"), 18)
    if value is None:
        raise _malformed()
    return -value if raw.startswith("-") else value


def _positive(value: int | None, what: str) -> int | None:
    if value is not None and value <= 0:
        raise S3Error("InvalidArgument", f"'{what}' must be a positive integer")
    return value


def _date(raw: str) -> str:
    """AWS's Date: ISO 8601 at midnight UTC; stored as AWS answers it."""
    try:
        t = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        t = (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # Overflow: 9999-12-31 at -14:00 is past year 9999 in UTC
        raise S3Error("InvalidArgument", "Invalid date: the Date must be in ISO 8601 format") from None
    if (t.hour, t.minute, t.second, t.microsecond) != (0, 0, 0, 0):
        raise S3Error("InvalidArgument", "'Date' must be at midnight GMT")
    return t.strftime("%Y-%m-%dT00:00:00.000Z")


def _tag(node: ET.Element) -> tuple[str, str]:
    _only(node, ("Key", "Value"))
    key, value = text(node, "Key"), text(node, "Value")
    if key is None or value is None:
        raise _malformed()
    if not 1 <= len(key) <= 128 or len(value) > 256:
        raise S3Error("InvalidTag", "The TagKey or TagValue you have provided is invalid")
    return key, value


def _sizes(node: ET.Element) -> tuple[int | None, int | None]:
    gt, lt = _int(node, "ObjectSizeGreaterThan"), _int(node, "ObjectSizeLessThan")
    if (gt is not None and gt < 0) or (lt is not None and lt <= 0):
        raise S3Error("InvalidArgument", "'ObjectSizeGreaterThan' and 'ObjectSizeLessThan' must be non-negative "
                      "and 'ObjectSizeLessThan' greater than zero")
    if gt is not None and lt is not None and gt >= lt:
        raise S3Error("InvalidArgument", "'ObjectSizeGreaterThan' must be less than 'ObjectSizeLessThan'")
    return gt, lt


def _filter(node: ET.Element) -> RuleFilter:
    _only(node, FILTER_ELEMENTS)
    present = [c.tag for c in node]
    if len(present) > 1:
        raise _malformed()  # exactly one of Prefix, Tag, the two sizes and And
    if not present:
        return RuleFilter("empty")
    form = present[0]
    if form == "Prefix":
        return RuleFilter("Prefix", prefix=text(node, "Prefix") or "")
    if form == "Tag":
        k, v = _tag(node[0])
        return RuleFilter("Tag", tags={k: v})
    if form in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        gt, lt = _sizes(node)
        return RuleFilter(form, size_gt=gt, size_lt=lt)
    conj = node[0]
    _only(conj, ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"))
    tags: dict[str, str] = {}
    for t in children(conj, "Tag"):
        k, v = _tag(t)
        if k in tags:
            raise S3Error("InvalidArgument", "Duplicate Tag Keys are not allowed.")
        tags[k] = v
    gt, lt = _sizes(conj)
    if not len(conj):
        raise _malformed()
    return RuleFilter("And", prefix=text(conj, "Prefix") or "", tags=tags, size_gt=gt, size_lt=lt)


def _transition_class(node: ET.Element) -> str:
    sc = text(node, "StorageClass")
    if sc is None:
        raise _malformed()
    sc = sc.strip()
    if sc == "STANDARD" or not sc:
        raise S3Error("InvalidStorageClass", "The storage class you specified is not valid")
    return sc


def _transitions(rule: ET.Element) -> list[Transition]:
    out: list[Transition] = []
    for node in children(rule, "Transition"):
        _only(node, ("Days", "Date", "StorageClass"))
        days, date = _int(node, "Days"), text(node, "Date")
        if (days is None) == (date is None):
            raise _malformed()
        if days is not None and days < 0:
            raise S3Error("InvalidArgument", "'Days' in Transition action must be nonnegative")
        sc = _transition_class(node)
        if days is not None and sc in IA_CLASSES and days < IA_MIN_DAYS:
            raise S3Error("InvalidArgument", f"'Days' in Transition action must be greater than or equal to "
                          f"{IA_MIN_DAYS} for storageClass '{sc}'")
        out.append(Transition(sc, days, _date(date) if date is not None else ""))
    classes = [t.storage_class for t in out]
    if len(set(classes)) != len(classes):
        raise S3Error("InvalidArgument", "'StorageClass' must be different for 'Transition' actions in same 'Rule'")
    if len({t.days is None for t in out}) > 1:
        raise S3Error("InvalidRequest", "Found mixed 'Date' and 'Days' based Transition actions in lifecycle rule")
    return out


def _noncurrent_transitions(rule: ET.Element) -> list[NoncurrentTransition]:
    out: list[NoncurrentTransition] = []
    for node in children(rule, "NoncurrentVersionTransition"):
        _only(node, ("NoncurrentDays", "StorageClass", "NewerNoncurrentVersions"))
        days = _int(node, "NoncurrentDays")
        if days is None:
            raise _malformed()
        if days < 0:
            raise S3Error("InvalidArgument", "'NoncurrentDays' in NoncurrentVersionTransition action must be "
                          "nonnegative")
        sc = _transition_class(node)
        if sc in IA_CLASSES and days < IA_MIN_DAYS:
            raise S3Error("InvalidArgument", f"'NoncurrentDays' in NoncurrentVersionTransition action must be "
                          f"greater than or equal to {IA_MIN_DAYS} for storageClass '{sc}'")
        out.append(NoncurrentTransition(sc, days, _newer(node)))
    classes = [t.storage_class for t in out]
    if len(set(classes)) != len(classes):
        raise S3Error("InvalidArgument", "'StorageClass' must be different for 'NoncurrentVersionTransition' "
                      "actions in same 'Rule'")
    return out


def _newer(node: ET.Element) -> int | None:
    n = _int(node, "NewerNoncurrentVersions")
    if n is not None and not 1 <= n <= MAX_NEWER:
        raise S3Error("InvalidArgument", f"'NewerNoncurrentVersions' must be between 1 and {MAX_NEWER}")
    return n


def _rule(node: ET.Element) -> LifecycleRule:
    _only(node, RULE_ELEMENTS)
    for name in RULE_ELEMENTS - {"Transition", "NoncurrentVersionTransition"}:
        if len(children(node, name)) > 1:
            raise _malformed()
    rule_id = text(node, "ID")
    if rule_id is None or not rule_id:
        rule_id = secrets.token_urlsafe(36)[:48]  # AWS names a rule without an ID itself
    if len(rule_id) > MAX_ID:
        raise S3Error("InvalidArgument", f"ID length should not exceed allowed limit of {MAX_ID}")
    status = text(node, "Status")
    if status not in ("Enabled", "Disabled"):
        raise _malformed()
    legacy, filt = children(node, "Prefix"), children(node, "Filter")
    if bool(legacy) == bool(filt):
        raise _malformed()  # one of the 2006 Prefix and the Filter, never both
    rf = RuleFilter("prefix", prefix=legacy[0].text or "") if legacy else _filter(filt[0])

    exp_days = exp_date = eodm = None
    for e in children(node, "Expiration"):
        _only(e, ("Days", "Date", "ExpiredObjectDeleteMarker"))
        exp_days, exp_date, raw_marker = _int(e, "Days"), text(e, "Date"), text(e, "ExpiredObjectDeleteMarker")
        if sum(x is not None for x in (exp_days, exp_date, raw_marker)) != 1:
            raise _malformed()
        _positive(exp_days, "Days' for Expiration action")
        if raw_marker is not None:
            if raw_marker.strip() not in ("true", "false"):
                raise _malformed()
            eodm = raw_marker.strip() == "true"
            if rf.tags:
                raise S3Error("InvalidArgument", "ExpiredObjectDeleteMarker cannot be specified with tags.")
    nc_days = nc_newer = None
    for e in children(node, "NoncurrentVersionExpiration"):
        _only(e, ("NoncurrentDays", "NewerNoncurrentVersions"))
        nc_days = _positive(_int(e, "NoncurrentDays"), "NoncurrentDays' for NoncurrentVersionExpiration action")
        if nc_days is None:
            raise _malformed()
        nc_newer = _newer(e)
    abort = None
    for e in children(node, "AbortIncompleteMultipartUpload"):
        _only(e, ("DaysAfterInitiation",))
        abort = _positive(_int(e, "DaysAfterInitiation"), "DaysAfterInitiation")
        if abort is None:
            raise _malformed()
        if rf.tags or rf.size_gt is not None or rf.size_lt is not None:
            raise S3Error("InvalidArgument", "AbortIncompleteMultipartUpload cannot be specified with Tags or "
                          "object size filters.")
    transitions, nc_transitions = _transitions(node), _noncurrent_transitions(node)
    if exp_days is not None:
        for t in transitions:
            if t.days is not None and t.days >= exp_days:
                raise S3Error("InvalidArgument", "'Days' in the Expiration action must be greater than 'Days' in "
                              "the Transition action")
    if exp_days is None and exp_date is None and eodm is None and nc_days is None and abort is None \
            and not transitions and not nc_transitions:
        raise S3Error("InvalidArgument", "At least one action needs to be specified in a rule")
    return LifecycleRule(rule_id, status == "Enabled", rf, exp_days, _date(exp_date) if exp_date is not None else "",
                         eodm, transitions, nc_days, nc_newer, nc_transitions, abort)


def parse_lifecycle(body: bytes) -> list[LifecycleRule]:
    root = parse(body, "LifecycleConfiguration")
    _only(root, ("Rule",))
    nodes = children(root, "Rule")
    if not nodes or len(nodes) > MAX_RULES:
        raise _malformed()
    rules = [_rule(n) for n in nodes]
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise S3Error("InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule")
    return rules


# --- out ------------------------------------------------------------------------------------------


def _tags_xml(tags: dict[str, str]) -> str:
    return "".join(f"<Tag>{el('Key', k)}{el('Value', v)}</Tag>" for k, v in tags.items())


def _filter_xml(f: RuleFilter) -> str:
    if f.form == "prefix":
        return el("Prefix", f.prefix)
    sizes = el("ObjectSizeGreaterThan", f.size_gt) + el("ObjectSizeLessThan", f.size_lt)
    if f.form == "empty":
        inner = ""
    elif f.form == "Prefix":
        inner = el("Prefix", f.prefix)
    elif f.form == "Tag":
        inner = _tags_xml(f.tags)
    elif f.form == "And":
        inner = "<And>" + (el("Prefix", f.prefix) if f.prefix else "") + _tags_xml(f.tags) + sizes + "</And>"
    else:
        inner = sizes
    return f"<Filter>{inner}</Filter>"


def _rule_xml(r: LifecycleRule) -> str:
    parts = [el("ID", r.id), _filter_xml(r.filter), el("Status", "Enabled" if r.enabled else "Disabled")]
    parts += ["<Transition>" + (el("Days", t.days) if t.days is not None else el("Date", t.date))
              + el("StorageClass", t.storage_class) + "</Transition>" for t in r.transitions]
    if r.expiration_days is not None or r.expiration_date or r.expired_object_delete_marker is not None:
        parts.append("<Expiration>" + el("Days", r.expiration_days) + (el("Date", r.expiration_date)
                     if r.expiration_date else "") + el("ExpiredObjectDeleteMarker", r.expired_object_delete_marker)
                     + "</Expiration>")
    parts += ["<NoncurrentVersionTransition>" + el("NoncurrentDays", nt.days) + el("StorageClass", nt.storage_class)
              + el("NewerNoncurrentVersions", nt.newer) + "</NoncurrentVersionTransition>"
              for nt in r.noncurrent_transitions]
    if r.noncurrent_days is not None:
        parts.append("<NoncurrentVersionExpiration>" + el("NoncurrentDays", r.noncurrent_days)
                     + el("NewerNoncurrentVersions", r.noncurrent_newer) + "</NoncurrentVersionExpiration>")
    if r.abort_days is not None:
        parts.append("<AbortIncompleteMultipartUpload>" + el("DaysAfterInitiation", r.abort_days)
                     + "</AbortIncompleteMultipartUpload>")
    return "<Rule>" + "".join(parts) + "</Rule>"


def lifecycle_xml(rules: list[LifecycleRule]) -> bytes:
    return doc("LifecycleConfiguration", [_rule_xml(r) for r in rules])

"""Object lock at the HTTP edge: the x-amz-object-lock-* headers of writes, the three lock documents
(ObjectLockConfiguration, Retention, LegalHold), the condition keys they give policies, and the
headers HEAD/GET report. Parsing raises AWS's errors for each case. What may change and what is
protected is the engine's business (appliance/engine/lock.py), so the rules hold for the mount
and every other caller as well; docs/object-lock.md describes the whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from appliance.engine import (
    LOCK_MODES,
    MAX_RETENTION_DAYS,
    MAX_RETENTION_YEARS,
    DefaultRetention,
    LockConfig,
    ObjectVersion,
    remaining_retention_days,
)

from .checksums import BodyChecks
from .errors import S3Error
from .xmlio import children, doc, el, iso_time, parse, text

BUCKET_LOCK_HEADER = "x-amz-bucket-object-lock-enabled"
MODE_HEADER = "x-amz-object-lock-mode"
UNTIL_HEADER = "x-amz-object-lock-retain-until-date"
HOLD_HEADER = "x-amz-object-lock-legal-hold"
BYPASS_HEADER = "x-amz-bypass-governance-retention"
PAST_DATE = "The retain until date must be in the future!"


@dataclass(frozen=True, slots=True)
class LockRequest:
    """The lock settings a request asks for: a retention (mode "" = none asked, or, in a Retention
    document, none at all) and a legal hold (None = not asked)."""

    mode: str = ""
    until_ns: int = 0
    legal_hold: bool | None = None

    @property
    def asked(self) -> bool:
        return bool(self.mode) or self.legal_hold is not None

    def conditions(self, now_ns: int) -> dict[str, str]:
        """The condition keys AWS derives from these settings."""
        out: dict[str, str] = {}
        if self.mode:
            out["s3:object-lock-mode"] = self.mode
            out["s3:object-lock-retain-until-date"] = iso_time(self.until_ns)
            out["s3:object-lock-remaining-retention-days"] = str(remaining_retention_days(self.until_ns, now_ns))
        if self.legal_hold is not None:
            out["s3:object-lock-legal-hold"] = "ON" if self.legal_hold else "OFF"
        return out


def parse_date(value: str) -> int | None:
    """An ISO 8601 date-time as ns since the epoch (UTC when it names no zone); None if unreadable."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


def _argument(message: str, name: str, value: str) -> S3Error:
    return S3Error("InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


def from_headers(headers: Mapping[str, str], now_ns: int) -> LockRequest:
    """The lock settings of a PutObject, CopyObject or CreateMultipartUpload."""
    mode, until, hold = headers.get(MODE_HEADER), headers.get(UNTIL_HEADER), headers.get(HOLD_HEADER)
    if mode is not None and mode not in LOCK_MODES:
        raise _argument("Unknown wormMode directive.", MODE_HEADER, mode)
    if (mode is None) != (until is None):
        raise S3Error("InvalidArgument", "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must "
                      "both be supplied")
    until_ns = 0
    if until is not None:
        parsed = parse_date(until)
        if parsed is None:
            raise _argument("The retain until date must be provided in ISO 8601 format", UNTIL_HEADER, until)
        if parsed <= now_ns:
            raise _argument(PAST_DATE, UNTIL_HEADER, until)
        until_ns = parsed
    if hold is not None and hold not in ("ON", "OFF"):
        raise _argument("Legal Hold must be either of 'ON' or 'OFF'", HOLD_HEADER, hold)
    return LockRequest(mode or "", until_ns, None if hold is None else hold == "ON")


def write_actions(headers: Mapping[str, str]) -> list[str]:
    """The permissions a write's lock headers need besides s3:PutObject, as AWS requires them."""
    out = []
    if MODE_HEADER in headers or UNTIL_HEADER in headers:
        out.append("s3:PutObjectRetention")
    if HOLD_HEADER in headers:
        out.append("s3:PutObjectLegalHold")
    return out


def bypass_asked(headers: Mapping[str, str]) -> bool:
    return headers.get(BYPASS_HEADER, "").strip().lower() == "true"


def require_integrity(checks: BodyChecks) -> None:
    """AWS refuses a body that will be locked without Content-MD5 or an x-amz-checksum-* value."""
    if not checks.declared:
        raise S3Error("InvalidRequest", "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object "
                      "requests with Object Lock parameters")


# --- documents ---------------------------------------------------------------------------------


EVENT_HOLDS = "Object Lock event holds are not implemented."


def parse_configuration(body: bytes) -> LockConfig:
    """An ObjectLockConfiguration document: ObjectLockEnabled and an optional default retention."""
    root = parse(body, "ObjectLockConfiguration")
    if text(root, "ObjectLockEnabled") != "Enabled":
        raise S3Error("MalformedXML")
    rules = children(root, "Rule")
    if not rules:
        return LockConfig()
    if len(rules) > 1:
        raise S3Error("MalformedXML")
    found = children(rules[0], "DefaultRetention")
    if len(found) != 1:
        raise S3Error("MalformedXML")
    default = found[0]
    if children(default, "DefaultEventHold"):
        raise S3Error("NotImplemented", EVENT_HOLDS)
    mode, days, years = text(default, "Mode"), text(default, "Days"), text(default, "Years")
    if mode not in LOCK_MODES or (days is None) == (years is None):
        raise S3Error("MalformedXML")
    name, raw = ("Days", days) if days is not None else ("Years", years or "")
    try:
        n = int(raw.strip())
    except ValueError:
        raise S3Error("MalformedXML") from None
    if n <= 0:
        raise _argument("Default retention period must be a positive integer value.", name, raw)
    if n > (MAX_RETENTION_DAYS if name == "Days" else MAX_RETENTION_YEARS):
        raise _argument("Default retention period is too large.", name, raw)
    return LockConfig(DefaultRetention(mode, days=n) if name == "Days" else DefaultRetention(mode, years=n))


def configuration_xml(config: LockConfig) -> bytes:
    parts = [el("ObjectLockEnabled", "Enabled")]
    d = config.default
    if d is not None:
        period = el("Days", d.days) if d.days else el("Years", d.years)
        parts.append(f"<Rule><DefaultRetention>{el('Mode', d.mode)}{period}</DefaultRetention></Rule>")
    return doc("ObjectLockConfiguration", parts)


def parse_retention(body: bytes, now_ns: int) -> LockRequest:
    """A Retention document: a mode and a date, or neither (remove the retention)."""
    root = parse(body, "Retention")
    if children(root, "EventHold") or children(root, "EventHoldDuration"):
        # (an EventHold alone would otherwise read as "remove the retention")
        raise S3Error("NotImplemented", EVENT_HOLDS)
    mode, date = text(root, "Mode"), text(root, "RetainUntilDate")
    if mode is None and date is None:
        return LockRequest()
    if mode not in LOCK_MODES or date is None:
        raise S3Error("MalformedXML")
    until = parse_date(date)
    if until is None:
        raise S3Error("MalformedXML")
    if until <= now_ns:
        raise S3Error("InvalidArgument", PAST_DATE)
    return LockRequest(mode, until)


def retention_xml(v: ObjectVersion) -> bytes:
    return doc("Retention", [el("Mode", v.lock_mode), el("RetainUntilDate", iso_time(v.retain_until_ns))])


def parse_legal_hold(body: bytes) -> LockRequest:
    status = text(parse(body, "LegalHold"), "Status")
    if status not in ("ON", "OFF"):
        raise S3Error("MalformedXML")
    return LockRequest(legal_hold=status == "ON")


def legal_hold_xml(v: ObjectVersion) -> bytes:
    return doc("LegalHold", [el("Status", "ON" if v.legal_hold else "OFF")])


def version_headers(v: ObjectVersion, *, retention: bool, legal_hold: bool) -> list[tuple[str, str]]:
    """What HEAD/GET report of a version's lock: the retention to a caller allowed
    s3:GetObjectRetention, the legal hold to one allowed s3:GetObjectLegalHold (as AWS does)."""
    out = []
    if retention and v.lock_mode:
        out += [("x-amz-object-lock-mode", v.lock_mode),
                ("x-amz-object-lock-retain-until-date", iso_time(v.retain_until_ns))]
    if legal_hold and v.legal_hold:
        out.append(("x-amz-object-lock-legal-hold", "ON"))
    return out

"""Object lock (WORM): which object versions are protected, and which retention changes are allowed.

The rules live here and nowhere else. The engine applies them where a version could be lost:
`storecore.Txn` (every removal of a version, and every in-place replacement of a "null" version,
goes through `Txn._drop`), the GC (`gc.collect_once`), the mount's in-place metadata changes
(`links.touch_markers`) and `recover-metadata`. So no frontend, service or admin command can get
around them, root included.

A version is *protected* while it has a legal hold, or a retention (GOVERNANCE or COMPLIANCE)
whose retain-until date lies ahead of the server's clock. Nobody may remove a protected version.
GOVERNANCE retention gives way to a caller its frontend has checked may bypass it (S3:
`x-amz-bypass-governance-retention: true` and the s3:BypassGovernanceRetention permission);
COMPLIANCE retention and legal holds give way to nobody. Time is the server's wall clock
(`time.time_ns()`); docs/object-lock.md says what a clock jump does.

A bucket's configuration is `BucketRecord.object_lock`: None (object lock not enabled, and it
never can be once it is: there is no way back) or {"enabled": True, "mode": "" | GOVERNANCE |
COMPLIANCE, "days": N, "years": N}, the default retention of new versions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidArgument, ObjectLocked, ObjectLockNotEnabled
from .records import BucketRecord, ObjectVersion

GOVERNANCE = "GOVERNANCE"
COMPLIANCE = "COMPLIANCE"
MODES = (GOVERNANCE, COMPLIANCE)
MAX_DAYS = 36500  # AWS's limit: 100 years
MAX_YEARS = 100
DAY_NS = 86_400 * 10**9
MS_NS = 10**6  # S3 shows retain-until dates to the millisecond (GetObjectRetention, HEAD)


@dataclass(frozen=True, slots=True)
class DefaultRetention:
    """The retention a bucket gives new versions that do not ask for one: Days or Years."""

    mode: str
    days: int = 0
    years: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidArgument(f"unknown object lock mode {self.mode!r}")
        if (self.days > 0) == (self.years > 0) or self.days > MAX_DAYS or self.years > MAX_YEARS \
                or self.days < 0 or self.years < 0:
            raise InvalidArgument("a default retention is a positive number of days (at most 36500) "
                                  "or of years (at most 100)")

    def until(self, from_ns: int) -> int:
        """The retain-until date of a version made at `from_ns`: days of 24 hours, or calendar
        years (29 February becomes 28 February in a year that has none)."""
        if self.days:
            return from_ns + self.days * DAY_NS
        start = datetime.fromtimestamp(from_ns // 10**9, UTC)
        year = start.year + self.years
        try:
            end = start.replace(year=year)
        except ValueError:
            end = start.replace(year=year, day=28)
        return int(end.timestamp()) * 10**9 + from_ns % 10**9


@dataclass(frozen=True, slots=True)
class LockConfig:
    """A bucket's object lock configuration: enabled, with or without a default retention."""

    default: DefaultRetention | None = None

    @classmethod
    def of(cls, bucket: BucketRecord) -> LockConfig | None:
        """The bucket's configuration; None when object lock is not enabled."""
        raw = bucket.object_lock
        if not raw or not raw.get("enabled"):
            return None
        mode = str(raw.get("mode") or "")
        if not mode:
            return cls()
        return cls(DefaultRetention(mode, int(raw.get("days") or 0), int(raw.get("years") or 0)))

    def to_record(self) -> dict[str, Any]:
        d = self.default
        return {"enabled": True, "mode": d.mode if d else "", "days": d.days if d else 0,
                "years": d.years if d else 0}


def enabled(bucket: BucketRecord) -> bool:
    return LockConfig.of(bucket) is not None


def now_ns() -> int:
    return time.time_ns()


def retained(v: ObjectVersion, at_ns: int) -> bool:
    """Whether v's retention (either mode) has not expired at `at_ns`."""
    return bool(v.lock_mode) and v.retain_until_ns > at_ns


def protection(v: ObjectVersion, at_ns: int) -> str:
    """What protects v from removal at `at_ns` ("" = nothing): "legal hold", COMPLIANCE or
    GOVERNANCE (a legal hold is named first: no bypass lifts it)."""
    if v.legal_hold:
        return "legal hold"
    return v.lock_mode if retained(v, at_ns) else ""


def check_removable(v: ObjectVersion, at_ns: int, *, bypass_governance: bool = False) -> None:
    """ObjectLocked unless v may be removed (or replaced in place) now."""
    why = protection(v, at_ns)
    if not why or (why == GOVERNANCE and bypass_governance):
        return
    until = datetime.fromtimestamp(v.retain_until_ns / 1e9, UTC).isoformat() if why in MODES else ""
    raise ObjectLocked("Access Denied because object protected by object lock.", bucket=v.bucket, key=v.key,
                       version_id=v.version_id, protection=why, retain_until=until)


def check_retention_change(v: ObjectVersion, mode: str, until_ns: int, at_ns: int, *,
                           bypass_governance: bool = False) -> None:
    """ObjectLocked unless v's retention may become (mode, until_ns) ("" = none) now. An expired
    retention may become anything. An active COMPLIANCE one may only be extended, in the same
    mode. An active GOVERNANCE one may be extended in the same mode; anything else (shortening
    it, removing it, changing its mode, even to COMPLIANCE) needs the bypass."""
    if mode and mode not in MODES:
        raise InvalidArgument(f"unknown object lock mode {mode!r}")
    if mode and until_ns <= at_ns:
        raise InvalidArgument("The retain until date must be in the future!")
    if not retained(v, at_ns):
        return
    extends = mode == v.lock_mode and (until_ns >= v.retain_until_ns or same_date(until_ns, v.retain_until_ns))
    if extends or (v.lock_mode == GOVERNANCE and bypass_governance):
        return
    raise ObjectLocked("Access Denied because object protected by object lock.", bucket=v.bucket, key=v.key,
                       version_id=v.version_id, protection=v.lock_mode)


def same_date(a_ns: int, b_ns: int) -> bool:
    """Whether two retain-until dates are one date as S3 shows it (to the millisecond): a client
    putting back the date GetObjectRetention showed asks for no change, not a shorter retention
    (a default retention's date has nanoseconds the client never sees)."""
    return a_ns // MS_NS == b_ns // MS_NS


def check_settings(bucket: BucketRecord, mode: str, legal_hold: bool) -> LockConfig | None:
    """The bucket's configuration; ObjectLockNotEnabled when lock settings are asked for in a
    bucket without object lock."""
    config = LockConfig.of(bucket)
    if config is None and (mode or legal_hold):
        raise ObjectLockNotEnabled("Bucket is missing Object Lock Configuration", bucket=bucket.name)
    return config


def resolve(bucket: BucketRecord, mode: str, until_ns: int, legal_hold: bool, at_ns: int) -> tuple[str, int, bool]:
    """The lock settings of a new version in `bucket` made at `at_ns`: the ones asked for, else the
    bucket's default retention. ObjectLockNotEnabled when settings are asked for in a bucket
    without object lock."""
    config = check_settings(bucket, mode, legal_hold)
    if config is None:
        return "", 0, False
    if mode:
        if mode not in MODES:
            raise InvalidArgument(f"unknown object lock mode {mode!r}")
        return mode, until_ns, legal_hold
    if config.default is not None:
        return config.default.mode, config.default.until(at_ns), legal_hold
    return "", 0, legal_hold


def identity_fields(bucket: BucketRecord, mode: str, until_ns: int, legal_hold: bool) -> dict[str, Any]:
    """What a new segment's shard headers record of its version's lock, so `recover-metadata`
    can rebuild it (and the bucket's object lock) from the headers alone."""
    if not enabled(bucket):
        return {}
    out: dict[str, Any] = {"object_lock": True}
    if mode:
        out.update(lock_mode=mode, retain_until_ns=until_ns)
    if legal_hold:
        out["legal_hold"] = True
    return out


def remaining_days(until_ns: int, at_ns: int) -> int:
    """Whole days from `at_ns` to `until_ns`, a started day counting as one
    (s3:object-lock-remaining-retention-days)."""
    return max(0, -(-(until_ns - at_ns) // DAY_NS))


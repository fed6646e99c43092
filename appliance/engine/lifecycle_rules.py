"""The lifecycle rule language (AWS's LifecycleConfiguration) as typed values, and what a rule
asks of one object version at a given time. Pure: the gateway parses XML into these, the engine
stores them (LifecycleRecord), the lifecycle worker evaluates them (docs/lifecycle.md).

Time is counted as AWS counts it: an action N days after an object's creation (or after a
version became noncurrent) is due at the first midnight UTC at or after that instant plus N
days. `day` is the length of a day in seconds: 86400, or `lifecycle.debug_day_seconds` for
tests (Ceph's rgw_lc_debug_interval), when "midnight" is the next multiple of it since the epoch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

DAY = 86400.0
NS = 1_000_000_000
# AWS's default since September 2024: objects smaller than 128 KiB are not transitioned unless
# the rule's filter names a size (TransitionDefaultMinimumObjectSize all_storage_classes_128K).
MIN_TRANSITION_BYTES = 128 * 1024
MAX_RULES = 1000


@dataclass(frozen=True)
class RuleFilter:
    """Which objects a rule applies to. `form` remembers how it was written, so
    GetBucketLifecycleConfiguration returns what was put: "prefix" (the rule-level Prefix of
    the 2006 schema), "empty" (<Filter/>), "Prefix", "Tag", "ObjectSizeGreaterThan",
    "ObjectSizeLessThan" (a Filter with that one element) or "And"."""

    form: str = "empty"
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    size_gt: int | None = None
    size_lt: int | None = None

    def matches(self, key: str, size: int, tags: dict[str, str]) -> bool:
        if not key.startswith(self.prefix):
            return False
        if any(tags.get(k) != v for k, v in self.tags.items()):
            return False
        if self.size_gt is not None and not size > self.size_gt:
            return False
        return self.size_lt is None or size < self.size_lt

    @property
    def names_size(self) -> bool:
        return self.size_gt is not None or self.size_lt is not None


@dataclass(frozen=True)
class Transition:
    storage_class: str
    days: int | None = None
    date: str = ""  # ISO 8601 at midnight UTC, as AWS stores it ("2030-01-01T00:00:00.000Z")


@dataclass(frozen=True)
class NoncurrentTransition:
    storage_class: str
    days: int
    newer: int | None = None  # NewerNoncurrentVersions


@dataclass(frozen=True)
class Rule:
    id: str
    enabled: bool
    filter: RuleFilter = field(default_factory=RuleFilter)
    expiration_days: int | None = None
    expiration_date: str = ""
    expired_object_delete_marker: bool | None = None
    transitions: list[Transition] = field(default_factory=list)
    noncurrent_days: int | None = None
    noncurrent_newer: int | None = None
    noncurrent_transitions: list[NoncurrentTransition] = field(default_factory=list)
    abort_days: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Rule:
        raw = dict(raw)
        raw["filter"] = RuleFilter(**raw.get("filter", {}))
        raw["transitions"] = [Transition(**t) for t in raw.get("transitions", [])]
        raw["noncurrent_transitions"] = [NoncurrentTransition(**t) for t in raw.get("noncurrent_transitions", [])]
        return cls(**raw)


def date_ns(iso: str) -> int:
    """Nanoseconds of an ISO 8601 date ("2030-01-01", "2030-01-01T00:00:00Z", "...000Z")."""
    text = iso.strip().replace("Z", "+00:00")
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp()) * NS + t.microsecond * 1000


def due_ns(since_ns: int, days: int, day: float) -> int:
    """When an action `days` days after `since_ns` is due: the next "midnight" at or after it."""
    step = int(day * NS)
    at = since_ns + days * step
    return -(-at // step) * step


@dataclass(frozen=True)
class Due:
    """An action of a rule, and when it is (or was) due."""

    rule_id: str
    at_ns: int
    storage_class: str = ""  # a transition's target; "" = an expiration


def current_expiration(rules: list[Rule], key: str, size: int, tags: dict[str, str], created_ns: int,
                       day: float) -> Due | None:
    """The earliest Expiration of the current version (what x-amz-expiration reports)."""
    best: Due | None = None
    for r in rules:
        if not r.enabled or not r.filter.matches(key, size, tags):
            continue
        if r.expiration_days is not None:
            at = due_ns(created_ns, r.expiration_days, day)
        elif r.expiration_date:
            at = date_ns(r.expiration_date)
        else:
            continue
        if best is None or at < best.at_ns:
            best = Due(r.id, at)
    return best


def current_transition(rules: list[Rule], key: str, size: int, tags: dict[str, str], created_ns: int,
                       day: float, now_ns: int) -> Due | None:
    """The transition of the current version due now: of the transitions already due, the one
    due last (a version that missed several goes straight to the last one's class)."""
    best: Due | None = None
    for r in rules:
        if not r.enabled or not r.filter.matches(key, size, tags):
            continue
        if size < MIN_TRANSITION_BYTES and not r.filter.names_size:
            continue
        for t in r.transitions:
            at = due_ns(created_ns, t.days, day) if t.days is not None else date_ns(t.date)
            if at <= now_ns and (best is None or at > best.at_ns):
                best = Due(r.id, at, t.storage_class)
    return best


def noncurrent_actions(rules: list[Rule], key: str, size: int, tags: dict[str, str], since_ns: int, rank: int,
                       day: float, now_ns: int) -> tuple[Due | None, Due | None]:
    """(expiration, transition) due now for a noncurrent version: `since_ns` is when it became
    noncurrent (its successor's creation), `rank` how many noncurrent versions are newer than
    it. NewerNoncurrentVersions N keeps the N newest noncurrent versions whatever their age."""
    expire: Due | None = None
    move: Due | None = None
    for r in rules:
        if not r.enabled or not r.filter.matches(key, size, tags):
            continue
        if r.noncurrent_days is not None and (r.noncurrent_newer is None or rank >= r.noncurrent_newer):
            at = due_ns(since_ns, r.noncurrent_days, day)
            if at <= now_ns and (expire is None or at < expire.at_ns):
                expire = Due(r.id, at)
        if size < MIN_TRANSITION_BYTES and not r.filter.names_size:
            continue
        for t in r.noncurrent_transitions:
            if t.newer is not None and rank < t.newer:
                continue
            at = due_ns(since_ns, t.days, day)
            if at <= now_ns and (move is None or at > move.at_ns):
                move = Due(r.id, at, t.storage_class)
    return expire, move


def removes_expired_marker(rules: list[Rule], key: str) -> str | None:
    """The id of a rule that removes an expired object delete marker of `key`, if any."""
    for r in rules:
        if r.enabled and r.expired_object_delete_marker and r.filter.matches(key, 0, {}):
            return r.id
    return None


def abort_due(rules: list[Rule], key: str, initiated_ns: int, day: float, now_ns: int) -> str | None:
    """The id of a rule whose AbortIncompleteMultipartUpload applies to an upload now."""
    for r in rules:
        if r.enabled and r.abort_days is not None and key.startswith(r.filter.prefix) \
                and due_ns(initiated_ns, r.abort_days, day) <= now_ns:
            return r.id
    return None

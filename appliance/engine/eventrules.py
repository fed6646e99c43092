"""The rules of a bucket's notification and replication configurations, as stored
(records.EventConfigRecord), and which changes they select.

Event names are AWS's (`s3:ObjectCreated:Put`...); a rule's `events` may use AWS's wildcards
(`s3:ObjectCreated:*`). Parsing the S3 documents is the gateway's job (s3gw/ops_notification.py,
s3gw/ops_replication.py); this module only holds what they produce.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import StowageError

# Every event type a configuration may name (AWS's list, the ones Stowage emits and the wildcards).
EVENT_TYPES = frozenset({
    "s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*", "s3:ObjectRestore:Post", "s3:ObjectRestore:Completed", "s3:ObjectRestore:Delete",
    "s3:LifecycleExpiration:*", "s3:LifecycleExpiration:Delete", "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:ObjectTagging:*", "s3:ObjectTagging:Put", "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
    "s3:Replication:*", "s3:Replication:OperationFailedReplication", "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold", "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:ReducedRedundancyLostObject", "s3:IntelligentTiering",
})
# Configuration kind -> the service its ARNs name (arn:stowage:<service>::<target>:<type>).
ARN_SERVICES = {"Queue": "sqs", "Topic": "sns", "CloudFunction": "lambda"}
TARGET_KINDS = ("webhook", "file")


class EventConfigError(StowageError):
    """A configuration names something that does not exist or is malformed."""

    code = "InvalidArgument"


def event_matches(pattern: str, name: str) -> bool:
    """Whether configured event type `pattern` selects event `name` (both with the s3: prefix)."""
    if pattern.endswith(":*"):
        return name.startswith(pattern[:-1])
    return pattern == name


def target_arn(kind: str, name: str, target_type: str) -> str:
    return f"arn:stowage:{ARN_SERVICES[kind]}::{name}:{target_type}"


def parse_target_arn(kind: str, arn: str) -> tuple[str, str]:
    """(target name, target type) of a configuration's ARN; EventConfigError when it is not ours."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[1] != "stowage" or parts[2] != ARN_SERVICES[kind] \
            or not parts[4] or parts[5] not in TARGET_KINDS:
        raise EventConfigError(f"not a Stowage {ARN_SERVICES[kind]} ARN: {arn!r}")
    return parts[4], parts[5]


@dataclass(frozen=True)
class NotificationRule:
    id: str
    kind: str  # Queue | Topic | CloudFunction
    arn: str
    target: str  # the target's name (from the ARN)
    events: list[str] = field(default_factory=list)
    prefix: str = ""
    suffix: str = ""

    def selects(self, event_name: str, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix) and \
            any(event_matches(p, event_name) for p in self.events)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NotificationRule:
        return cls(str(d["id"]), str(d["kind"]), str(d["arn"]), str(d["target"]), [str(e) for e in d["events"]],
                   str(d.get("prefix", "")), str(d.get("suffix", "")))


@dataclass(frozen=True)
class ReplicationRule:
    """One rule of AWS's replication language (V2 rules: with a Filter)."""

    id: str
    priority: int
    enabled: bool
    target: str  # the replication target's name (stowage replication target add)
    dest_bucket: str  # the bucket on that target
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    delete_markers: bool = False  # DeleteMarkerReplication Status Enabled
    existing_objects: bool = False  # ExistingObjectReplication Status Enabled
    storage_class: str = ""  # Destination StorageClass ("" = the source's)
    has_filter: bool = True  # V2 rule (Filter) rather than V1 (Prefix)
    kms_objects: bool = False  # SourceSelectionCriteria SseKmsEncryptedObjects Status Enabled

    def selects(self, key: str, tags: dict[str, str], kms: bool = False) -> bool:
        """Whether the rule replicates a version of `key` with `tags` (`kms`: encrypted with
        SSE-KMS, replicated only when the rule says so, as on AWS)."""
        return self.enabled and key.startswith(self.prefix) and (self.kms_objects or not kms) and \
            all(tags.get(k) == v for k, v in self.tags.items())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReplicationRule:
        return cls(str(d["id"]), int(d["priority"]), bool(d["enabled"]), str(d["target"]), str(d["dest_bucket"]),
                   str(d.get("prefix", "")), {str(k): str(v) for k, v in d.get("tags", {}).items()},
                   bool(d.get("delete_markers", False)), bool(d.get("existing_objects", False)),
                   str(d.get("storage_class", "")), bool(d.get("has_filter", True)),
                   bool(d.get("kms_objects", False)))


@dataclass(frozen=True)
class ReplicationRules:
    role: str
    rules: list[ReplicationRule]

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "rules": [r.to_dict() for r in self.rules]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReplicationRules:
        return cls(str(d.get("role", "")), [ReplicationRule.from_dict(r) for r in d.get("rules", [])])

    def rules_for(self, key: str, tags: dict[str, str], kms: bool = False) -> list[ReplicationRule]:
        """The rule that applies per destination (the highest priority one, as AWS picks)."""
        best: dict[tuple[str, str], ReplicationRule] = {}
        for r in self.rules:
            if r.selects(key, tags, kms):
                dest = (r.target, r.dest_bucket)
                if dest not in best or r.priority > best[dest].priority:
                    best[dest] = r
        return list(best.values())


def notification_rules(raw: list[dict[str, Any]]) -> list[NotificationRule]:
    return [NotificationRule.from_dict(d) for d in raw]

"""Bucket replication: PutBucketReplication, GetBucketReplication, DeleteBucketReplication.

AWS's rule language: each Rule has an ID, a Priority, a Status, a Filter (Prefix, Tag, or And of
a prefix and tags; or the older rule-level Prefix), DeleteMarkerReplication,
ExistingObjectReplication, SourceSelectionCriteria/SseKmsEncryptedObjects and a Destination
whose Bucket ARN names a replication target and the bucket there:
`arn:stowage:s3::TARGET:BUCKET` (`stowage replication target list`). What Stowage does not do
(Replication Time Control, metrics, replica modification sync, owner translation, a replica KMS
key, a Filter's exclusions in Not) is refused with NotImplemented rather than stored and ignored.
The source bucket must have versioning enabled, as on AWS. Replication itself:
appliance/services/replicate.py.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET

from appliance.engine import ReplicationRule, ReplicationRules
from appliance.services.notifytargets import TargetError
from appliance.services.replicate import ReplicationService

from .body import read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .routing import Op
from .xmlio import children, doc, el, parse, text

XML = ("Content-Type", "application/xml")
REPLICATION_DOC = 1024 * 1024
MAX_RULES = 1000
_REFUSED = {"ReplicationTime": "Replication Time Control", "Metrics": "replication metrics",
            "AccessControlTranslation": "owner override", "EncryptionConfiguration": "a replica KMS key"}


def _status(node: ET.Element | None, name: str, default: str = "Disabled") -> bool:
    """Whether <name><Status>Enabled</Status></name> (a missing element: `default`)."""
    found = children(node, name) if node is not None else []
    if not found:
        return default == "Enabled"
    value = text(found[0], "Status")
    if value not in ("Enabled", "Disabled"):
        raise S3Error("MalformedXML")
    return value == "Enabled"


def _filter(rule: ET.Element) -> tuple[str, dict[str, str], bool]:
    """(prefix, tags, whether the rule has a Filter: a V2 rule)."""
    filters = children(rule, "Filter")
    if not filters:
        return text(rule, "Prefix") or "", {}, False
    if len(filters) > 1 or text(rule, "Prefix") is not None:
        raise S3Error("MalformedXML")
    f = filters[0]
    ands = children(f, "And")
    scope = ands[0] if ands else f
    if children(f, "Not") or children(scope, "Not"):  # stored without its exclusions, a rule replicates them
        raise S3Error("NotImplemented", "Replication filters with Not (excluded prefixes and tags) are not "
                      "implemented.")
    if ands and len(list(f)) != 1:
        raise S3Error("MalformedXML")
    if any(c.tag not in ("Prefix", "Tag") for c in scope):
        raise S3Error("MalformedXML")
    tags: dict[str, str] = {}
    for tag in children(scope, "Tag"):
        k, v = text(tag, "Key"), text(tag, "Value")
        if k is None or v is None or k in tags:
            raise S3Error("InvalidArgument", "A replication filter tag needs one Key and one Value, each key once.")
        tags[k] = v
    if not ands and len(tags) + (text(f, "Prefix") is not None) > 1:
        raise S3Error("MalformedXML")  # several conditions go in an And
    return text(scope, "Prefix") or "", tags, True


def _destination(rule: ET.Element) -> tuple[str, str, str]:
    dests = children(rule, "Destination")
    if len(dests) != 1:
        raise S3Error("MalformedXML")
    d = dests[0]
    for name, what in _REFUSED.items():
        if children(d, name) and (name not in ("ReplicationTime", "Metrics") or _status(d, name)):
            raise S3Error("NotImplemented", f"Replication with {what} is not implemented.")
    arn = text(d, "Bucket") or ""
    parts = arn.split(":")
    if len(parts) != 6 or parts[:3] != ["arn", "stowage", "s3"] or not parts[4] or not parts[5]:
        raise S3Error("InvalidArgument", "Destination Bucket must be arn:stowage:s3::TARGET:BUCKET "
                      "(stowage replication target list)", ArgumentName="Bucket", ArgumentValue=arn)
    return parts[4], parts[5], text(d, "StorageClass") or ""


def parse_replication(body: bytes) -> ReplicationRules:
    root = parse(body, "ReplicationConfiguration")
    role = text(root, "Role") or ""
    rules: list[ReplicationRule] = []
    ids: set[str] = set()
    priorities: set[int] = set()
    for node in root:
        if node.tag == "Role":
            continue
        if node.tag != "Rule":
            raise S3Error("MalformedXML")
        rule_id = text(node, "ID") or secrets.token_hex(16)
        if rule_id in ids or len(rule_id) > 255:
            raise S3Error("InvalidArgument", "Rule IDs must be unique and at most 255 characters.")
        ids.add(rule_id)
        status = text(node, "Status")
        if status not in ("Enabled", "Disabled"):
            raise S3Error("MalformedXML")
        prefix, tags, v2 = _filter(node)
        try:
            priority = int(text(node, "Priority") or "0")
        except ValueError:
            raise S3Error("MalformedXML") from None
        if v2:
            if text(node, "Priority") is None or not children(node, "DeleteMarkerReplication"):
                raise S3Error("InvalidRequest", "Priority and DeleteMarkerReplication must be specified for "
                              "rules with a Filter.")
            if priority in priorities:
                raise S3Error("InvalidRequest", "Found duplicate priority, priorities must be unique.")
            priorities.add(priority)
            if tags and _status(node, "DeleteMarkerReplication"):
                raise S3Error("InvalidRequest", "Delete marker replication is not supported if any Tag filter "
                              "is specified.")
        criteria = children(node, "SourceSelectionCriteria")
        crit = criteria[0] if criteria else None
        if crit is not None and _status(crit, "ReplicaModifications"):
            raise S3Error("NotImplemented", "Replica modification sync is not implemented.")
        target, dest_bucket, storage_class = _destination(node)
        rules.append(ReplicationRule(rule_id, priority, status == "Enabled", target, dest_bucket, prefix, tags,
                                     _status(node, "DeleteMarkerReplication"),
                                     _status(node, "ExistingObjectReplication"), storage_class, v2,
                                     _status(crit, "SseKmsEncryptedObjects")))
        if len(rules) > MAX_RULES:
            raise S3Error("InvalidRequest", f"At most {MAX_RULES} rules.")
    if not rules:
        raise S3Error("MalformedXML")
    return ReplicationRules(role, rules)


def _enabled(name: str, on: bool) -> str:
    return f"<{name}><Status>{'Enabled' if on else 'Disabled'}</Status></{name}>"


def render(cfg: ReplicationRules) -> bytes:
    parts = [el("Role", cfg.role)] if cfg.role else []
    for r in cfg.rules:
        if r.has_filter:
            conds = ([el("Prefix", r.prefix)] if r.prefix else []) + \
                [f"<Tag>{el('Key', k)}{el('Value', v)}</Tag>" for k, v in r.tags.items()]
            inner = "".join(conds) if len(conds) <= 1 else f"<And>{''.join(conds)}</And>"
            where = f"{el('Priority', r.priority)}<Filter>{inner}</Filter>"
            where += _enabled("DeleteMarkerReplication", r.delete_markers)
        else:
            where = el("Prefix", r.prefix)
        crit = f"<SourceSelectionCriteria>{_enabled('SseKmsEncryptedObjects', True)}</SourceSelectionCriteria>" \
            if r.kms_objects else ""
        dest = el("Bucket", f"arn:stowage:s3::{r.target}:{r.dest_bucket}") + \
            (el("StorageClass", r.storage_class) if r.storage_class else "")
        parts.append(f"<Rule>{el('ID', r.id)}{el('Status', 'Enabled' if r.enabled else 'Disabled')}{where}{crit}"
                     f"{_enabled('ExistingObjectReplication', r.existing_objects)}"
                     f"<Destination>{dest}</Destination></Rule>")
    return doc("ReplicationConfiguration", parts)


def _service(ctx: Ctx) -> ReplicationService:
    if ctx.events is None or ctx.events.replication is None:
        raise S3Error("NotImplemented", "Replication is not available on this endpoint.")
    return ctx.events.replication


async def put_replication(ctx: Ctx) -> Response:
    svc = _service(ctx)
    cfg = await read_xml(ctx, parse_replication, REPLICATION_DOC)
    if ctx.store.get_bucket(ctx.bucket).versioning != "Enabled":
        raise S3Error("InvalidRequest", "Versioning must be 'Enabled' on the bucket to apply a replication "
                      "configuration")
    try:
        await svc.save_rules(ctx.bucket, cfg)
    except TargetError as exc:
        raise S3Error("InvalidArgument", exc.message) from None
    return Response(200)


async def get_replication(ctx: Ctx) -> Response:
    svc = _service(ctx)
    ctx.store.require_bucket(ctx.bucket)
    cfg = svc.get_rules(ctx.bucket)
    if cfg is None:
        raise S3Error("ReplicationConfigurationNotFoundError", BucketName=ctx.bucket)
    return Response(200, [XML], render(cfg))


async def delete_replication(ctx: Ctx) -> Response:
    await _service(ctx).save_rules(ctx.bucket, None)
    return Response(204)


OPS: dict[str, OpHandler] = {
    Op.PutBucketReplication: put_replication,
    Op.GetBucketReplication: get_replication,
    Op.DeleteBucketReplication: delete_replication,
}

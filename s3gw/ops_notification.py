"""Bucket notifications: PutBucketNotificationConfiguration, GetBucketNotificationConfiguration.

The document is AWS's NotificationConfiguration: Queue-, Topic- and CloudFunctionConfiguration
elements, each with an Id, the ARN of a target (`stowage notify target list` shows them), Event
types (AWS's names, wildcards included) and a Filter of prefix and suffix rules. A configuration
naming a target that does not exist is refused (InvalidArgument, as AWS refuses a destination it
cannot validate); saving one sends an s3:TestEvent to each of its targets. An empty document
removes the configuration. EventBridgeConfiguration has no Stowage counterpart and is refused, as
are the event types Stowage does not emit (NOT_EMITTED).
Delivery: appliance/services/notify.py.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET

from appliance.engine import (
    ARN_SERVICES,
    EVENT_TYPES,
    EventConfigError,
    NotificationRule,
    parse_target_arn,
)
from appliance.services.notify import NotifyService

from .body import read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .routing import Op
from .xmlio import children, doc, el, parse, text

XML = ("Content-Type", "application/xml")
NOTIFICATION_DOC = 256 * 1024
MAX_RULES = 100  # per bucket
_ELEMENTS = {"QueueConfiguration": ("Queue", "Queue"), "TopicConfiguration": ("Topic", "Topic"),
             "CloudFunctionConfiguration": ("CloudFunction", "CloudFunction")}


# AWS event types whose cause happens here but that Stowage does not emit: a configuration naming
# one would be accepted and never notified. (Their wildcards, s3:ObjectRestore:*, still select the
# kinds that are emitted; docs/notifications.md says which.)
NOT_EMITTED = {"s3:ObjectRestore:Delete": "the expiry of a restored copy",
               "s3:IntelligentTiering": "moves into the archive tiers"}


def _filter(node: ET.Element) -> tuple[str, str]:
    """(prefix, suffix) of a configuration's Filter; each at most once."""
    found: dict[str, str] = {}
    for f in children(node, "Filter"):
        for key in children(f, "S3Key"):
            for rule in children(key, "FilterRule"):
                name, value = (text(rule, "Name") or "").lower(), text(rule, "Value") or ""
                if name not in ("prefix", "suffix"):
                    raise S3Error("InvalidArgument", "filter rule name must be either prefix or suffix")
                if name in found:
                    raise S3Error("InvalidArgument", "Cannot specify more than one prefix rule in a filter."
                                  if name == "prefix" else "Cannot specify more than one suffix rule in a filter.")
                if len(value) > 1024:
                    raise S3Error("InvalidArgument", "The filter value is too long.")
                found[name] = value
    return found.get("prefix", ""), found.get("suffix", "")


def parse_notification(body: bytes) -> list[NotificationRule]:
    root = parse(body, "NotificationConfiguration")
    rules: list[NotificationRule] = []
    ids: set[str] = set()
    for node in root:
        if node.tag == "EventBridgeConfiguration":
            raise S3Error("InvalidArgument", "EventBridge is not available on this service.")
        if node.tag not in _ELEMENTS:
            raise S3Error("MalformedXML")
        kind, arn_element = _ELEMENTS[node.tag]
        arn = text(node, arn_element)
        if not arn:
            raise S3Error("InvalidArgument", f"A {ARN_SERVICES[kind]} ARN is required.")
        try:
            target, _type = parse_target_arn(kind, arn)
        except EventConfigError:
            raise S3Error("InvalidArgument", "Unable to validate the following destination configurations",
                          ArgumentName=arn, ArgumentValue="The destination ARN is not valid") from None
        names = [e.text or "" for e in children(node, "Event")]
        if not names:
            raise S3Error("InvalidArgument", "At least one event type must be given.")
        for name in names:
            if name not in EVENT_TYPES:
                raise S3Error("InvalidArgument", "The event is not supported for notifications",
                              ArgumentName="Event", ArgumentValue=name)
            if name in NOT_EMITTED:
                raise S3Error("NotImplemented", f"{name} events ({NOT_EMITTED[name]}) are not implemented.")
        rule_id = text(node, "Id") or secrets.token_hex(16)
        if rule_id in ids or len(rule_id) > 255:
            raise S3Error("InvalidArgument", "Configuration ids must be unique and at most 255 characters.")
        ids.add(rule_id)
        prefix, suffix = _filter(node)
        rules.append(NotificationRule(rule_id, kind, arn, target, list(dict.fromkeys(names)), prefix, suffix))
        if len(rules) > MAX_RULES:
            raise S3Error("InvalidArgument", f"At most {MAX_RULES} configurations per bucket.")
    return rules


def _hub_notify(ctx: Ctx) -> NotifyService:
    if ctx.events is None:
        raise S3Error("NotImplemented", "Notifications are not available on this endpoint.")
    return ctx.events.notify


async def put_notification(ctx: Ctx) -> Response:
    notify = _hub_notify(ctx)
    rules = await read_xml(ctx, parse_notification, NOTIFICATION_DOC)
    try:
        await notify.save_rules(ctx.bucket, rules, ctx.request_id)
    except EventConfigError as exc:
        raise S3Error("InvalidArgument", exc.message, ArgumentName=str(exc.context.get("ArgumentName", "")),
                      ArgumentValue=str(exc.context.get("ArgumentValue", ""))) from None
    return Response(200)


def render(rules: list[NotificationRule]) -> bytes:
    parts = []
    for r in rules:
        rules_xml = "".join(f"<FilterRule>{el('Name', name)}{el('Value', value)}</FilterRule>"
                            for name, value in (("Prefix", r.prefix), ("Suffix", r.suffix)) if value)
        filt = f"<Filter><S3Key>{rules_xml}</S3Key></Filter>" if rules_xml else ""
        events = "".join(el("Event", e) for e in r.events)
        parts.append(f"<{r.kind}Configuration>{el('Id', r.id)}{el(r.kind, r.arn)}{events}{filt}"
                     f"</{r.kind}Configuration>")
    return doc("NotificationConfiguration", parts)


async def get_notification(ctx: Ctx) -> Response:
    notify = _hub_notify(ctx)
    ctx.store.require_bucket(ctx.bucket)
    return Response(200, [XML], render(notify.get_rules(ctx.bucket)))


OPS: dict[str, OpHandler] = {
    Op.PutBucketNotificationConfiguration: put_notification,
    Op.GetBucketNotificationConfiguration: get_notification,
}

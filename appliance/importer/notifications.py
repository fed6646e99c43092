"""A source bucket's notification rules, carried over where the target exists in Stowage.

A rule names its target by ARN. MinIO's are `arn:minio:sqs::ID:TYPE` (ID the target's name in
MinIO's config, TYPE webhook, amqp, kafka, ...); Stowage's are `arn:stowage:sqs::NAME:TYPE`
(`stowage notify target list`). A rule whose ARN has that shape with a type Stowage delivers to
(webhook, file) is rewritten to name the Stowage target of the same name; the gateway then
refuses the rules whose target does not exist here, and those are reported. Rules for AWS's
queues, topics and functions (their ARNs name an account and region), or other target types,
are reported as skipped.
"""

from __future__ import annotations

from typing import Any

from appliance.engine.eventrules import TARGET_KINDS, target_arn

# the configuration's list, its ARN field, and the kind eventrules names it by
SECTIONS = (("QueueConfigurations", "QueueArn", "Queue"), ("TopicConfigurations", "TopicArn", "Topic"),
            ("LambdaFunctionConfigurations", "LambdaFunctionArn", "CloudFunction"))

Rule = tuple[str, dict[str, Any]]  # (section, rule as boto3 gives it)


def map_rules(config: dict[str, Any]) -> tuple[list[Rule], list[tuple[str, str]]]:
    """(the rules rewritten to Stowage's ARNs, [(rule, why skipped)])."""
    kept: list[Rule] = []
    skipped: list[tuple[str, str]] = []
    for section, field, kind in SECTIONS:
        for rule in config.get(section) or []:
            arn = str(rule.get(field, ""))
            label = f"notification rule {rule.get('Id') or arn}"
            parts = arn.split(":")
            if len(parts) == 6 and parts[0] == "arn" and not parts[3] and parts[4] and parts[5] in TARGET_KINDS:
                kept.append((section, {**rule, field: target_arn(kind, parts[4], parts[5])}))
            else:
                skipped.append((label, f"its target {arn} is not a webhook or file target this appliance can have"))
    if config.get("EventBridgeConfiguration"):
        skipped.append(("EventBridge notifications", "Stowage has no EventBridge"))
    return kept, skipped


def document(rules: list[Rule]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for section, rule in rules:
        doc.setdefault(section, []).append(rule)
    return doc

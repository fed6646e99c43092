"""The NotificationConfiguration parser against hostile and malformed documents (no daemon)."""

from __future__ import annotations

import pytest

from s3gw.errors import S3Error
from s3gw.ops_notification import MAX_RULES, parse_notification, render

ARN = "arn:stowage:sqs::hook:webhook"


def rule(body: str = "", arn: str = ARN, events: str = "<Event>s3:ObjectCreated:*</Event>") -> str:
    return f"<QueueConfiguration><Queue>{arn}</Queue>{events}{body}</QueueConfiguration>"


def doc(*rules: str) -> bytes:
    return ('<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' + "".join(rules)
            + "</NotificationConfiguration>").encode()


def code(body: bytes) -> str:
    with pytest.raises(S3Error) as err:
        parse_notification(body)
    return err.value.code


def test_round_trip_with_filters() -> None:
    filt = ("<Filter><S3Key><FilterRule><Name>Prefix</Name><Value>a/</Value></FilterRule>"
            "<FilterRule><Name>suffix</Name><Value>.jpg</Value></FilterRule></S3Key></Filter>")
    rules = parse_notification(doc(rule("<Id>x</Id>" + filt)))
    assert [(r.id, r.target, r.prefix, r.suffix, r.events) for r in rules] == \
        [("x", "hook", "a/", ".jpg", ["s3:ObjectCreated:*"])]
    assert parse_notification(render(rules)) == rules
    assert parse_notification(doc()) == []  # empty: the configuration is removed


@pytest.mark.parametrize("body", [
    b"", b"not xml", b"<Other/>", b"\xff\xfe<x/>",
    doc("<Unknown/>"),
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    b"<NotificationConfiguration>&b;</NotificationConfiguration>",
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><NotificationConfiguration/>',
    doc(rule("<Id>a</Id><Id>b</Id>")),  # one Id only
])
def test_malformed_documents(body: bytes) -> None:
    assert code(body) == "MalformedXML"


@pytest.mark.parametrize("body", [
    doc(rule(arn="arn:aws:sqs:us-east-1:123456789012:queue")),  # not a Stowage target
    doc(rule(arn="arn:stowage:sns::hook:webhook")),  # a topic ARN in a queue configuration
    doc(rule(arn="")),
    doc(rule(events="")),
    doc(rule(events="<Event>s3:Everything</Event>")),
    doc(rule("<Filter><S3Key><FilterRule><Name>middle</Name><Value>x</Value></FilterRule></S3Key></Filter>")),
    doc(rule("<Filter><S3Key><FilterRule><Name>prefix</Name><Value>a</Value></FilterRule>"
             "<FilterRule><Name>prefix</Name><Value>b</Value></FilterRule></S3Key></Filter>")),
    doc(rule("<Filter><S3Key><FilterRule><Name>prefix</Name><Value>" + "a" * 2000 + "</Value></FilterRule>"
             "</S3Key></Filter>")),
    doc(rule("<Id>same</Id>"), rule("<Id>same</Id>")),
    doc(*[rule() for _ in range(MAX_RULES + 1)]),
    doc("<EventBridgeConfiguration/>"),
])
def test_invalid_configurations(body: bytes) -> None:
    assert code(body) == "InvalidArgument"

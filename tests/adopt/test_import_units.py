"""Units of `stowage import s3` fed hostile input: the listing-order parser (XML from the
source), the cursor file (torn or tampered lines), the rate option, the rate limit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import pytest

from appliance.cli.import_s3 import parse_rate
from appliance.importer.copier import _split
from appliance.importer.cursor import Cursor, cursor_path
from appliance.importer.ratelimit import RateLimit
from appliance.importer.source import entry_order

LISTING = (b'<?xml version="1.0"?><ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
           b"<Name>b</Name><Version><Key>k</Key></Version><DeleteMarker><Key>k</Key></DeleteMarker>"
           b"<Version><Key>k</Key></Version></ListVersionsResult>")


def test_entry_order_follows_the_document() -> None:
    assert entry_order(LISTING) == [False, True, False]
    utf16 = "<ListVersionsResult><DeleteMarker><Key>\u00e9</Key></DeleteMarker></ListVersionsResult>"
    assert entry_order(utf16.encode("utf-16")) == [True]  # any encoding XML allows


@pytest.mark.parametrize("body", [
    b"",
    b"not xml at all",
    b"<Other/>",
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    b"<ListVersionsResult><Version><Key>&lol2;</Key></Version></ListVersionsResult>",
    b'<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]><ListVersionsResult>&ext;</ListVersionsResult>',
    b"<ListVersionsResult>" + b"<Version>" * 10000,
    "<ListVersionsResult><Version><Key>\u00e9</Key></Version></ListVersionsResult>".encode("latin-1"),
])
def test_entry_order_refuses_hostile_documents(body: bytes) -> None:
    assert entry_order(body) is None  # the importer then orders by key and time


def test_cursor_survives_torn_and_tampered_lines(tmp_path: Path) -> None:
    path = cursor_path(str(tmp_path), "http://source:9000/")
    assert path == cursor_path(str(tmp_path), "http://source:9000")
    c = Cursor(path)
    c.record("b", "k", "v1|e|t")
    c.record("b", "gone", "v|e|t")
    c.forget("b", "gone")
    c.configured_bucket("b")
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    with open(path, "a") as f:
        f.write('["a list"]\n{"b": 1, "k": 2}\nnull\n{"b":"b","k":"x","v":')  # tampered, then torn
    again = Cursor(path)
    assert again.done("b", "k", "v1|e|t") and not again.done("b", "gone", "v|e|t")
    assert again.keys("b") == {"k"} and again.configured == {"b"}
    ro = Cursor(path, readonly=True)
    ro.record("b", "new", "x")  # a dry run remembers nothing on disk
    assert "new" not in path.read_text()
    assert all(json.loads(line) is not None for line in path.read_text().splitlines()[:3])


@pytest.mark.parametrize(("text", "rate"), [("0", 0), ("50M", 50_000_000), ("1.5GiB/s", int(1.5 * 1024**3)),
                                            ("800k", 800_000), ("100", 100), ("2MiB", 2 * 1024**2)])
def test_parse_rate(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "-5M", "5X", "1e9", "5 M M"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_rate(text)


def test_rate_limit_paces_bytes() -> None:
    limit = RateLimit(1000)
    start = time.monotonic()
    for _ in range(3):
        limit.take(1000)  # one second's burst, then two more seconds' worth
    assert time.monotonic() - start >= 1.9
    RateLimit(0).take(10**12)  # no limit: never waits


def test_split_covers_the_object() -> None:
    assert _split(11, 5) == [5, 5, 1]
    assert _split(0, 5) == [0]
    assert sum(_split(10**9 + 3, 16 << 20)) == 10**9 + 3


def test_notification_rules_map_to_targets_that_can_exist() -> None:
    from appliance.importer.notifications import document, map_rules

    config = {
        "QueueConfigurations": [
            {"Id": "hook", "QueueArn": "arn:minio:sqs::primary:webhook", "Events": ["s3:ObjectCreated:*"]},
            {"Id": "kafka", "QueueArn": "arn:minio:sqs::primary:kafka", "Events": ["s3:ObjectCreated:*"]},
            {"Id": "aws", "QueueArn": "arn:aws:sqs:us-east-1:123456789012:q", "Events": ["s3:ObjectRemoved:*"]},
            {"Id": "mangled", "QueueArn": "arn:minio:sqs:::", "Events": []},
        ],
        "TopicConfigurations": [{"Id": "log", "TopicArn": "arn:stowage:sns::audit:file", "Events": ["s3:*"]}],
        "EventBridgeConfiguration": {},
    }
    rules, skipped = map_rules(config)
    assert document(rules) == {
        "QueueConfigurations": [{"Id": "hook", "QueueArn": "arn:stowage:sqs::primary:webhook",
                                 "Events": ["s3:ObjectCreated:*"]}],
        "TopicConfigurations": [{"Id": "log", "TopicArn": "arn:stowage:sns::audit:file", "Events": ["s3:*"]}]}
    assert sorted(label for label, _ in skipped) == ["notification rule aws", "notification rule kafka",
                                                      "notification rule mangled"]

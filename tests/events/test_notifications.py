"""Bucket notifications end to end: a real daemon, a webhook receiver started here, boto3."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from tests.conftest import DaemonProc

from .receiver import Receiver, poll


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def add_webhook(d: DaemonProc, name: str, url: str, *extra: str) -> str:
    out = d.cli("notify", "target", "add", name, "--url", url, "--json", *extra)
    return str(json.loads(out.stdout)["arns"][0])


def config(arn: str, events: list[str], prefix: str = "", suffix: str = "", rule_id: str = "r1") -> dict[str, Any]:
    rule: dict[str, Any] = {"Id": rule_id, "QueueArn": arn, "Events": events}
    rules = [{"Name": n, "Value": v} for n, v in (("prefix", prefix), ("suffix", suffix)) if v]
    if rules:
        rule["Filter"] = {"Key": {"FilterRules": rules}}
    return {"QueueConfigurations": [rule]}


def test_unknown_target_refused_test_event_and_filters(daemon: DaemonProc, receiver: Receiver) -> None:
    s3 = daemon.s3()
    s3.create_bucket(Bucket="photos")
    with pytest.raises(ClientError) as err:
        s3.put_bucket_notification_configuration(
            Bucket="photos",
            NotificationConfiguration=config("arn:stowage:sqs::nosuch:webhook", ["s3:ObjectCreated:*"]))
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    assert "Unable to validate" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:  # not one of the event types
        s3.put_bucket_notification_configuration(
            Bucket="photos", NotificationConfiguration=config("arn:stowage:sqs::hook:webhook", ["s3:Nope"]))
    assert err.value.response["Error"]["Code"] == "InvalidArgument"

    arn = add_webhook(daemon, "hook", receiver.url)
    assert arn == "arn:stowage:sqs::hook:webhook"
    cfg = config(arn, ["s3:ObjectCreated:*"], prefix="img/", suffix=".jpg")
    s3.put_bucket_notification_configuration(Bucket="photos", NotificationConfiguration=cfg)
    receiver.wait_for(lambda: len(receiver.tests()) == 1)
    assert receiver.tests()[0]["Bucket"] == "photos"
    got = s3.get_bucket_notification_configuration(Bucket="photos")
    assert got["QueueConfigurations"][0]["QueueArn"] == arn
    assert got["QueueConfigurations"][0]["Events"] == ["s3:ObjectCreated:*"]
    assert {r["Name"].lower(): r["Value"] for r in got["QueueConfigurations"][0]["Filter"]["Key"]["FilterRules"]} \
        == {"prefix": "img/", "suffix": ".jpg"}

    for key in ("img/a b.jpg", "img/b.png", "doc/c.jpg"):
        s3.put_object(Bucket="photos", Key=key, Body=b"x" * 10)
    s3.delete_object(Bucket="photos", Key="img/a b.jpg")  # a removal: not selected
    s3.put_object(Bucket="photos", Key="img/z.jpg", Body=b"last")
    receiver.wait_for(lambda: len(receiver.records()) == 2)
    first, last = receiver.records()
    assert first["eventName"] == "ObjectCreated:Put" and first["eventSource"] == "aws:s3"
    assert first["s3"]["object"]["key"] == "img/a+b.jpg" and unquote_plus(first["s3"]["object"]["key"]) == "img/a b.jpg"
    assert first["s3"]["object"]["size"] == 10 and first["s3"]["bucket"]["name"] == "photos"
    assert first["s3"]["configurationId"] == "r1" and first["eventVersion"] == "2.1"
    assert last["s3"]["object"]["key"] == "img/z.jpg"

    # removing a target a bucket uses is refused; an empty configuration removes it
    r = daemon.cli("notify", "target", "remove", "hook", check=False)
    assert r.returncode != 0 and "photos" in r.stderr
    s3.put_bucket_notification_configuration(Bucket="photos", NotificationConfiguration={})
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket="photos")
    daemon.cli("notify", "target", "remove", "hook")


def test_file_target_from_the_config_file(daemon_factory: Any, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    conf = tmp_path / "stowage.toml"
    conf.write_text(f'[notify.targets.log]\ntype = "file"\npath = "{events}"\n')
    d = daemon_factory(["--no-mount", "--config", str(conf)])
    s3 = d.s3()
    s3.create_bucket(Bucket="logs")
    s3.put_bucket_notification_configuration(Bucket="logs", NotificationConfiguration={"TopicConfigurations": [
        {"TopicArn": "arn:stowage:sns::log:file", "Events": ["s3:ObjectRemoved:*"]}]})
    s3.put_object(Bucket="logs", Key="k", Body=b"1")
    s3.delete_object(Bucket="logs", Key="k")
    deadline_lines: list[dict[str, Any]] = []

    def two_lines() -> bool:
        deadline_lines[:] = [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []
        return len(deadline_lines) == 2

    poll(two_lines)
    assert deadline_lines[0]["Event"] == "s3:TestEvent"
    assert deadline_lines[1]["Records"][0]["eventName"] == "ObjectRemoved:Delete"  # unversioned: removed
    assert events.stat().st_mode & 0o777 == 0o600


def _expect(expected: dict[str, list[tuple[str, str]]], key: str, name: str, version_id: str) -> None:
    expected.setdefault(key, []).append((name, version_id))


def test_500_operations_delivered_at_least_once_in_order(daemon_factory: Any, receiver: Receiver) -> None:
    """The receiver refuses for a while and the daemon is killed -9 once: every event of every
    acknowledged operation still arrives, in commit order per key."""
    d = daemon_factory(["--no-mount"])
    s3 = d.s3()
    s3.create_bucket(Bucket="mix")
    s3.put_bucket_versioning(Bucket="mix", VersioningConfiguration={"Status": "Enabled"})
    arn = add_webhook(d, "hook", receiver.url)
    s3.put_bucket_notification_configuration(Bucket="mix", NotificationConfiguration=config(
        arn, ["s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:ObjectTagging:*"]))
    receiver.wait_for(lambda: len(receiver.tests()) == 1)
    receiver.refusing = True

    rnd = random.Random(17)
    keys = [f"k{i:02d}" for i in range(20)]
    versions: dict[str, list[str]] = {}
    expected: dict[str, list[tuple[str, str]]] = {}
    for i in range(500):
        if i == 200:  # the receiver still refuses: the queue holds a backlog when the daemon dies
            d.kill()
            d.start()
            s3 = d.s3()
        if i == 300:
            receiver.refusing = False
        key = rnd.choice(keys)
        live = versions.get(key, [])
        op = rnd.choice(["put", "put", "copy", "delete", "tag", "delete-version", "multipart"])
        if op in ("copy", "tag", "delete-version") and not live:
            op = "put"
        if op == "put":
            vid = s3.put_object(Bucket="mix", Key=key, Body=f"{i}".encode())["VersionId"]
            _expect(expected, key, "ObjectCreated:Put", vid)
            versions.setdefault(key, []).append(vid)
        elif op == "copy":
            src = rnd.choice(keys)
            if not versions.get(src):
                src = key
            vid = s3.copy_object(Bucket="mix", Key=key, CopySource={"Bucket": "mix", "Key": src,
                                                                    "VersionId": versions[src][-1]})["VersionId"]
            _expect(expected, key, "ObjectCreated:Copy", vid)
            versions.setdefault(key, []).append(vid)
        elif op == "delete":
            vid = s3.delete_object(Bucket="mix", Key=key)["VersionId"]
            _expect(expected, key, "ObjectRemoved:DeleteMarkerCreated", vid)
        elif op == "tag":
            vid = live[-1]
            s3.put_object_tagging(Bucket="mix", Key=key, VersionId=vid,
                                  Tagging={"TagSet": [{"Key": "n", "Value": str(i)}]})
            _expect(expected, key, "ObjectTagging:Put", vid)
        elif op == "delete-version":
            vid = live.pop(0)
            s3.delete_object(Bucket="mix", Key=key, VersionId=vid)
            _expect(expected, key, "ObjectRemoved:Delete", vid)
        else:
            up = s3.create_multipart_upload(Bucket="mix", Key=key)["UploadId"]
            etag = s3.upload_part(Bucket="mix", Key=key, UploadId=up, PartNumber=1, Body=b"p" * 100)["ETag"]
            vid = s3.complete_multipart_upload(Bucket="mix", Key=key, UploadId=up, MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": etag}]})["VersionId"]
            _expect(expected, key, "ObjectCreated:CompleteMultipartUpload", vid)
            versions.setdefault(key, []).append(vid)
    total = sum(len(v) for v in expected.values())

    def seen() -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        firsts: set[tuple[str, str, str, str]] = set()
        for r in receiver.records():
            o = r["s3"]["object"]
            ident = (o["key"], r["eventName"], o.get("versionId", ""), r["responseElements"]["x-amz-request-id"])
            if ident in firsts:
                continue  # delivered again (at least once)
            firsts.add(ident)
            out.setdefault(o["key"], []).append((r["eventName"], o.get("versionId", "")))
        return out

    receiver.wait_for(lambda: sum(len(v) for v in seen().values()) >= total, timeout=180)
    assert seen() == expected
    assert receiver.refused > 0
    st = json.loads(d.cli("status", "--json").stdout)["notifications"]
    assert st["overflowed"] == 0


@pytest.mark.parametrize("overflow", ["count", "slowdown"])
def test_a_full_queue_counts_or_slows_down(daemon_factory: Any, receiver: Receiver, tmp_path: Path,
                                            overflow: str) -> None:
    conf = tmp_path / "stowage.toml"
    conf.write_text(f'[notify]\nqueue_limit = 3\noverflow = "{overflow}"\n')
    d = daemon_factory(["--no-mount", "--config", str(conf)])
    s3 = d.s3()
    s3.create_bucket(Bucket="full")
    arn = add_webhook(d, "hook", receiver.url)
    receiver.refusing = True
    s3.put_bucket_notification_configuration(Bucket="full", NotificationConfiguration=config(
        arn, ["s3:ObjectCreated:*"]))  # its test event is the first of the three
    for i in range(2):
        s3.put_object(Bucket="full", Key=f"k{i}", Body=b"x")
    if overflow == "count":
        for i in range(2, 5):
            s3.put_object(Bucket="full", Key=f"k{i}", Body=b"x")  # written; their events do not fit
        st = json.loads(d.cli("status", "--json").stdout)["notifications"]
        assert st["overflowed"] == 3 and st["targets"]["hook"]["queued"] == 3
        assert "OVERFLOWED 3" in d.cli("status").stdout
    else:
        with pytest.raises(ClientError) as err:
            s3.put_object(Bucket="full", Key="k9", Body=b"x")
        assert err.value.response["Error"]["Code"] == "SlowDown"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        with pytest.raises(ClientError):
            s3.head_object(Bucket="full", Key="k9")  # not written
    receiver.refusing = False
    receiver.wait_for(lambda: len(receiver.records()) == 2)
    s3.put_object(Bucket="full", Key="after", Body=b"x")  # the queue drained: room again
    receiver.wait_for(lambda: len(receiver.records()) == 3)


def test_writes_through_the_mount_are_events(daemon_factory: Any, receiver: Receiver) -> None:
    if not (os.path.exists("/dev/fuse") and os.access("/dev/fuse", os.R_OK | os.W_OK)):
        pytest.skip("/dev/fuse is not usable here")
    d = daemon_factory([])
    assert d.mount, d.log_tail()
    s3 = d.s3()
    s3.create_bucket(Bucket="mounted")
    arn = add_webhook(d, "hook", receiver.url)
    s3.put_bucket_notification_configuration(Bucket="mounted", NotificationConfiguration=config(
        arn, ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], prefix="docs/"))
    path = Path(d.mount) / "mounted" / "docs"
    poll(lambda: (Path(d.mount) / "mounted").is_dir())
    path.mkdir()
    (path / "note.txt").write_bytes(b"written through the mount")
    (path / "note.txt").unlink()
    receiver.wait_for(lambda: [r["eventName"] for r in receiver.records()
                               if r["s3"]["object"]["key"] == "docs/note.txt"][-1:] == ["ObjectRemoved:Delete"])
    names = [r["eventName"] for r in receiver.records() if r["s3"]["object"]["key"] == "docs/note.txt"]
    assert names[0] == "ObjectCreated:Put" and names[-1] == "ObjectRemoved:Delete"
    sizes = [r["s3"]["object"].get("size") for r in receiver.records() if r["s3"]["object"]["key"] == "docs/note.txt"
             and r["eventName"] == "ObjectCreated:Put"]
    assert sizes[-1] == len(b"written through the mount")  # (the mount's create may be an empty Put first)

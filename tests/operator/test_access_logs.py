"""The structured access log and S3 server access logging against the real daemon, checked line
by line against the requests made; PutBucketLogging's refusals; no secret in any log; the
settings survive `stowage recover-metadata`."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from .helpers import http_get

# AWS's server access log record: 26 fields, three of them bracketed or quoted
AWS_RECORD = re.compile(
    r'^(?P<owner>\S+) (?P<bucket>\S+) \[(?P<time>[^\]]+)\] (?P<ip>\S+) (?P<requester>\S+) (?P<request_id>\S+) '
    r'(?P<operation>\S+) (?P<key>\S+) "(?P<request_uri>[^"]*)" (?P<status>\d{3}) (?P<error>\S+) (?P<sent>\S+) '
    r'(?P<size>\S+) (?P<total_ms>\d+) (?P<turnaround>\S+) (?P<referrer>"[^"]*"|-) (?P<agent>"[^"]*"|-) '
    r'(?P<version>\S+) (?P<host_id>\S+) (?P<sig>\S+) (?P<cipher>\S+) (?P<auth>\S+) (?P<host>\S+) (?P<tls>\S+) '
    r'(?P<ap>\S+) (?P<acl>\S+)$')


def _rid(resp: dict[str, Any]) -> str:
    return str(resp["ResponseMetadata"]["RequestId"])


def _read_access_log(d: Any) -> list[dict[str, Any]]:
    path = d.data_dir / "log" / "access.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _poll(what: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_access_log_per_bucket_line_by_line(daemon: Any) -> None:
    s3 = daemon.s3()
    s3.create_bucket(Bucket="logged")
    s3.create_bucket(Bucket="quiet")
    assert daemon.cli("access-log", "enable", "logged").returncode == 0
    expected: list[tuple[str, str, str, int, str, int, int]] = []  # rid, op, key, status, error, in, out
    r = s3.put_object(Bucket="logged", Key="a/b.txt", Body=b"12345")
    expected.append((_rid(r), "PutObject", "a/b.txt", 200, "", 5, 0))
    s3.put_object(Bucket="quiet", Key="x", Body=b"not logged")
    r = s3.get_object(Bucket="logged", Key="a/b.txt")
    assert r["Body"].read() == b"12345"
    expected.append((_rid(r), "GetObject", "a/b.txt", 200, "", 0, 5))
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="logged", Key="missing")
    expected.append((_rid(err.value.response), "GetObject", "missing", 404, "NoSuchKey", 0, -1))
    r = s3.head_object(Bucket="logged", Key="a/b.txt")
    expected.append((_rid(r), "HeadObject", "a/b.txt", 200, "", 0, 0))
    r = s3.delete_object(Bucket="logged", Key="a/b.txt")
    expected.append((_rid(r), "DeleteObject", "a/b.txt", 204, "", 0, 0))
    s3.get_object(Bucket="quiet", Key="x")

    lines = _read_access_log(daemon)
    assert len(lines) == len(expected), lines
    for line, (rid, op, key, status, error, bytes_in, bytes_out) in zip(lines, expected, strict=True):
        assert line["request_id"] == rid and line["operation"] == op and line["key"] == key
        assert line["bucket"] == "logged" and line["status"] == status and line["error_code"] == error
        assert line["bytes_in"] == bytes_in
        if bytes_out >= 0:
            assert line["bytes_out"] == bytes_out
        assert line["principal"].endswith(":root") and line["access_key"] == daemon.access_key
        assert line["remote"].startswith("127.0.0.1:") and line["user_agent"].startswith("Boto3/")
        assert line["duration_ms"] >= 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert set(lines[0]) == {"time", "request_id", "remote", "principal", "access_key", "operation", "bucket",
                             "key", "status", "error_code", "bytes_in", "bytes_out", "duration_ms", "user_agent"}
    assert (daemon.data_dir / "log" / "access.log").stat().st_mode & 0o777 == 0o600
    listing = json.loads(daemon.cli("access-log", "list", "--json").stdout)
    assert listing == [{"bucket": "logged", "access_log": True, "target_bucket": "", "target_prefix": ""}]
    daemon.cli("access-log", "disable", "logged")
    s3.put_object(Bucket="logged", Key="after", Body=b"")
    assert len(_read_access_log(daemon)) == len(expected)
    bad = daemon.cli("access-log", "enable", "no-such-bucket", check=False)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1


def test_server_access_logging_delivers_aws_records(daemon_factory: Any, tmp_path: Path) -> None:
    cfg = tmp_path / "stowage.toml"
    cfg.write_text("[access_log]\ndelivery_interval_seconds = 0.5\n")
    d = daemon_factory(["--no-mount", "--config", str(cfg)])
    s3 = d.s3()
    s3.create_bucket(Bucket="source")
    s3.create_bucket(Bucket="logs")
    assert s3.get_bucket_logging(Bucket="source").get("LoggingEnabled") is None
    made: list[tuple[str, str, str, str]] = []  # request id, AWS operation, key, status
    r = s3.put_bucket_logging(Bucket="source", BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": "logs", "TargetPrefix": "source/"}})
    made.append((_rid(r), "REST.PUT.LOGGING_STATUS", "-", "200"))  # logged: it ends with logging on
    r = s3.get_bucket_logging(Bucket="source")
    assert r["LoggingEnabled"] == {"TargetBucket": "logs", "TargetPrefix": "source/"}
    made.append((_rid(r), "REST.GET.LOGGING_STATUS", "-", "200"))
    r = s3.put_object(Bucket="source", Key="dir/file one.txt", Body=b"x" * 100)
    made.append((_rid(r), "REST.PUT.OBJECT", "dir/file%20one.txt", "200"))
    r = s3.get_object(Bucket="source", Key="dir/file one.txt")
    r["Body"].read()
    made.append((_rid(r), "REST.GET.OBJECT", "dir/file%20one.txt", "200"))
    r = s3.list_objects_v2(Bucket="source")
    made.append((_rid(r), "REST.GET.BUCKET", "-", "200"))
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket="source", Key="nope")
    made.append((_rid(err.value.response), "REST.HEAD.OBJECT", "nope", "404"))
    # a presigned GET: its signature must not reach the log object
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "source", "Key": "dir/file one.txt"})
    u = urlsplit(url)
    status, headers, _ = http_get(d.endpoint, f"{u.path}?{u.query}")
    assert status == 200
    made.append((headers["x-amz-request-id"], "REST.GET.OBJECT", "dir/file%20one.txt", "200"))

    def delivered() -> list[str]:
        found = s3.list_objects_v2(Bucket="logs", Prefix="source/").get("Contents", [])
        text = "".join(s3.get_object(Bucket="logs", Key=o["Key"])["Body"].read().decode() for o in found)
        lines = text.splitlines()
        return lines if len(lines) >= len(made) else []

    lines = _poll(delivered)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="logs", Prefix="source/")["Contents"]]
    assert all(re.fullmatch(r"source/\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9A-F]{16}", k) for k in keys)
    records = sorted((m.groupdict() for m in map(AWS_RECORD.match, lines) if m), key=lambda g: g["time"])
    assert len(records) == len(lines) == len(made), lines
    by_id = {g["request_id"]: g for g in records}
    for rid, op, key, status in made:
        g = by_id[rid]
        assert (g["bucket"], g["operation"], g["key"], g["status"]) == ("source", op, key, status)
        assert g["ip"] == "127.0.0.1" and g["requester"].endswith(":root")
    assert by_id[made[2][0]]["size"] == "100" and by_id[made[3][0]]["sent"] == "100"
    assert by_id[made[5][0]]["error"] == "NoSuchKey"
    assert by_id[made[2][0]]["auth"] == "AuthHeader" and by_id[made[6][0]]["auth"] == "QueryString"
    assert "Signature" not in "\n".join(lines) and d.secret_key not in "\n".join(lines)
    # the log bucket's own requests are not logged into it (no target on "logs"); turning it off
    s3.put_bucket_logging(Bucket="source", BucketLoggingStatus={})
    assert s3.get_bucket_logging(Bucket="source").get("LoggingEnabled") is None


BAD_DOCS = [
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
     b'<BucketLoggingStatus><LoggingEnabled><TargetBucket>&b;</TargetBucket></LoggingEnabled></BucketLoggingStatus>',
     400, "MalformedXML"),
    (b"<BucketLoggingStatus><LoggingEnabled><TargetPrefix>p</TargetPrefix></LoggingEnabled></BucketLoggingStatus>",
     400, "MalformedXML"),
    (b"<BucketLoggingStatus><LoggingEnabled><TargetBucket>logs</TargetBucket><Bogus/></LoggingEnabled>"
     b"</BucketLoggingStatus>", 400, "MalformedXML"),
    (b"<Other/>", 400, "MalformedXML"),
    (b"<BucketLoggingStatus><LoggingEnabled><TargetBucket>logs</TargetBucket><TargetGrants/></LoggingEnabled>"
     b"</BucketLoggingStatus>", 501, "NotImplemented"),
    (b"<BucketLoggingStatus><LoggingEnabled><TargetBucket>no-such</TargetBucket></LoggingEnabled>"
     b"</BucketLoggingStatus>", 400, "InvalidTargetBucketForLogging"),
    (b"<BucketLoggingStatus><LoggingEnabled><TargetBucket>logs</TargetBucket><TargetPrefix>"
     + b"p" * 600 + b"</TargetPrefix></LoggingEnabled></BucketLoggingStatus>", 400, "InvalidArgument"),
    (b"<BucketLoggingStatus>" + b"<LoggingEnabled>" * 40000, 400, "MaxMessageLengthExceeded"),
    (b"\xff\xfe<BucketLoggingStatus/>", 400, "MalformedXML"),
]


def test_put_bucket_logging_refuses_broken_documents(daemon: Any) -> None:
    s3 = daemon.s3()
    s3.create_bucket(Bucket="src")
    s3.create_bucket(Bucket="logs")
    for body, status, code in BAD_DOCS:
        def put(params: Any, body: bytes = body, **_: Any) -> None:
            params["body"] = body

        s3.meta.events.register_first("before-call.s3.PutBucketLogging", put)
        with pytest.raises(ClientError) as err:
            s3.put_bucket_logging(Bucket="src", BucketLoggingStatus={})
        s3.meta.events.unregister("before-call.s3.PutBucketLogging", put)
        assert (err.value.response["ResponseMetadata"]["HTTPStatusCode"], err.value.response["Error"]["Code"]) == \
            (status, code), body[:80]
    assert s3.get_bucket_logging(Bucket="src").get("LoggingEnabled") is None
    # a user may not point logs at a bucket it cannot write
    daemon.cli("user", "add", "reader", "--policy", "readonly")
    key = json.loads(daemon.cli("key", "create", "reader", "--json").stdout)
    doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutBucketLogging", "s3:GetBucketLogging"], "Resource": "*"}]})
    daemon.cli("policy", "create", "logcfg", "-", input=doc)
    daemon.cli("policy", "attach", "logcfg", "--user", "reader")
    import boto3
    from botocore.config import Config as BotoConfig

    user = boto3.client("s3", endpoint_url=daemon.endpoint, aws_access_key_id=key["access_key"],
                        aws_secret_access_key=key["secret_key"], region_name="us-east-1",
                        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as err:
        user.put_bucket_logging(Bucket="src", BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": "logs", "TargetPrefix": ""}})
    assert err.value.response["Error"]["Code"] == "InvalidTargetBucketForLogging"
    # an object has no logging subresource
    with pytest.raises(ClientError) as err:
        s3.meta.events.register_first("before-sign.s3.GetBucketLogging",
                                      lambda request, **_: setattr(request, "url", request.url.replace(
                                          "/src?logging", "/src/key?logging")))
        s3.get_bucket_logging(Bucket="src")
    assert err.value.response["Error"]["Code"] == "NotImplemented"


def test_logging_settings_survive_recover_metadata(daemon: Any) -> None:
    s3 = daemon.s3()
    s3.create_bucket(Bucket="src")
    s3.create_bucket(Bucket="logs")
    s3.put_bucket_logging(Bucket="src", BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": "logs", "TargetPrefix": "p/"}})
    daemon.cli("access-log", "enable", "src")
    token = daemon.cli("metrics-token").stdout.strip()
    daemon.stop()
    shutil.rmtree(daemon.data_dir / "meta")
    daemon.cli("recover-metadata", "--json")
    daemon.start()
    s3 = daemon.s3()
    assert s3.get_bucket_logging(Bucket="src")["LoggingEnabled"] == {"TargetBucket": "logs", "TargetPrefix": "p/"}
    listing = json.loads(daemon.cli("access-log", "list", "--json").stdout)
    assert listing == [{"bucket": "src", "access_log": True, "target_bucket": "logs", "target_prefix": "p/"}]
    assert http_get(daemon.endpoint, "/_stowage/v1/metrics", {"Authorization": f"Bearer {token}"})[0] == 200

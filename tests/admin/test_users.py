"""`stowage user` / `stowage key` against the real daemon and offline, with real S3 requests."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError


def _client(daemon, ak: str, sk: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=daemon.endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                               retries={"max_attempts": 1}))


def test_user_and_key_lifecycle(daemon) -> None:
    r = json.loads(daemon.cli("user", "add", "alice", "--json").stdout)
    assert r["user"] == "alice" and r["secret_key"]
    alice = _client(daemon, r["access_key"], r["secret_key"])
    alice.create_bucket(Bucket="alice-data")
    alice.put_object(Bucket="alice-data", Key="k", Body=b"v")
    assert daemon.s3().get_object(Bucket="alice-data", Key="k")["Body"].read() == b"v"

    k2 = json.loads(daemon.cli("key", "create", "alice", "--json").stdout)
    second = _client(daemon, k2["access_key"], k2["secret_key"])
    assert second.head_object(Bucket="alice-data", Key="k")["ContentLength"] == 1

    out = daemon.cli("key", "revoke", r["access_key"]).stdout
    assert "revoked" in out
    with pytest.raises(ClientError) as ei:
        alice.list_buckets()
    assert ei.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert second.list_buckets()["Buckets"]

    listing = json.loads(daemon.cli("user", "list", "--json").stdout)
    assert [u["user"] for u in listing] == ["alice"]
    assert {k["access_key"]: k["active"] for k in listing[0]["keys"]} == {
        r["access_key"]: False, k2["access_key"]: True}

    daemon.cli("user", "remove", "alice")
    with pytest.raises(ClientError) as ei:
        second.list_buckets()
    assert ei.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    # secrets never reach the log
    assert k2["secret_key"] not in daemon.log_tail(10_000)


def test_errors_and_offline(daemon) -> None:
    bad = daemon.cli("user", "add", "root", check=False)
    assert bad.returncode != 0 and "reserved" in bad.stderr
    bad = daemon.cli("user", "add", "no spaces", check=False)
    assert bad.returncode != 0 and "invalid user name" in bad.stderr
    bad = daemon.cli("key", "create", "nobody", check=False)
    assert bad.returncode != 0 and "no user" in bad.stderr
    daemon.cli("user", "add", "bob")
    daemon.stop()
    # daemon stopped: the CLI works on the DB directly
    assert "bob" in daemon.cli("user", "list").stdout
    r = json.loads(daemon.cli("key", "create", "bob", "--json").stdout)
    daemon.start()
    bob = _client(daemon, r["access_key"], r["secret_key"])
    assert "Buckets" in bob.list_buckets()

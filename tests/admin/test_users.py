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


def _lifecycle(daemon, tag: str, tmp_path) -> dict[str, str]:
    """Users, keys, groups and policies through the CLI with --json; returns a usable key."""
    def cli(*args: str):
        out = daemon.cli(*args, "--json").stdout
        return json.loads(out)

    doc = tmp_path / f"{tag}.json"
    doc.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{tag}-*"]}]}))
    user = cli("user", "add", f"{tag}-u", "--policy", "readonly")
    assert user["user"] == f"{tag}-u" and user["secret_key"] and user["arn"].endswith(f":user/{tag}-u")
    created = cli("policy", "create", f"{tag}-p", str(doc), "--description", "the tag's buckets")
    assert created["policy"] == f"{tag}-p" and not created["canned"] and created["versions"] == ["v1"]
    assert cli("policy", "create", f"{tag}-admin", "--canned", "admin")["default_version"] == "v1"
    listed = {p["policy"]: p for p in cli("policy", "list")}
    assert {"readonly", "readwrite", "writeonly", "admin", f"{tag}-p"} <= listed.keys()
    assert listed["readonly"]["canned"] and f"user/{tag}-u" in listed["readonly"]["attached_to"]
    shown = cli("policy", "show", f"{tag}-p")
    assert json.loads(shown["document"])["Statement"][0]["Resource"] == [f"arn:aws:s3:::{tag}-*"]
    assert cli("policy", "update", f"{tag}-p", "--canned", "readwrite")["default_version"] == "v2"
    assert cli("policy", "show", f"{tag}-p", "--version", "v1")["document"] == doc.read_text()

    assert cli("group", "add", f"{tag}-g")["group"] == f"{tag}-g"
    assert cli("group", "members", f"{tag}-g", "--add", f"{tag}-u")["members"] == [f"{tag}-u"]
    assert cli("policy", "attach", f"{tag}-p", "--group", f"{tag}-g")["policies"] == [f"{tag}-p"]
    assert cli("policy", "attach", f"{tag}-admin", "--user", f"{tag}-u")["policies"] == ["readonly", f"{tag}-admin"]
    assert cli("policy", "detach", f"{tag}-admin", "--user", f"{tag}-u")["policies"] == ["readonly"]
    show = cli("user", "show", f"{tag}-u")
    assert show["groups"] == [f"{tag}-g"] and show["policies"] == ["readonly"] and not show["disabled"]
    assert [k["access_key"] for k in show["keys"]] == [user["access_key"]]

    second = cli("key", "create", f"{tag}-u")
    assert {k["access_key"] for k in cli("key", "list", f"{tag}-u")} == {user["access_key"], second["access_key"]}
    assert cli("key", "revoke", second["access_key"])["active"] is False
    assert cli("key", "enable", second["access_key"])["active"] is True
    assert cli("key", "delete", second["access_key"])["access_key"] == second["access_key"]
    bad = daemon.cli("key", "create", f"{tag}-u", check=False)  # fine: one key left, a second is allowed
    assert bad.returncode == 0
    third = daemon.cli("key", "create", f"{tag}-u", check=False)
    assert third.returncode != 0 and "AccessKeysPerUser" in third.stderr

    assert cli("user", "disable", f"{tag}-u")["disabled"] is True
    assert cli("user", "show", f"{tag}-u")["disabled"] is True
    assert cli("user", "enable", f"{tag}-u")["disabled"] is False

    # removals cascade
    cli("user", "add", f"{tag}-gone", "--no-key")
    cli("group", "members", f"{tag}-g", "--add", f"{tag}-gone")
    assert cli("group", "members", f"{tag}-g", "--remove", f"{tag}-gone")["members"] == [f"{tag}-u"]
    cli("group", "members", f"{tag}-g", "--add", f"{tag}-gone")
    assert cli("user", "remove", f"{tag}-gone")["groups"] == [f"{tag}-g"]
    assert cli("policy", "remove", f"{tag}-admin")["detached_from"] == []
    assert [g["group"] for g in cli("group", "list")].count(f"{tag}-g") == 1
    return {"access_key": user["access_key"], "secret_key": user["secret_key"]}


def test_groups_policies_and_keys_online_then_offline(daemon, tmp_path) -> None:
    online = _lifecycle(daemon, "on", tmp_path)
    assert "Buckets" in _client(daemon, online["access_key"], online["secret_key"]).list_buckets()
    daemon.stop()
    offline = _lifecycle(daemon, "off", tmp_path)
    bad = daemon.cli("group", "members", "nope", "--add", "off-u", check=False)
    assert bad.returncode != 0 and "group" in bad.stderr
    daemon.start()
    # what was made offline is what the daemon loads: the key authenticates, the user is listed
    assert "Buckets" in _client(daemon, offline["access_key"], offline["secret_key"]).list_buckets()
    users = {u["user"]: u for u in json.loads(daemon.cli("user", "list", "--json").stdout)}
    assert users["off-u"]["groups"] == ["off-g"] and users["on-u"]["policies"] == ["readonly"]
    disabled = daemon.cli("user", "disable", "off-u", "--json")
    assert json.loads(disabled.stdout)["disabled"] is True
    with pytest.raises(ClientError) as ei:
        _client(daemon, offline["access_key"], offline["secret_key"]).list_buckets()
    assert ei.value.response["Error"]["Code"] == "AccessDenied"

"""The audit log against the real daemon: changes through the CLI, the IAM API and S3 each give
one line with who, what, when, from where, before and after; reads give none; secrets are
redacted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest


def _audit(d: Any) -> list[dict[str, Any]]:
    path = d.data_dir / "log" / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_audit_log_of_cli_iam_and_s3_changes(daemon: Any) -> None:
    created = json.loads(daemon.cli("user", "add", "carol", "--policy", "readonly", "--json").stdout)
    daemon.cli("user", "list")  # a read: not audited
    entries = _audit(daemon)
    assert [e["action"] for e in entries] == ["user.add"]
    e = entries[0]
    assert e["source"] == "cli" and e["who"].startswith("uid ") and e["from"].startswith("pid ")
    assert e["outcome"] == "ok" and "carol" in e["target"]
    assert e["before"] == {"user/carol": None}  # the true state before: no such user
    assert e["after"]["state"]["user/carol"]["policies"] == ["readonly"]
    assert e["after"]["result"]["secret_key"] == "[redacted]"
    assert created["secret_key"] not in (daemon.data_dir / "log" / "audit.log").read_text()

    iam = boto3.client("iam", endpoint_url=daemon.endpoint, aws_access_key_id=daemon.access_key,
                       aws_secret_access_key=daemon.secret_key, region_name="us-east-1")
    iam.create_user(UserName="dave")
    made = iam.create_access_key(UserName="dave")["AccessKey"]
    iam.list_users()
    s3 = daemon.s3()
    s3.create_bucket(Bucket="audited")
    s3.put_bucket_versioning(Bucket="audited", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="audited", Key="data", Body=b"object writes are not settings")
    s3.put_bucket_tagging(Bucket="audited", Tagging={"TagSet": [{"Key": "team", "Value": "ops"}]})
    bad = daemon.cli("user", "remove", "nobody-here", check=False)
    assert bad.returncode != 0

    entries = _audit(daemon)[1:]
    assert [(e["source"], e["action"]) for e in entries] == [
        ("iam", "iam:CreateUser"), ("iam", "iam:CreateAccessKey"), ("s3", "CreateBucket"),
        ("s3", "PutBucketVersioning"), ("s3", "PutBucketTagging"), ("cli", "user.remove")]
    create_user, create_key, bucket, versioning, tagging, failed = entries
    assert create_user["who"].endswith(":root") and create_user["from"].startswith("127.0.0.1:")
    assert create_user["target"] == "dave" and create_user["after"]["args"] == {"UserName": "dave"}
    assert create_user["before"] == {"user/dave": None} and create_user["after"]["state"]["user/dave"]["user"] == "dave"
    assert create_key["target"] == "dave"
    assert create_key["before"]["user/dave"]["keys"] == []
    assert [k["access_key"] for k in create_key["after"]["state"]["user/dave"]["keys"]] == [made["AccessKeyId"]]
    assert bucket["target"] == "audited" and bucket["before"] is None and bucket["after"]["name"] == "audited"
    assert versioning["before"] == {"versioning": ""} and versioning["after"] == {"versioning": "Enabled"}
    assert tagging["before"] == {"tags": {}} and tagging["after"] == {"tags": {"team": "ops"}}
    assert failed["outcome"] != "ok"
    text = (daemon.data_dir / "log" / "audit.log").read_text()
    assert made["SecretAccessKey"] not in text
    assert (daemon.data_dir / "log" / "audit.log").stat().st_mode & 0o777 == 0o600
    assert "audit: s3 PutBucketVersioning audited" in Path(daemon.log_path).read_text()
    before_and_after_of_identity_changes(daemon)  # on the same daemon: one start saved
    daemon.cli("quota", "set", "--bucket", "audited", "--objects", "5")
    daemon.cli("quota", "set", "--bucket", "audited", "--objects", "7")
    first, second = _audit(daemon)[-2:]
    assert first["before"] == {"quota/bucket/audited": None}
    assert first["after"]["state"] == {"quota/bucket/audited": {"bytes": 0, "objects": 5}}
    assert second["before"] == {"quota/bucket/audited": {"bytes": 0, "objects": 5}}
    offline_changes(daemon)


def offline_changes(daemon: Any) -> None:
    """With the daemon stopped the CLI changes the metadata DB itself, and writes the audit entry."""
    daemon.stop()
    seen = len(_audit(daemon))
    made = json.loads(daemon.cli("user", "add", "frank", "--json").stdout)
    daemon.cli("key", "revoke", made["access_key"])
    daemon.cli("user", "list")  # a read: not audited
    assert daemon.cli("user", "remove", "nobody-here", check=False).returncode != 0
    add, revoke, failed = _audit(daemon)[seen:]
    assert (add["source"], add["action"], add["outcome"]) == ("cli-offline", "user.add", "ok")
    assert add["who"].startswith("uid ") and add["from"].startswith("pid ")
    assert add["before"] == {"user/frank": None} and add["after"]["state"]["user/frank"]["user"] == "frank"
    assert add["after"]["result"]["secret_key"] == "[redacted]"
    assert revoke["before"] == {"key/" + made["access_key"]: {
        "access_key": made["access_key"], "user": "frank", "active": True,
        "created_ns": revoke["before"]["key/" + made["access_key"]]["created_ns"],
        "expires_ns": 0, "session_policy": ""}}
    assert revoke["after"]["state"]["key/" + made["access_key"]]["active"] is False
    assert failed["action"] == "user.remove" and failed["outcome"] == "NoSuchEntity"
    assert made["secret_key"] not in (daemon.data_dir / "log" / "audit.log").read_text()


def before_and_after_of_identity_changes(daemon: Any) -> None:
    """CLI and IAM changes record the state of what they change as it was before and after:
    the user, group, policy or key, as `stowage user|group|policy show` describes it."""
    seen = len(_audit(daemon))
    daemon.cli("user", "add", "erin", "--json")
    daemon.cli("policy", "attach", "readonly", "--user", "erin")
    iam = boto3.client("iam", endpoint_url=daemon.endpoint, aws_access_key_id=daemon.access_key,
                       aws_secret_access_key=daemon.secret_key, region_name="us-east-1")
    iam.detach_user_policy(UserName="erin", PolicyArn=next(p["Arn"] for p in iam.list_policies()["Policies"]
                                                         if p["PolicyName"] == "readonly"))
    daemon.cli("user", "disable", "erin")
    iam.create_group(GroupName="ops")
    iam.add_user_to_group(GroupName="ops", UserName="erin")
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_group(GroupName="ops")  # the group has a member
    attach, detach, disable, _, add, refused = _audit(daemon)[seen + 1:]
    assert attach["before"]["user/erin"]["policies"] == [] and attach["after"]["state"]["user/erin"]["policies"] == [
        "readonly"]
    assert "user/erin" not in attach["before"]["policy/readonly"]["attached_to"]
    assert "user/erin" in attach["after"]["state"]["policy/readonly"]["attached_to"]
    assert detach["source"] == "iam" and detach["before"]["user/erin"]["policies"] == ["readonly"]
    assert detach["after"]["state"]["user/erin"]["policies"] == []
    assert disable["before"]["user/erin"]["disabled"] is False and disable["after"]["state"]["user/erin"]["disabled"]
    assert add["before"]["group/ops"]["members"] == [] and add["after"]["state"]["group/ops"]["members"] == ["erin"]
    assert add["before"]["user/erin"]["groups"] == [] and add["after"]["state"]["user/erin"]["groups"] == ["ops"]
    assert refused["action"] == "iam:DeleteGroup" and refused["outcome"] == "DeleteConflict"
    assert refused["before"] == refused["after"]["state"] and refused["before"]["group/ops"]["members"] == ["erin"]

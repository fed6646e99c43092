"""Bucket replication between two real daemons (different data dirs and ports), with boto3."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.conftest import DaemonProc
from tests.s3.test_encryption import client, tls_daemon

from .receiver import poll

FAR = datetime.now(UTC) + timedelta(days=3)


def add_target(src: DaemonProc, name: str, dst: DaemonProc, kind: str = "stowage") -> None:
    src.cli("replication", "target", "add", name, "--endpoint", dst.endpoint, "--access-key", dst.access_key,
            "--secret-key", dst.secret_key, "--kind", kind)


def rule(target: str, bucket: str, rule_id: str = "all", priority: int = 1, prefix: str = "",
         delete_markers: bool = True, existing: bool = False, kms: bool = False) -> dict[str, Any]:
    r: dict[str, Any] = {"ID": rule_id, "Priority": priority, "Status": "Enabled", "Filter": {"Prefix": prefix},
                         "DeleteMarkerReplication": {"Status": "Enabled" if delete_markers else "Disabled"},
                         "Destination": {"Bucket": f"arn:stowage:s3::{target}:{bucket}"}}
    if existing:
        r["ExistingObjectReplication"] = {"Status": "Enabled"}
    if kms:
        r["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    return r


def versioned(s3: Any, bucket: str, lock: bool = False) -> None:
    if lock:
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    else:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def status_of(s3: Any, bucket: str, key: str, vid: str) -> str:
    return str(s3.head_object(Bucket=bucket, Key=key, VersionId=vid).get("ReplicationStatus", ""))


def wait_status(s3: Any, bucket: str, key: str, vid: str, want: str, timeout: float = 60) -> None:
    poll(lambda: status_of(s3, bucket, key, vid) == want, timeout, lambda: status_of(s3, bucket, key, vid))


@pytest.fixture
def pair(daemon_factory: Any) -> tuple[DaemonProc, DaemonProc]:
    return daemon_factory(["--no-mount"], name="a"), daemon_factory(["--no-mount"], name="b")


def test_one_way_replication_byte_for_byte(pair: tuple[DaemonProc, DaemonProc]) -> None:
    a, b = pair
    sa, sb = a.s3(), b.s3()
    versioned(sa, "src", lock=True)
    versioned(sb, "dst", lock=True)
    add_target(a, "boxb", b)
    with pytest.raises(ClientError) as err:  # an unknown target is refused
        sa.put_bucket_replication(Bucket="src", ReplicationConfiguration={
            "Role": "arn:aws:iam::000000000000:role/r", "Rules": [rule("nosuch", "dst")]})
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    sa.put_bucket_replication(Bucket="src", ReplicationConfiguration={
        "Role": "arn:aws:iam::000000000000:role/r", "Rules": [rule("boxb", "dst", kms=True)]})
    got = sa.get_bucket_replication(Bucket="src")["ReplicationConfiguration"]["Rules"][0]
    assert got["Destination"]["Bucket"] == "arn:stowage:s3::boxb:dst" and got["Priority"] == 1

    big = os.urandom(21 << 20)  # multipart, larger than a replication part
    up = sa.create_multipart_upload(Bucket="src", Key="big", ContentType="application/x-big")["UploadId"]
    parts = []
    for n, off in enumerate(range(0, len(big), 8 << 20), start=1):
        e = sa.upload_part(Bucket="src", Key="big", UploadId=up, PartNumber=n, Body=big[off:off + (8 << 20)])["ETag"]
        parts.append({"PartNumber": n, "ETag": e})
    vids = {"big": sa.complete_multipart_upload(Bucket="src", Key="big", UploadId=up,
                                                MultipartUpload={"Parts": parts})["VersionId"]}
    vids["small"] = sa.put_object(Bucket="src", Key="small", Body=b"hello", ContentType="text/plain",
                                  CacheControl="max-age=60", Metadata={"colour": "blue"}, Tagging="a=1&b=two",
                                  ChecksumAlgorithm="SHA256")["VersionId"]
    vids["locked"] = sa.put_object(Bucket="src", Key="locked", Body=b"keep", ObjectLockMode="GOVERNANCE",
                                   ObjectLockRetainUntilDate=FAR, ObjectLockLegalHoldStatus="ON")["VersionId"]
    vids["sse"] = sa.put_object(Bucket="src", Key="sse", Body=b"secret" * 1000,
                                ServerSideEncryption="AES256")["VersionId"]
    vids["kms"] = sa.put_object(Bucket="src", Key="kms", Body=b"k" * 3000, ServerSideEncryption="aws:kms")["VersionId"]
    for key, vid in vids.items():
        assert status_of(sa, "src", key, vid) in ("PENDING", "COMPLETED")
        wait_status(sa, "src", key, vid, "COMPLETED")
        src = sa.head_object(Bucket="src", Key=key, VersionId=vid)
        dst = sb.head_object(Bucket="dst", Key=key, VersionId=vid)  # the same version id
        assert dst["ReplicationStatus"] == "REPLICA"
        for h in ("ContentType", "ContentLength", "Metadata", "CacheControl", "ObjectLockMode",
                  "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus", "ServerSideEncryption"):
            assert src.get(h) == dst.get(h), (key, h)
        if key not in ("sse", "kms"):  # an encrypted object's ETag is not its MD5 on either side
            assert src["ETag"] == dst["ETag"], key
        body = sb.get_object(Bucket="dst", Key=key, VersionId=vid)["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(
            sa.get_object(Bucket="src", Key=key, VersionId=vid)["Body"].read()).digest()
    assert sb.get_object_tagging(Bucket="dst", Key="small", VersionId=vids["small"])["TagSet"] == \
        [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "two"}]
    assert sb.head_object(Bucket="dst", Key="small", ChecksumMode="ENABLED")["ChecksumSHA256"] == \
        sa.head_object(Bucket="src", Key="small", ChecksumMode="ENABLED")["ChecksumSHA256"]

    marker = sa.delete_object(Bucket="src", Key="small")["VersionId"]
    poll(lambda: any(m["VersionId"] == marker for m in
                     sb.list_object_versions(Bucket="dst", Prefix="small").get("DeleteMarkers", [])))
    st = json.loads(a.cli("replication", "status", "--json").stdout)["targets"]["boxb"]
    assert st["failed"] == 0 and st["completed"] == 6


def test_sse_c_objects_replicate_as_ciphertext_to_stowage_and_fail_elsewhere(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    # a small multipart threshold: larger SSE-C objects go as sealed parts (one per segment)
    a = tls_daemon(tmp_path, f'\n[notify.targets.log]\ntype = "file"\npath = "{events}"\n'
                   f'[replication]\nmultipart_threshold = {5 << 20}\npart_size = {5 << 20}\n')
    a.start()
    (tmp_path / "b").mkdir()
    b = tls_daemon(tmp_path / "b")  # SSE-C needs TLS on both sides
    b.start()
    try:
        sa, sb = client(a), client(b)
        for s3, bucket in ((sa, "src"), (sa, "src2"), (sb, "dst"), (sb, "dst2")):
            versioned(s3, bucket)
        for name, kind in (("boxb", "stowage"), ("anys3", "s3")):  # the same box, seen as another S3 service
            a.cli("replication", "target", "add", name, "--endpoint", b.endpoint, "--access-key", b.access_key,
                  "--secret-key", b.secret_key, "--kind", kind, "--no-tls-verify")
        sa.put_bucket_replication(Bucket="src", ReplicationConfiguration={"Role": "", "Rules": [rule("boxb", "dst")]})
        sa.put_bucket_replication(Bucket="src2", ReplicationConfiguration={"Role": "",
                                                                           "Rules": [rule("anys3", "dst2")]})
        sa.put_bucket_notification_configuration(Bucket="src2", NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": "arn:stowage:sqs::log:file", "Events": ["s3:Replication:*"]}]})
        key_c = os.urandom(32)
        args = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key_c}
        data = os.urandom(200_000)  # several sealed blocks
        vid = sa.put_object(Bucket="src", Key="ssec", Body=data, Metadata={"m": "1"}, **args)["VersionId"]
        vid2 = sa.put_object(Bucket="src2", Key="ssec", Body=b"c", **args)["VersionId"]

        # to a Stowage box: the ciphertext with its key check value, readable there with the same key
        poll(lambda: sa.head_object(Bucket="src", Key="ssec", VersionId=vid, **args).get("ReplicationStatus")
             == "COMPLETED")
        got = sb.get_object(Bucket="dst", Key="ssec", VersionId=vid, **args)
        assert got["Body"].read() == data and got["ReplicationStatus"] == "REPLICA" and got["Metadata"] == {"m": "1"}
        assert got["ETag"] == sa.head_object(Bucket="src", Key="ssec", VersionId=vid, **args)["ETag"]
        for wrong in ({}, {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": os.urandom(32)}):
            with pytest.raises(ClientError):
                sb.get_object(Bucket="dst", Key="ssec", VersionId=vid, **wrong)
        # sealed bytes are taken from a replica only (its version id authorized by s3:ReplicateObject)
        def forge(request: Any, **_: Any) -> None:
            request.headers["x-stowage-replica-sealed"] = "e30="

        sb.meta.events.register("before-sign.s3.PutObject", forge)
        with pytest.raises(ClientError) as err:
            sb.put_object(Bucket="dst", Key="forged", Body=b"x")
        assert err.value.response["Error"]["Code"] == "AccessDenied"
        sb.meta.events.register("before-sign.s3.UploadPart", forge)
        up = sb.create_multipart_upload(Bucket="dst", Key="forged")["UploadId"]
        with pytest.raises(ClientError) as err:
            sb.upload_part(Bucket="dst", Key="forged", UploadId=up, PartNumber=1, Body=b"x")
        assert err.value.response["Error"]["Code"] == "AccessDenied"

        # over the threshold, and a multipart object holding a range of another (a ranged part
        # copy): sealed parts, one per segment, streamed from the shards
        big = os.urandom(6 << 20)
        vids = {"big": sa.put_object(Bucket="src", Key="big", Body=big, **args)["VersionId"]}
        up = sa.create_multipart_upload(Bucket="src", Key="mp", **args)["UploadId"]
        e1 = sa.upload_part_copy(Bucket="src", Key="mp", UploadId=up, PartNumber=1,
                                 CopySourceRange="bytes=4096-5246975",
                                 CopySource={"Bucket": "src", "Key": "big", "VersionId": vids["big"]},
                                 CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=key_c,
                                 **args)["CopyPartResult"]["ETag"]
        e2 = sa.upload_part(Bucket="src", Key="mp", UploadId=up, PartNumber=2, Body=b"tail" * 100, **args)["ETag"]
        vids["mp"] = sa.complete_multipart_upload(Bucket="src", Key="mp", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})["VersionId"]
        for key, vid in vids.items():
            poll(lambda k=key, i=vid: sa.head_object(Bucket="src", Key=k, VersionId=i, **args)  # type: ignore[misc]
                 .get("ReplicationStatus") == "COMPLETED", 60, lambda: a.cli("replication", "status").stdout)
            got = sb.get_object(Bucket="dst", Key=key, VersionId=vid, **args)
            want = big if key == "big" else big[4096:5246976] + b"tail" * 100
            assert got["Body"].read() == want and got["ReplicationStatus"] == "REPLICA"
            assert got["ETag"] == sa.head_object(Bucket="src", Key=key, VersionId=vid, **args)["ETag"]
        # the sealed uploads were completed: only the forged one is left
        assert [u["Key"] for u in sb.list_multipart_uploads(Bucket="dst").get("Uploads", [])] == ["forged"]

        # to any other S3 service: FAILED with the reason, and an OperationFailedReplication event
        poll(lambda: sa.head_object(Bucket="src2", Key="ssec", VersionId=vid2, **args).get("ReplicationStatus")
             == "FAILED")
        st = json.loads(a.cli("replication", "status", "--json").stdout)["targets"]
        assert st["anys3"]["failed"] == 1 and "SSE-C" in st["anys3"]["last_error"]
        assert st["boxb"]["failed"] == 0 and st["boxb"]["completed"] == 3

        def failure_events() -> list[str]:
            lines = [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []
            return [r["eventName"] for m in lines for r in m.get("Records", [])]

        poll(lambda: failure_events() == ["Replication:OperationFailedReplication"])
    finally:
        a.stop()
        b.stop()


def test_target_down_then_back_and_kill_of_the_source(pair: tuple[DaemonProc, DaemonProc]) -> None:
    a, b = pair
    sa, sb = a.s3(), b.s3()
    versioned(sa, "src")
    versioned(sb, "dst")
    add_target(a, "boxb", b)
    sa.put_bucket_replication(Bucket="src", ReplicationConfiguration={"Role": "", "Rules": [rule("boxb", "dst")]})
    b.kill()
    vids = {f"k{i}": sa.put_object(Bucket="src", Key=f"k{i}", Body=f"v{i}".encode())["VersionId"] for i in range(40)}
    assert status_of(sa, "src", "k0", vids["k0"]) == "PENDING"
    st = json.loads(a.cli("replication", "status", "--json").stdout)["targets"]["boxb"]
    assert st["queued"] == 40 and st["retrying"]
    a.kill()  # -9 with the whole backlog queued
    b.extra_args += ["--listen", b.endpoint.removeprefix("http://")]  # back where the target points
    b.start()
    a.start()
    sa = a.s3()
    for key, vid in vids.items():
        wait_status(sa, "src", key, vid, "COMPLETED")
    sb = b.s3()
    assert sorted(o["Key"] for o in sb.list_objects_v2(Bucket="dst")["Contents"]) == sorted(vids)


def test_active_active_without_loops(pair: tuple[DaemonProc, DaemonProc]) -> None:
    a, b = pair
    sa, sb = a.s3(), b.s3()
    versioned(sa, "shared")
    versioned(sb, "shared")
    add_target(a, "peer", b)
    add_target(b, "peer", a)
    for s3 in (sa, sb):
        s3.put_bucket_replication(Bucket="shared", ReplicationConfiguration={
            "Role": "", "Rules": [rule("peer", "shared")]})
    va = sa.put_object(Bucket="shared", Key="from-a", Body=b"A")["VersionId"]
    vb = sb.put_object(Bucket="shared", Key="from-b", Body=b"B")["VersionId"]
    wait_status(sa, "shared", "from-a", va, "COMPLETED")
    wait_status(sb, "shared", "from-b", vb, "COMPLETED")
    for s3 in (sa, sb):
        listing = s3.list_object_versions(Bucket="shared")
        assert sorted((v["Key"], v["VersionId"]) for v in listing["Versions"]) == \
            sorted([("from-a", va), ("from-b", vb)])
    assert status_of(sb, "shared", "from-a", va) == "REPLICA"
    assert status_of(sa, "shared", "from-b", vb) == "REPLICA"
    # new tags of a replicated version follow it (s3:ReplicateTags), and do not come back either
    sa.put_object_tagging(Bucket="shared", Key="from-a", VersionId=va, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    poll(lambda: sb.get_object_tagging(Bucket="shared", Key="from-a", VersionId=va)["TagSet"] ==
         [{"Key": "k", "Value": "v"}])
    def peer(d: DaemonProc) -> dict[str, Any]:
        return dict(json.loads(d.cli("replication", "status", "--json").stdout)["targets"]["peer"])

    poll(lambda: peer(a)["queued"] == peer(b)["queued"] == 0)
    assert (peer(a)["completed"], peer(b)["completed"]) == (2, 1)  # nothing went back


def test_resync_of_existing_objects(pair: tuple[DaemonProc, DaemonProc]) -> None:
    a, b = pair
    sa, sb = a.s3(), b.s3()
    versioned(sa, "old")
    versioned(sb, "copy")
    keys = [f"o{i:04d}" for i in range(1000)]
    for k in keys:
        sa.put_object(Bucket="old", Key=k, Body=k.encode())
    add_target(a, "boxb", b)
    sa.put_bucket_replication(Bucket="old", ReplicationConfiguration={
        "Role": "", "Rules": [rule("boxb", "copy", existing=True)]})
    r = json.loads(a.cli("replication", "resync", "old", "--json").stdout)
    assert r == {"bucket": "old", "scanned": 1000, "queued": 1000, "done": True}

    def all_there() -> bool:
        pages = sb.get_paginator("list_objects_v2").paginate(Bucket="copy")
        return sum(len(p.get("Contents", [])) for p in pages) == 1000

    poll(all_there, 240, lambda: a.cli("replication", "status", "--json").stdout + b.log_tail())
    again = json.loads(a.cli("replication", "resync", "old", "--json").stdout)
    assert again["queued"] == 0  # everything COMPLETED: nothing queued twice


def test_versioning_of_a_replicating_bucket_cannot_be_suspended(daemon_factory: Any) -> None:
    a = daemon_factory(["--no-mount"], name="a")
    s3 = a.s3()
    versioned(s3, "src")
    versioned(s3, "dst")
    add_target(a, "self", a)
    s3.put_bucket_replication(Bucket="src", ReplicationConfiguration={"Role": "", "Rules": [rule("self", "dst")]})
    with pytest.raises(ClientError) as err:
        s3.put_bucket_versioning(Bucket="src", VersioningConfiguration={"Status": "Suspended"})
    assert err.value.response["Error"]["Code"] == "InvalidBucketState"
    assert "replication configuration" in err.value.response["Error"]["Message"]
    s3.put_bucket_versioning(Bucket="src", VersioningConfiguration={"Status": "Enabled"})  # no change: allowed
    s3.put_bucket_versioning(Bucket="dst", VersioningConfiguration={"Status": "Suspended"})  # not a source
    s3.delete_bucket_replication(Bucket="src")
    s3.put_bucket_versioning(Bucket="src", VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket="src")["Status"] == "Suspended"


def _user(d: DaemonProc, name: str, actions: list[str], bucket: str) -> tuple[str, str]:
    iam = boto3.client("iam", endpoint_url=d.endpoint, aws_access_key_id=d.access_key,
                       aws_secret_access_key=d.secret_key, region_name="us-east-1")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": [f"arn:aws:s3:::{bucket}/*"]},
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
             "Resource": [f"arn:aws:s3:::{bucket}"]}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _with_replica_header(s3: Any, vid: str) -> Any:
    def add(request: Any, **_: Any) -> None:
        request.headers["x-stowage-replica-version-id"] = vid

    s3.meta.events.register("before-sign.s3", add)
    return s3


def test_only_a_replicating_principal_sets_version_ids(pair: tuple[DaemonProc, DaemonProc]) -> None:
    a, b = pair
    sa, sb = a.s3(), b.s3()
    versioned(sb, "dst")
    plain = ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject"]
    writer = _user(b, "writer", plain, "dst")
    replicator = _user(b, "replicator", [*plain, "s3:ReplicateObject", "s3:ReplicateDelete"], "dst")

    def as_user(creds: tuple[str, str], vid: str) -> Any:
        return _with_replica_header(boto3.client(
            "s3", endpoint_url=b.endpoint, aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
            region_name="us-east-1", config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1})),
            vid)

    with pytest.raises(ClientError) as err:
        as_user(writer, "ChosenByTheWriter".ljust(32, "x")).put_object(Bucket="dst", Key="k", Body=b"x")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as err:
        as_user(writer, "ChosenByTheWriter".ljust(32, "x")).delete_object(Bucket="dst", Key="k")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert "Versions" not in sb.list_object_versions(Bucket="dst")
    with pytest.raises(ClientError) as err:  # not a version id
        as_user(replicator, "bad/id").put_object(Bucket="dst", Key="k", Body=b"x")
    assert err.value.response["Error"]["Code"] == "InvalidArgument"

    # the least-privileged replicator is what a source box replicates with
    versioned(sa, "src")
    a.cli("replication", "target", "add", "boxb", "--endpoint", b.endpoint, "--access-key", replicator[0],
          "--secret-key", replicator[1])
    sa.put_bucket_replication(Bucket="src", ReplicationConfiguration={"Role": "", "Rules": [rule("boxb", "dst")]})
    vid = sa.put_object(Bucket="src", Key="k", Body=b"from a")["VersionId"]
    wait_status(sa, "src", "k", vid, "COMPLETED")
    assert status_of(sb, "dst", "k", vid) == "REPLICA"
    marker = sa.delete_object(Bucket="src", Key="k")["VersionId"]
    poll(lambda: [m["VersionId"] for m in sb.list_object_versions(Bucket="dst").get("DeleteMarkers", [])] == [marker])

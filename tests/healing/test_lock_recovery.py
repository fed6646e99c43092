"""Object lock survives a daemon restart and `stowage recover-metadata`: bucket configurations,
retention and legal holds come back (from the snapshot, and from the shard headers for what was
written after it, new lock buckets included), and recovery never drops a version object lock
still protects, even when its data is gone with its disks."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import Shard, all_shards

FAR = datetime(2099, 1, 1, tzinfo=UTC)
GOV30 = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}}


def _code(call: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call(**kw)
    return str(exc.value.response["Error"]["Code"])


def _segment_shards(data_dir: Path, bucket: str, key: str) -> list[Shard]:
    for shards in all_shards(data_dir).values():
        ident = shards[0].header.identity
        if ident.get("bucket") == bucket and ident.get("key") == key:
            return shards
    raise AssertionError(f"no shards for {bucket}/{key}")


def _check_locked(s3: Any, bucket: str, key: str, vid: str, mode: str, *, hold: bool = False) -> None:
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=vid)
    assert head.get("ObjectLockMode", "") == mode, (bucket, key)
    assert (head.get("ObjectLockLegalHoldStatus") == "ON") == hold
    assert _code(s3.delete_object, Bucket=bucket, Key=key, VersionId=vid, BypassGovernanceRetention=mode != "GOVERNANCE"
                 ) == "AccessDenied"


def test_object_lock_survives_restart_and_metadata_recovery(daemon: Any) -> None:
    s3 = daemon.s3()
    s3.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket="vault", ObjectLockConfiguration=GOV30)
    vids = {"default": s3.put_object(Bucket="vault", Key="default", Body=b"d")["VersionId"],
            "comp": s3.put_object(Bucket="vault", Key="comp", Body=b"c", ObjectLockMode="COMPLIANCE",
                                  ObjectLockRetainUntilDate=FAR)["VersionId"],
            "hold": s3.put_object(Bucket="vault", Key="hold", Body=b"h")["VersionId"],
            "lost": s3.put_object(Bucket="vault", Key="lost", Body=b"l" * 5000, ObjectLockMode="COMPLIANCE",
                                  ObjectLockRetainUntilDate=FAR)["VersionId"]}
    s3.put_object_legal_hold(Bucket="vault", Key="hold", LegalHold={"Status": "ON"})
    s3.put_object_retention(Bucket="vault", Key="hold", Retention={}, BypassGovernanceRetention=True)
    s3.create_bucket(Bucket="plain")
    s3.put_object(Bucket="plain", Key="gone", Body=b"g" * 5000)

    daemon.restart()
    s3 = daemon.s3()
    _check_locked(s3, "vault", "default", vids["default"], "GOVERNANCE")
    _check_locked(s3, "vault", "comp", vids["comp"], "COMPLIANCE")
    _check_locked(s3, "vault", "hold", vids["hold"], "", hold=True)

    daemon.cli("snapshot-metadata")
    # after the snapshot: a new lock bucket, and locked versions known only to the shard headers
    s3.create_bucket(Bucket="late", ObjectLockEnabledForBucket=True)
    vids["late"] = s3.put_object(Bucket="late", Key="x", Body=b"late", ObjectLockMode="COMPLIANCE",
                                 ObjectLockRetainUntilDate=FAR, ObjectLockLegalHoldStatus="ON")["VersionId"]
    vids["after"] = s3.put_object(Bucket="vault", Key="after", Body=b"a")["VersionId"]  # the default retention

    daemon.stop()
    # the data of a locked version, and of an unlocked one, gone with their disks
    for shard in _segment_shards(daemon.data_dir, "vault", "lost") + _segment_shards(daemon.data_dir, "plain", "gone"):
        shard.remove()
    shutil.rmtree(daemon.data_dir / "meta")
    report = json.loads(daemon.cli("recover-metadata", "--json").stdout)
    assert "plain/gone (null)" in report["versions_dropped"]
    assert not [v for v in report["versions_dropped"] if v.startswith("vault/")]
    assert report["segments_unreadable"]
    daemon.start()
    s3 = daemon.s3()

    assert s3.get_object_lock_configuration(Bucket="vault")["ObjectLockConfiguration"] == GOV30
    late = s3.get_object_lock_configuration(Bucket="late")["ObjectLockConfiguration"]
    assert late == {"ObjectLockEnabled": "Enabled"}
    for bucket in ("vault", "late"):
        assert _code(s3.put_bucket_versioning, Bucket=bucket,
                     VersioningConfiguration={"Status": "Suspended"}) == "InvalidBucketState"
    _check_locked(s3, "vault", "default", vids["default"], "GOVERNANCE")
    _check_locked(s3, "vault", "comp", vids["comp"], "COMPLIANCE")
    _check_locked(s3, "vault", "hold", vids["hold"], "", hold=True)
    _check_locked(s3, "late", "x", vids["late"], "COMPLIANCE", hold=True)
    _check_locked(s3, "vault", "after", vids["after"], "GOVERNANCE")
    assert s3.get_object(Bucket="late", Key="x")["Body"].read() == b"late"
    assert s3.get_object(Bucket="vault", Key="comp")["Body"].read() == b"c"
    # the locked version whose data is lost is still there (unreadable), and still protected
    _check_locked(s3, "vault", "lost", vids["lost"], "COMPLIANCE")
    assert _code(s3.get_object, Bucket="vault", Key="lost") in ("InternalError", "ServiceUnavailable")
    assert "Contents" not in s3.list_objects_v2(Bucket="plain")

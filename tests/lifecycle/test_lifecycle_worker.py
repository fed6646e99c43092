"""Lifecycle through S3 on the real daemon, with a lifecycle day of 0.2 s: configuration,
x-amz-expiration, expiration by days and by date in unversioned, versioned and suspended
buckets, noncurrent expiration with NewerNoncurrentVersions, expired delete markers,
transitions (current and noncurrent) checked on the shard files, multipart aborts, tag and size
filters, and object lock winning over expiration."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import DaemonProc, create_test_bucket

from .conftest import lifecycle_status, shard_geometries, wait_for

BIG = os.urandom(512 * 1024)  # above the 128 KiB transitions leave alone


def rules(s3: Any, bucket: str, *rule_list: dict[str, Any]) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rule_list)})


def keys_of(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def versions_of(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    r = s3.list_object_versions(Bucket=bucket, Prefix=key)
    out = [dict(v, marker=False) for v in r.get("Versions", []) if v["Key"] == key]
    out += [dict(v, marker=True) for v in r.get("DeleteMarkers", []) if v["Key"] == key]
    return sorted(out, key=lambda v: v["LastModified"], reverse=True)


def test_configuration_round_trip_and_expiration_header(lcd: DaemonProc, request: pytest.FixtureRequest) -> None:
    s3 = lcd.s3()
    b = create_test_bucket(s3, request, "lc")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert e.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
    rule = {"ID": "far future", "Status": "Enabled", "Filter": {"Prefix": "docs/"}, "Expiration": {"Days": 36500},
            "Transitions": [{"Days": 3650, "StorageClass": "GLACIER"}],
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 2},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}
    rules(s3, b, rule)
    assert s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"] == [rule]
    s3.put_object(Bucket=b, Key="docs/a", Body=b"x")
    s3.put_object(Bucket=b, Key="other", Body=b"x")
    h = s3.head_object(Bucket=b, Key="docs/a")
    assert h["Expiration"].startswith('expiry-date="') and h["Expiration"].endswith('rule-id="far%20future"')
    assert "Expiration" in s3.get_object(Bucket=b, Key="docs/a")
    assert "Expiration" not in s3.head_object(Bucket=b, Key="other")
    with pytest.raises(ClientError) as e:
        rules(s3, b, {"ID": "x", "Status": "Enabled", "Filter": {},
                      "Transitions": [{"Days": 1, "StorageClass": "NOPE"}]})
    assert e.value.response["Error"]["Code"] == "InvalidStorageClass"
    s3.delete_bucket_lifecycle(Bucket=b)
    with pytest.raises(ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert "Expiration" not in s3.head_object(Bucket=b, Key="docs/a")


def test_expiration_by_days_and_date_with_filters(lcd: DaemonProc, request: pytest.FixtureRequest) -> None:
    s3 = lcd.s3()
    b = create_test_bucket(s3, request, "lc")
    for k in ("tmp/a", "tmp/b", "keep/a"):
        s3.put_object(Bucket=b, Key=k, Body=b"x")
    s3.put_object(Bucket=b, Key="tagged", Body=b"x", Tagging="state=old")
    s3.put_object(Bucket=b, Key="tagged-new", Body=b"x", Tagging="state=new")
    s3.put_object(Bucket=b, Key="large", Body=BIG)
    s3.put_object(Bucket=b, Key="dated/x", Body=b"x")
    rules(s3, b,
          {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 2}},
          {"ID": "tag", "Status": "Enabled", "Filter": {"Tag": {"Key": "state", "Value": "old"}},
           "Expiration": {"Days": 2}},
          {"ID": "size", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 100 * 1024},
           "Expiration": {"Days": 2}},
          {"ID": "date", "Status": "Enabled", "Filter": {"Prefix": "dated/"},
           "Expiration": {"Date": datetime(2020, 1, 1, tzinfo=UTC)}},
          {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"}, "Expiration": {"Days": 1}})
    wait_for(lambda: sorted(keys_of(s3, b)) == ["keep/a", "tagged-new"], "the expirations")
    assert versions_of(s3, b, "tmp/a") == []  # unversioned: removed, no delete marker


def test_versioned_expiration_noncurrent_and_markers(lcd: DaemonProc, request: pytest.FixtureRequest) -> None:
    s3 = lcd.s3()
    b = create_test_bucket(s3, request, "lc")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    for i in range(4):
        s3.put_object(Bucket=b, Key="nc/k", Body=f"v{i}".encode())
    s3.put_object(Bucket=b, Key="exp/k", Body=b"x")
    s3.put_object(Bucket=b, Key="lonely", Body=b"x")
    vid = s3.head_object(Bucket=b, Key="lonely")["VersionId"]
    s3.delete_object(Bucket=b, Key="lonely")
    s3.delete_object(Bucket=b, Key="lonely", VersionId=vid)  # only a delete marker is left
    rules(s3, b,
          {"ID": "noncurrent", "Status": "Enabled", "Filter": {"Prefix": "nc/"},
           "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
          {"ID": "current", "Status": "Enabled", "Filter": {"Prefix": "exp/"}, "Expiration": {"Days": 1}},
          {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "lonely"},
           "Expiration": {"ExpiredObjectDeleteMarker": True}})
    # the current version and the newest noncurrent one stay; the two older ones go
    wait_for(lambda: len(versions_of(s3, b, "nc/k")) == 2, "noncurrent expiration")
    kept = versions_of(s3, b, "nc/k")
    bodies = [s3.get_object(Bucket=b, Key="nc/k", VersionId=v["VersionId"])["Body"].read() for v in kept]
    assert bodies == [b"v3", b"v2"]
    # versioned: the expired current version is hidden behind a delete marker, not removed
    wait_for(lambda: [v["marker"] for v in versions_of(s3, b, "exp/k")] == [True, False], "a delete marker")
    wait_for(lambda: versions_of(s3, b, "lonely") == [], "the expired delete marker's removal")
    assert lifecycle_status(lcd)["markers_removed"] >= 1


def test_suspended_bucket_expiration_writes_a_null_marker(lcd: DaemonProc, request: pytest.FixtureRequest) -> None:
    s3 = lcd.s3()
    b = create_test_bucket(s3, request, "lc")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=b, Key="k", Body=b"old")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=b, Key="k", Body=b"null version")
    rules(s3, b, {"ID": "e", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}})
    wait_for(lambda: (vs := versions_of(s3, b, "k")) and vs[0]["marker"] and vs[0]["VersionId"] == "null",
             "the null delete marker")
    vs = versions_of(s3, b, "k")
    assert [v["marker"] for v in vs] == [True, False] and vs[1]["VersionId"] != "null"  # the null version went


def test_transitions_re_encode_keeping_identity(lcd: DaemonProc, request: pytest.FixtureRequest) -> None:
    s3 = lcd.s3()
    b = create_test_bucket(s3, request, "lc")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=b, Key="cold", Body=BIG, ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=b, Key="small", Body=b"x" * 1000)  # under 128 KiB: left alone
    s3.put_object(Bucket=b, Key="nc", Body=BIG)
    s3.put_object(Bucket=b, Key="nc", Body=BIG[::-1])
    before = s3.head_object(Bucket=b, Key="cold", ChecksumMode="ENABLED")
    old_nc = versions_of(s3, b, "nc")[1]
    rules(s3, b,
          {"ID": "archive", "Status": "Enabled", "Filter": {"Prefix": "cold"},
           "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]},
          {"ID": "small", "Status": "Enabled", "Filter": {"Prefix": "small"},
           "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]},
          {"ID": "noncurrent", "Status": "Enabled", "Filter": {"Prefix": "nc"},
           "NoncurrentVersionTransitions": [{"NoncurrentDays": 1, "StorageClass": "DEEP_ARCHIVE"}]})
    wait_for(lambda: s3.head_object(Bucket=b, Key="cold").get("StorageClass") == "GLACIER_IR", "the transition")
    after = s3.head_object(Bucket=b, Key="cold", ChecksumMode="ENABLED")
    for field in ("ETag", "VersionId", "LastModified", "ChecksumSHA256", "ContentLength"):
        assert after[field] == before[field]
    assert s3.get_object(Bucket=b, Key="cold")["Body"].read() == BIG
    wait_for(lambda: s3.head_object(Bucket=b, Key="nc", VersionId=old_nc["VersionId"]).get("StorageClass")
             == "DEEP_ARCHIVE", "the noncurrent transition")
    assert "StorageClass" not in s3.head_object(Bucket=b, Key="nc")  # the current one stays STANDARD
    assert "StorageClass" not in s3.head_object(Bucket=b, Key="small")
    # on disk: the dense and densest geometries (both 5+1 on six disks; STANDARD is 4+2)
    moved = [g for g in shard_geometries(lcd).values() if "transcode_of" in g[2]]
    assert len(moved) >= 2 and {(k, m) for k, m, _ in moved} == {(5, 1)}


def test_multipart_abort(lcd: DaemonProc, request: pytest.FixtureRequest) -> None:
    s3 = lcd.s3()
    b = create_test_bucket(s3, request, "lc")
    up = s3.create_multipart_upload(Bucket=b, Key="part/k")
    s3.upload_part(Bucket=b, Key="part/k", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 1000)
    other = s3.create_multipart_upload(Bucket=b, Key="keep/k")
    rules(s3, b, {"ID": "abort", "Status": "Enabled", "Filter": {"Prefix": "part/"},
                  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}})
    wait_for(lambda: [u["Key"] for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", [])] == ["keep/k"],
             "the abort")
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=b, Key="part/k", UploadId=up["UploadId"])
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"
    s3.abort_multipart_upload(Bucket=b, Key="keep/k", UploadId=other["UploadId"])


def test_object_lock_wins_over_expiration(lcd: DaemonProc, request: pytest.FixtureRequest) -> None:
    s3 = lcd.s3()
    name = f"lock-{request.node.name[:20].lower().replace('_', '-')}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    until = datetime.now(UTC) + timedelta(days=1)
    s3.put_object(Bucket=name, Key="k", Body=b"locked", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    s3.put_object(Bucket=name, Key="k", Body=b"held", ObjectLockLegalHoldStatus="ON")
    s3.put_object(Bucket=name, Key="k", Body=b"plain")
    s3.put_object(Bucket=name, Key="k", Body=b"current")
    locked_before = lifecycle_status(lcd)["locked"]
    rules(s3, name, {"ID": "nc", "Status": "Enabled", "Filter": {},
                     "NoncurrentVersionExpiration": {"NoncurrentDays": 1}})
    wait_for(lambda: len(versions_of(s3, name, "k")) == 3, "the unlocked noncurrent version's expiration")
    wait_for(lambda: lifecycle_status(lcd)["locked"] >= locked_before + 2, "the refusals to be counted")
    bodies = sorted(s3.get_object(Bucket=name, Key="k", VersionId=v["VersionId"])["Body"].read()
                    for v in versions_of(s3, name, "k"))
    assert bodies == [b"current", b"held", b"locked"]

"""Intelligent tiering with a lifecycle day of 0.2 s: an object not read for 30 days moves to
the infrequent tier (STANDARD_IA's 5+1 on six disks, seen on the shard files), a read brings it
back (4+2), small objects stay, and the class, ETag and version id never change. The archive
tiers (lifecycle day 0.02 s): only for objects an Intelligent-Tiering configuration selects, out
of them only through RestoreObject, with AWS's validation of the configurations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import DaemonProc

from .conftest import lifecycle_config, lifecycle_status, shard_geometries, start, wait_for

BODY = os.urandom(400 * 1024)


def test_idle_object_moves_down_and_a_read_brings_it_back(lcd: DaemonProc) -> None:
    s3: Any = lcd.s3()
    s3.create_bucket(Bucket="tiers")
    s3.put_object(Bucket="tiers", Key="idle", Body=BODY, StorageClass="INTELLIGENT_TIERING")
    s3.put_object(Bucket="tiers", Key="tiny", Body=b"x" * 1000, StorageClass="INTELLIGENT_TIERING")
    before = s3.head_object(Bucket="tiers", Key="idle")
    start = lifecycle_status(lcd)["tiered"]
    wait_for(lambda: lifecycle_status(lcd)["tiered"] >= start + 1, "the move to the infrequent tier")
    dense = {(k, m) for k, m, ident in shard_geometries(lcd).values() if "transcode_of" in ident}
    assert (5, 1) in dense
    after = s3.head_object(Bucket="tiers", Key="idle")
    for field in ("ETag", "VersionId", "LastModified", "StorageClass"):
        assert after.get(field) == before.get(field)
    assert after["StorageClass"] == "INTELLIGENT_TIERING"
    assert s3.get_object(Bucket="tiers", Key="idle")["Body"].read() == BODY  # the read that brings it back
    wait_for(lambda: lifecycle_status(lcd)["tiered"] >= start + 2, "the move back to the frequent tier")
    geos = {(k, m) for k, m, ident in shard_geometries(lcd).values()
            if ident.get("transcode_of") and (k, m) == (4, 2)}
    assert geos == {(4, 2)}
    assert s3.get_object(Bucket="tiers", Key="tiny")["Body"].read() == b"x" * 1000


FAST_DAY = 0.02  # 90 lifecycle days in 1.8 s: the archive tiers' minimum periods


def _code(exc: Any) -> tuple[int, str]:
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def _config(config_id: str, prefix: str, *tierings: tuple[str, int], status: str = "Enabled") -> dict[str, Any]:
    return {"Id": config_id, "Filter": {"Prefix": prefix}, "Status": status,
            "Tierings": [{"AccessTier": t, "Days": d} for t, d in tierings]}


def test_archive_tiers_only_when_configured_and_out_only_by_restore(tmp_path: Path) -> None:
    d = start(tmp_path, lifecycle_config(tmp_path / "lc.toml", day=FAST_DAY))
    try:
        s3: Any = d.s3()
        s3.create_bucket(Bucket="arch")
        put = s3.put_bucket_intelligent_tiering_configuration
        # the configuration API, validated as AWS does
        for bad, code in [(_config("a", "", ("ARCHIVE_ACCESS", 30)), (400, "InvalidArgument")),
                          (_config("a", "", ("DEEP_ARCHIVE_ACCESS", 100)), (400, "InvalidArgument")),
                          (_config("a", "", ("ARCHIVE_ACCESS", 200), ("DEEP_ARCHIVE_ACCESS", 190)),
                           (400, "InvalidArgument")),
                          (_config("a", "", ("ARCHIVE_ACCESS", 90), ("ARCHIVE_ACCESS", 100)), (400, "InvalidArgument")),
                          (_config("other", "", ("ARCHIVE_ACCESS", 90)), (400, "InvalidArgument")),
                          (_config("a", "", ("GLACIER", 90)), (400, "MalformedXML")),
                          (_config("a", "", ("ARCHIVE_ACCESS", 90), status="On"), (400, "MalformedXML")),
                          ({"Id": "a", "Status": "Enabled", "Tierings": []}, (400, "MalformedXML"))]:
            with pytest.raises(ClientError) as e:
                put(Bucket="arch", Id="a", IntelligentTieringConfiguration=bad)
            assert _code(e) == code, bad
        with pytest.raises(ClientError) as e:
            s3.get_bucket_intelligent_tiering_configuration(Bucket="arch", Id="a")
        assert _code(e) == (404, "NoSuchConfiguration")
        cold = _config("cold", "cold/", ("ARCHIVE_ACCESS", 90))
        deep = _config("deep", "deep/", ("ARCHIVE_ACCESS", 90), ("DEEP_ARCHIVE_ACCESS", 180))
        put(Bucket="arch", Id="cold", IntelligentTieringConfiguration=cold)
        put(Bucket="arch", Id="deep", IntelligentTieringConfiguration=deep)
        got = s3.get_bucket_intelligent_tiering_configuration(Bucket="arch", Id="deep")
        assert got["IntelligentTieringConfiguration"] == deep
        listed = s3.list_bucket_intelligent_tiering_configurations(Bucket="arch")
        assert listed["IntelligentTieringConfigurationList"] == [cold, deep] and not listed["IsTruncated"]

        etag = s3.put_object(Bucket="arch", Key="cold/a", Body=BODY, StorageClass="INTELLIGENT_TIERING")["ETag"]
        s3.put_object(Bucket="arch", Key="cold/tiny", Body=b"t" * 1000, StorageClass="INTELLIGENT_TIERING")
        s3.put_object(Bucket="arch", Key="warm/b", Body=BODY, StorageClass="INTELLIGENT_TIERING")
        s3.put_object(Bucket="arch", Key="deep/c", Body=BODY, StorageClass="INTELLIGENT_TIERING")

        def status(key: str) -> str | None:
            got: str | None = s3.head_object(Bucket="arch", Key=key).get("ArchiveStatus")
            return got

        wait_for(lambda: status("cold/a") == "ARCHIVE_ACCESS", "the move to the Archive Access tier")
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="arch", Key="cold/a")
        assert _code(e) == (403, "InvalidObjectState")
        wait_for(lambda: status("deep/c") == "DEEP_ARCHIVE_ACCESS", "the move to the Deep Archive Access tier")
        # not selected by a configuration, or under 128 KiB: never archived
        assert status("warm/b") is None and status("cold/tiny") is None
        assert s3.get_object(Bucket="arch", Key="cold/tiny")["Body"].read() == b"t" * 1000

        s3.delete_bucket_intelligent_tiering_configuration(Bucket="arch", Id="cold")
        with pytest.raises(ClientError) as e:
            s3.delete_bucket_intelligent_tiering_configuration(Bucket="arch", Id="cold")
        assert _code(e) == (404, "NoSuchConfiguration")
        assert status("cold/a") == "ARCHIVE_ACCESS"  # leaving the tier takes a restore
        r = s3.restore_object(Bucket="arch", Key="cold/a", RestoreRequest={})
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 202
        wait_for(lambda: status("cold/a") is None, "the restore to the frequent tier")
        head = s3.head_object(Bucket="arch", Key="cold/a")
        assert head["StorageClass"] == "INTELLIGENT_TIERING" and head["ETag"] == etag and "Restore" not in head
        assert s3.get_object(Bucket="arch", Key="cold/a")["Body"].read() == BODY
        with pytest.raises(ClientError) as e:  # nothing to restore any more
            s3.restore_object(Bucket="arch", Key="cold/a", RestoreRequest={})
        assert _code(e) == (403, "InvalidObjectState")
    finally:
        d.stop()

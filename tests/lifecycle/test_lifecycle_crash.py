"""The lifecycle worker against crashes: kill -9 in the middle of a transition batch loses and
duplicates nothing, and the lifecycle state (rules, cursor, re-encoded segments with their
cipher ids, restore records, Intelligent-Tiering configurations) comes back from
`stowage recover-metadata`, with usage counters recounted (a version it must drop is no longer
counted) and quotas kept."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import DaemonProc
from tests.healing.helpers import all_shards

from .conftest import lifecycle_config, lifecycle_status, shard_geometries, start, wait_for

N = 30
SIZE = 256 * 1024
MIB = 1 << 20
FAR = datetime(2099, 1, 1, tzinfo=UTC)


def _classes(s3: Any, bucket: str) -> dict[str, str]:
    return {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def _live_segments(d: DaemonProc) -> dict[str, tuple[int, int, dict[str, Any]]]:
    return {s: g for s, g in shard_geometries(d).items() if not g[2].get("meta_snapshot")}


def test_kill_9_mid_transition_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # slow transitions (1 MiB/s): the batch is still running when the daemon is killed
    config = lifecycle_config(tmp_path / "lc.toml", transition_rate=1 << 20)
    d = start(tmp_path, config)
    try:
        s3 = d.s3()
        s3.create_bucket(Bucket="crash")
        bodies = {f"k{i:03d}": os.urandom(SIZE) for i in range(N)}
        etags = {k: s3.put_object(Bucket="crash", Key=k, Body=v)["ETag"] for k, v in bodies.items()}
        rule = {"ID": "cold", "Status": "Enabled", "Filter": {},
                "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]}
        s3.put_bucket_lifecycle_configuration(Bucket="crash", LifecycleConfiguration={"Rules": [rule]})
        wait_for(lambda: lifecycle_status(d)["transitioned"] >= 3, "the first transitions")
        d.kill()  # SIGKILL, mid-batch
        d.start()
        s3 = d.s3()
        assert set(_classes(s3, "crash")) == set(bodies)  # nothing lost
        wait_for(lambda: set(_classes(s3, "crash").values()) == {"GLACIER_IR"}, "every transition", timeout=120)
        for k, body in bodies.items():
            got = s3.get_object(Bucket="crash", Key=k)
            assert got["ETag"] == etags[k] and hashlib.md5(got["Body"].read()).digest() == hashlib.md5(body).digest()
        # nothing duplicated: once GC ran, one segment per object, every one re-encoded 5+1
        wait_for(lambda: len(_live_segments(d)) == N, "the old segments' collection")
        assert {(k, m) for k, m, _ in _live_segments(d).values()} == {(5, 1)}
        assert not any(p for p in (d.data_dir / "disks").glob("*/tmp/*"))
    finally:
        d.stop()


def _usage(d: DaemonProc, bucket: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(d.cli("usage", "--json", "--bucket", bucket).stdout)["buckets"][0]
    return doc


def test_lifecycle_state_survives_recover_metadata(tmp_path: Path) -> None:
    d = start(tmp_path, lifecycle_config(tmp_path / "lc.toml"))
    try:
        s3 = d.s3()
        s3.create_bucket(Bucket="kept")
        body = os.urandom(SIZE)
        s3.put_object(Bucket="kept", Key="cold", Body=body)  # encrypted (SSE-S3 by default)
        rule = {"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "cold"},
                "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]}
        s3.put_bucket_lifecycle_configuration(Bucket="kept", LifecycleConfiguration={"Rules": [rule]})
        wait_for(lambda: s3.head_object(Bucket="kept", Key="cold").get("StorageClass") == "GLACIER_IR",
                 "the transition")
        wait_for(lambda: lifecycle_status(d)["last_complete_ns"], "a finished pass")
        before = lifecycle_status(d)
        s3.put_object(Bucket="kept", Key="archived", Body=body, StorageClass="GLACIER")
        s3.restore_object(Bucket="kept", Key="archived", RestoreRequest={"Days": 1000})
        wait_for(lambda: 'ongoing-request="false"' in s3.head_object(Bucket="kept", Key="archived").get("Restore", ""),
                 "the restore")
        restored = s3.head_object(Bucket="kept", Key="archived")["Restore"]
        s3.create_bucket(Bucket="counted")
        s3.put_object(Bucket="counted", Key="a", Body=b"a" * 1000)
        s3.put_object(Bucket="counted", Key="lost", Body=os.urandom(300_000), StorageClass="STANDARD_IA")
        d.cli("quota", "set", "--bucket", "counted", "--bytes", "10M", "--objects", "5")
        kept_usage = _usage(d, "kept")
        tiering = {"Id": "arc", "Filter": {"Prefix": "old/"}, "Status": "Enabled",
                   "Tierings": [{"AccessTier": "DEEP_ARCHIVE_ACCESS", "Days": 180}]}
        s3.put_bucket_intelligent_tiering_configuration(Bucket="kept", Id="arc",
                                                        IntelligentTieringConfiguration=tiering)
        assert _usage(d, "counted")["objects"] == 2
        d.stop()
        for shards in all_shards(d.data_dir).values():  # its data gone with more disks than 5+1 survives
            for shard in shards:
                if (shard.header.identity.get("bucket"), shard.header.identity.get("key")) == ("counted", "lost"):
                    shard.remove()
        shutil.rmtree(d.data_dir / "meta")
        d.cli("recover-metadata", "--json")
        d.start()
        s3 = d.s3()
        assert s3.get_bucket_lifecycle_configuration(Bucket="kept")["Rules"] == [rule]
        got = s3.get_bucket_intelligent_tiering_configuration(Bucket="kept", Id="arc")
        assert got["IntelligentTieringConfiguration"] == tiering
        assert s3.head_object(Bucket="kept", Key="cold")["StorageClass"] == "GLACIER_IR"
        assert s3.get_object(Bucket="kept", Key="cold")["Body"].read() == body  # the ciphertext's cipher id kept
        assert s3.head_object(Bucket="kept", Key="archived")["Restore"] == restored  # the restore record
        assert s3.get_object(Bucket="kept", Key="archived")["Body"].read() == body
        after = lifecycle_status(d)
        assert after["transitioned"] >= before["transitioned"] >= 1
        # the counters are recounted over what recovery kept; the quota is a journaled record
        counted = _usage(d, "counted")
        assert (counted["objects"], counted["bytes"], set(counted["classes"])) == (1, 1000, {"STANDARD"})
        assert counted["quota"] == {"bytes": 10 << 20, "objects": 5}
        assert {k: _usage(d, "kept")[k] for k in ("objects", "bytes", "classes")} == \
            {k: kept_usage[k] for k in ("objects", "bytes", "classes")}
    finally:
        d.stop()


@pytest.mark.parametrize("snapshot", [False, True], ids=["headers-only", "snapshot-before-the-moves"])
def test_transitioned_versions_come_back_from_their_shard_headers(tmp_path: Path, snapshot: bool) -> None:
    """The DB and the journal lost: a version moved to another class lives in re-encoded
    segments only (the old ones collected), whose headers name the version like a PUT's do.
    Without a snapshot a single PUT's version comes back from them with its version id, new
    class, object lock, ETag, checksum, Last-Modified and content; a noncurrent version moved
    after a newer PUT stays noncurrent; a PUT's class comes back with it; a multipart object is
    lost, as one that never moved. With a snapshot taken before the moves, the versions it holds
    (the multipart one too) get their re-encoded segments in place of the collected ones."""
    d = start(tmp_path, lifecycle_config(tmp_path / "lc.toml"))
    try:
        s3 = d.s3()
        s3.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)  # versioned, SSE-S3 by default
        bodies = {n: os.urandom(SIZE) for n in ("m/locked", "m/free", "nc1", "nc2", "ia")}
        bodies["m/mp"] = os.urandom(5 * MIB + 1000)
        put = s3.put_object
        vids = {"m/locked": put(Bucket="vault", Key="m/locked", Body=bodies["m/locked"], ChecksumAlgorithm="SHA256",
                                ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=FAR)["VersionId"],
                "m/free": put(Bucket="vault", Key="m/free", Body=bodies["m/free"])["VersionId"],
                "nc1": put(Bucket="vault", Key="nc", Body=bodies["nc1"], ObjectLockLegalHoldStatus="ON")["VersionId"],
                "nc2": put(Bucket="vault", Key="nc", Body=bodies["nc2"])["VersionId"],
                "ia": put(Bucket="vault", Key="ia", Body=bodies["ia"], StorageClass="STANDARD_IA")["VersionId"]}
        up = s3.create_multipart_upload(Bucket="vault", Key="m/mp")["UploadId"]
        parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket="vault", Key="m/mp", UploadId=up, PartNumber=n,
                                                          Body=body)["ETag"]}
                 for n, body in ((1, bodies["m/mp"][:5 * MIB]), (2, bodies["m/mp"][5 * MIB:]))]
        vids["m/mp"] = s3.complete_multipart_upload(Bucket="vault", Key="m/mp", UploadId=up,
                                                    MultipartUpload={"Parts": parts})["VersionId"]
        if snapshot:
            d.cli("snapshot-metadata")
        rules = [{"ID": "moved", "Status": "Enabled", "Filter": {"Prefix": "m/"},
                  "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]},
                 {"ID": "nc", "Status": "Enabled", "Filter": {"Prefix": "nc"},
                  "NoncurrentVersionTransitions": [{"NoncurrentDays": 1, "StorageClass": "GLACIER_IR"}]}]
        s3.put_bucket_lifecycle_configuration(Bucket="vault", LifecycleConfiguration={"Rules": rules})

        def key_of(name: str) -> str:
            return "nc" if name.startswith("nc") else name

        def head(name: str) -> dict[str, Any]:
            got: dict[str, Any] = s3.head_object(Bucket="vault", Key=key_of(name), VersionId=vids[name],
                                                 ChecksumMode="ENABLED")
            return {f: got.get(f) for f in ("ETag", "LastModified", "ContentLength", "StorageClass", "ChecksumSHA256",
                                            "ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus")}

        moved = ("m/locked", "m/free", "m/mp", "nc1")
        wait_for(lambda: {head(n)["StorageClass"] for n in moved} == {"GLACIER_IR"}, "the transitions")
        before = {name: head(name) for name in vids}
        assert before["m/locked"]["ChecksumSHA256"] and before["nc2"]["StorageClass"] is None
        # once collected, the segments written by the PUTs of the moved versions are gone
        wait_for(lambda: len(_live_segments(d)) == len(vids) + 1, "the old segments' collection")  # 2 parts
        d.stop()
        shutil.rmtree(d.data_dir / "meta")
        for journal in d.data_dir.glob("disks/*/journal"):
            shutil.rmtree(journal)
        report = json.loads(d.cli("recover-metadata", "--json").stdout)
        assert (report["snapshot"] is not None) == snapshot and not report["journal"]["complete"]
        assert not report["segments_unreadable"] and not report["versions_dropped"]
        d.start()
        s3 = d.s3()
        back = [name for name in vids if snapshot or name != "m/mp"]
        assert {name: head(name) for name in back} == {name: before[name] for name in back}
        for name in back:
            got = s3.get_object(Bucket="vault", Key=key_of(name), VersionId=vids[name])["Body"].read()
            assert got == bodies[name], name
        assert s3.get_object(Bucket="vault", Key="nc")["Body"].read() == bodies["nc2"]  # still the current one
        if not snapshot:  # the parts' headers name an upload, not a version: as before it moved
            with pytest.raises(ClientError):
                s3.head_object(Bucket="vault", Key="m/mp")
        for name in ("m/locked", "nc1"):  # COMPLIANCE, and a legal hold: nobody removes them
            with pytest.raises(ClientError) as e:
                s3.delete_object(Bucket="vault", Key=key_of(name), VersionId=vids[name], BypassGovernanceRetention=True)
            assert e.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        d.stop()

"""Usage counters kept by every commit (checked against a full count after a mix of writes),
hard quotas on PUT, copy, multipart completion and mount writes, and `stowage usage`."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from appliance.engine import keys
from appliance.engine.errors import QuotaExceeded
from appliance.engine.objectstore import PutMeta
from appliance.engine.records import UsageRecord
from appliance.engine.transcode import transition_version
from appliance.engine.usage import count_all, usage_of
from tests.conftest import DaemonProc
from tests.engine.conftest import open_store
from tests.fuse.conftest import fuse_available


def _recount(store: Any) -> dict[str, UsageRecord]:
    b = store.db.batch()
    b.delete(keys.USAGE_READY)
    store.db.commit_now(b)
    kept = {n: usage_of(store.db, n) for n in ("bkt", "ver")}
    count_all(store.db)
    fresh = {n: usage_of(store.db, n) for n in ("bkt", "ver")}
    for n, rec in kept.items():  # put the incremental ones back, to compare
        b = store.db.batch()
        b.put(keys.usage(n), rec)
        store.db.commit_now(b)
    return fresh


async def test_counters_match_a_full_count(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    try:
        await s.create_bucket("bkt")
        await s.create_bucket("ver")
        await s.set_versioning("ver", "Enabled")
        await s.put_object("bkt", "a", b"x" * 1000)
        await s.put_object("bkt", "a", b"y" * 10)  # unversioned: replaces
        v = await s.put_object("bkt", "big", os.urandom(300_000), PutMeta(storage_class="STANDARD_IA"))
        await transition_version(s, v, "GLACIER_IR")
        await s.copy_object(v, "bkt", "copy", replace(PutMeta.of(v), storage_class="STANDARD"))
        await s.delete_object("bkt", "copy")
        for i in range(3):
            await s.put_object("ver", "k", os.urandom(100 + i))
        await s.delete_object("ver", "k")  # a delete marker: not counted
        up = await s.create_multipart("ver", "mp")
        p = await s.upload_part("ver", "mp", up.upload_id, 1, b"z" * 777)
        await s.complete_multipart("ver", "mp", up.upload_id, [(1, p.etag)])
        fresh = _recount(s)
        for n in ("bkt", "ver"):
            assert usage_of(s.db, n).classes == fresh[n].classes
        assert usage_of(s.db, "bkt").classes == {"STANDARD": [1, 10], "GLACIER_IR": [1, 300_000]}
        assert usage_of(s.db, "ver").objects == 4 and usage_of(s.db, "ver").bytes == 100 + 101 + 102 + 777
    finally:
        s.db.close()


async def test_quota_refuses_growth_not_cleanup(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    try:
        await s.create_bucket("bkt")
        await s.put_object("bkt", "a", b"x" * 600)
        await s.set_quota("bucket", "bkt", 1000, 0)
        with pytest.raises(QuotaExceeded):
            await s.put_object("bkt", "b", b"x" * 600)
        await s.put_object("bkt", "a", b"x" * 900)  # a replacement that fits
        await s.set_quota("bucket", "bkt", 0, 1)
        with pytest.raises(QuotaExceeded):
            await s.put_object("bkt", "c", b"x")
        await s.set_quota("bucket", "bkt", 10, 0)  # below its usage: deleting still works
        await s.delete_object("bkt", "a")
        assert usage_of(s.db, "bkt").bytes == 0
        await s.set_quota("bucket", "bkt", 0, 0)
        await s.put_object("bkt", "d", b"x" * 5000)
    finally:
        s.db.close()


@pytest.fixture
def qd(tmp_path: Path) -> Any:
    args = ["--mount", str(tmp_path / "mnt")] if fuse_available() else ["--no-mount"]
    d = DaemonProc(tmp_path / "data", args).start()
    yield d
    try:
        d.stop(timeout=30)
    except Exception:
        d.kill()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def test_quotas_and_usage_through_s3_cli_and_mount(qd: DaemonProc) -> None:
    s3 = qd.s3()
    s3.create_bucket(Bucket="quo")
    s3.put_object(Bucket="quo", Key="a", Body=os.urandom(300_000), StorageClass="STANDARD_IA")
    s3.put_object(Bucket="quo", Key="b", Body=b"x" * 1000)
    report = json.loads(qd.cli("usage", "--json").stdout)
    q = next(b for b in report["buckets"] if b["bucket"] == "quo")
    assert (q["objects"], q["bytes"]) == (2, 301_000)
    assert q["classes"]["STANDARD_IA"]["stored_bytes"] == 300_000 * 6 // 5  # 5+1
    assert q["classes"]["STANDARD"]["stored_bytes"] == 1000 * 6 // 4
    assert "recommendation" in q and q["quota"] is None
    assert "quo: 2 objects" in qd.cli("usage", "--bucket", "quo").stdout

    qd.cli("quota", "set", "--bucket", "quo", "--bytes", "400K")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="quo", Key="c", Body=os.urandom(200_000))
    assert _code(e) == (403, "QuotaExceeded")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket="quo", Key="copy", CopySource={"Bucket": "quo", "Key": "a"})
    assert _code(e) == (403, "QuotaExceeded")
    up = s3.create_multipart_upload(Bucket="quo", Key="mp")
    part = s3.upload_part(Bucket="quo", Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=os.urandom(150_000))
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket="quo", Key="mp", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert _code(e) == (403, "QuotaExceeded")
    if qd.mount:
        with pytest.raises(OSError) as oe:
            (Path(qd.mount) / "quo" / "f.bin").write_bytes(os.urandom(200_000))
        assert oe.value.errno == errno.EDQUOT
    report = json.loads(qd.cli("usage", "--json", "--bucket", "quo").stdout)
    assert report["buckets"][0]["quota"] == {"bytes": 400 * 1024, "objects": 0}
    assert report["buckets"][0]["bytes"] == 301_000  # nothing refused was counted
    qd.cli("quota", "clear", "--bucket", "quo")
    s3.put_object(Bucket="quo", Key="c", Body=os.urandom(200_000))
    # a user's quota counts all the buckets they own
    qd.cli("quota", "set", "--user", q["owner"], "--objects", "3")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="quo", Key="d", Body=b"x")
    assert _code(e) == (403, "QuotaExceeded")


def test_user_quota_by_name(tmp_path: Path) -> None:
    """`quota set --user NAME` applies to the buckets NAME owns (buckets record a canonical id);
    a name no identity holds is refused rather than stored as a quota of no one."""
    d = DaemonProc(tmp_path / "data", ["--no-mount"]).start()
    try:
        r = json.loads(d.cli("user", "add", "alice", "--policy", "readwrite", "--json").stdout)
        alice = boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=r["access_key"],
                             aws_secret_access_key=r["secret_key"], region_name="us-east-1",
                             config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        alice.create_bucket(Bucket="alice-a")
        alice.create_bucket(Bucket="alice-b")
        alice.put_object(Bucket="alice-a", Key="1", Body=b"x")
        alice.put_object(Bucket="alice-b", Key="2", Body=b"x")
        assert d.cli("quota", "set", "--user", "alice", "--objects", "2").stdout.startswith("user alice: quota")
        with pytest.raises(ClientError) as e:
            alice.put_object(Bucket="alice-a", Key="3", Body=b"x")
        assert _code(e) == (403, "QuotaExceeded")
        d.s3().create_bucket(Bucket="roots")
        d.s3().put_object(Bucket="roots", Key="3", Body=b"x")  # root's buckets are not alice's
        assert "user alice: quota - / 2 objects" in d.cli("usage").stdout

        bad = d.cli("quota", "set", "--user", "nobody", "--objects", "1", check=False)
        assert bad.returncode != 0 and "nobody" in bad.stderr and "Traceback" not in bad.stderr
        assert "nobody" not in d.cli("usage").stdout

        d.cli("quota", "clear", "--user", "alice")
        alice.put_object(Bucket="alice-a", Key="3", Body=b"x")
        d.cli("quota", "clear", "--user", "nobody")  # clearing what is not set is not an error
    finally:
        d.stop(timeout=30)

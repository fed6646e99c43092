"""What every fault and crash case ends with: the acknowledged writes, read back byte-exact;
nothing unacknowledged half-visible; no shard file that no segment record owns."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from appliance.engine import keys
from appliance.engine.metadb import MetaDB
from appliance.engine.records import SegmentRecord


def read_back(s3: Any, bucket: str, acked: dict[str, bytes]) -> None:
    """Every acknowledged object reads back byte-exact."""
    for key, body in acked.items():
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert got == body, f"{bucket}/{key}: {len(got)} bytes read back, {len(body)} acknowledged (content differs)"


def whole_or_absent(s3: Any, bucket: str, key: str, candidates: list[bytes]) -> bytes | None:
    """An unacknowledged write: the key is absent or holds exactly one of the bodies it may hold."""
    try:
        got: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchKey", exc.response
        return None
    assert got in candidates, f"{bucket}/{key}: {len(got)} bytes, none of the bodies written there"
    return got


def listing_consistent(s3: Any, bucket: str) -> int:
    """Every listed object reads back whole: its size, and its MD5 when the ETag is one."""
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            data = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            assert len(data) == obj["Size"], obj["Key"]
            etag = obj["ETag"].strip('"')
            if "-" not in etag:
                assert hashlib.md5(data).hexdigest() == etag, obj["Key"]
            n += 1
    return n


def no_orphans(data_dir: Path, meta_dir: Path | None = None) -> None:
    """With the daemon stopped: every shard file belongs to a segment record, no temp file is left."""
    db = MetaDB(meta_dir or data_dir / "meta")
    try:
        segs = {rec.segment_id for _, rec in db.scan_records(SegmentRecord, keys.SEGMENT)}
    finally:
        db.close()
    for disk_dir in sorted((data_dir / "disks").iterdir()):
        tmp = disk_dir / "tmp"
        assert not tmp.exists() or not list(tmp.iterdir()), f"temporary files left in {tmp}"
        for f in disk_dir.glob("shards/*/*"):
            seg, _, _idx = f.name.rpartition(".")
            assert seg in segs, f"orphan shard file {f}"

"""Secrets stay wrapped on the data disks: KMS key material and IAM secret keys are never in
plain text (raw, hex or base64) in the metadata journal, in the metadata snapshots (their shard
files and their decoded stream) or in the metadata DB's own files."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import boto3
import trio

from appliance.config import embedded_config
from appliance.engine import keys
from appliance.engine.diskload import load_disks
from appliance.engine.metadb import MetaDB
from appliance.engine.metasnap import stored_snapshots
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import SegmentRecord
from appliance.iam.kms import Kms
from appliance.iam.masterkey import open_for
from tests.healing.helpers import all_shards

from .recovery_world import KMS_KEY


def _forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.b64encode(secret), base64.urlsafe_b64encode(secret)]


def _snapshot_streams(data_dir: Path) -> tuple[list[bytes], list[bytes]]:
    """(KMS key material of every version of KMS_KEY, the decoded stream of every snapshot)."""
    cfg = embedded_config(data_dir)
    db = MetaDB(cfg.meta_path)
    store = ObjectStore(cfg, db, load_disks(cfg, db))
    try:
        kms = Kms(db, open_for(cfg, db))
        rec = kms.find(KMS_KEY)
        materials = [kms._material_of(rec, v.version) for v in rec.versions]

        async def read(seg: SegmentRecord) -> bytes:
            return b"".join([p async for p in store.seg.read(seg, 0, seg.length)])

        streams = []
        for snap in stored_snapshots(db):
            seg = db.get_record(SegmentRecord, keys.segment(snap.segment_id))
            assert seg is not None
            streams.append(trio.run(read, seg))
        return materials, streams
    finally:
        db.close()


def test_no_secret_in_plain_text_in_the_journal_or_the_snapshots(daemon: Any) -> None:
    iam = boto3.client("iam", endpoint_url=daemon.endpoint, aws_access_key_id=daemon.access_key,
                       aws_secret_access_key=daemon.secret_key, region_name="us-east-1")
    daemon.cli("kms", "key", "create", KMS_KEY)
    iam.create_user(UserName="early")
    secrets = [iam.create_access_key(UserName="early")["AccessKey"]["SecretAccessKey"].encode()]
    s3 = daemon.s3()
    s3.create_bucket(Bucket="enc")
    s3.put_object(Bucket="enc", Key="k", Body=b"x" * 1000, ServerSideEncryption="aws:kms", SSEKMSKeyId=KMS_KEY)
    daemon.cli("snapshot-metadata")
    # after the snapshot: in the journal only
    daemon.cli("kms", "key", "rotate", KMS_KEY)
    iam.create_user(UserName="late")
    secrets.append(iam.create_access_key(UserName="late")["AccessKey"]["SecretAccessKey"].encode())
    s3.put_object(Bucket="enc", Key="k2", Body=b"y" * 1000, ServerSideEncryption="aws:kms", SSEKMSKeyId=KMS_KEY)
    daemon.stop()

    materials, streams = _snapshot_streams(daemon.data_dir)
    assert len(materials) == 2 and streams
    needles = [f for s in materials + secrets for f in _forms(s)]
    journal = sorted(daemon.data_dir.glob("disks/*/journal/*.jnl"))
    shards = sorted({s.path for found in all_shards(daemon.data_dir).values() for s in found})  # files, volumes
    meta_files = [p for p in (daemon.data_dir / "meta").iterdir() if p.is_file()]
    assert journal and meta_files
    haystacks = {str(p): p.read_bytes() for p in journal + shards + meta_files}
    haystacks |= {f"snapshot stream {i}": s for i, s in enumerate(streams)}
    # the records are there, readable: the late user's in the journal, the early one's in a snapshot
    assert any(b"late" in haystacks[str(p)] for p in journal) and any(b"early" in s for s in streams)
    found = [(where, needle) for where, h in haystacks.items() for needle in needles if needle in h]
    assert not found, found

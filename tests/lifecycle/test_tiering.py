"""Intelligent tiering with a lifecycle day of 0.2 s: an object not read for 30 days moves to
the infrequent tier (STANDARD_IA's 5+1 on six disks, seen on the shard files), a read brings it
back (4+2), small objects stay, and the class, ETag and version id never change."""

from __future__ import annotations

import os
from typing import Any

from tests.conftest import DaemonProc

from .conftest import lifecycle_status, shard_geometries, wait_for

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

"""Metadata loss: populate a real appliance, delete its metadata DB, `stowage recover-metadata`,
start it again: every object is readable byte-exact (from the latest snapshot plus the metadata
journal written since; with the journal lost too, from the snapshot plus the shard headers
written since, or from shard headers alone when no snapshot exists either). Every other kind of
metadata: tests/admin/test_recover_everything.py."""

from __future__ import annotations

import json
import random
import shutil
from typing import Any

import pytest

from .helpers import BUCKET, check_all, ctl, populate


@pytest.mark.parametrize(("with_snapshot", "with_journal"), [(True, True), (True, False), (False, False)],
                         ids=["snapshot+journal", "snapshot+headers", "headers-only"])
def test_recover_metadata_after_losing_the_db(daemon: Any, with_snapshot: bool, with_journal: bool) -> None:
    objs = populate(daemon, n=12, seed=3)
    s3 = daemon.s3()
    s3.create_bucket(Bucket="second")
    s3.put_object(Bucket="second", Key="before/snapshot", Body=b"early")
    objs_second = {"before/snapshot": b"early"}
    if with_snapshot:
        out = daemon.cli("snapshot-metadata").stdout
        assert "metadata snapshot" in out
    # written after the snapshot: new objects, an overwrite, a new bucket
    rnd = random.Random(9)
    for i in range(5):
        body = rnd.randbytes(rnd.randrange(1, 2 << 20))
        s3.put_object(Bucket=BUCKET, Key=f"late/{i}", Body=body)
        objs[f"late/{i}"] = body
    objs["obj/002"] = b"overwritten after the snapshot"
    s3.put_object(Bucket=BUCKET, Key="obj/002", Body=objs["obj/002"])
    s3.create_bucket(Bucket="third")
    s3.put_object(Bucket="third", Key="x", Body=b"in a bucket created after the snapshot")

    daemon.stop()
    shutil.rmtree(daemon.data_dir / "meta")
    if not with_journal:
        for journal in daemon.data_dir.glob("disks/*/journal"):
            shutil.rmtree(journal)
    r = daemon.cli("recover-metadata", "--json")
    report = json.loads(r.stdout)
    assert (report["snapshot"] is not None) == with_snapshot
    if with_journal:
        assert report["journal"]["complete"] and report["versions_added"] == []
    else:
        assert "heal/late/0" in report["versions_added"]
        assert any("no metadata journal" in note for note in report["not_restored"])
    daemon.start()

    check_all(daemon, objs)
    s3 = daemon.s3()
    for key, body in objs_second.items():
        assert s3.get_object(Bucket="second", Key=key)["Body"].read() == body
    assert s3.get_object(Bucket="third", Key="x")["Body"].read() == b"in a bucket created after the snapshot"
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert sorted(listed) == sorted(objs)
    # the recovered DB is consistent: a scrub finds every segment intact
    assert ctl(daemon, "scrub.start", {"wait": True})["found"] == 0


def test_recover_refuses_a_non_empty_meta_dir(daemon: Any) -> None:
    populate(daemon, n=2)
    daemon.stop()
    r = daemon.cli("recover-metadata", check=False)
    assert r.returncode != 0 and "not empty" in r.stderr

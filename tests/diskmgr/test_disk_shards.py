"""`stowage disks --json` reports the shards each disk holds, from the running daemon."""

from __future__ import annotations

import json


def test_shards_held_per_disk(daemon) -> None:
    s3 = daemon.s3()
    s3.create_bucket(Bucket="shards")
    s3.put_object(Bucket="shards", Key="big", Body=b"x" * (2 << 20))  # one 4+2 segment: 6 shards
    s3.put_object(Bucket="shards", Key="small", Body=b"y" * 100)  # replicated 1+2: 3 shards
    doc = json.loads(daemon.cli("disks", "list", "--json", "--no-smart").stdout)
    managed = [r for r in doc["disks"] if r["managed"]]
    assert len(managed) == 6
    assert sum(r["shards"] for r in managed) == 9
    assert all(r["shards"] >= 1 for r in managed)
    assert all(r["heal_progress"] is None for r in managed)
    table = daemon.cli("disks", "list", "--no-smart").stdout
    assert "SHARDS" in table

"""Losing the metadata DB loses nothing acknowledged: a real appliance (TLS, the mount) is filled
with every kind of metadata (tests/admin/recovery_world.py), killed with SIGKILL, its metadata DB
deleted, and `stowage recover-metadata` run. Everything read back through S3, IAM, the KMS CLI
and the mount is exactly what it was, and the rebuilt DB holds the same records as the one lost,
whether a metadata snapshot was taken halfway or never."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fuse.conftest import fuse_available

from .recovery_world import World, check_world, db_dump, describe_diff, dump, tls_mount_daemon

needs_fuse = pytest.mark.skipif(not fuse_available(), reason="/dev/fuse is not usable here")


@needs_fuse
@pytest.mark.parametrize("snapshot", [False, True], ids=["journal-only", "snapshot-then-journal"])
def test_everything_acknowledged_survives_losing_the_metadata_db(tmp_path: Path, snapshot: bool) -> None:
    d = tls_mount_daemon(tmp_path)
    d.start()
    try:
        w = World(d)
        w.phase_a()
        if snapshot:
            d.cli("snapshot-metadata")
        w.phase_b()
        before = dump(d)
        check_world(before)
        d.kill()  # SIGKILL: no clean shutdown
        lost = db_dump(d.data_dir / "meta")
        shutil.rmtree(d.data_dir / "meta")

        r = d.cli("recover-metadata", "--json")
        report = json.loads(r.stdout)
        assert (report["snapshot"] is not None) == snapshot
        assert report["journal"]["complete"], report
        assert report["not_restored"] == [] and report["versions_added"] == [] and report["versions_dropped"] == []
        rebuilt = db_dump(d.data_dir / "meta")
        diff = describe_diff(lost, rebuilt)
        assert not diff, "\n".join(diff[:40])

        d.start()
        after = dump(d)
        assert after == before
    finally:
        d.stop(timeout=30) if d.proc and d.proc.poll() is None else d.kill()

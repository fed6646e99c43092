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

from .recovery_world import (
    World,
    check_completions_repeat,
    check_world,
    db_dump,
    describe_diff,
    dump,
    tls_mount_daemon,
)

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
        assert after == before, "\n".join(_differences(before, after)[:40])
        check_completions_repeat(d, w.completed)
    finally:
        d.stop(timeout=30) if d.proc and d.proc.poll() is None else d.kill()


def _differences(a: object, b: object, path: str = "") -> list[str]:
    """Where two dumps differ, as paths (the assertion's message: a dump is too big to print)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]

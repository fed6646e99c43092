"""The fault matrix: a real daemon whose data disks and metadata directory are fault disks
(tests/faultfs), under a concurrent S3 and mount workload, while a disk returns EIO, fills up,
stalls, or every disk loses power. Each case ends with: every acknowledged write reads back
byte-exact, nothing unacknowledged is half-visible, the daemon kept serving where the geometry
allowed, and `stowage status` shows the fault. Longer and random variants: bench/soak.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.faultfs import usable
from tests.polling import wait_for

from .appliance import BUCKET, FaultAppliance, Workload, fault_appliance

pytestmark = pytest.mark.skipif(not usable(), reason="needs root and /dev/fuse")


@pytest.fixture
def app(tmp_path: Path) -> Any:
    # a disk unanswered for 3 s is stalled (the default, 10 s, would only make the case slower;
    # much less and a healthy fault disk of a loaded machine can look stalled)
    config = "[gc]\ngrace_seconds = 0\ninterval_seconds = 0.2\n[stall]\nseconds = 3\n"
    with fault_appliance(tmp_path, config=config) as a:
        a.daemon.s3().create_bucket(Bucket=BUCKET)
        yield a


def run_workload(a: FaultAppliance, until: Any, seed: int = 0, mount: bool = False) -> Workload:
    w = Workload(a.daemon.s3, Path(a.daemon.info["mount"]) if mount else None, seed).start()
    try:
        wait_for(lambda: until(w), timeout=120, what="the workload to make progress")
    finally:
        w.finish()
    return w


def test_healthy_baseline(app: FaultAppliance) -> None:
    w = run_workload(app, lambda w: w.ops >= 30)
    assert w.failures == 0
    w.check(app.daemon.s3())


def test_eio_on_one_data_disk(app: FaultAppliance) -> None:
    w = run_workload(app, lambda w: w.ops >= 10)
    app.data[0].control.eio("all")
    w2 = run_workload(app, lambda w: w.ops >= 30, seed=1)
    assert w2.failures == 0, w2.why_failed  # one disk of k=4, m=2: the daemon serves every request
    w.check(app.daemon.s3())
    w2.check(app.daemon.s3())
    wait_disk_flagged(app, [app.data[0]])  # by the I/O errors the requests met, or the monitor's probe


def wait_disk_flagged(a: FaultAppliance, disks: list[Any]) -> None:
    """`stowage status` shows each faulty disk out of the ok state (the monitor looks every 5 s)."""
    paths = [str(d.mountpoint) for d in disks]
    wait_for(lambda: all(a.disk_states()[p] != "ok" for p in paths), timeout=60,
             what=f"`stowage status` to flag {paths}")


def test_eio_on_m_data_disks(app: FaultAppliance) -> None:
    w = run_workload(app, lambda w: w.ops >= 10)
    for d in app.data[:2]:
        d.control.eio("all")
    w2 = run_workload(app, lambda w: w.ops >= 20, seed=1)  # writes may be refused, never half-done
    s3 = app.daemon.s3()
    w.check(s3)  # every object reads back from the four disks left
    w2.check(s3)
    wait_disk_flagged(app, app.data[:2])


def test_eio_on_the_metadata_disk(app: FaultAppliance) -> None:
    w = run_workload(app, lambda w: w.ops >= 10)
    app.meta.control.eio("writes")
    s3 = app.daemon.s3()
    with pytest.raises(ClientError) as exc:
        for i in range(20):  # LevelDB may take a write or two in its buffers before failing
            s3.put_object(Bucket=BUCKET, Key=f"refused/{i}", Body=b"x" * 1000)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert exc.value.response["Error"]["Code"] == "ServiceUnavailable"
    w.check(s3)  # reads go on
    st = app.ctl_status()
    assert st["metadata"]["writable"] is False and st["metadata"]["error"]
    # LevelDB's own write or the group sync of its log meets the EIO first, whichever runs first
    assert re.search(r"the metadata DB failed (a write|to sync its log)", app.daemon.log_tail(400))
    with pytest.raises(ClientError) as exc:  # refused until a restart, even once the disk is well
        app.meta.control.clear()
        s3.put_object(Bucket=BUCKET, Key="refused/later", Body=b"y")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    app.daemon.restart()
    w.check(app.daemon.s3())
    run_workload(app, lambda w: w.ops >= 5, seed=2).check(app.daemon.s3())


def test_enospc_on_a_data_disk(app: FaultAppliance) -> None:
    w = run_workload(app, lambda w: w.ops >= 10)
    app.data[0].control.fill()
    w2 = run_workload(app, lambda w: w.ops >= 30, seed=1)
    assert w2.failures == 0, w2.why_failed  # placement and the shard writers go around the full disk
    s3 = app.daemon.s3()
    w.check(s3)
    w2.check(s3)


def test_enospc_on_the_metadata_disk(app: FaultAppliance) -> None:
    w = run_workload(app, lambda w: w.ops >= 10)
    app.meta.control.fill()
    s3 = app.daemon.s3()
    with pytest.raises(ClientError) as exc:
        for i in range(200):
            s3.put_object(Bucket=BUCKET, Key=f"refused/{i}", Body=b"x" * 20_000)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    w.check(s3)
    assert app.ctl_status()["metadata"]["writable"] is False
    app.meta.control.fill(False)
    app.daemon.restart()
    w.check(app.daemon.s3())


def test_stalled_disk_does_not_block_the_service(app: FaultAppliance) -> None:
    w = run_workload(app, lambda w: len(w.acked) >= 8)
    stalled = app.data[0]
    rule = stalled.control.hang("all")  # every operation on disk0 waits until released: a stalled disk
    try:
        # every object reads back while disk0 hangs: its shards are read around (parity)
        w.check(app.daemon.s3())
        w2 = run_workload(app, lambda w: w.ops >= 20, seed=1)
        assert w2.failures == 0, w2.why_failed  # writes complete with the other five shards
        w2.check(app.daemon.s3())
        assert stalled.control.hung() >= 1  # the operations given up on still wait on the disk
        wait_disk_flagged(app, [stalled])  # the monitor's probe got no answer
        assert any("stalled" in r for d in app.ctl_status()["disks"] if d["path"] == str(stalled.mountpoint)
                   for r in d.get("reasons", []))
        # the host-side view answers too: the stalled disk is offline, the others are read
        config = app.daemon.extra_args[app.daemon.extra_args.index("--config"):][:2]
        rows = json.loads(app.daemon.cli("disks", "--json", "--no-smart", *config).stdout)["disks"]
        by_path = {r["mount_point"]: r for r in rows if r["managed"]}
        assert by_path[str(stalled.mountpoint)]["state"] == "offline"
        assert any("stalled" in r for r in by_path[str(stalled.mountpoint)]["reasons"]), by_path
        assert all(by_path[str(d.mountpoint)]["free_bytes"] for d in app.data[1:])
    finally:
        stalled.control.release(rule)
    w.check(app.daemon.s3())
    w2.check(app.daemon.s3())

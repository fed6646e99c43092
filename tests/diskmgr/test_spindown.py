"""Spin-down of an archive pool's disks: the hdparm and smartctl commands, what happens on a loop
device (hdparm fails there: reported, not hidden), the skip of directory disks, and the policy
that placement and the scrubber leave sleeping disks asleep."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from appliance.engine.codec import Geometry
from appliance.engine.placement import choose
from appliance.engine.records import DiskRecord
from appliance.services.heal import Healer
from appliance.services.scrub import Scrubber
from appliance.services.spindown import SpinDown
from diskmgr import smart
from diskmgr.spindown import (
    apply_spindown,
    parse_power_state,
    power_state_command,
    spindown_command,
    spins,
    standby_value,
)
from tests.engine.conftest import open_store


@pytest.mark.parametrize("seconds,value", [(0, 0), (3, 1), (5, 1), (60, 12), (1200, 240), (1201, 241),
                                           (1800, 241), (3600, 242), (10 ** 6, 251)])
def test_hdparm_standby_encoding(seconds: int, value: int) -> None:
    assert standby_value(seconds) == value


def test_commands() -> None:
    assert spindown_command("/dev/sdb", 600) == ["hdparm", "-S", "120", "/dev/sdb"]
    assert power_state_command("/dev/sdb") == ["hdparm", "-C", "/dev/sdb"]
    assert smart.smartctl_command("/dev/sdb", standby=True) == ["smartctl", "--json", "-a", "-n", "standby",
                                                                "/dev/sdb"]
    assert "-n" not in smart.smartctl_command("/dev/sdb")
    assert parse_power_state("\n/dev/sdb:\n drive state is:  standby\n") == "standby"
    assert parse_power_state("garbage") == "unknown"
    assert [spins(d) for d in ("/dev/sdb", "/dev/loop3", "", None, "/srv/disk0")] == [True, False, False, False,
                                                                                     False]


def test_smart_of_a_sleeping_drive_is_not_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, smart.EXIT_OPEN_FAILED, b'{"smartctl": {"exit_status": 2}}', b"")

    monkeypatch.setattr(smart.subprocess, "run", run)
    report = smart.read_smart("/dev/sdz", standby=True)
    assert seen == [["smartctl", "--json", "-a", "-n", "standby", "/dev/sdz"]]
    assert not report.available and report.unavailable_reason == smart.IN_STANDBY


def test_hdparm_on_a_loop_device_fails_honestly(make_loop: Any) -> None:
    dev = make_loop(64 << 20)
    res = apply_spindown(dev, 600)
    assert res.command == ["hdparm", "-S", "120", dev]
    assert not res.applied and res.reason  # no ATA behind a loop device: hdparm's words are kept


async def test_directory_disks_skip_and_placement_and_scrub_leave_sleepers(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    try:
        s.cfg = replace(s.cfg, pools={"default": replace(s.cfg.pools["default"], spin_down_seconds=600)})
        spin = SpinDown(s)
        disks = list(s.disks)
        for d in disks:
            await spin.observe(d, DiskRecord(d.disk_id, str(d.path), "data", d.pool, "ok", 0))
        assert set(spin.status().values()) == {"skipped: directory disk (does not spin)"}  # shown in status
        assert not any(d.asleep for d in disks)
        loop_rec = DiskRecord(disks[0].disk_id, str(disks[0].path), "data", "default", "ok", 0, device="/dev/loop7")
        assert not spin.watches(disks[0], loop_rec)

        # placement: sleepers only when the awake disks cannot take the segment
        for d in disks[:2]:
            d.asleep = True
        for _ in range(20):
            chosen = choose(disks, Geometry(2, 2, 1 << 20))
            assert {d.disk_id for d in chosen if d} == {d.disk_id for d in disks[2:]}
        assert sum(1 for d in choose(disks, Geometry(4, 2, 1 << 20)) if d and d.asleep) == 2

        # the scrubber skips the segments it would have to wake a disk for
        await s.create_bucket("bkt")
        await s.put_object("bkt", "k", b"x" * 300_000)  # 4+2 on all six disks, two of them asleep
        scrub = Scrubber(s, Healer(s))
        await scrub.run_pass(fresh=True)
        assert scrub.progress.asleep_skipped == 1 and scrub.cur.segments == 0
        for d in disks:
            d.asleep = False
        await scrub.run_pass(fresh=True)
        assert scrub.progress.asleep_skipped == 0 and scrub.cur.segments == 1
    finally:
        s.db.close()

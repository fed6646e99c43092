"""Health policy: SMART fixtures + the daemon's counters -> state and reasons."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from diskmgr.health import STATES, DiskObservation, Health, HealthPolicy, Transition, TransitionLog, assess, worse
from diskmgr.smart import SelfTest, SmartReport, parse_smartctl

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> SmartReport:
    return parse_smartctl(json.loads((FIXTURES / name).read_text()))


def clean(**kw) -> SmartReport:
    base = SmartReport(device="/dev/sdx", available=True, protocol="ATA", passed=True, temperature_c=35,
                       rotation_rate=7200, reallocated_sectors=0, pending_sectors=0, offline_uncorrectable=0)
    return replace(base, **kw)


def test_healthy_fixtures_are_ok():
    for name in ("smartctl-ata-healthy-hdd.json", "smartctl-nvme.json"):
        h = assess(fixture(name))
        assert h == Health("ok", (), ()), name


def test_sas_fixture_with_a_few_grown_defects_is_a_warning():
    h = assess(fixture("smartctl-sas-hdd.json"))
    assert h.state == "warning"
    assert h.reasons == ("12 grown defects",)


def test_failing_hdd_fixture_is_failed_with_every_reason():
    h = assess(fixture("smartctl-ata-failing-hdd.json"))
    assert h.state == "failed"
    assert h.reasons[0] == "SMART overall health self-assessment: FAILED"
    joined = " | ".join(h.reasons)
    for part in ("Reallocated_Sector_Ct (5)", "61464 reallocated sectors",
                 "2336 pending (unreadable) sectors", "2336 offline-uncorrectable sectors",
                 "last self-test failed: Extended offline"):
        assert part in joined


def test_usb_bridge_without_smart_is_ok_with_a_note():
    h = assess(fixture("smartctl-usb-bridge-unknown.json"))
    assert h.state == "ok" and h.reasons == ()
    assert h.notes and "Unknown USB bridge" in h.notes[0]
    assert assess(None).notes == ("SMART not read",)


@pytest.mark.parametrize(
    ("smart", "state", "reason"),
    [
        (clean(reallocated_sectors=1), "warning", "1 reallocated sectors"),
        (clean(reallocated_sectors=99), "warning", "99 reallocated sectors"),
        (clean(reallocated_sectors=100), "failing", "100 reallocated sectors"),
        (clean(pending_sectors=1), "failing", "1 pending (unreadable) sectors"),
        (clean(offline_uncorrectable=3), "failing", "3 offline-uncorrectable sectors"),
        (clean(passed=False), "failed", "SMART overall health self-assessment: FAILED"),
        (clean(failed_in_past=["Airflow_Temperature_Cel (190)"]), "warning",
         "SMART attribute was below threshold in the past: Airflow_Temperature_Cel (190)"),
        (clean(temperature_c=54), "ok", None),
        (clean(temperature_c=55), "warning", "hot: 55 °C"),
        (clean(temperature_c=65), "failing", "too hot: 65 °C"),
        (clean(rotation_rate=0, temperature_c=65), "ok", None),  # SSDs run hotter
        (clean(rotation_rate=0, temperature_c=70), "warning", "hot: 70 °C"),
        (clean(self_tests=[SelfTest("Short offline", "Completed: read failure", False, 10, 1234),
                           SelfTest("Short offline", "Completed without error", True, 5)]),
         "failing", "last self-test failed: Short offline: Completed: read failure at 10 h"),
        # an older failure followed by a passing test no longer counts
        (clean(self_tests=[SelfTest("Short offline", "Completed without error", True, 11),
                           SelfTest("Short offline", "Completed: read failure", False, 10)]), "ok", None),
        (clean(self_tests=[SelfTest("Short", "Aborted: Controller Reset", None, 11)]), "ok", None),
    ],
)
def test_ata_rules(smart, state, reason):
    h = assess(smart)
    assert h.state == state
    if reason is None:
        assert h.reasons == ()
    else:
        assert reason in h.reasons


def nvme(**kw) -> SmartReport:
    base = SmartReport(device="/dev/nvme0", available=True, protocol="NVMe", passed=True, temperature_c=40,
                       media_errors=0, percentage_used=5, available_spare=100, available_spare_threshold=10,
                       critical_warning=0)
    return replace(base, **kw)


@pytest.mark.parametrize(
    ("smart", "state", "reason"),
    [
        (nvme(media_errors=2), "failing", "2 NVMe media errors"),
        (nvme(percentage_used=79), "ok", None),
        (nvme(percentage_used=80), "warning", "endurance used 80%"),
        (nvme(percentage_used=103), "failing", "endurance used 103%"),
        (nvme(critical_warning=0x01), "failing", "NVMe available spare below threshold"),
        (nvme(critical_warning=0x04), "failing", "NVMe reports degraded reliability"),
        (nvme(critical_warning=0x08), "failed", "NVMe media is read-only"),
        (nvme(critical_warning=0x02), "warning", "NVMe temperature warning"),
    ],
)
def test_nvme_rules(smart, state, reason):
    h = assess(smart, DiskObservation(rotational=False))
    assert h.state == state
    if reason is None:
        assert h.reasons == ()
    else:
        assert reason in h.reasons


def test_sas_uncorrected_errors_are_failing():
    s = replace(fixture("smartctl-sas-hdd.json"), uncorrected_errors=4, reallocated_sectors=0)
    h = assess(s)
    assert h.state == "failing" and h.reasons == ("4 uncorrected read/write errors",)


@pytest.mark.parametrize(
    ("obs", "state", "reason"),
    [
        (DiskObservation(io_errors=1), "warning", "1 I/O error"),
        (DiskObservation(io_errors=9), "warning", "9 I/O errors"),
        (DiskObservation(io_errors=10), "failing", "10 I/O errors"),
        (DiskObservation(io_errors=100), "failed", "100 I/O errors"),
        (DiskObservation(checksum_failures=1), "warning", "1 checksum failure"),
        (DiskObservation(checksum_failures=10), "failing", "10 checksum failures"),
        (DiskObservation(latency_p99_ms=499, rotational=True), "ok", None),
        (DiskObservation(latency_p99_ms=500, rotational=True), "warning", "slow: p99 latency 500 ms"),
        (DiskObservation(latency_p99_ms=150, rotational=False), "warning", "slow: p99 latency 150 ms"),
        (DiskObservation(latency_p99_ms=6000), "failing", "very slow: p99 latency 6000 ms"),
        (DiskObservation(present=False), "offline", "the disk is missing"),
        (DiskObservation(mounted=False), "offline", "the disk's filesystem is not mounted"),
        (DiskObservation(label_ok=False, offline_reason="label belongs to appliance X"), "offline",
         "label belongs to appliance X"),
    ],
)
def test_daemon_counters(obs, state, reason):
    h = assess(clean(), obs)
    assert h.state == state
    if reason is None:
        assert h.reasons == ()
    else:
        assert h.reasons == (reason,)


def test_worst_rule_wins_and_all_reasons_are_kept():
    h = assess(clean(temperature_c=57, pending_sectors=2), DiskObservation(io_errors=3, mounted=False))
    assert h.state == "offline"
    assert h.reasons == ("the disk's filesystem is not mounted", "2 pending (unreadable) sectors",
                         "hot: 57 °C", "3 I/O errors")


def test_policy_is_tunable():
    strict = HealthPolicy(reallocated_warning=1, reallocated_failing=5, io_errors_warning=1,
                          io_errors_failing=2)
    assert assess(clean(reallocated_sectors=5), policy=strict).state == "failing"
    assert assess(clean(), DiskObservation(io_errors=2), policy=strict).state == "failing"


def test_worse_orders_states():
    assert [worse("ok", s) for s in STATES] == list(STATES)
    assert worse("failed", "warning") == "failed"


def test_transition_log(caplog):
    seen: list[Transition] = []
    log = TransitionLog(sink=seen.append, clock_ns=lambda: 42)
    with caplog.at_level(logging.INFO, logger="stowage.disks"):
        t1 = log.update("d1", Health("ok"))
        assert log.update("d1", Health("ok")) is None  # no change, no entry
        t2 = log.update("d1", Health("failing", ("2 pending (unreadable) sectors",)))
        t3 = log.update("d1", Health("ok"))
    assert t1 is not None and t1.old is None and t1.new == "ok"
    assert t2 is not None and (t2.old, t2.new, t2.at_ns) == ("ok", "failing", 42)
    assert t3 is not None and (t3.old, t3.new) == ("failing", "ok")
    assert seen == [t1, t2, t3]
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels == [
        ("INFO", "disk d1: ok (no problems)"),
        ("WARNING", "disk d1: ok -> failing (2 pending (unreadable) sectors)"),
        ("INFO", "disk d1: failing -> ok (no problems)"),
    ]
    log.forget("d1")
    assert log.update("d1", Health("ok")) is not None


@pytest.mark.parametrize(
    ("obs", "state", "reasons"),
    [
        (DiskObservation(read_only=True), "failing", ("filesystem is read-only",)),
        (DiskObservation(read_only=True, checksum_failures=1), "failing",
         ("1 checksum failure", "filesystem is read-only")),
        (DiskObservation(read_only=True, io_errors=100), "failed", ("100 I/O errors", "filesystem is read-only")),
    ],
)
def test_a_read_only_filesystem_is_failing(obs, state, reasons):
    h = assess(clean(), obs)
    assert (h.state, h.reasons) == (state, reasons)

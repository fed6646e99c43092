"""SMART parser on captured-shape smartctl 7.x JSON fixtures (tests/diskmgr/fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diskmgr.smart import SmartParseError, parse_smartctl, parse_smartctl_text, read_smart

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str):
    return parse_smartctl(json.loads((FIXTURES / name).read_text()))


def test_healthy_sata_hdd():
    r = load("smartctl-ata-healthy-hdd.json")
    assert r.available and r.protocol == "ATA"
    assert r.verdict == "passed"
    assert r.model == "WDC WD40EFRX-68N32N0" and r.serial.startswith("WD-")
    assert r.capacity_bytes == 4000787030016 and r.rotation_rate == 5400
    assert r.temperature_c == 34
    assert r.power_on_hours == 34571
    assert (r.reallocated_sectors, r.pending_sectors, r.offline_uncorrectable) == (0, 0, 0)
    assert r.media_errors is None and r.percentage_used is None
    assert r.failing_now == [] and r.failed_in_past == []
    assert len(r.self_tests) == 3
    assert r.last_self_test is not None and r.last_self_test.passed is True
    assert r.last_self_test.kind == "Short offline" and r.last_self_test.hours == 34560


def test_failing_sata_hdd():
    r = load("smartctl-ata-failing-hdd.json")
    assert r.available and r.verdict == "failed"
    assert r.reallocated_sectors == 61464
    assert r.pending_sectors == 2336 and r.offline_uncorrectable == 2336
    assert r.reported_uncorrect == 1522
    # the raw string's first number, not the packed 48-bit value
    assert r.temperature_c == 41
    assert r.failing_now == ["Reallocated_Sector_Ct (5)"]
    last = r.last_self_test
    assert last is not None and last.passed is False
    assert last.status == "Completed: read failure" and last.lba == 1953400126
    assert r.exit_status & 0x08


def test_nvme():
    r = load("smartctl-nvme.json")
    assert r.available and r.protocol == "NVMe" and r.verdict == "passed"
    assert r.temperature_c == 43 and r.power_on_hours == 9127
    assert r.media_errors == 0 and r.percentage_used == 7
    assert (r.available_spare, r.available_spare_threshold, r.critical_warning) == (100, 10, 0)
    assert r.reallocated_sectors is None and r.pending_sectors is None
    assert [t.passed for t in r.self_tests] == [True, None]  # second one was aborted, not failed
    assert r.self_tests[1].status == "Aborted: Controller Reset"


def test_sas_hdd():
    r = load("smartctl-sas-hdd.json")
    assert r.available and r.protocol == "SCSI" and r.verdict == "passed"
    assert r.model == "HGST HUH721010AL5200"
    assert r.temperature_c == 36 and r.power_on_hours == 38142
    assert r.reallocated_sectors == 12  # grown defect list
    assert r.uncorrected_errors == 0
    assert r.pending_sectors is None
    assert [(t.kind, t.passed, t.hours) for t in r.self_tests] == [
        ("Background short", True, 38120), ("Background long", True, 37801)]


def test_usb_bridge_unknown_is_unavailable():
    r = load("smartctl-usb-bridge-unknown.json")
    assert not r.available and r.verdict == "unavailable"
    assert "Unknown USB bridge" in r.unavailable_reason
    assert r.passed is None and r.temperature_c is None and r.self_tests == []


def test_usb_bridge_without_smart_capability_is_unavailable():
    r = load("smartctl-usb-scsi-no-smart.json")
    assert not r.available and r.verdict == "unavailable"
    assert r.unavailable_reason == "device lacks SMART capability"
    assert r.model == "JMicron Generic"  # identity is still reported


def test_loop_device_capture_from_this_machine_is_unavailable():
    r = load("smartctl-loop-captured.json")
    assert not r.available
    assert "Unable to detect device type" in r.unavailable_reason


def test_garbage_is_a_parse_error_not_a_crash():
    with pytest.raises(SmartParseError):
        parse_smartctl_text(b"smartctl: not json at all")
    with pytest.raises(SmartParseError):
        parse_smartctl_text(b"[1, 2]")
    # odd types inside a well-formed document are ignored, not fatal
    r = parse_smartctl({"smart_status": {"passed": "yes"}, "temperature": {"current": "hot"},
                        "ata_smart_attributes": {"table": [None, {"id": "x"}]}})
    assert r.available and r.passed is None and r.temperature_c is None
    # numbers JSON allows and int() refuses (1e400 is inf), and binary garbage: found by fuzzing
    r = parse_smartctl_text(b'{"temperature": {"current": 1e400}, "power_on_time": {"hours": -1e400},'
                            b' "smartctl": {"exit_status": 1e400}}')
    assert r.temperature_c is None and r.power_on_hours is None
    for garbage in (b"\x00\xfe\x80\x81garbage", b"\xff\xfe{\x00}\x00", b"[" * 100_000):
        with pytest.raises(SmartParseError):
            parse_smartctl_text(garbage)


def test_to_json_is_serialisable():
    r = load("smartctl-ata-failing-hdd.json")
    d = json.loads(json.dumps(r.to_json()))
    assert d["verdict"] == "failed" and d["self_tests"][0]["passed"] is False


def test_read_smart_on_a_real_loop_device(loop_device):
    r = read_smart(loop_device)
    assert not r.available and r.unavailable_reason

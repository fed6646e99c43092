"""SMART data from `smartctl --json -a` (smartmontools 7.x), for ATA/SATA, SAS (SCSI) and NVMe.

`parse_smartctl(doc)` is pure: it turns smartctl's JSON document into one `SmartReport` with the
few numbers a storage administrator acts on (overall verdict, temperature, power-on hours, the
sector counters, NVMe media errors / wear, the self-test log). A device smartctl cannot talk to
(a USB bridge it does not know, a loop device, a virtual disk) parses to `available=False` with
the reason smartctl gave — never an exception. `read_smart(device)` runs smartctl.

Counters that a protocol does not have stay None (not 0): "no data" and "zero errors" differ.
SAS has no pending/reallocated attributes; its grown defect list is reported as
`reallocated_sectors` (a grown defect is a reallocated sector) and its uncorrected read/write/
verify errors as `uncorrected_errors`.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

SMARTCTL_TIMEOUT = 60.0

# smartctl exit status bits (man smartctl, "RETURN VALUES").
EXIT_CMDLINE = 1 << 0  # command line did not parse / device type unknown
EXIT_OPEN_FAILED = 1 << 1  # device open failed or IDENTIFY failed / low-power mode
EXIT_SMART_CMD_FAILED = 1 << 2  # a SMART command failed or a checksum error
EXIT_DISK_FAILING = 1 << 3  # SMART status: DISK FAILING
EXIT_PREFAIL_NOW = 1 << 4  # prefail attribute at or below threshold
EXIT_USAGE_PAST = 1 << 5  # some attribute was at or below threshold in the past
EXIT_ERROR_LOG = 1 << 6  # device error log has entries
EXIT_SELFTEST_ERRORS = 1 << 7  # self-test log has errors


@dataclass(frozen=True)
class SelfTest:
    """One entry of the self-test log, newest first."""

    kind: str  # "Short offline", "Extended", "Background long", ...
    status: str  # smartctl's words
    passed: bool | None  # None: aborted/interrupted/in progress (neither pass nor fail)
    hours: int | None  # power-on hours when it ran
    lba: int | None = None  # first failing LBA, when the test failed on a read


@dataclass
class SmartReport:
    device: str
    available: bool
    unavailable_reason: str = ""
    protocol: str = ""  # "ATA" | "SCSI" | "NVMe" | ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    capacity_bytes: int | None = None
    rotation_rate: int | None = None  # rpm; 0 = solid state
    passed: bool | None = None  # overall self-assessment; None = not reported
    temperature_c: int | None = None
    power_on_hours: int | None = None
    reallocated_sectors: int | None = None  # ATA attr 5; SAS grown defect list
    pending_sectors: int | None = None  # ATA attr 197; SAS pending defects
    offline_uncorrectable: int | None = None  # ATA attr 198
    reported_uncorrect: int | None = None  # ATA attr 187
    uncorrected_errors: int | None = None  # SAS error counter log, read+write+verify
    media_errors: int | None = None  # NVMe
    percentage_used: int | None = None  # NVMe endurance estimate (may exceed 100)
    available_spare: int | None = None  # NVMe, percent
    available_spare_threshold: int | None = None  # NVMe, percent
    critical_warning: int | None = None  # NVMe bit field
    failing_now: list[str] = field(default_factory=list)  # attributes at/below threshold now
    failed_in_past: list[str] = field(default_factory=list)
    self_tests: list[SelfTest] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    exit_status: int = 0

    @property
    def verdict(self) -> str:
        """"passed" | "failed" | "unknown" | "unavailable"."""
        if not self.available:
            return "unavailable"
        if self.passed is None:
            return "unknown"
        return "passed" if self.passed else "failed"

    @property
    def last_self_test(self) -> SelfTest | None:
        return self.self_tests[0] if self.self_tests else None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict
        return d


class SmartParseError(ValueError):
    """smartctl's output is not a JSON document at all."""


def parse_smartctl_text(text: str | bytes, device: str = "") -> SmartReport:
    try:
        # smartctl writes UTF-8; json.loads would guess UTF-16/32 from binary garbage's first bytes
        doc = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError:
        raise SmartParseError("smartctl output is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise SmartParseError(f"smartctl output is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SmartParseError("smartctl output is not a JSON object")
    return parse_smartctl(doc, device)


def parse_smartctl(doc: dict[str, Any], device: str = "") -> SmartReport:
    meta = _dict(doc.get("smartctl"))
    exit_status = _int(meta.get("exit_status")) or 0
    messages = [str(m.get("string", "")) for m in _list(meta.get("messages")) if isinstance(m, dict)]
    dev = _dict(doc.get("device"))
    name = device or str(dev.get("name") or "")
    protocol = str(dev.get("protocol") or "")
    support = _dict(doc.get("smart_support"))

    has_data = any(
        k in doc
        for k in ("smart_status", "ata_smart_attributes", "nvme_smart_health_information_log",
                  "scsi_error_counter_log", "scsi_grown_defect_list")
    )
    report = SmartReport(device=name, available=has_data, protocol=protocol, messages=messages,
                         exit_status=exit_status)
    _identity(doc, report)
    if support.get("available") is False:
        report.available = False
        report.unavailable_reason = "device lacks SMART capability"
        return report
    if support.get("enabled") is False and not has_data:
        report.available = False
        report.unavailable_reason = "SMART is disabled on the device"
        return report
    if not has_data:
        errors = [str(m.get("string", "")) for m in _list(meta.get("messages"))
                  if isinstance(m, dict) and m.get("severity") == "error"]
        report.unavailable_reason = "; ".join(e for e in errors if e) or (
            f"smartctl returned no SMART data (exit status {exit_status})")
        return report

    status = _dict(doc.get("smart_status"))
    if isinstance(status.get("passed"), bool):
        report.passed = status["passed"]
    elif exit_status & EXIT_DISK_FAILING:
        report.passed = False
    report.temperature_c = _int(_dict(doc.get("temperature")).get("current"))
    report.power_on_hours = _int(_dict(doc.get("power_on_time")).get("hours"))

    if "ata_smart_attributes" in doc:
        _ata(doc, report)
    if "nvme_smart_health_information_log" in doc:
        _nvme(doc, report)
    if protocol == "SCSI" or any(k.startswith("scsi_") for k in doc):
        _scsi(doc, report)
    return report


def _identity(doc: dict[str, Any], r: SmartReport) -> None:
    r.model = str(doc.get("model_name") or doc.get("scsi_model_name") or "")
    r.serial = str(doc.get("serial_number") or "")
    r.firmware = str(doc.get("firmware_version") or doc.get("revision") or doc.get("scsi_revision") or "")
    r.capacity_bytes = _int(_dict(doc.get("user_capacity")).get("bytes"))
    r.rotation_rate = _int(doc.get("rotation_rate"))


def _raw(attr: dict[str, Any]) -> int | None:
    """An attribute's raw count. The raw string's first number is what smartctl decoded for
    this vendor (e.g. "41 (Min/Max 38/53)"); the 48-bit raw value packs extra fields."""
    raw = _dict(attr.get("raw"))
    m = re.match(r"\s*(\d+)", str(raw.get("string", "")))
    if m:
        return int(m.group(1))
    return _int(raw.get("value"))


_ATA_COUNTERS = {
    5: "reallocated_sectors",
    187: "reported_uncorrect",
    197: "pending_sectors",
    198: "offline_uncorrectable",
}


def _ata(doc: dict[str, Any], r: SmartReport) -> None:
    table = _list(_dict(doc.get("ata_smart_attributes")).get("table"))
    for attr in table:
        if not isinstance(attr, dict):
            continue
        aid = _int(attr.get("id"))
        if aid in _ATA_COUNTERS:
            setattr(r, _ATA_COUNTERS[aid], _raw(attr))
        elif aid in (194, 190) and r.temperature_c is None:
            r.temperature_c = _raw(attr)
        elif aid == 9 and r.power_on_hours is None:
            r.power_on_hours = _raw(attr)
        when = str(attr.get("when_failed") or "")
        label = f"{attr.get('name', '?')} ({aid})"
        if when in ("now", "FAILING_NOW"):
            r.failing_now.append(label)
        elif when in ("past", "In_the_past"):
            r.failed_in_past.append(label)
    for entry in _list(_dict(_dict(doc.get("ata_smart_self_test_log")).get("standard")).get("table")):
        if not isinstance(entry, dict):
            continue
        status = _dict(entry.get("status"))
        passed: bool | None
        if isinstance(status.get("passed"), bool):
            passed = status["passed"]
        else:
            # High nibble of the status byte: 0 ok, 1-2 aborted/interrupted, 3-8 failed, 15 running.
            code = (_int(status.get("value")) or 0) >> 4
            passed = True if code == 0 else (False if 3 <= code <= 8 else None)
        r.self_tests.append(SelfTest(
            kind=str(_dict(entry.get("type")).get("string", "")),
            status=str(status.get("string", "")),
            passed=passed,
            hours=_int(entry.get("lifetime_hours")),
            lba=_int(entry.get("lba")),
        ))


def _nvme(doc: dict[str, Any], r: SmartReport) -> None:
    log = _dict(doc.get("nvme_smart_health_information_log"))
    r.media_errors = _int(log.get("media_errors"))
    r.percentage_used = _int(log.get("percentage_used"))
    r.available_spare = _int(log.get("available_spare"))
    r.available_spare_threshold = _int(log.get("available_spare_threshold"))
    r.critical_warning = _int(log.get("critical_warning"))
    if r.temperature_c is None:
        r.temperature_c = _int(log.get("temperature"))
    if r.power_on_hours is None:
        r.power_on_hours = _int(log.get("power_on_hours"))
    if r.passed is None and r.critical_warning is not None:
        r.passed = r.critical_warning == 0
    for entry in _list(_dict(doc.get("nvme_self_test_log")).get("table")):
        if not isinstance(entry, dict):
            continue
        result = _dict(entry.get("self_test_result"))
        code = _int(result.get("value"))
        # NVMe Device Self-test Result: 0 ok; 5-7 failed; 1-4, 8, 9 aborted.
        passed = True if code == 0 else (False if code in (5, 6, 7) else None)
        lba = entry.get("lba")
        r.self_tests.append(SelfTest(
            kind=str(_dict(entry.get("self_test_code")).get("string", "")),
            status=str(result.get("string", "")),
            passed=passed,
            hours=_int(entry.get("power_on_hours")),
            lba=_int(lba.get("value")) if isinstance(lba, dict) else _int(lba),
        ))


def _scsi(doc: dict[str, Any], r: SmartReport) -> None:
    if "scsi_grown_defect_list" in doc:
        r.reallocated_sectors = _int(doc.get("scsi_grown_defect_list"))
    pending = doc.get("scsi_pending_defects")
    if isinstance(pending, dict):
        r.pending_sectors = _int(pending.get("count"))
    counters = _dict(doc.get("scsi_error_counter_log"))
    if counters:
        total = 0
        for lane in ("read", "write", "verify"):
            total += _int(_dict(counters.get(lane)).get("total_uncorrected_errors")) or 0
        r.uncorrected_errors = total
    i = 0
    while isinstance(doc.get(f"scsi_self_test_{i}"), dict):
        entry = doc[f"scsi_self_test_{i}"]
        result = _dict(entry.get("result"))
        code = _int(result.get("value"))
        # SCSI self-test results: 0 ok; 3-7 failed; 1-2 aborted; 15 in progress.
        passed = True if code == 0 else (False if code is not None and 3 <= code <= 7 else None)
        if code is None:
            text = str(result.get("string", "")).lower()
            passed = True if text == "completed" else (False if "fail" in text else None)
        lba = entry.get("failed_lba")
        r.self_tests.append(SelfTest(
            kind=str(_dict(entry.get("code")).get("string", "")),
            status=str(result.get("string", "")),
            passed=passed,
            hours=_int(_dict(entry.get("power_on_time")).get("hours")),
            lba=_int(lba.get("value")) if isinstance(lba, dict) else _int(lba),
        ))
        i += 1


# What read_smart(standby=True) reports for a drive it left asleep (smartctl -n standby).
IN_STANDBY = "the disk is spun down; smartctl -n standby left it asleep"


def smartctl_command(device: str, *, standby: bool = False, smartctl: str = "smartctl") -> list[str]:
    """`-n standby`: smartctl does not wake a spun-down drive, it exits with status 2 instead."""
    return [smartctl, "--json", "-a", *(["-n", "standby"] if standby else []), device]


def read_smart(device: str, *, smartctl: str = "smartctl", timeout: float = SMARTCTL_TIMEOUT,
               standby: bool = False) -> SmartReport:
    """Run `smartctl --json -a DEVICE` and parse it. Never raises for a device without SMART.
    `standby`: leave a spun-down drive asleep (the report is then unavailable, IN_STANDBY)."""
    try:
        proc = subprocess.run(smartctl_command(device, standby=standby, smartctl=smartctl), capture_output=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        return SmartReport(device=device, available=False,
                           unavailable_reason="smartctl is not installed (apt install smartmontools)")
    except subprocess.TimeoutExpired:
        return SmartReport(device=device, available=False,
                           unavailable_reason=f"smartctl did not answer within {timeout:.0f} s")
    if standby and proc.returncode == EXIT_OPEN_FAILED:
        return SmartReport(device=device, available=False, unavailable_reason=IN_STANDBY,
                           exit_status=proc.returncode)
    try:
        return parse_smartctl_text(proc.stdout, device)
    except SmartParseError as exc:
        err = proc.stderr.decode(errors="replace").strip()
        return SmartReport(device=device, available=False, unavailable_reason=err or str(exc),
                           exit_status=proc.returncode)


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):  # JSON's 1e400 is inf, and nan is no number: neither is a reading
        return int(v) if math.isfinite(v) else None
    if isinstance(v, str) and v.strip().isascii() and v.strip().isdigit():
        return int(v.strip())
    return None

"""The disk health policy: SMART + the daemon's own error counts and latency -> one state.

The result is one of the health states of diskmgr.state, from best to worst (placement and
healing obey them): ok, warning (early signs: a few reallocations, heat, I/O errors), failing
(a read-only filesystem, pending sectors...), failed, offline (missing device, unmounted,
unreadable label).

`assess()` is a pure function of its inputs, so the whole policy is unit-tested on fixtures.
Every rule that fires adds one human reason; the state is the worst rule that fired. The
thresholds live in `HealthPolicy` so an appliance can tune them; the defaults follow what
large fleets report as failure predictors (any pending/uncorrectable sector, growing
reallocations, failed self-tests, NVMe critical warnings) and are documented beside each rule.

`TransitionLog` remembers each disk's last state and logs (and optionally records) every change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .smart import SmartReport
from .state import HEALTH_STATES, DiskState

STATES = HEALTH_STATES
_RANK = {s: i for i, s in enumerate(STATES)}


def worse(a: DiskState, b: DiskState) -> DiskState:
    return a if _RANK[a] >= _RANK[b] else b


@dataclass(frozen=True)
class HealthPolicy:
    # Reallocated sectors (ATA attr 5, SAS grown defects): a few happen; a growing number means
    # the surface is going.
    reallocated_warning: int = 1
    reallocated_failing: int = 100
    # Pending / offline-uncorrectable sectors are data the disk cannot read right now.
    pending_failing: int = 1
    # SAS uncorrected read/write/verify errors, NVMe media errors: data was lost on the device.
    uncorrected_failing: int = 1
    # NVMe endurance used (percent of rated life).
    wear_warning: int = 80
    wear_failing: int = 100
    # Temperature in °C; SSDs are rated hotter than spinning disks.
    hdd_temp_warning: int = 55
    hdd_temp_failing: int = 65
    ssd_temp_warning: int = 70
    ssd_temp_failing: int = 80
    # The daemon's own counters since the disk was attached (or last reset by the operator).
    io_errors_warning: int = 1
    io_errors_failing: int = 10
    io_errors_failed: int = 100
    checksum_warning: int = 1
    checksum_failing: int = 10
    # Observed latency of the disk's operations (the daemon's p99, milliseconds).
    hdd_latency_warning_ms: float = 500.0
    ssd_latency_warning_ms: float = 100.0
    latency_failing_ms: float = 5000.0


DEFAULT_POLICY = HealthPolicy()


@dataclass(frozen=True)
class DiskObservation:
    """What the daemon knows about a disk besides SMART."""

    present: bool = True  # the block device (or directory) exists
    mounted: bool = True  # its filesystem is mounted where the appliance expects it
    label_ok: bool = True  # the identity label is readable and ours
    io_errors: int = 0
    checksum_failures: int = 0
    latency_p99_ms: float | None = None  # over the recent window (diskmgr.latency); None: too few samples
    read_only: bool = False  # the filesystem is mounted read-only (the kernel remounts it so after errors)
    rotational: bool | None = None  # None: unknown (then the SMART rotation rate decides)
    offline_reason: str = ""  # extra words when present/mounted/label_ok is False


@dataclass(frozen=True)
class Health:
    state: DiskState
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # facts that do not change the state (e.g. no SMART data)


def assess(smart: SmartReport | None, obs: DiskObservation | None = None,
           policy: HealthPolicy = DEFAULT_POLICY) -> Health:
    obs = obs or DiskObservation()
    state = DiskState.OK
    reasons: list[str] = []
    notes: list[str] = []

    def rule(s: DiskState, reason: str) -> None:
        nonlocal state
        state = worse(state, s)
        reasons.append(reason)

    if not obs.present:
        rule(DiskState.OFFLINE, obs.offline_reason or "the disk is missing")
    elif not obs.mounted:
        rule(DiskState.OFFLINE, obs.offline_reason or "the disk's filesystem is not mounted")
    elif not obs.label_ok:
        rule(DiskState.OFFLINE, obs.offline_reason or "the disk's identity label is missing or not ours")

    rotational = obs.rotational
    if smart is not None and smart.available and rotational is None and smart.rotation_rate is not None:
        rotational = smart.rotation_rate > 0
    if smart is None:
        notes.append("SMART not read")
    elif not smart.available:
        notes.append(f"no SMART data: {smart.unavailable_reason}" if smart.unavailable_reason
                     else "no SMART data")
    else:
        _smart_rules(smart, policy, rotational, rule)

    if obs.io_errors >= policy.io_errors_failed:
        rule(DiskState.FAILED, f"{obs.io_errors} I/O errors")
    elif obs.io_errors >= policy.io_errors_failing:
        rule(DiskState.FAILING, f"{obs.io_errors} I/O errors")
    elif obs.io_errors >= policy.io_errors_warning:
        rule(DiskState.WARNING, f"{obs.io_errors} I/O error{'s' if obs.io_errors != 1 else ''}")
    if obs.checksum_failures >= policy.checksum_failing:
        rule(DiskState.FAILING, f"{obs.checksum_failures} checksum failures")
    elif obs.checksum_failures >= policy.checksum_warning:
        n = obs.checksum_failures
        rule(DiskState.WARNING, f"{n} checksum failure{'s' if n != 1 else ''}")
    if obs.latency_p99_ms is not None:
        limit = policy.ssd_latency_warning_ms if rotational is False else policy.hdd_latency_warning_ms
        if obs.latency_p99_ms >= policy.latency_failing_ms:
            rule(DiskState.FAILING, f"very slow: p99 latency {obs.latency_p99_ms:.0f} ms")
        elif obs.latency_p99_ms >= limit:
            rule(DiskState.WARNING, f"slow: p99 latency {obs.latency_p99_ms:.0f} ms")
    if obs.read_only:
        # nothing can be written there any more, though what it holds is still read
        rule(DiskState.FAILING, "filesystem is read-only")
    return Health(state, tuple(reasons), tuple(notes))


def _smart_rules(s: SmartReport, p: HealthPolicy, rotational: bool | None,
                 rule: Callable[[DiskState, str], None]) -> None:
    if s.passed is False:
        rule(DiskState.FAILED, "SMART overall health self-assessment: FAILED")
    for name in s.failing_now:
        rule(DiskState.FAILING, f"SMART attribute at or below threshold: {name}")
    for name in s.failed_in_past:
        rule(DiskState.WARNING, f"SMART attribute was below threshold in the past: {name}")

    realloc = s.reallocated_sectors or 0
    what = "grown defects" if s.protocol == "SCSI" else "reallocated sectors"
    if realloc >= p.reallocated_failing:
        rule(DiskState.FAILING, f"{realloc} {what}")
    elif realloc >= p.reallocated_warning:
        rule(DiskState.WARNING, f"{realloc} {what}")
    if (s.pending_sectors or 0) >= p.pending_failing:
        rule(DiskState.FAILING, f"{s.pending_sectors} pending (unreadable) sectors")
    if (s.offline_uncorrectable or 0) >= p.pending_failing:
        rule(DiskState.FAILING, f"{s.offline_uncorrectable} offline-uncorrectable sectors")
    if (s.uncorrected_errors or 0) >= p.uncorrected_failing:
        rule(DiskState.FAILING, f"{s.uncorrected_errors} uncorrected read/write errors")
    if (s.media_errors or 0) >= p.uncorrected_failing:
        rule(DiskState.FAILING, f"{s.media_errors} NVMe media errors")

    cw = s.critical_warning or 0
    if cw & 0x01:
        rule(DiskState.FAILING, "NVMe available spare below threshold")
    if cw & 0x04:
        rule(DiskState.FAILING, "NVMe reports degraded reliability")
    if cw & 0x08:
        rule(DiskState.FAILED, "NVMe media is read-only")
    if cw & 0x02:
        rule(DiskState.WARNING, "NVMe temperature warning")
    if s.percentage_used is not None:
        if s.percentage_used >= p.wear_failing:
            rule(DiskState.FAILING, f"endurance used {s.percentage_used}%")
        elif s.percentage_used >= p.wear_warning:
            rule(DiskState.WARNING, f"endurance used {s.percentage_used}%")

    last = s.last_self_test
    if last is not None and last.passed is False:
        at = f" at {last.hours} h" if last.hours is not None else ""
        rule(DiskState.FAILING, f"last self-test failed: {last.kind}: {last.status}{at}")

    if s.temperature_c is not None:
        warn, fail = ((p.ssd_temp_warning, p.ssd_temp_failing) if rotational is False
                      else (p.hdd_temp_warning, p.hdd_temp_failing))
        if s.temperature_c >= fail:
            rule(DiskState.FAILING, f"too hot: {s.temperature_c} °C")
        elif s.temperature_c >= warn:
            rule(DiskState.WARNING, f"hot: {s.temperature_c} °C")


@dataclass(frozen=True)
class Transition:
    disk_id: str
    old: DiskState | None  # None: first assessment of this disk
    new: DiskState
    reasons: tuple[str, ...]
    at_ns: int

    def describe(self) -> str:
        why = "; ".join(self.reasons) or "no problems"
        if self.old is None:
            return f"disk {self.disk_id}: {self.new} ({why})"
        return f"disk {self.disk_id}: {self.old} -> {self.new} ({why})"


@dataclass
class TransitionLog:
    """Remembers the last state per disk; `update` returns (and logs) a Transition on change.

    `sink` receives every transition (e.g. to persist it in the metadata DB or an event
    stream); the logger gets WARNING for a change for the worse, INFO otherwise.
    """

    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("stowage.disks"))
    sink: Callable[[Transition], None] | None = None
    clock_ns: Callable[[], int] = time.time_ns
    last: dict[str, DiskState] = field(default_factory=dict)

    def update(self, disk_id: str, health: Health) -> Transition | None:
        old = self.last.get(disk_id)
        if old == health.state:
            return None
        self.last[disk_id] = health.state
        t = Transition(disk_id, old, health.state, health.reasons, self.clock_ns())
        got_worse = _RANK[health.state] > _RANK[old or DiskState.OK]
        self.logger.log(logging.WARNING if got_worse else logging.INFO, "%s", t.describe())
        if self.sink is not None:
            self.sink(t)
        return t

    def forget(self, disk_id: str) -> None:
        self.last.pop(disk_id, None)

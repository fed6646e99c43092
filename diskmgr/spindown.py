"""Disk spin-down for archive pools: `hdparm -S` timeouts, and power states read without waking.

`hdparm -S N` sets the drive's standby (spin-down) timeout. N encodes the time: 0 = never,
1-240 = N x 5 s (up to 20 min), 241-251 = (N - 240) x 30 min (up to 5.5 h). `standby_value`
turns seconds into the nearest N that is not shorter than asked. `hdparm -C` reads the power state
without waking the drive ("active/idle", "standby", "sleeping").

Only real block devices spin: directory disks (the embedded mode) and loop devices are skipped
by the caller (`spins`). On a loop device hdparm fails (no ATA behind it); `apply_spindown`
reports such a failure with hdparm's own words and never raises.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

HDPARM_TIMEOUT = 30.0
MAX_VALUE = 251  # 5.5 hours
STANDBY_STATES = frozenset({"standby", "sleeping"})


def standby_value(seconds: float) -> int:
    """hdparm -S's N for a spin-down after `seconds` idle (0: never)."""
    if seconds <= 0:
        return 0
    if seconds <= 240 * 5:
        return max(1, -(-int(seconds) // 5))
    return min(MAX_VALUE, 240 + -(-int(seconds) // 1800))


def spindown_command(device: str, seconds: float, hdparm: str = "hdparm") -> list[str]:
    return [hdparm, "-S", str(standby_value(seconds)), device]


def power_state_command(device: str, hdparm: str = "hdparm") -> list[str]:
    return [hdparm, "-C", device]


def spins(device: str | None) -> bool:
    """Can this disk spin down at all: a real block device, not a directory or a loop device."""
    return bool(device) and str(device).startswith("/dev/") and "/loop" not in str(device)


def parse_power_state(output: str) -> str:
    """hdparm -C's "drive state is:  standby" -> "standby"; "unknown" when it says nothing."""
    for line in output.splitlines():
        if "drive state is:" in line:
            return line.split("drive state is:", 1)[1].strip() or "unknown"
    return "unknown"


@dataclass(frozen=True)
class SpinDownResult:
    device: str
    command: list[str]
    applied: bool
    reason: str = ""  # why it was not applied (hdparm's words)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str] | str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=HDPARM_TIMEOUT, check=False)
    except FileNotFoundError:
        return "hdparm is not installed (apt install hdparm)"
    except subprocess.TimeoutExpired:
        return f"hdparm did not answer within {HDPARM_TIMEOUT:.0f} s"


def apply_spindown(device: str, seconds: float, hdparm: str = "hdparm") -> SpinDownResult:
    """Set the device's standby timeout (blocking). Never raises."""
    cmd = spindown_command(device, seconds, hdparm)
    proc = _run(cmd)
    if isinstance(proc, str):
        return SpinDownResult(device, cmd, False, proc)
    if proc.returncode != 0:
        why = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
        return SpinDownResult(device, cmd, False, why)
    return SpinDownResult(device, cmd, True)


def is_asleep(device: str, hdparm: str = "hdparm") -> bool:
    """Is the drive spun down (standby or sleeping)? False when hdparm cannot tell (blocking)."""
    proc = _run(power_state_command(device, hdparm))
    if isinstance(proc, str) or proc.returncode != 0:
        return False
    return parse_power_state(proc.stdout) in STANDBY_STATES

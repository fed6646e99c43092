"""Start a SMART self-test on every data disk (run by stowage-smart-selftest.service).

Installed as /opt/stowage/libexec/stowage-smart-selftest and run with the venv's Python. The
drive runs the test in the background; the daemon's disk monitor reads the result later from
`smartctl --json` like any other SMART attribute, so this only has to start it.

Which disks, in order of preference:
1. `stowage disks smart --self-test TYPE`, if this version of the CLI has it (it knows the pool);
2. the devices named by `stowage disks --json`;
3. every device `smartctl --scan` finds (a box whose daemon is down still gets tested).
Directory-backed disks have no device and are skipped. Exit status: 0 when every test started
(or there was nothing to test), 1 when some device refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

STOWAGE = "/opt/stowage/venv/bin/stowage"


@dataclass(frozen=True)
class Device:
    path: str
    kind: str = ""  # smartctl -d TYPE, when smartctl --scan reported one


def run(argv: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def stowage_binary() -> str | None:
    return shutil.which("stowage") or (STOWAGE if shutil.which(STOWAGE) else None)


def cli_has_self_test(stowage: str) -> bool:
    try:
        out = run([stowage, "disks", "smart", "--help"], timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "--self-test" in out.stdout


def device_paths(doc: Any) -> Iterator[str]:
    """Every /dev/... string under a 'device'/'dev'/'devnode' key, wherever the CLI nests it."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("device", "dev", "devnode") and isinstance(value, str) and value.startswith("/dev/"):
                yield value
            else:
                yield from device_paths(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from device_paths(item)


def devices_from_stowage(stowage: str) -> list[Device] | None:
    try:
        out = run([stowage, "disks", "--json"], timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        return None
    return [Device(p) for p in dict.fromkeys(device_paths(doc))]


def devices_from_scan() -> list[Device]:
    out = run(["smartctl", "--scan", "--json"])
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        return []
    return [
        Device(d["name"], d.get("type", ""))
        for d in doc.get("devices", [])
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    ]


def start_test(device: Device, test: str) -> bool:
    argv = ["smartctl", "-t", test]
    if device.kind:
        argv += ["-d", device.kind]
    out = run([*argv, device.path])
    # smartctl's exit status is a bit mask; bits 0-2 mean the test was not started.
    ok = out.returncode & 0b111 == 0
    last = (out.stdout.strip().splitlines() or [""])[-1]
    print(f"{device.path}: {'started' if ok else 'FAILED'} {test} self-test: {last}", flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--type", default="short", choices=["short", "long", "conveyance", "offline"])
    args = parser.parse_args(argv)
    if shutil.which("smartctl") is None:
        print("smartctl is not installed (apt-get install smartmontools)", file=sys.stderr)
        return 1
    stowage = stowage_binary()
    if stowage and cli_has_self_test(stowage):
        return subprocess.call([stowage, "disks", "smart", "--self-test", args.type])
    devices = devices_from_stowage(stowage) if stowage else None
    if devices is None:
        print("stowage disks --json unavailable; testing every device smartctl --scan finds", flush=True)
        devices = devices_from_scan()
    if not devices:
        print("no SMART-capable data disks; nothing to test", flush=True)
        return 0
    results = [start_test(d, args.type) for d in devices]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

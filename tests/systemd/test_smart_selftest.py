"""systemd/smart_selftest.py: which devices it picks, and a real run on this host."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smart_selftest", REPO / "systemd/smart_selftest.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["smart_selftest"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_device_paths_found_wherever_the_cli_nests_them() -> None:
    mod = load()
    doc = {"pools": [{"disks": [{"device": "/dev/sda", "path": "/var/lib/stowage/disks/a"},
                                {"device": "/dev/sdb"}, {"device": None}, {"dev": "/dev/nvme0n1"}]}],
           "disks": [{"path": "/srv/disk0"}, {"devnode": "/dev/sda"}, {"device": "sdc"}]}
    assert list(dict.fromkeys(mod.device_paths(doc))) == ["/dev/sda", "/dev/sdb", "/dev/nvme0n1"]


@pytest.mark.skipif(shutil.which("smartctl") is None, reason="smartmontools is not installed")
def test_runs_against_this_hosts_devices(capsys: pytest.CaptureFixture[str]) -> None:
    """With no stowage daemon reachable it falls back to smartctl --scan; on a VM without SMART
    devices that is 'nothing to test' (exit 0); on a box with disks every test must start."""
    mod = load()
    mod.__dict__["STOWAGE"] = "/nonexistent/stowage"
    if mod.devices_from_scan():
        pytest.skip("this host has SMART devices; not starting self-tests on them from a test")
    assert mod.main(["--type", "short"]) == 0
    assert "nothing to test" in capsys.readouterr().out

"""The unit files pass `systemd-analyze verify`, and say what the acceptance asks of them.

`systemd-analyze verify` also checks that every Exec*= command is executable. The units name
the install paths (/opt/stowage/venv/bin/...), which exist only on an installed box, so the
verification runs against a root directory holding this host's systemd units, our units under
/etc/systemd/system, and at the install paths the entry points of the checkout's own venv
(real executables, not stand-ins). tests/systemd/test_nspawn_boot.py verifies the units once
more inside the built image, against the binaries install.sh really put there.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = sorted(p.name for p in (REPO / "systemd").iterdir() if p.suffix in (".service", ".timer"))
HOST_UNITS = Path("/usr/lib/systemd/system")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not HOST_UNITS.is_dir(),
    reason="systemd-analyze or the host's systemd units are not installed (apt-get install systemd)",
)


def exec_paths(unit: Path) -> list[str]:
    paths = []
    for line in unit.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().startswith("Exec"):
            paths.append(value.strip().lstrip("-@:+!").split()[0])
    return paths


def verify_root(tmp_path: Path, unit_texts: dict[str, str]) -> Path:
    root = tmp_path / "root"
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    real = {"stowage": Path(sys.prefix) / "bin/stowage", "python3": Path(sys.executable), "kill": Path("/bin/kill")}
    for name, text in unit_texts.items():
        (unit_dir / name).write_text(text)
        for cmd in exec_paths(unit_dir / name):
            target = root / cmd.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            source = real.get(Path(cmd).name)
            assert source is not None and source.exists(), f"no real executable for {cmd}"
            if not target.exists():
                shutil.copy2(source, target)
    return root


def verify(root: Path, units: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", *units],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_there_are_units() -> None:
    assert {"stowage.service", "stowage-smart-selftest.service", "stowage-smart-selftest.timer"} <= set(UNITS)


def test_every_unit_verifies_without_a_warning(tmp_path: Path) -> None:
    root = verify_root(tmp_path, {u: (REPO / "systemd" / u).read_text() for u in UNITS})
    out = verify(root, UNITS)
    assert out.returncode == 0, out.stderr
    # verify exits 0 on unknown keys and bad values (it only warns), so warnings fail too.
    assert out.stderr.strip() == "" and out.stdout.strip() == "", out.stderr + out.stdout


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key in our service is reported."""
    text = (REPO / "systemd/stowage.service").read_text().replace("NotifyAccess=", "NotifyAcess=")
    root = verify_root(tmp_path, {"stowage.service": text})
    out = verify(root, ["stowage.service"])
    assert "NotifyAcess" in out.stderr


def service_section(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((REPO / "systemd" / name).read_text())
    return parser["Service"]


def test_stowage_service_contract() -> None:
    svc = service_section("stowage.service")
    assert svc["Type"] == "notify"
    assert svc["NotifyAccess"] == "main"
    assert int(svc["WatchdogSec"]) > 0
    assert svc["Restart"] == "on-failure"
    assert int(svc["TimeoutStopSec"]) > 0
    assert svc["StateDirectory"] == "stowage"
    assert svc["ExecStart"] == "/opt/stowage/venv/bin/stowage serve --config /etc/stowage/stowage.toml"
    assert svc["NoNewPrivileges"] == "yes"
    # Options that would give the daemon a private mount namespace hide its FUSE and disk mounts
    # from the host (see the comment in the unit): they must stay out.
    for hidden in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
                   "ProtectControlGroups", "ReadWritePaths", "PrivateMounts", "MountFlags"):
        assert hidden not in svc, hidden
    assert "/dev/fuse rw" in (REPO / "systemd/stowage.service").read_text()

"""`stowage status` (human and --json) against the running daemon and with the daemon stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_status_running_and_stopped(daemon) -> None:
    assert (daemon.data_dir / "credentials.toml").stat().st_mode & 0o777 == 0o600
    s3 = daemon.s3()
    s3.create_bucket(Bucket="one")
    s3.create_bucket(Bucket="two")
    for i in range(3):
        s3.put_object(Bucket="one", Key=f"k{i}", Body=b"x" * 1000)
    s3.put_object(Bucket="two", Key="k", Body=b"y")
    st = json.loads(daemon.cli("status", "--json").stdout)
    assert st["version"] and st["uptime_seconds"] >= 0 and st["pid"] == daemon.proc.pid
    assert st["s3_endpoint"] == daemon.endpoint
    assert st["buckets"] == 2 and st["objects"] == 4 and st["objects_per_bucket"] == {"one": 3, "two": 1}
    pool = st["pools"][0]
    assert pool["geometry"]["k"] == 4 and pool["geometry"]["m"] == 2 and pool["disks"] == 6
    assert pool["usable_bytes"] < pool["raw_bytes"]
    assert len(st["disks"]) == 6 and all(d["state"] == "ok" for d in st["disks"])
    human = daemon.cli("status").stdout
    assert daemon.endpoint in human and "4+2" in human and "objects: 4" in human

    daemon.stop()
    st = json.loads(daemon.cli("status", "--json").stdout)
    assert st["running"] is False and st["buckets"] == 2 and st["objects"] == 4
    assert "not running" in daemon.cli("status").stdout


def test_status_without_an_appliance(tmp_path) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "appliance", "status", "--data", str(tmp_path / "none")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "no appliance" in r.stderr
    r = subprocess.run([sys.executable, "-m", "appliance", "status", "--config", str(tmp_path / "missing.toml")],
                       capture_output=True, text=True)
    assert r.returncode == 78 and "no such file" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [("user", "add", "alice"), ("user", "list"), ("kms", "key", "create", "k1"),
                                  ("policy", "list"), ("metrics-token",)])
def test_offline_commands_refuse_a_mistyped_data_dir(tmp_path: Path, args: tuple[str, ...]) -> None:
    """With no daemon answering, these run on the metadata DB themselves: on a path holding no
    appliance they created one (and `user add` printed a secret for it)."""
    import subprocess
    import sys

    typo = tmp_path / "typo"
    r = subprocess.run([sys.executable, "-m", "appliance", *args, "--data", str(typo)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "no appliance at" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not typo.exists() or not any(typo.rglob("*"))
    afile = tmp_path / "a-file"
    afile.write_text("")
    r = subprocess.run([sys.executable, "-m", "appliance", *args, "--data", str(afile)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr

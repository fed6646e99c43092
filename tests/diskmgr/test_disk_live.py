"""A loop disk added while the real daemon runs (live attach), and the same disk missing at the
next start: the daemon keeps it offline and writes nothing into its empty mount point."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from diskmgr.label import is_mounted

GIB = 1 << 30


def cli(*args: str, etc: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STOWAGE_SYSCONF_ROOT=str(etc))
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, env=env,
                          timeout=300)


class Daemon:
    def __init__(self, data: Path, log: Path) -> None:
        self.data, self.log = data, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "appliance", "serve", "--data", str(self.data), "--no-mount",
                 "--listen", "127.0.0.1:0"], stdout=log, stderr=subprocess.STDOUT)
        sock = self.data / "control.sock"
        for _ in range(600):  # wait for readiness (the control socket answers), not a timing assertion
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log.read_text()[-2000:]}")
            if sock.exists():
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(str(sock))
                    return
                except OSError:
                    pass
                finally:
                    s.close()
            time.sleep(0.1)
        raise RuntimeError("daemon did not come up")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    data = tmp_path / "appliance"
    data.mkdir()
    d = Daemon(data, tmp_path / "daemon.log")
    try:
        yield d
    finally:
        d.stop()


def rows(data: Path, etc: Path) -> dict:
    r = cli("disks", "--data", str(data), "--json", "--no-smart", etc=etc)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_live_attach_then_missing_disk_stays_offline(make_loop, daemon: Daemon, tmp_path: Path):
    etc = tmp_path / "root"
    etc.mkdir()
    data = daemon.data
    daemon.start()
    dev = make_loop(GIB)
    r = cli("disks", "add", dev, "--role", "data", "--data", str(data), etc=etc)
    assert r.returncode == 0, r.stderr
    assert "attached to the running daemon" in r.stdout
    disk_id = r.stdout.split()[2].rstrip(":")
    where = data / "disks" / disk_id

    doc = rows(data, etc)
    assert doc["daemon"] == "running"
    row = next(x for x in doc["disks"] if x["disk_id"] == disk_id)
    # the error counters come from the daemon's own view of the disk: it holds it now
    assert row["state"] == "ok" and row["errors"]["io"] == 0 and row["errors"]["checksum"] == 0
    assert (where / "shards").is_dir()  # initialised by the daemon on the mounted filesystem

    # restart: the disk comes back from its record
    daemon.stop()
    daemon.start()
    row = next(x for x in rows(data, etc)["disks"] if x["disk_id"] == disk_id)
    assert row["state"] == "ok" and row["errors"]["io"] == 0

    # the disk disappears while the daemon is down; at the next start it stays offline and the
    # empty mount point underneath stays empty
    daemon.stop()
    subprocess.run(["umount", str(where)], check=True)
    daemon.start()
    assert not is_mounted(where)
    assert os.listdir(where) == []
    row = next(x for x in rows(data, etc)["disks"] if x["mount_point"] == str(where))
    assert row["state"] == "offline"
    assert "offline" in (data.parent / "daemon.log").read_text()


def records(data: Path) -> dict:
    from appliance.engine import diskrecords, offline

    with offline.session(data / "meta") as db:
        return diskrecords.known(db)


def fs_uuid(dev: str) -> str:
    return subprocess.run(["blkid", "-p", "-s", "UUID", "-o", "value", dev], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_live_attached_disk_records_its_device_and_uuid(make_loop, daemon: Daemon, tmp_path: Path):
    """SMART and spin-down reach a disk only through the device of its DiskRecord: a disk added
    while the daemon runs needs it as much as one added while it is stopped."""
    etc = tmp_path / "root"
    etc.mkdir()
    daemon.start()
    dev = make_loop(GIB)
    r = cli("disks", "add", dev, "--role", "data", "--data", str(daemon.data), etc=etc)
    assert r.returncode == 0, r.stderr
    assert "attached to the running daemon" in r.stdout
    disk_id = r.stdout.split()[2].rstrip(":")
    daemon.stop()
    rec = records(daemon.data)[disk_id]
    assert (rec.device, rec.uuid) == (dev, fs_uuid(dev))


def test_start_follows_a_renamed_device(make_loop, daemon: Daemon, tmp_path: Path):
    """The kernel names devices anew at each boot: the record names what is mounted at the disk's
    mount point now, not another disk that took the old name. A record without device or UUID
    (written live by an older version) gets them."""
    from appliance.engine import diskrecords, offline

    etc = tmp_path / "root"
    etc.mkdir()
    dev, other = make_loop(GIB), make_loop(GIB)
    r = cli("disks", "add", dev, "--role", "data", "--data", str(daemon.data), etc=etc)
    assert r.returncode == 0, r.stderr
    disk_id = r.stdout.split()[2].rstrip(":")
    assert records(daemon.data)[disk_id].device == dev
    for stale, uuid in ((other, fs_uuid(dev)), ("", "")):
        with offline.session(daemon.data / "meta") as db:
            rec = diskrecords.known(db)[disk_id]
            rec.device, rec.uuid = stale, uuid
            diskrecords.save_now(db, rec)
        daemon.start()
        row = next(x for x in rows(daemon.data, etc)["disks"] if x["disk_id"] == disk_id)
        assert row["state"] == "ok"
        daemon.stop()
        rec = records(daemon.data)[disk_id]
        assert (rec.device, rec.uuid) == (dev, fs_uuid(dev))


def test_list_shows_swapped_disks_offline(make_loop, daemon: Daemon, tmp_path: Path):
    """Two disks mounted at each other's mount points: the daemon refuses both ("expected disk A
    here but found disk B"), and `disks list` says so under the ids recorded there, with or
    without the daemon."""
    etc = tmp_path / "root"
    etc.mkdir()
    devs = [make_loop(GIB), make_loop(GIB)]
    ids = []
    for dev in devs:
        r = cli("disks", "add", dev, "--role", "data", "--data", str(daemon.data), etc=etc)
        assert r.returncode == 0, r.stderr
        ids.append(r.stdout.split()[2].rstrip(":"))
    where = [daemon.data / "disks" / i for i in ids]
    for w in where:
        subprocess.run(["umount", str(w)], check=True)
    for dev, w in zip(devs, reversed(where), strict=True):
        subprocess.run(["mount", dev, str(w)], check=True)

    def swapped() -> dict:
        by_mount = {x["mount_point"]: x for x in rows(daemon.data, etc)["disks"] if x["managed"]}
        for disk_id, other, w in ((ids[0], ids[1], where[0]), (ids[1], ids[0], where[1])):
            row = by_mount[str(w)]
            assert row["disk_id"] == disk_id and row["state"] == "offline", row
            assert f"expected disk {disk_id} here but found disk {other}" in row["reasons"], row
        return by_mount

    swapped()  # daemon stopped
    daemon.start()
    doc = swapped()
    assert doc[str(where[0])]["reasons"].count(f"expected disk {ids[0]} here but found disk {ids[1]}") == 1


def test_list_shows_the_daemons_offline_disk(make_loop, daemon: Daemon, tmp_path: Path):
    """A disk the daemon took offline for what a look at the host does not check (its shard
    directories are gone) is offline in `disks list`, with the daemon's reason."""
    from appliance.control import call
    from tests.polling import wait_for

    etc = tmp_path / "root"
    etc.mkdir()
    daemon.start()
    r = cli("disks", "add", make_loop(GIB), "--role", "data", "--data", str(daemon.data), etc=etc)
    assert r.returncode == 0, r.stderr
    disk_id = r.stdout.split()[2].rstrip(":")
    (daemon.data / "disks" / disk_id / "shards" / "ff").rmdir()

    def daemon_state() -> str:
        held = call(daemon.data / "control.sock", "disks.counters", timeout=10.0)["disks"]
        return next(x["state"] for x in held if x["disk_id"] == disk_id)

    wait_for(lambda: daemon_state() == "offline", what="the disk monitor to take the disk offline")
    row = next(x for x in rows(daemon.data, etc)["disks"] if x["disk_id"] == disk_id)
    assert row["state"] == "offline"
    assert any("is missing (disk wiped?)" in reason for reason in row["reasons"]), row

"""A daemon killed while one of its threads waits in the kernel, unkillable, must not leave the
mount hanging: the mount guard (fusefs/guard.py) aborts the FUSE connection.

The stuck thread here waits for an fsync that a data disk never answers (a hung disk; fuzzing
found the same with the invalidation thread waiting for a FUSE WRITE's page lock). After
SIGKILL the process cannot exit while that thread waits, so it keeps /dev/fuse open: without
the guard every access to the mount hung until someone ran `umount -f`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.faultfs import usable
from tests.polling import wait_for

from .appliance import BUCKET, FaultAppliance, fault_appliance

pytestmark = pytest.mark.skipif(not usable(), reason="needs root and /dev/fuse")


def _answers(mount: str) -> bool:
    """The mount answers at once, ENOTCONN included, or is gone; False while a request to it
    waits (a `stat -f` in a child, which can be killed while its request waits)."""
    try:
        subprocess.run(["stat", "-f", mount], capture_output=True, timeout=3)
        return True
    except subprocess.TimeoutExpired:
        return False


def _mounted(mount: str) -> bool:
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == mount for line in f)


def _zombie(pid: int) -> bool:
    """The process's main thread has exited (state Z) while another of its threads still runs."""
    return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()


def _connection_aborted(mount: str) -> bool:
    return not _mounted(mount) or subprocess.run(["stat", "-f", mount], capture_output=True, timeout=3).returncode != 0


@contextlib.contextmanager
def _killed_while_stuck(a: FaultAppliance, with_guard: bool = False) -> Iterator[str]:
    """SIGKILL the daemon while a thread of its waits for a data disk's fsync that hangs (and the
    mount guard with it: systemd's stop timeout kills the whole service); yields the mount while
    the killed daemon lingers, then lets the disks answer and waits for it to be gone."""
    d = a.daemon
    assert d.proc is not None
    mount = str(d.info["mount"])
    s3 = d.s3()
    s3.create_bucket(Bucket=BUCKET)
    wait_for(lambda: os.path.isdir(os.path.join(mount, BUCKET)), 30, "the bucket in the mount")
    hangs = [(disk, disk.control.hang("fsync")) for disk in a.data]
    try:
        def put() -> None:
            with contextlib.suppress(Exception):
                s3.put_object(Bucket=BUCKET, Key="held", Body=os.urandom(1 << 20))

        threading.Thread(target=put, daemon=True).start()
        wait_for(lambda: any(disk.control.hung() for disk, _ in hangs), 60, "a shard's fsync to hang")
        pid = d.proc.pid
        guards = psutil.Process(pid).children() if with_guard else []
        assert len(guards) == (1 if with_guard else 0), guards
        for guard in guards:
            guard.kill()
        d.proc.send_signal(signal.SIGKILL)
        # the process lingers: its thread in the hung fsync cannot die until the disk answers
        wait_for(lambda: _zombie(pid), 30, "the killed daemon's main thread to exit")
        assert d.proc.poll() is None, "the daemon exited: the stuck thread this test needs did not happen"
        yield mount
        assert d.proc.poll() is None
    finally:
        for disk, rule in hangs:
            disk.control.release(rule)
    d.proc.wait(60)  # the fsync answered, the last thread exits


def test_a_killed_daemon_with_a_thread_stuck_in_the_kernel_leaves_no_hung_mount(tmp_path: Path) -> None:
    with fault_appliance(tmp_path, mount=True) as a, _killed_while_stuck(a) as mount:
        wait_for(lambda: _answers(mount) and _connection_aborted(mount), 60,
                 "the mount's connection to be aborted while the killed daemon still lingers")


def test_abort_mount_frees_a_mount_whose_guard_was_killed_too(tmp_path: Path) -> None:
    """systemd's stop timeout SIGKILLs the guard with the daemon, and the mount hung until someone
    ran `umount -f`. The unit's ExecStopPost, `stowage abort-mount`, aborts the connection; it
    refuses while the daemon serves the mount."""
    with fault_appliance(tmp_path, mount=True) as a:
        live = a.daemon.cli("abort-mount", check=False)
        assert live.returncode == 1 and "is running" in live.stderr, live
        with _killed_while_stuck(a, with_guard=True) as mount:
            time.sleep(1)  # what the guard would have done by now, had it lived
            assert not _answers(mount)
            r = a.daemon.cli("abort-mount")
            assert "aborted the FUSE connection" in r.stdout, r.stdout
            assert _answers(mount) and _connection_aborted(mount)
            again = a.daemon.cli("abort-mount")  # the dead mount is still there: nothing to wait for
            assert "already gone" in again.stdout or "aborted" in again.stdout, again.stdout
        a.daemon.info = {}
        a.daemon.start()  # detaches the dead mount and mounts again
        assert os.path.isdir(os.path.join(str(a.daemon.info["mount"]), BUCKET))
        assert a.daemon.cli("abort-mount", check=False).returncode == 1  # served again

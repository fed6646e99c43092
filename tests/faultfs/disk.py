"""Start and stop fault disks from tests: one `python -m tests.faultfs` process per mount.

    with FaultDisk.start(tmp_path / "d0", mountpoint) as disk:
        disk.control.eio("reads", path="shards/*")
        ...

`FaultDisk.start` returns once the mount answers; `stop` unmounts it (lazily if it is busy)
and ends the process. `usable()` says whether FUSE can be mounted here (root and /dev/fuse).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .control import FaultControl

REPO = Path(__file__).resolve().parents[2]


def usable() -> bool:
    return os.geteuid() == 0 and os.access("/dev/fuse", os.R_OK | os.W_OK)


def _mounted(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.path.ismount(path) and os.stat(path).st_dev != os.stat(path.parent).st_dev
    return False


def detach(path: Path) -> None:
    for cmd in (["fusermount3", "-u", "-z", str(path)], ["umount", "-l", str(path)]):
        if shutil.which(cmd[0]) and subprocess.run(cmd, capture_output=True).returncode == 0:
            return


@dataclass
class FaultDisk:
    base: Path  # the backing store (base/tree is what the mount shows)
    mountpoint: Path
    control: FaultControl
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def tree(self) -> Path:
        return self.base / "tree"

    @classmethod
    def start(cls, base: Path, mountpoint: Path, timeout: float = 30.0) -> FaultDisk:
        disk = cls.spawn(base, mountpoint)
        disk.wait_ready(timeout)
        return disk

    @classmethod
    def spawn(cls, base: Path, mountpoint: Path) -> FaultDisk:
        """Start the process; `wait_ready` then waits for the mount (several start at once)."""
        base.mkdir(parents=True, exist_ok=True)
        mountpoint.mkdir(parents=True, exist_ok=True)
        sock = base / "control.sock"
        sock.unlink(missing_ok=True)
        log_path = base / "faultfs.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "tests.faultfs", str(base), str(mountpoint), str(sock)],
                                    cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        return cls(base, mountpoint, FaultControl(sock), proc, log_path)

    def wait_ready(self, timeout: float = 30.0) -> None:
        sock = self.control.path
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"faultfs exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            if sock.exists() and _mounted(self.mountpoint):
                with contextlib.suppress(OSError):
                    self.control.ping()
                    os.stat(self.mountpoint)  # the kernel's INIT went through
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"faultfs at {self.mountpoint} not up after {timeout}s")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.control.clear()  # nothing may stay hung while it unmounts
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if _mounted(self.mountpoint):
            detach(self.mountpoint)

    def __enter__(self) -> FaultDisk:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

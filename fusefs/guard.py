"""The mount guard: a small process that aborts the mount's FUSE connection when the daemon dies.

Why a process of its own: a daemon thread can wait in the kernel without being killable. The
invalidation thread's invalidate_inode waits for a page lock that a client's FUSE WRITE holds,
invalidate_entry for a directory lock that a RENAME holds, until the daemon answers that request;
a read or fsync on a data disk that hangs waits the same way. After a kill -9 (a crash, the OOM
killer) such a thread cannot die, so the process keeps /dev/fuse open, the kernel never aborts
the connection, and the request is never answered: the daemon stays a zombie and every process
touching the mount hangs until someone runs `umount -f` (found by fuzzing: 1 kill in 20 under
mount and S3 load). Nothing inside the dying process can help, so the guard aborts the
connection (fusectl's `abort`, what `umount -f` does first): the mount stays and answers
ENOTCONN, the stuck thread is released, and the next start detaches the dead mount as after any
crash. The mount is not unmounted: writes into the mount point would then land, "acknowledged",
on the filesystem below it.

The guard learns of the death from PR_SET_PDEATHSIG, which the kernel sends when the thread that
started it exits. That is the event loop's thread: it dies with a kill -9 even while another
thread is stuck, which is why the guard is started from the loop thread and not through
trio.to_thread (a worker thread exits when idle). It ignores the signals a terminal or systemd
send to the whole group (SIGINT, SIGTERM, SIGHUP): a clean stop unmounts by itself, and tells
the guard first ("done" on its stdin), so the guard never touches a mount being shut down.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from diskmgr.label import read_mounts

log = logging.getLogger("stowage.fuse")

# Run with `python -I -S`: the standard library only, nothing of the daemon's (a few MiB).
_SCRIPT = r"""
import ctypes, os, signal, sys
conn, parent = sys.argv[1], int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
class Died(Exception):
    pass
def died(*_):
    raise Died
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
signal.signal(signal.SIGUSR2, died)
try:
    libc.prctl(1, int(signal.SIGUSR2))  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        raise Died  # the daemon died before the signal was armed
    while True:
        got = os.read(0, 16)
        if got.startswith(b"done"):
            sys.exit(0)
        if not got:
            raise Died  # every descriptor of the daemon is closed: it is gone
except Died:
    ctl = "/sys/fs/fuse/connections"
    if not os.path.ismount(ctl):  # systemd mounts it at boot; a bare system may not
        libc.mount(b"fusectl", ctl.encode(), b"fusectl", 0, None)
    try:
        with open(f"{ctl}/{conn}/abort", "w") as f:
            f.write("1")
    except OSError:
        pass  # the connection is gone: the daemon's last thread has exited after all
"""


CONNECTIONS = "/sys/fs/fuse/connections"


def stowage_connection(mount: str) -> str | None:
    """The fusectl connection of the Stowage mount at `mount` (an absolute path), from
    /proc/self/mountinfo: never from a stat of the mount (nor label.mount_at's realpath), which
    waits for as long as a hung connection does. The last match is the top of a stack of mounts."""
    found = None
    for entry in read_mounts():
        if entry.mount_point == mount and entry.fstype == "fuse.stowage":
            found = entry.majmin.partition(":")[2]  # FUSE mounts have anonymous devices: major 0
    return found


def abort_connection(conn: str) -> bool:
    """Abort a FUSE connection through fusectl (what `umount -f` does first): the mount stays and
    answers ENOTCONN; its waiting requests fail. False if the connection is gone. The guard's
    script does the same in its own words: it runs without the daemon's modules (`python -I -S`)."""
    if not os.path.ismount(CONNECTIONS):  # systemd mounts it at boot; a bare system may not
        subprocess.run(["mount", "-t", "fusectl", "fusectl", CONNECTIONS], capture_output=True, check=False)
    try:
        with open(f"{CONNECTIONS}/{conn}/abort", "w") as f:
            f.write("1")
    except FileNotFoundError:
        return False
    return True


class MountGuard:
    """The guard of one mount; `start` from the event loop's thread, `release` at a clean stop."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, mount_dev: int, daemon_pid: int) -> None:
        """`mount_dev`: the mount's st_dev, which names its connection under fusectl."""
        conn = str(os.minor(mount_dev))  # FUSE mounts have anonymous devices: major 0
        try:
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _SCRIPT, conn, str(daemon_pid)],
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as exc:  # the mount works without it; only a crash's clean-up is at stake
            log.warning("the mount guard did not start (%s): after a crash the mount may need `umount -f`", exc)

    def release(self) -> None:
        """A clean stop: the guard exits without touching the mount. Blocking (a short wait)."""
        if self.proc is None or self.proc.stdin is None:
            return
        try:
            self.proc.stdin.write(b"done")
            self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None

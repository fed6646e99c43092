"""The real daemon speaks the systemd notify protocol to a NOTIFY_SOCKET this test binds.

`stowage serve --data TMP --listen 127.0.0.1:0 --no-mount` runs with NOTIFY_SOCKET, WATCHDOG_USEC
and WATCHDOG_PID as systemd would set them. Checked: READY=1 (with a STATUS line) arrives once
the daemon is up, watchdog pings follow, STOPPING=1 arrives on SIGTERM and the process exits 0,
in that order. Then a wedge: with the hidden hook STOWAGE_DEBUG_WEDGE_SECONDS set, SIGUSR2 blocks
the trio loop thread (time.sleep) for longer than the watchdog interval, and the pings stop for
that long (a gap systemd would answer with SIGABRT and a restart), then resume.

The only time-based check is a lower bound: a gap of at least WATCHDOG seconds between pings.
time.sleep(WEDGE) on the loop thread guarantees it whatever the machine's load; a daemon that
pinged from a thread (and so kept feeding the watchdog while wedged) fails it.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

WATCHDOG_SECONDS = 2.0  # pings every ~1 s
WEDGE_SECONDS = 6.0  # three watchdog intervals
DEADLINE = 90.0  # generous: only bounds how long a broken daemon can hang the test


@dataclass
class Message:
    at: float  # time.monotonic() when received
    fields: dict[str, str]


class NotifyListener:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="stn")  # short: sun_path is limited to 108 bytes
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[Message] = []

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)

    def wait_for(self, key: str, proc: subprocess.Popen[bytes], *, after: int = 0) -> int:
        """Index of the first message at or after `after` carrying `key`; fails if the daemon dies."""
        deadline = time.monotonic() + DEADLINE
        while True:
            for i in range(after, len(self.messages)):
                if key in self.messages[i].fields:
                    return i
            if time.monotonic() > deadline:
                pytest.fail(f"no {key} from the daemon within {DEADLINE}s: {self.summary()}")
            if proc.poll() is not None and not self._receive(0.0):
                pytest.fail(f"daemon exited {proc.returncode} before sending {key}: {self.summary()}")
            self._receive(0.5)

    def _receive(self, timeout: float) -> bool:
        self.sock.settimeout(timeout) if timeout else self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, BlockingIOError):
            return False
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
        self.messages.append(Message(time.monotonic(), fields))
        return True

    def summary(self) -> str:
        return " | ".join(",".join(m.fields) for m in self.messages[-20:])


@pytest.fixture
def listener() -> Iterator[NotifyListener]:
    lst = NotifyListener()
    try:
        yield lst
    finally:
        lst.close()


def start_daemon(data: Path, listener: NotifyListener, env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NOTIFY_SOCKET=listener.path, WATCHDOG_USEC=str(int(WATCHDOG_SECONDS * 1e6)))
    env.update(env_extra)
    stowage = Path(sys.prefix) / "bin/stowage"
    # WATCHDOG_PID must name the daemon itself, as systemd sets it; exec keeps the shell's pid.
    with open(data.parent / "daemon.log", "wb") as log:
        return subprocess.Popen(
            ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh",
             str(stowage), "serve", "--data", str(data), "--listen", "127.0.0.1:0", "--no-mount"],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )


def stop(proc: subprocess.Popen[bytes], *, signalled: bool = False) -> int:
    """Wait for a clean exit; SIGTERM once if the test didn't (a second one would kill the
    daemon mid-shutdown, which systemd never does either)."""
    if not signalled and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("daemon did not exit within the deadline after SIGTERM")


def test_ready_status_watchdog_stopping_in_order(tmp_path: Path, listener: NotifyListener) -> None:
    proc = start_daemon(tmp_path / "data", listener, {})
    signalled = False
    try:
        ready = listener.wait_for("READY", proc)
        assert (tmp_path / "data/run/daemon.json").exists(), "READY before the daemon wrote daemon.json"
        status = listener.wait_for("STATUS", proc)  # in the READY datagram or its own
        assert listener.messages[status].fields["STATUS"].strip()
        ping = listener.wait_for("WATCHDOG", proc, after=ready + 1)
        assert listener.messages[ping].fields["WATCHDOG"] == "1"
        proc.send_signal(signal.SIGTERM)
        signalled = True
        stopping = listener.wait_for("STOPPING", proc, after=ping)
    finally:
        code = stop(proc, signalled=signalled)
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    assert ready < ping < stopping
    assert [i for i, m in enumerate(listener.messages) if "READY" in m.fields] == [ready]
    assert listener.messages[ready].fields["READY"] == "1"
    assert listener.messages[stopping].fields["STOPPING"] == "1"


def test_wedged_loop_stops_the_watchdog_pings(tmp_path: Path, listener: NotifyListener) -> None:
    proc = start_daemon(tmp_path / "data", listener, {"STOWAGE_DEBUG_WEDGE_SECONDS": str(WEDGE_SECONDS)})
    try:
        ready = listener.wait_for("READY", proc)
        first = listener.wait_for("WATCHDOG", proc, after=ready + 1)
        before = listener.wait_for("WATCHDOG", proc, after=first + 1)
        proc.send_signal(signal.SIGUSR2)
        # Pings resume after the wedge: keep collecting until a ping arrives well after it.
        signalled = time.monotonic()
        i = before + 1
        while True:
            i = listener.wait_for("WATCHDOG", proc, after=i) + 1
            if listener.messages[i - 1].at > signalled + WEDGE_SECONDS:
                break
    finally:
        code = stop(proc)
    pings = [m.at for m in listener.messages if "WATCHDOG" in m.fields]
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) >= WATCHDOG_SECONDS, f"pings never paused for a watchdog interval: {gaps}"
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]

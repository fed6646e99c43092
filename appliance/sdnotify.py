"""The systemd notify protocol (sd_notify(3)) without libsystemd, plus the watchdog service.

systemd hands a `Type=notify` service `$NOTIFY_SOCKET` (a filesystem path, or `@name` for the
abstract namespace) and, with `WatchdogSec=`, `$WATCHDOG_USEC` (and `$WATCHDOG_PID`, naming the
process that must ping). Each notification is one datagram of newline-separated `KEY=value`
lines. Outside systemd the variables are absent and every call is a cheap no-op, so the daemon
calls these unconditionally.

Sending never raises and never blocks: a full or vanished socket only drops the message, because
losing a STATUS line must not take the storage daemon down.

The watchdog is fed by `run_watchdog`, a trio task, so the pings stop exactly when the trio loop
stops making progress (a blocking call on the loop thread, a livelock), and systemd restarts the
wedged daemon. `run_debug_wedge` is a hidden test hook for that: with
`STOWAGE_DEBUG_WEDGE_SECONDS=N` in the environment, SIGUSR2 blocks the loop thread for N seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass

import trio

log = logging.getLogger(__name__)

NOTIFY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
DEBUG_WEDGE_ENV = "STOWAGE_DEBUG_WEDGE_SECONDS"


def socket_address(value: str) -> str | None:
    """`$NOTIFY_SOCKET` as a socket address: `@name` is abstract (leading NUL); else an absolute path."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog timeout in seconds, or None when there is none for process `pid`."""
    raw = environ.get("WATCHDOG_USEC", "")
    if not (raw.isascii() and raw.isdigit()) or int(raw) == 0:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if owner and (not (owner.isascii() and owner.isdigit()) or int(owner) != pid):
        return None
    return int(raw) / 1_000_000


def one_line(text: str) -> str:
    """A STATUS value must be a single line; newlines would start new KEY=value fields."""
    return " ".join(text.split())


@dataclass
class Notifier:
    """Sends notifications to one `$NOTIFY_SOCKET` address (None: outside systemd, a no-op)."""

    address: str | None = None
    watchdog_seconds: float | None = None

    def __post_init__(self) -> None:
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environ(
        cls, environ: MutableMapping[str, str] | None = None, *, unset: bool = True
    ) -> Notifier:
        """Read the protocol variables; by default also remove them so child processes
        (smartctl, mount helpers) do not inherit them and talk to systemd in our name."""
        env = os.environ if environ is None else environ
        address = socket_address(env.get("NOTIFY_SOCKET", ""))
        interval = watchdog_interval(env, os.getpid())
        if unset:
            for name in NOTIFY_ENV:
                env.pop(name, None)
        return cls(address=address, watchdog_seconds=interval)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send `KEY=value` fields as one datagram; True if it was handed to the socket."""
        if self.address is None:
            return False
        payload = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, socket.MSG_DONTWAIT, self.address)
        except OSError as exc:
            if not self._warned:  # once: a missing socket would otherwise log on every ping
                log.warning("sd_notify to %r failed: %s", self.address, exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        fields = ["READY=1"]
        if status is not None:
            fields.append("STATUS=" + one_line(status))
        return self.send(*fields, f"MAINPID={os.getpid()}")

    def status(self, text: str) -> bool:
        return self.send("STATUS=" + one_line(text))

    def stopping(self, status: str | None = None) -> bool:
        fields = ["STOPPING=1"]
        if status is not None:
            fields.append("STATUS=" + one_line(status))
        return self.send(*fields)

    def reloading(self) -> bool:
        return self.send("RELOADING=1")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start/stop time (e.g. a long metadata recovery) before systemd gives up."""
        return self.send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __del__(self) -> None:  # the socket is ours: a dropped Notifier must not leak it
        self.close()


async def run_watchdog(
    notifier: Notifier, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Ping WATCHDOG=1 at half the interval from the trio loop; returns at once without a watchdog."""
    interval = notifier.watchdog_seconds
    task_status.started()
    if interval is None or not notifier.enabled:
        return
    log.info("systemd watchdog: %.1fs, pinging every %.1fs", interval, interval / 2)
    while True:
        notifier.watchdog()
        await trio.sleep(interval / 2)


async def run_status(
    notifier: Notifier,
    summary: Callable[[], str],
    *,
    interval: float = 10.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Send STATUS=summary() every `interval` seconds, only when the line changed."""
    task_status.started()
    if not notifier.enabled:
        return
    last = ""
    while True:
        try:
            line = one_line(summary())
        except Exception:  # a broken summary must not stop the daemon; say so in the status
            log.exception("status summary failed")
            line = "status summary unavailable"
        if line != last:
            notifier.status(line)
            last = line
        await trio.sleep(interval)


def debug_wedge_seconds(environ: Mapping[str, str]) -> float | None:
    raw = environ.get(DEBUG_WEDGE_ENV, "")
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


async def run_debug_wedge(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Test hook (off unless $STOWAGE_DEBUG_WEDGE_SECONDS is set): SIGUSR2 blocks the trio loop
    thread with time.sleep, simulating a wedged daemon so tests can watch the watchdog pings stop."""
    seconds = debug_wedge_seconds(os.environ)
    if seconds is None:
        task_status.started()
        return
    with trio.open_signal_receiver(signal.SIGUSR2) as signals:
        task_status.started()
        async for _ in signals:
            log.warning("debug: blocking the event loop for %.1fs (SIGUSR2)", seconds)
            time.sleep(seconds)  # noqa: ASYNC251 - blocking the loop is the point of the hook

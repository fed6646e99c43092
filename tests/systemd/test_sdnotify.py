"""appliance.sdnotify against real unix datagram sockets (path and abstract namespace)."""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from appliance import sdnotify


@pytest.fixture
def receiver() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd; short path (sun_path is 108 bytes)."""
    d = tempfile.mkdtemp(prefix="sdn")
    path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(d)


def drain(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096, socket.MSG_DONTWAIT).decode())
        except BlockingIOError:
            return out


def test_socket_address_forms() -> None:
    assert sdnotify.socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert sdnotify.socket_address("@foo/bar") == "\0foo/bar"
    assert sdnotify.socket_address("") is None
    assert sdnotify.socket_address("@") is None
    assert sdnotify.socket_address("relative/path") is None


def test_watchdog_interval_parsing() -> None:
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}, 7) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "7"}, 7) == 2.0
    # For another process (e.g. we are a child of the main process): not ours to ping.
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "8"}, 7) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "0"}, 7) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "soon"}, 7) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "3\u00b2"}, 7) is None  # isdigit(), not int()
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "\u00b2"}, 7) is None
    assert sdnotify.watchdog_interval({}, 7) is None


def test_from_environ_unsets_variables(receiver: tuple[socket.socket, str]) -> None:
    _, path = receiver
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid()), "X": "1"}
    n = sdnotify.Notifier.from_environ(env)
    assert n.address == path and n.watchdog_seconds == 4.0
    assert env == {"X": "1"}
    kept = {"NOTIFY_SOCKET": path}
    sdnotify.Notifier.from_environ(kept, unset=False)
    assert kept == {"NOTIFY_SOCKET": path}


def test_messages_arrive_as_single_datagrams(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    n = sdnotify.Notifier(address=path)
    assert n.ready(status="6 disks\nonline")
    assert n.status("healing 3 segments")
    assert n.watchdog()
    assert n.stopping()
    got = drain(sock)
    n.close()
    assert got[0].split("\n")[:2] == ["READY=1", "STATUS=6 disks online"]
    assert got[0].split("\n")[2] == f"MAINPID={os.getpid()}"
    assert got[1:] == ["STATUS=healing 3 segments", "WATCHDOG=1", "STOPPING=1"]


def test_abstract_namespace_socket() -> None:
    name = f"stowage-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        n = sdnotify.Notifier.from_environ({"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert drain(sock)[0].startswith("READY=1\n")
    finally:
        sock.close()


def test_outside_systemd_everything_is_a_noop() -> None:
    n = sdnotify.Notifier.from_environ({})
    assert not n.enabled
    assert not n.ready() and not n.status("x") and not n.watchdog() and not n.stopping()


def test_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    n = sdnotify.Notifier(address=str(tmp_path / "gone"))
    assert n.ready() is False
    assert n.watchdog() is False


async def test_first_watchdog_ping_is_immediate(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    n = sdnotify.Notifier(address=path, watchdog_seconds=10.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(sdnotify.run_watchdog, n)
        assert drain(sock) == ["WATCHDOG=1"]  # the first ping goes out at once
        nursery.cancel_scope.cancel()


async def test_watchdog_pings_follow_virtual_time(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    n = sdnotify.Notifier(address=path, watchdog_seconds=4.0)

    async def run_for(seconds: float) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(sdnotify.run_watchdog, n)
            await trio.sleep(seconds)
            nursery.cancel_scope.cancel()

    # Under a mock clock 10 virtual seconds pass instantly: pings at t=0,2,4,6,8(,10).
    clock = trio.testing.MockClock(autojump_threshold=0)
    await trio.to_thread.run_sync(lambda: trio.run(run_for, 9.0, clock=clock))
    assert drain(sock) == ["WATCHDOG=1"] * 5


async def test_blocked_loop_sends_no_pings(receiver: tuple[socket.socket, str]) -> None:
    """The pings come from the trio loop: while the loop thread is blocked, nothing is sent."""
    sock, path = receiver
    n = sdnotify.Notifier(address=path, watchdog_seconds=0.2)
    async with trio.open_nursery() as nursery:
        await nursery.start(sdnotify.run_watchdog, n)
        while len(drain(sock)) < 1:
            await trio.sleep(0.05)
        drain(sock)
        time.sleep(1.0)  # five intervals with the loop wedged
        assert drain(sock) == []
        # ...and pinging resumes once the loop runs again.
        with trio.fail_after(30):
            while not drain(sock):
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()


async def test_no_watchdog_task_returns_immediately() -> None:
    n = sdnotify.Notifier(address="/nonexistent", watchdog_seconds=None)
    with trio.fail_after(5):
        await sdnotify.run_watchdog(n)


async def test_status_reporter_sends_only_changes(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    n = sdnotify.Notifier(address=path)
    lines = iter(["a", "a", "b", "b", "c"])

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: sdnotify.run_status(
                n, lambda: next(lines, "c"), interval=1.0, task_status=task_status))
            await trio.sleep(4.5)
            nursery.cancel_scope.cancel()

    await trio.to_thread.run_sync(lambda: trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0)))
    assert drain(sock) == ["STATUS=a", "STATUS=b", "STATUS=c"]


def test_debug_wedge_is_off_unless_configured() -> None:
    assert sdnotify.debug_wedge_seconds({}) is None
    assert sdnotify.debug_wedge_seconds({"STOWAGE_DEBUG_WEDGE_SECONDS": "junk"}) is None
    assert sdnotify.debug_wedge_seconds({"STOWAGE_DEBUG_WEDGE_SECONDS": "0"}) is None
    assert sdnotify.debug_wedge_seconds({"STOWAGE_DEBUG_WEDGE_SECONDS": "2.5"}) == 2.5

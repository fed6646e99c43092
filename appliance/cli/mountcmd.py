"""`stowage abort-mount`: abort the FUSE connection of a mount whose daemon is gone.

The mount guard (fusefs/guard.py) does this when the daemon dies, but systemd's stop timeout
SIGKILLs the whole service, the guard with it. A daemon thread stuck in the kernel (a hung
disk's fsync) then keeps the mount's connection open and every access to the mount hangs. The
unit runs this command as ExecStopPost, after the service's processes were killed; an operator
can run it by hand. It refuses while the daemon is alive: aborting a served mount fails every
open file of its users.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from appliance.config import Config
from appliance.control import ControlError, call
from fusefs.guard import abort_connection, stowage_connection

from .common import appliance_options, fail


def _state(pid: int) -> str | None:
    """The process's state letter (R, S, D, Z, ...), None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return None


def _live_daemon(cfg: Config) -> str | None:
    """Why the daemon looks alive (None: it is gone). A daemon killed while one of its threads
    waits in the kernel is a zombie (its main thread has exited) that still holds the mount."""
    try:
        info = json.loads((Path(cfg.state_dir) / "run" / "daemon.json").read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        pid = 0
    if pid:
        state = _state(pid)
        return f"the daemon (pid {pid}) is running" if state not in (None, "Z") else None
    try:  # no run file: a daemon still starting has none yet
        call(cfg.control_path, "status", timeout=2.0)
    except (ControlError, OSError):
        return None
    return "the daemon answers on its control socket"


def _mount_path(cfg: Config) -> str:
    """Where the daemon mounted (its run file says, `serve --mount` included), else the config's."""
    try:
        mount = json.loads((Path(cfg.state_dir) / "run" / "daemon.json").read_text()).get("mount")
    except (OSError, ValueError, AttributeError):
        mount = None
    # abspath, not realpath: resolving the path would stat the hung mount
    return os.path.abspath(mount or cfg.mount.path) if (mount or cfg.mount.path) else ""


@click.command("abort-mount")
@appliance_options
def abort_mount(cfg: Config) -> None:
    """Abort the FUSE connection of a mount left by a daemon that is gone (systemd's
    ExecStopPost): the mount then answers ENOTCONN instead of hanging, and the next start
    detaches it."""
    path = _mount_path(cfg)
    conn = stowage_connection(path) if path else None
    if conn is None:
        click.echo(f"no Stowage mount at {path or '(mount not configured)'}: nothing to do")
        return
    why = _live_daemon(cfg)
    if why:
        fail(f"error: {why} and serves {path}; stop it first")
    if abort_connection(conn):
        click.echo(f"aborted the FUSE connection of {path}: it answers ENOTCONN until the next start detaches it")
    else:
        click.echo(f"the FUSE connection of {path} is already gone")


commands = [abort_mount]

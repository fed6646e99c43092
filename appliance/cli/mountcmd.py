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
from typing import Any

import click
import psutil

from appliance.config import Config
from appliance.control import ControlError, call
from fusefs.guard import abort_connection, stowage_connection

from .common import appliance_options, fail


def _run_file(cfg: Config) -> dict[str, Any]:
    """The daemon's run file (run/daemon.json: its pid, where it mounted); {} if there is none."""
    try:
        info = json.loads((Path(cfg.state_dir) / "run" / "daemon.json").read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _live_daemon(cfg: Config, info: dict[str, Any]) -> str | None:
    """Why the daemon looks alive (None: it is gone). A daemon killed while one of its threads
    waits in the kernel is a zombie (its main thread has exited) that still holds the mount."""
    pid = info.get("pid")
    if isinstance(pid, int) and pid > 0:
        try:
            alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        return f"the daemon (pid {pid}) is running" if alive else None
    # No run file: a daemon still starting has none yet. It must answer (a connect alone is not
    # enough, as diskregistry.daemon_running takes it: a zombie still holds the listening socket).
    try:
        call(cfg.control_path, "status", timeout=2.0)
    except (ControlError, OSError):
        return None
    return "the daemon answers on its control socket"


@click.command("abort-mount")
@appliance_options
def abort_mount(cfg: Config) -> None:
    """Abort the FUSE connection of a mount left by a daemon that is gone (systemd's
    ExecStopPost): the mount then answers ENOTCONN instead of hanging, and the next start
    detaches it."""
    info = _run_file(cfg)
    mount = info.get("mount") or cfg.mount.path  # where it mounted (`serve --mount` included), else the config's
    # abspath, not realpath: resolving the path would stat the hung mount
    path = os.path.abspath(mount) if isinstance(mount, str) and mount else ""
    conn = stowage_connection(path) if path else None
    if conn is None:
        click.echo(f"no Stowage mount at {path or '(mount not configured)'}: nothing to do")
        return
    why = _live_daemon(cfg, info)
    if why:
        fail(f"error: {why} and serves {path}; stop it first")
    if abort_connection(conn):
        click.echo(f"aborted the FUSE connection of {path}: it answers ENOTCONN until the next start detaches it")
    else:
        click.echo(f"the FUSE connection of {path} is already gone")


commands = [abort_mount]

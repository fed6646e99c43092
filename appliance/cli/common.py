"""What every `stowage` command shares: finding the appliance (--config / --data) and turning
core errors into one clear line and an exit status."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from appliance.config import DEFAULT_CONFIG_PATH, Config, ConfigError, embedded_config, load_config
from appliance.engine.errors import FormatError, StowageError

EX_CONFIG = 78  # sysexits: configuration error; systemd is told not to restart on it
F = TypeVar("F", bound=Callable[..., Any])


def appliance_options(fn: F) -> F:
    """Add --config/--data and pass a loaded `cfg: Config` to the command."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help=f"config file (default {DEFAULT_CONFIG_PATH})")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="embedded appliance: everything under this directory (default $STOWAGE_DATA, "
                       "or ./stowage-data when it exists)")
    @functools.wraps(fn)
    def wrapper(*args: Any, config_path: Path | None, data_dir: Path | None, **kwargs: Any) -> Any:
        cfg = run_guarded(lambda: resolve_config(config_path, data_dir))
        return fn(*args, cfg=cfg, **kwargs)

    return wrapper  # type: ignore[return-value]


EMBEDDED_DIR = "stowage-data"  # what `make run` creates beside the Makefile


def resolve_config(config_path: Path | None, data_dir: Path | None) -> Config:
    """--data DIR, else $STOWAGE_DATA, else ./stowage-data when it exists and no --config is
    given (the embedded appliance of `make run`), else the config file."""
    if data_dir is None and config_path is None:
        env = os.environ.get("STOWAGE_DATA", "")
        if env:
            data_dir = Path(env)
        elif Path(EMBEDDED_DIR).is_dir() and not DEFAULT_CONFIG_PATH.exists():
            data_dir = Path(EMBEDDED_DIR)
    if data_dir is not None:
        base = load_config(config_path) if config_path else None
        return embedded_config(data_dir, base)
    return load_config(config_path or DEFAULT_CONFIG_PATH)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"stowage: {message}", err=True)
    sys.exit(code)


def run_guarded(fn: Callable[[], Any]) -> Any:
    """Run fn; a core error becomes one line on stderr and a non-zero exit."""
    try:
        return fn()
    except (ConfigError, FormatError) as exc:
        fail(f"error: {exc.message}", EX_CONFIG)
    except StowageError as exc:
        fail(f"error: {exc.message}", 1)
    except KeyboardInterrupt:
        fail("interrupted", 130)


T = TypeVar("T")


def daemon_or_offline(cfg: Config, op: str, args: dict[str, Any], offline: Callable[[], T]) -> Any:
    """Ask the running daemon to do `op`; when no daemon answers, do it with `offline()` (which
    opens the metadata DB itself: only possible while the daemon is stopped; it may answer an
    `Audited` to give the audit log the state it changed). A daemon that answers with an error
    is not retried offline."""
    from appliance.auditing import Audited, record_offline
    from appliance.control import ControlError, call

    try:
        return call(cfg.control_path, op, args)
    except ControlError as exc:
        if not exc.context.get("unreachable"):
            raise
    # a mistyped --data (or STOWAGE_DATA) must not become a new, empty appliance (an offline
    # session creates the metadata DB, and `user add` printed a secret for that phantom)
    if not cfg.meta_path.is_dir():
        raise StowageError(f"no appliance at {cfg.state_dir}: no daemon answers and its metadata dir "
                           f"{cfg.meta_path} does not exist (check --data or STOWAGE_DATA)")
    # the daemon audits what it is asked; with it stopped, the CLI writes the audit entry itself
    try:
        done = offline()
    except StowageError as exc:
        record_offline(cfg.state_dir, op, args, exc.code, None)
        raise
    change = done if isinstance(done, Audited) else None
    record_offline(cfg.state_dir, op, args, "ok", change)
    return change.result if change is not None else done

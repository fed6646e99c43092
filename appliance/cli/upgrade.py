"""`stowage version`, `stowage upgrade --check|--commit`, `stowage rollback`: what is installed,
whether the data directory's on-disk formats are current, and the way back from an upgrade
(appliance/migrate.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from appliance import __version__
from appliance.config import Config
from appliance.diskregistry import daemon_running
from appliance.migrate import (
    DEFAULT_INSTALL_DIR,
    FORMATS,
    FormatStatus,
    UpgradeState,
    commit,
    load_state,
    offline_status,
    rollback,
)

from .common import appliance_options, fail, run_guarded


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _status(cfg: Config) -> tuple[FormatStatus | None, bool]:
    """(the data directory's status, whether the daemon runs). A running daemon migrated at its
    start, so its formats are current; its DB is not opened here (LevelDB admits one process)."""
    if daemon_running(cfg):
        return None, True
    return run_guarded(lambda: offline_status(cfg)), False


def _describe_state(st: UpgradeState | None) -> list[str]:
    if st is None:
        return []
    if st.committed:
        return [f"last upgrade: {st.from_version or 'unstamped'} -> {st.to_version} (committed)"]
    lines = [f"upgrade {st.from_version or 'unstamped'} -> {st.to_version} at {_when(st.taken_ns)}: NOT committed"]
    if st.snapshot:
        lines.append(f"  migrated: {', '.join(st.migrations)}; pre-upgrade snapshot {st.snapshot}")
    lines.append("  `stowage upgrade --commit` keeps it; `stowage rollback` returns to the previous state")
    return lines


def _report(cfg: Config) -> dict[str, Any]:
    st, running = _status(cfg)
    state = run_guarded(lambda: load_state(cfg))
    out: dict[str, Any] = {"version": __version__, "formats": FORMATS, "daemon_running": running,
                           "upgrade": state.to_json() if state else None}
    if st is not None:
        out |= st.to_json()
    elif running:
        out |= {"current": True, "pending": []}
    else:
        out |= {"current": True, "pending": [], "fresh": True}
    return out


@click.command("version")
@appliance_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def version_cmd(cfg: Config, as_json: bool) -> None:
    """Show the installed version and whether the data directory's on-disk formats are current."""
    report = _report(cfg)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    click.echo(f"stowage {__version__}")
    click.echo("formats written: " + ", ".join(f"{k} {v}" for k, v in FORMATS.items()))
    if report["daemon_running"]:
        click.echo("on-disk formats: current (the running daemon migrated them at its start)")
    elif report.get("fresh"):
        click.echo("on-disk formats: current (no data yet)")
    elif report["current"]:
        click.echo(f"on-disk formats: current (data directory last run by {report.get('data_version') or 'unstamped'})")
    else:
        click.echo("on-disk formats: NOT current; the next start migrates: "
                   + ", ".join(p["name"] for p in report["pending"]))
    for line in _describe_state(run_guarded(lambda: load_state(cfg))):
        click.echo(line)


@click.command("upgrade")
@appliance_options
@click.option("--check", "check", is_flag=True, help="say what starting this version would migrate")
@click.option("--commit", "do_commit", is_flag=True, help="keep the last upgrade: delete its snapshot, no rollback")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def upgrade_cmd(cfg: Config, check: bool, do_commit: bool, as_json: bool) -> None:
    """Check what an upgrade migrates, or commit the last one.

    Install the new version (apt install / make install), stop the daemon and run
    `stowage upgrade --check`; the next start takes a metadata snapshot before migrating.
    """
    if check == do_commit:
        raise click.UsageError("give --check or --commit")
    if do_commit:
        st = run_guarded(lambda: commit(cfg))
        click.echo(json.dumps(st.to_json()) if as_json else
                   f"upgrade to {st.to_version} committed; the pre-upgrade snapshot was deleted")
        return
    report = _report(cfg)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    if report["daemon_running"]:
        click.echo("the daemon is running (it migrated at its start); stop it to check a newly installed version")
    elif report["current"]:
        click.echo(f"nothing to migrate: the data directory's formats are current for {__version__}")
    else:
        click.echo(f"starting {__version__} will take a metadata snapshot, then migrate:")
        for p in report["pending"]:
            click.echo(f"  {p['name']}: {p['description']}")
    for line in _describe_state(run_guarded(lambda: load_state(cfg))):
        click.echo(line)


@click.command("rollback")
@appliance_options
@click.option("--install-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_INSTALL_DIR,
              show_default=True, help="where the software is installed (venv, venv.previous)")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--discard-locked-versions", "discard_locked", is_flag=True,
              help="roll back even though object versions written or locked since the upgrade are protected by "
                   "GOVERNANCE retention or a legal hold: they (or their lock) are lost. COMPLIANCE retention is "
                   "never discarded: such a rollback is refused")
def rollback_cmd(cfg: Config, install_dir: Path, yes: bool, discard_locked: bool) -> None:
    """Return to the version before the last upgrade and its metadata snapshot (daemon stopped,
    upgrade not committed). What was written since the upgrade is lost; refused while that
    includes versions object lock protects, unless --discard-locked-versions (never for
    COMPLIANCE retention)."""
    if daemon_running(cfg):
        fail("the daemon is running; stop it first (systemctl stop stowage)")
    st = run_guarded(lambda: load_state(cfg))
    if st is None or st.committed:
        fail("no uncommitted upgrade to roll back")
    if st.snapshot and not yes:
        click.confirm(f"Return the metadata to its state of {_when(st.taken_ns)} (before the upgrade to "
                      f"{st.to_version})? Objects and changes made since are lost.", abort=True)
    result = run_guarded(lambda: rollback(cfg, install_dir, discard_locked=discard_locked))
    if st.snapshot:
        click.echo(f"metadata DB restored from the pre-upgrade snapshot; the upgraded one is kept in {result.aside}")
        for j in result.journals_moved:
            click.echo(f"  metadata journal moved aside: {j}")
    click.echo(result.software)


commands = [version_cmd, upgrade_cmd, rollback_cmd]

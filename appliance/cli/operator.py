"""`stowage metrics-token`, `stowage access-log ...`, `stowage alerts ...`: the operator's
commands for watching the appliance; and the banner `serve --banner` prints."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from appliance.config import Config
from appliance.engine import offline
from appliance.opstate import METRICS_TOKEN, OperatorState

from .common import appliance_options, daemon_or_offline, run_guarded

if TYPE_CHECKING:
    from appliance.daemon import Daemon


def print_banner(d: Daemon) -> None:
    """What `make run` shows once the appliance is up."""
    cfg = d.cfg
    data = f" --data {shlex.quote(cfg.state_dir)}" if cfg.embedded and not _found_by_default(cfg) else ""
    lines = ["", "Stowage is running.",
             f"  S3 endpoint:  {d.s3_endpoint or 'off'}   (region {cfg.s3.region})"]
    if "console" in d.operator.admin.handlers and d.s3_endpoint:
        lines.append(f"  console:      {d.s3_endpoint}/_stowage/v1/console/")
    lines += [f"  mount:        {d.mount_path or 'off (FUSE not available or disabled)'}",
              f"  credentials:  stowage credentials{data}     or in a shell: "
              f"eval \"$(stowage credentials{data} --env)\""]
    if d.s3_endpoint:
        lines.append(f"  health:       {d.s3_endpoint}/_stowage/v1/health/ready")
    lines += ["It keeps running in the foreground: Ctrl-C stops it (requests drain, the mount is unmounted).", ""]
    print("\n".join(lines), flush=True)


def _found_by_default(cfg: Config) -> bool:
    """Whether `stowage` run from this directory finds this appliance without --data."""
    env = os.environ.get("STOWAGE_DATA")
    here = Path(env) if env else Path("stowage-data")
    try:
        return here.resolve() == Path(cfg.state_dir).resolve()
    except OSError:
        return False


@click.command("metrics-token")
@appliance_options
def metrics_token(cfg: Config) -> None:
    """Make a new bearer token for /_stowage/v1/metrics (the previous one stops working).

    Only its SHA-256 is stored: copy it now into Prometheus's `authorization: credentials_file`."""
    from appliance.ops.operator import new_metrics_token

    def offline_token() -> dict[str, str]:
        token, stored = new_metrics_token()
        with offline.session(cfg.meta_path) as db:
            OperatorState(db).put_now(METRICS_TOKEN, stored)
        return {"token": token}

    r = run_guarded(lambda: daemon_or_offline(cfg, "metrics.token", {}, offline_token))
    click.echo(r["token"])


@click.group("access-log")
def access_log() -> None:
    """The structured access log (JSON lines), per bucket."""


def _set(cfg: Config, bucket: str, enabled: bool) -> dict[str, Any]:
    from appliance.control import call

    r: dict[str, Any] = run_guarded(lambda: call(cfg.control_path, "access-log.set",
                                                 {"bucket": bucket, "enabled": enabled}))
    return r


@access_log.command("enable")
@appliance_options
@click.argument("bucket")
def access_log_enable(cfg: Config, bucket: str) -> None:
    """Log every request to BUCKET (needs the daemon running)."""
    _set(cfg, bucket, True)
    click.echo(f"access log on for {bucket}")


@access_log.command("disable")
@appliance_options
@click.argument("bucket")
def access_log_disable(cfg: Config, bucket: str) -> None:
    """Stop logging BUCKET's requests (unless access_log.enabled logs every bucket)."""
    _set(cfg, bucket, False)
    click.echo(f"access log off for {bucket}")


@access_log.command("list")
@appliance_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def access_log_list(cfg: Config, as_json: bool) -> None:
    """Buckets with logging settings."""
    from appliance.control import call

    rows: list[dict[str, Any]] = run_guarded(lambda: call(cfg.control_path, "access-log.list", {}))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if cfg.access_log.enabled:
        click.echo("access_log.enabled is true: every bucket is logged")
    for r in rows:
        target = f" -> s3://{r['target_bucket']}/{r['target_prefix']}" if r["target_bucket"] else ""
        click.echo(f"{r['bucket']:<40} access log {'on' if r['access_log'] else 'off'}{target}")


@click.group("alerts")
def alerts() -> None:
    """Built-in alerts (webhook and email, [alerts] in the config)."""


def _alert_rows(cfg: Config, op: str, as_json: bool) -> None:
    from appliance.control import call

    rows: list[dict[str, Any]] = run_guarded(lambda: call(cfg.control_path, op, {}))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no alerts")
    for r in rows:
        state = "resolved" if r["resolved_at"] else r["severity"]
        click.echo(f"{state:<9} {r['summary']}" + (f" ({r['detail']})" if r["detail"] else ""))


@alerts.command("list")
@appliance_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def alerts_list(cfg: Config, as_json: bool) -> None:
    """The alerts firing now."""
    _alert_rows(cfg, "alerts.list", as_json)


@alerts.command("check")
@appliance_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def alerts_check(cfg: Config, as_json: bool) -> None:
    """Evaluate the alert conditions now (and send what changed)."""
    _alert_rows(cfg, "alerts.check", as_json)


@alerts.command("smtp-password")
@appliance_options
@click.option("--remove", is_flag=True, help="forget the stored password")
def alerts_smtp_password(cfg: Config, remove: bool) -> None:
    """Store the SMTP password (read from the terminal or stdin), wrapped by the master key."""
    from appliance.control import call

    password = "" if remove else click.prompt("SMTP password", hide_input=True, err=True)
    r = run_guarded(lambda: call(cfg.control_path, "alerts.smtp-password", {"password": password}))
    click.echo("SMTP password stored (wrapped)" if r["set"] else "SMTP password removed")


commands = [metrics_token, access_log, alerts]

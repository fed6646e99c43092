"""`stowage credentials`, `stowage metrics-token`, `stowage access-log ...`: the operator's
commands for reaching the appliance and watching it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import click

from appliance.config import Config
from appliance.engine import offline
from appliance.opstate import METRICS_TOKEN, OperatorState
from appliance.tls import client_env

from .common import appliance_options, daemon_or_offline, fail, run_guarded


@click.command("credentials")
@appliance_options
@click.option("--env", "as_env", is_flag=True, help="print `export AWS_...` lines to eval in a shell")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def credentials(cfg: Config, as_env: bool, as_json: bool) -> None:
    """Print the root S3 credentials and the endpoint (eval "$(stowage credentials --env)")."""
    from appliance.iam.credentials import resolve_root_key

    if cfg.credentials_file and not Path(cfg.credentials_file).exists() and not cfg.s3.access_key:
        fail(f"no credentials yet: start the appliance once (`make run` or `stowage serve --data "
             f"{cfg.state_dir}`), which creates {cfg.credentials_file}")
    key = run_guarded(lambda: resolve_root_key(cfg))
    where = client_env(cfg)  # the endpoint, and AWS_CA_BUNDLE for a certificate of the appliance's own
    endpoint, ca_bundle = where["AWS_ENDPOINT_URL"], where.get("AWS_CA_BUNDLE")
    doc = {"access_key": key.access_key, "secret_key": key.secret_key, "endpoint": endpoint, "region": cfg.s3.region,
           "ca_bundle": ca_bundle}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    elif as_env:
        for name, value in (("AWS_ACCESS_KEY_ID", key.access_key), ("AWS_SECRET_ACCESS_KEY", key.secret_key),
                            ("AWS_DEFAULT_REGION", cfg.s3.region), ("AWS_ENDPOINT_URL", endpoint),
                            ("AWS_CA_BUNDLE", ca_bundle)):
            if value:
                click.echo(f"export {name}={shlex.quote(value)}")
    else:
        click.echo(f"endpoint:   {endpoint}\nregion:     {cfg.s3.region}\naccess key: {key.access_key}\n"
                   f"secret key: {key.secret_key}" + (f"\nCA bundle:  {ca_bundle}" if ca_bundle else ""))


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


commands = [credentials, metrics_token, access_log, alerts]

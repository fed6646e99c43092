"""`stowage replication ...`: remote targets of bucket replication, resync and status
(docs/replication.md). The commands talk to the running daemon, which replicates."""

from __future__ import annotations

import json
from typing import Any

import click

from appliance.config import Config

from .common import appliance_options, run_guarded
from .sizes import human_size


def _call(cfg: Config, op: str, args: dict[str, Any], **kw: Any) -> Any:
    from appliance.control import call

    return run_guarded(lambda: call(cfg.control_path, op, args, **kw))


@click.group("replication")
def replication() -> None:
    """Bucket replication to other Stowage boxes or any S3 service."""


@replication.group("target")
def target() -> None:
    """Remote S3 endpoints a replication rule's Destination names (arn:stowage:s3::NAME:BUCKET)."""


@target.command("add")
@appliance_options
@click.argument("name")
@click.option("--endpoint", required=True, help="the remote's S3 URL, e.g. https://box-b:9000")
@click.option("--access-key", required=True)
@click.option("--secret-key", envvar="STOWAGE_REMOTE_SECRET_KEY", prompt=True, hide_input=True,
              help="stored wrapped by the master key (or $STOWAGE_REMOTE_SECRET_KEY; prompted when missing)")
@click.option("--kind", type=click.Choice(["stowage", "s3"]), default="stowage",
              help="stowage: another Stowage box (version ids and REPLICA status kept); s3: any S3 service")
@click.option("--region", default="us-east-1")
@click.option("--no-tls-verify", is_flag=True, help="do not verify the remote's certificate")
@click.option("--json", "as_json", is_flag=True)
def target_add(cfg: Config, name: str, endpoint: str, access_key: str, secret_key: str, kind: str, region: str,
               no_tls_verify: bool, as_json: bool) -> None:
    """Add a replication target named NAME."""
    r = _call(cfg, "replication.target.add", {"name": name, "kind": kind, "endpoint": endpoint,
                                              "access_key": access_key, "secret_key": secret_key,
                                              "region": region, "tls_verify": not no_tls_verify})
    click.echo(json.dumps(r, indent=2) if as_json else f"added {name}: arn:stowage:s3::{name}:BUCKET")


@target.command("list")
@appliance_options
@click.option("--json", "as_json", is_flag=True)
def target_list(cfg: Config, as_json: bool) -> None:
    """List the replication targets."""
    r = _call(cfg, "replication.target.list", {})
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    for t in r:
        click.echo(f"{t['name']:<20} {t['kind']:<8} {t['endpoint']}  key {t['access_key']}  {t['arn']}")


@target.command("remove")
@appliance_options
@click.argument("name")
def target_remove(cfg: Config, name: str) -> None:
    """Remove target NAME (refused while a bucket's replication configuration names it)."""
    r = _call(cfg, "replication.target.remove", {"name": name})
    click.echo(f"removed {name}" + (f" ({r['dropped']} queued versions dropped)" if r["dropped"] else ""))


@replication.command("resync")
@appliance_options
@click.argument("bucket")
@click.option("--json", "as_json", is_flag=True)
def resync(cfg: Config, bucket: str, as_json: bool) -> None:
    """Queue BUCKET's existing versions that are not replicated yet (rules with
    ExistingObjectReplication). Resumable: run it again after an interruption."""

    def progress(p: dict[str, Any]) -> None:
        if not as_json:
            click.echo(f"\rscanned {p['scanned']}, queued {p['queued']}", nl=False, err=True)

    r = _call(cfg, "replication.resync", {"bucket": bucket}, on_progress=progress)
    click.echo(json.dumps(r, indent=2) if as_json else f"\nresync of {bucket}: {r['scanned']} versions scanned, "
               f"{r['queued']} queued")


@replication.command("status")
@appliance_options
@click.option("--json", "as_json", is_flag=True)
def status(cfg: Config, as_json: bool) -> None:
    """Per target: backlog (objects and bytes), lag, failures, throughput."""
    r = _call(cfg, "replication.status", {})
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    for name, t in r["targets"].items():
        state = f"retrying: {t['last_error']}" if t["retrying"] else "ok"
        click.echo(f"{name:<20} backlog {t['queued']} ({human_size(t['queued_bytes'])})  lag {t['lag_seconds']}s  "
                   f"completed {t['completed']}  failed {t['failed']}  "
                   f"{human_size(int(t['throughput_bytes_per_sec']))}/s  {state}")


commands = [replication]

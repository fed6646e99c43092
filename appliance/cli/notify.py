"""`stowage notify ...`: the targets bucket notifications are delivered to (docs/notifications.md).

Targets defined here live in the metadata DB (an authorization header wrapped by the master key);
targets can also be defined in the config file ([notify.targets.NAME]). The commands talk to the
running daemon, which delivers the events.
"""

from __future__ import annotations

import json
from typing import Any

import click

from appliance.config import Config

from .common import appliance_options, run_guarded


def _call(cfg: Config, op: str, args: dict[str, Any]) -> Any:
    from appliance.control import call

    return run_guarded(lambda: call(cfg.control_path, op, args))


@click.group("notify")
def notify() -> None:
    """Bucket notification targets (webhooks, JSON-lines files)."""


@notify.group("target")
def target() -> None:
    """Targets a bucket's notification configuration names by ARN."""


@target.command("add")
@appliance_options
@click.argument("name")
@click.option("--type", "kind", type=click.Choice(["webhook", "file"]), default="webhook")
@click.option("--url", default="", help="webhook: the URL events are POSTed to")
@click.option("--path", default="", help="file: the file events are appended to (JSON lines)")
@click.option("--auth-header", default="", help="webhook: the Authorization header to send (stored encrypted)")
@click.option("--no-tls-verify", is_flag=True, help="webhook: do not verify the server's certificate")
@click.option("--ca-file", default="", help="webhook: CA bundle to verify the server with")
@click.option("--json", "as_json", is_flag=True)
def target_add(cfg: Config, name: str, kind: str, url: str, path: str, auth_header: str, no_tls_verify: bool,
               ca_file: str, as_json: bool) -> None:
    """Add a target named NAME."""
    r = _call(cfg, "notify.target.add", {"name": name, "type": kind, "url": url, "path": path,
                                         "auth_header": auth_header, "tls_verify": not no_tls_verify,
                                         "ca_file": ca_file})
    click.echo(json.dumps(r, indent=2) if as_json else f"added {name}: {r['arns'][0]}")


@target.command("list")
@appliance_options
@click.option("--json", "as_json", is_flag=True)
def target_list(cfg: Config, as_json: bool) -> None:
    """List the targets with their ARNs and delivery state."""
    r = _call(cfg, "notify.target.list", {})
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    for t in r:
        where = t.get("url") or t.get("path")
        click.echo(f"{t['name']:<20} {t['type']:<8} {where}  queued {t['queued']}  delivered {t['delivered']}"
                   f"  overflowed {t['overflowed']}  ({t['source']})")
        click.echo(f"{'':<20} {t['arns'][0]}")


@target.command("remove")
@appliance_options
@click.argument("name")
def target_remove(cfg: Config, name: str) -> None:
    """Remove target NAME (refused while a bucket's configuration names it)."""
    r = _call(cfg, "notify.target.remove", {"name": name})
    click.echo(f"removed {name}" + (f" ({r['dropped']} undelivered events dropped)" if r["dropped"] else ""))


commands = [notify]

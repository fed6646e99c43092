"""`stowage site ...`: join boxes into a site that keeps buckets, their configurations,
identities and KMS keys the same everywhere and replicates objects both ways
(docs/site-replication.md). The commands talk to the running daemon."""

from __future__ import annotations

import json
from typing import Any

import click

from appliance.config import Config

from .common import appliance_options, run_guarded


def _call(cfg: Config, op: str, args: dict[str, Any]) -> Any:
    from appliance.control import call

    return run_guarded(lambda: call(cfg.control_path, op, args))


@click.group("site")
def site() -> None:
    """Site replication between Stowage boxes that share a master key."""


@site.command("add")
@appliance_options
@click.argument("url")
@click.option("--access-key", required=True, help="an admin (or root) key of the box at URL")
@click.option("--secret-key", envvar="STOWAGE_REMOTE_SECRET_KEY", prompt=True, hide_input=True,
              help="stored wrapped by the master key (or $STOWAGE_REMOTE_SECRET_KEY; prompted when missing)")
@click.option("--self-url", required=True, help="this box's S3 URL as the box at URL reaches it")
@click.option("--region", default="us-east-1")
@click.option("--no-tls-verify", is_flag=True, help="do not verify the peer's certificate")
@click.option("--json", "as_json", is_flag=True)
def add(cfg: Config, url: str, access_key: str, secret_key: str, self_url: str, region: str, no_tls_verify: bool,
        as_json: bool) -> None:
    """Join the box at URL to this box's site (both must hold the same master key); it is asked
    to join this box's other peers too."""
    r = _call(cfg, "site.add", {"url": url, "access_key": access_key, "secret_key": secret_key,
                                "self_url": self_url, "region": region, "tls_verify": not no_tls_verify})
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    click.echo(f"joined {r['name']} ({r['url']}): {r['queued']} records queued for it")
    for name in r["introduced"]:
        click.echo(f"  {r['name']} joined {name} too")
    for name, why in r["not_introduced"].items():
        click.echo(f"warning: {r['name']} could not join {name} ({why}): run `stowage site add` for that pair",
                   err=True)


@site.command("list")
@appliance_options
@click.option("--json", "as_json", is_flag=True)
def listing(cfg: Config, as_json: bool) -> None:
    """The other boxes of this box's site."""
    r = _call(cfg, "site.list", {})
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    for p in r:
        click.echo(f"{p['name']:<34} {p['url']}  key {p['access_key']}")


@site.command("remove")
@appliance_options
@click.argument("name")
def remove(cfg: Config, name: str) -> None:
    """Stop replicating with peer NAME (`stowage site list`); the peer is told and stops too."""
    r = _call(cfg, "site.remove", {"name": name})
    click.echo(f"removed {name}" + (f" ({r['dropped']} queued changes dropped)" if r["dropped"] else ""))
    if not r["told"]:
        click.echo(f"warning: {name} could not be told ({r['error']}): run `stowage site remove` there", err=True)


@site.command("status")
@appliance_options
@click.option("--json", "as_json", is_flag=True)
def status(cfg: Config, as_json: bool) -> None:
    """Per peer: backlog, lag, errors; and the conflicts resolved lately."""
    r = _call(cfg, "site.status", {})
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    click.echo(f"this box: {r['name']}  clock {r['hlc']}  changes received {r['received']}")
    for p in r["peers"]:
        state = f"retrying: {p['last_error']}" if p["retrying"] else "ok"
        click.echo(f"  {p['name']:<34} {p['url']}  backlog {p['queued']}  lag {p['lag_seconds']}s  "
                   f"sent {p['sent']}  {state}")
    if r["missing_targets"]:
        click.echo("rules naming a target this box does not have (they do nothing here until it is added):")
    for m in r["missing_targets"]:
        click.echo(f"  bucket {m['bucket']}: {m['kind']} rule {m['rule'] or '(no id)'} -> target {m['target']!r}")
    if r["conflicts"]:
        click.echo("conflicts (the last writer won):")
    for c in r["conflicts"]:
        click.echo(f"  {c['key']}: {c['local']['site']}@{c['local']['hlc']} vs {c['remote']['site']}@"
                   f"{c['remote']['hlc']}: {c['winner'] or 'kept here'} ({c['reason']})")


commands = [site]

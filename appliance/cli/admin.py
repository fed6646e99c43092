"""`stowage user ...` and `stowage key ...`: S3 credentials.

Through the running daemon's control socket when it is up; otherwise directly on the metadata
DB (LevelDB admits one process, so never both)."""

from __future__ import annotations

import json
from typing import Any

import click

from appliance.config import Config
from appliance.control import ControlError, call
from appliance.engine.metadb import MetaDB
from appliance.iam import users

from .common import appliance_options, run_guarded


def _run(cfg: Config, op: str, args: dict[str, Any]) -> Any:
    try:
        return call(cfg.control_path, op, args)
    except ControlError as exc:
        if not exc.context.get("unreachable"):
            raise
    db = MetaDB(cfg.meta_path)
    try:
        return users.OPS[op](db, args)
    finally:
        db.close()


def _show_secret(result: dict[str, Any]) -> None:
    click.echo(f"user:       {result['user']}")
    click.echo(f"access key: {result['access_key']}")
    click.echo(f"secret key: {result['secret_key']}")
    click.echo("(the secret is shown only now; store it safely)", err=True)


@click.group("user")
def user() -> None:
    """Manage S3 users."""


@user.command("add")
@appliance_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def user_add(cfg: Config, name: str, as_json: bool) -> None:
    """Create a user with a first access key."""
    r = run_guarded(lambda: _run(cfg, "user.add", {"name": name}))
    click.echo(json.dumps(r)) if as_json else _show_secret(r)


@user.command("list")
@appliance_options
@click.option("--json", "as_json", is_flag=True)
def user_list(cfg: Config, as_json: bool) -> None:
    """List users and their keys."""
    r = run_guarded(lambda: _run(cfg, "user.list", {}))
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    if not r:
        click.echo("no users (the root key from the config is always valid)")
    for u in r:
        ks = ", ".join(f"{k['access_key']}{'' if k['active'] else ' (revoked)'}" for k in u["keys"]) or "-"
        click.echo(f"{u['user']:<24} {ks}")


@user.command("remove")
@appliance_options
@click.argument("name")
def user_remove(cfg: Config, name: str) -> None:
    """Remove a user and all of its keys."""
    r = run_guarded(lambda: _run(cfg, "user.remove", {"name": name}))
    click.echo(f"removed user {r['user']} and {len(r['removed_keys'])} key(s)")


@click.group("key")
def key() -> None:
    """Manage S3 access keys."""


@key.command("create")
@appliance_options
@click.argument("user_name", metavar="USER")
@click.option("--json", "as_json", is_flag=True)
def key_create(cfg: Config, user_name: str, as_json: bool) -> None:
    """Create another access key for USER."""
    r = run_guarded(lambda: _run(cfg, "key.create", {"user": user_name}))
    click.echo(json.dumps(r)) if as_json else _show_secret(r)


@key.command("revoke")
@appliance_options
@click.argument("access_key")
def key_revoke(cfg: Config, access_key: str) -> None:
    """Revoke an access key (requests signed with it are refused from now on)."""
    r = run_guarded(lambda: _run(cfg, "key.revoke", {"access_key": access_key}))
    click.echo(f"revoked {r['access_key']} (user {r['user']})")


commands = [user, key]

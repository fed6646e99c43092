"""`stowage kms ...`: the built-in KMS's named keys and the appliance master key.

Key commands go through the running daemon's control socket when it is up, otherwise they run
on the metadata DB directly (LevelDB admits one process, so never both). `rotate-master` needs
the daemon (it rewrites shard headers while serving); `export-master` only reads the key file;
`import-master` changes the key ring the daemon loads at start, so it wants the daemon stopped.

Losing the master key loses every encrypted object and secret: back it up with export-master
and keep the copy away from the appliance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from appliance.config import Config
from appliance.control import call
from appliance.diskregistry import daemon_running
from appliance.engine import offline
from appliance.iam import kms as iam_kms
from appliance.iam import masterkey

from .common import appliance_options, daemon_or_offline, run_guarded
from .progress import op_progress


def _run(cfg: Config, op: str, args: dict[str, Any]) -> Any:
    return daemon_or_offline(cfg, op, args, lambda: _run_offline(cfg, op, args))


def _run_offline(cfg: Config, op: str, args: dict[str, Any]) -> Any:
    with offline.session(cfg.meta_path) as db:  # journaled to the data disks, as the daemon's commits
        return iam_kms.OPS[op](iam_kms.Kms(db, masterkey.open_for(cfg, db)), args)


def _line(k: dict[str, Any]) -> str:
    state = "enabled" if k["enabled"] else "DISABLED"
    return f"{k['name']:<24} {k['key_id']}  {state:<8}  {k['versions']} version(s)  {k['description']}"


def _key_op(cfg: Config, op: str, args: dict[str, Any], as_json: bool, verb: str) -> None:
    r = run_guarded(lambda: _run(cfg, op, args))
    click.echo(json.dumps(r, indent=2) if as_json else f"{verb} {_line(r)}")


@click.group("kms")
def kms() -> None:
    """The built-in KMS (SSE-KMS keys) and the appliance master key."""


@kms.group("key")
def key() -> None:
    """Named KMS keys (SSE-KMS: x-amz-server-side-encryption-aws-kms-key-id NAME or its key id)."""


@key.command("create")
@appliance_options
@click.argument("name")
@click.option("--description", default="", help="free text shown by `kms key list`")
@click.option("--json", "as_json", is_flag=True)
def key_create(cfg: Config, name: str, description: str, as_json: bool) -> None:
    """Create a key named NAME (usable as NAME, alias/NAME or its key id)."""
    _key_op(cfg, "kms.key.create", {"name": name, "description": description}, as_json, "created")


@key.command("list")
@appliance_options
@click.option("--json", "as_json", is_flag=True)
def key_list(cfg: Config, as_json: bool) -> None:
    """List the keys."""
    r = run_guarded(lambda: _run(cfg, "kms.key.list", {}))
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    if not r:
        click.echo("no KMS keys (`stowage kms key create NAME`; SSE-KMS without a key id creates aws/s3)")
    for k in r:
        click.echo(_line(k))


@key.command("disable")
@appliance_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def key_disable(cfg: Config, name: str, as_json: bool) -> None:
    """Disable a key: objects it protects can be neither read nor written until it is enabled."""
    _key_op(cfg, "kms.key.disable", {"name": name}, as_json, "disabled")


@key.command("enable")
@appliance_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def key_enable(cfg: Config, name: str, as_json: bool) -> None:
    """Enable a disabled key."""
    _key_op(cfg, "kms.key.enable", {"name": name}, as_json, "enabled")


@key.command("rotate")
@appliance_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def key_rotate(cfg: Config, name: str, as_json: bool) -> None:
    """New key material for new objects; objects already written keep opening with theirs."""
    _key_op(cfg, "kms.key.rotate", {"name": name}, as_json, "rotated")


def _rotation_line(p: dict[str, Any]) -> str:
    if p.get("waiting_writes"):
        return f"rotate-master: waiting for {p['waiting_writes']} writes that started before the rotation"
    return f"rotate-master ({p.get('phase')}): {p.get('rewrapped', 0)} keys re-wrapped"


@kms.command("rotate-master")
@appliance_options
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", is_flag=True, help="no progress display")
def rotate_master(cfg: Config, as_json: bool, quiet: bool) -> None:
    """Replace the master key: every key it wraps is re-wrapped, object data is not rewritten.

    Resumable: if interrupted, run it again. Back up the new key (export-master) afterwards.
    """
    with op_progress(_rotation_line, quiet or as_json) as progress:
        r = run_guarded(lambda: call(cfg.control_path, "kms.rotate-master", {}, on_progress=progress))
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    click.echo(f"master key is now {r['new_key']}: {r['rewrapped']} keys re-wrapped over {r['total']} segments; "
               f"retired {', '.join(r['retired']) or 'nothing'}")
    click.echo("back up the new key now: stowage kms export-master FILE", err=True)


@kms.command("export-master")
@appliance_options
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="overwrite DEST")
def export_master(cfg: Config, dest: Path, force: bool) -> None:
    """Write a backup of the master key to DEST (mode 0600). Keep it off the appliance."""

    def work() -> str:
        key = masterkey.load_or_create(cfg.master_key_path, create=False)
        masterkey.export_to(key, dest, force)
        return key.current

    current = run_guarded(work)
    click.echo(f"master key {current} written to {dest}")


@kms.command("import-master")
@appliance_options
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_master(cfg: Config, source: Path) -> None:
    """Add the keys of a backup (export-master) to the appliance's master key (daemon stopped)."""

    def work() -> tuple[masterkey.MasterKey, list[str]]:
        if daemon_running(cfg):
            raise masterkey.MasterKeyError("the daemon is running; stop it first, import, then start it")
        return masterkey.import_from(cfg.master_key_path, source)

    key, added = run_guarded(work)
    click.echo(f"{cfg.master_key_path}: {len(added)} key(s) added ({', '.join(added) or 'none new'}); "
               f"current key {key.current}")


commands = [kms]

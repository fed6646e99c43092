"""The `stowage` command line: serve, status, and the operator commands of each area."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import click
import trio

from appliance import __version__
from appliance.config import Config
from appliance.control import ControlError, call

from . import credentials as cli_credentials
from . import durability as cli_durability
from . import export as cli_export
from . import heal as cli_heal
from . import iam as cli_iam
from . import import_s3 as cli_import
from . import kms as cli_kms
from . import mountcmd as cli_mount
from . import notify as cli_notify
from . import operator as cli_operator
from . import replication as cli_replication
from . import site as cli_site
from . import tls_cmd as cli_tls
from . import upgrade as cli_upgrade
from . import usage as cli_usage
from .common import appliance_options, run_guarded
from .disks import disks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stowage")
def main() -> None:
    """Stowage: an erasure-coded S3 service and POSIX mount for one storage box."""
    # Whatever a command creates (the data directory, the metadata DB, shards, keys) is private
    # to the appliance's user, whether run by systemd (UMask=0077) or by hand.
    os.umask(0o077)


@main.command()
@appliance_options
@click.option("--listen", default=None, help="S3 listen address HOST:PORT (port 0: any free port)")
@click.option("--mount", "mount_dir", type=click.Path(file_okay=False), default=None, help="mount the buckets here")
@click.option("--no-mount", is_flag=True, help="do not mount the filesystem view")
@click.option("--banner", is_flag=True, help="print the endpoint, mount and how to get the credentials once up")
def serve(cfg: Config, listen: str | None, mount_dir: str | None, no_mount: bool, banner: bool) -> None:
    """Run the appliance daemon (S3 gateway, mount, healing) in the foreground."""
    from appliance.config import validate
    from appliance.daemon import run
    from appliance.logsetup import setup_logging

    if mount_dir and no_mount:
        raise click.UsageError("--mount and --no-mount exclude each other")
    s3, mount = cfg.s3, cfg.mount
    if listen:
        s3 = replace(s3, listen=listen)
    if mount_dir:
        mount = replace(mount, path=str(Path(mount_dir).resolve()), enabled="yes")
    if no_mount:
        mount = replace(mount, enabled="no")
    if (s3, mount) != (cfg.s3, cfg.mount):
        cfg = run_guarded(lambda: validate(replace(cfg, s3=s3, mount=mount)))
    setup_logging(cfg.log_level)
    from .operator import print_banner

    run_guarded(lambda: trio.run(partial(run, cfg, on_ready=print_banner if banner else None)))


def control_call(cfg: Config, op: str, args: dict[str, Any] | None = None, **kw: Any) -> Any:
    return run_guarded(lambda: call(cfg.control_path, op, args, **kw))


@main.command()
@appliance_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(cfg: Config, as_json: bool) -> None:
    """Show the appliance's state: endpoints, pools, disks, healing, counts."""
    try:
        st = call(cfg.control_path, "status")
    except ControlError as exc:
        if not exc.context.get("unreachable"):
            raise click.ClickException(exc.message) from exc
        from .offline import offline_status

        st = run_guarded(lambda: offline_status(cfg))
    if as_json:
        click.echo(json.dumps(st, indent=2, sort_keys=True))
        return
    from .status_view import render_status

    render_status(st)


for _cmd in [disks, *cli_iam.commands, *cli_heal.commands, *cli_kms.commands, *cli_operator.commands,
             *cli_durability.commands, *cli_notify.commands, *cli_replication.commands, *cli_credentials.commands,
             *cli_export.commands, *cli_import.commands, *cli_upgrade.commands, *cli_usage.commands,
             *cli_tls.commands, *cli_site.commands, *cli_mount.commands]:
    main.add_command(_cmd)

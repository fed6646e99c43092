"""`stowage credentials [--env]`: how a client on this box reaches the gateway as root: the root
key (config or the embedded mode's generated file), the endpoint, and AWS_CA_BUNDLE when the
gateway serves HTTPS with its own certificate (appliance/tls.py), so the aws CLI and boto3 work
with HTTPS at once: `eval "$(stowage credentials --env)"`.
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import click

from appliance.config import Config
from appliance.tls import client_env

from .common import appliance_options, fail


def root_key(cfg: Config) -> tuple[str, str] | None:
    if cfg.s3.access_key:
        return cfg.s3.access_key, cfg.s3.secret_key
    if cfg.credentials_file:
        try:
            raw = tomllib.loads(Path(cfg.credentials_file).read_text())
            return str(raw["access_key"]), str(raw["secret_key"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return None
    return None


def credentials_env(cfg: Config) -> dict[str, str]:
    env: dict[str, str] = {}
    key = root_key(cfg)
    if key is not None:
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = key
    env["AWS_DEFAULT_REGION"] = cfg.s3.region
    env.update(client_env(cfg))
    return env


@click.command()
@appliance_options
@click.option("--env", "as_env", is_flag=True, help="shell `export` lines (eval them)")
def credentials(cfg: Config, as_env: bool) -> None:
    """Show the root credentials, the endpoint and the CA bundle clients need."""
    env = credentials_env(cfg)
    if "AWS_ACCESS_KEY_ID" not in env:
        fail("no root key to show: set s3.access_key/s3.secret_key (or start the embedded appliance once)")
    for name, value in env.items():
        click.echo(f"export {name}={shlex.quote(value)}" if as_env else f"{name}={value}")


commands = [credentials]

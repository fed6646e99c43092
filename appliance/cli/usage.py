"""`stowage usage` and `stowage quota`: what the buckets hold, and hard quotas.

Both ask the running daemon (the counters are kept by its commits; docs/lifecycle.md, "Usage
and quotas").
"""

from __future__ import annotations

import json
import math
from typing import Any

import click

from appliance.config import Config
from appliance.control import call

from .common import appliance_options, run_guarded
from .sizes import human_size

MAX_SIZE = (1 << 63) - 1  # what the quota records hold
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def parse_size(text: str) -> int:
    """"10G", "512M", "1.5T", "1000" (bytes) -> bytes; binary units, an optional "iB"/"B"."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in UNITS and t[-1:] else ""
    number = t[: -1] if unit else t
    try:
        value = float(number)
    except ValueError:
        raise click.BadParameter(f"not a size: {text!r} (try 10G, 512M or a number of bytes)") from None
    if not math.isfinite(value):  # float() takes "nan", "inf" and overflows "1e999" to inf
        raise click.BadParameter(f"not a size: {text!r} (try 10G, 512M or a number of bytes)")
    if value < 0:
        raise click.BadParameter("a size cannot be negative")
    size = value * UNITS[unit]
    if size > MAX_SIZE:
        raise click.BadParameter(f"{text!r} is too large (at most 8 EiB)")
    return int(size)


@click.command("usage")
@appliance_options
@click.option("--bucket", default=None, help="only this bucket")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def usage(cfg: Config, bucket: str | None, as_json: bool) -> None:
    """Bytes and objects per bucket and storage class, bytes on disk after erasure coding, what
    lifecycle will expire or move in the next 30 days, quotas and a recommendation."""
    report: dict[str, Any] = run_guarded(lambda: call(cfg.control_path, "usage", {"bucket": bucket}))
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    for b in report["buckets"]:
        quota = b.get("quota")
        limit = ""
        if quota:
            limit = f", quota {human_size(quota['bytes']) if quota['bytes'] else '-'} / " \
                    f"{quota['objects'] or '-'} objects"
        click.echo(f"{b['bucket']}: {b['objects']} objects, {human_size(b['bytes'])} "
                   f"({human_size(b['stored_bytes'])} on disk){limit}")
        for cls, c in b["classes"].items():
            click.echo(f"  {cls:<20} {c['objects']:>10} objects {human_size(c['bytes']):>10} "
                       f"({human_size(c['stored_bytes'])} on disk)")
        outlook = b.get("lifecycle_next_30_days")
        if outlook:
            click.echo(f"  lifecycle, next 30 days: expires {human_size(outlook['expire_bytes'])}, "
                       f"moves {human_size(outlook['transition_bytes'])}")
        click.echo(f"  recommendation: {b['recommendation']}")
    for u in report.get("user_quotas", []):
        click.echo(f"user {u.get('name') or u['user']}: quota {human_size(u['bytes']) if u['bytes'] else '-'} / "
                   f"{u['objects'] or '-'} objects")


@click.group("quota")
def quota() -> None:
    """Hard quotas of buckets and users (enforced on every write: S3 403 QuotaExceeded, EDQUOT)."""


def _target(bucket: str | None, user: str | None) -> tuple[str, str]:
    if bool(bucket) == bool(user):
        raise click.UsageError("give exactly one of --bucket and --user")
    return ("bucket", bucket) if bucket else ("user", str(user))


@quota.command("set")
@appliance_options
@click.option("--bucket", default=None)
@click.option("--user", default=None, help="a user name, root, or a canonical id: the buckets they own count together")
@click.option("--bytes", "max_bytes", default="0", help="e.g. 10G, 512M (0: no limit)")
@click.option("--objects", "max_objects", default=0, type=click.IntRange(0, MAX_SIZE), help="0: no limit")
def quota_set(cfg: Config, bucket: str | None, user: str | None, max_bytes: str, max_objects: int) -> None:
    """Set a hard quota (both limits 0 clears it)."""
    kind, name = _target(bucket, user)
    try:
        size = parse_size(max_bytes)
    except click.BadParameter as exc:
        exc.param_hint = "--bytes"
        raise
    args = {"kind": kind, "name": name, "bytes": size, "objects": max_objects}
    r = run_guarded(lambda: call(cfg.control_path, "quota.set", args))
    click.echo(f"{kind} {name}: " + (f"quota {human_size(r['bytes']) if r['bytes'] else '-'} / "
                                     f"{r['objects'] or '-'} objects" if r else "no quota"))


@quota.command("clear")
@appliance_options
@click.option("--bucket", default=None)
@click.option("--user", default=None)
def quota_clear(cfg: Config, bucket: str | None, user: str | None) -> None:
    """Remove a quota."""
    kind, name = _target(bucket, user)
    run_guarded(lambda: call(cfg.control_path, "quota.set", {"kind": kind, "name": name, "bytes": 0, "objects": 0}))
    click.echo(f"{kind} {name}: no quota")


commands = [usage, quota]

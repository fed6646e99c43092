"""`stowage import minio-iam FILE.zip` (the zip of `mc admin cluster iam export`) or
`stowage import minio-iam --endpoint URL --access-key AK --secret-key SK` (the same zip fetched from
MinIO's admin API): MinIO's users, groups, policies and service accounts become Stowage's
(appliance/importer/minio_iam.py plans, appliance/iam/imports.py applies, through the running
daemon or on the stopped one's DB). `--dry-run` prints the plan and writes nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from appliance.config import Config
from appliance.importer.report import ImportReport

from .common import appliance_options, daemon_or_offline, fail, run_guarded


def _reserved_keys(cfg: Config) -> list[str]:
    from .credentials import root_key

    found = [os.environ.get("STOWAGE_ROOT_ACCESS_KEY", "")]
    key = root_key(cfg)
    if key is not None:
        found.append(key[0])
    return [k for k in found if k]


def _apply(cfg: Config, items: list[dict[str, Any]], reserved: list[str]) -> Any:
    from appliance.engine import offline
    from appliance.iam.admin import load_master_key
    from appliance.iam.commands import run_offline

    args = {"items": items, "reserved_keys": reserved}
    return daemon_or_offline(cfg, "iam.import", args, lambda: offline.identity_session(
        cfg.meta_path, lambda view: run_offline(view, load_master_key(cfg.master_key_path, view), "iam.import", args)))


def _apply_guarded(cfg: Config, batch: list[dict[str, Any]], reserved: list[str]) -> Any:
    return run_guarded(lambda: _apply(cfg, batch, reserved))


def _read(export_file: str | None, endpoint: str | None, access_key: str | None, secret_key: str | None,
          region: str, verify: bool | str) -> tuple[dict[str, Any], list[str]]:
    from appliance.importer.minio_iam import MinioExportError, fetch_export, read_export

    try:
        if export_file:
            return read_export(Path(export_file))
        if not (endpoint and access_key and secret_key):
            fail("name an export file, or --endpoint with --access-key and --secret-key (a MinIO admin's key)")
        with tempfile.TemporaryFile() as tmp:  # never linked into a directory, gone on close
            fetch_export(str(endpoint), str(access_key), str(secret_key), region, verify, tmp)
            tmp.seek(0)
            return read_export(tmp)
    except MinioExportError as exc:
        fail(f"cannot import the MinIO identities: {exc}")
        raise  # unreachable: fail exits


@click.command("minio-iam")
@appliance_options
@click.argument("export_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--endpoint", default=None, help="fetch the export from this MinIO's admin API instead")
@click.option("--access-key", default=None, envvar="STOWAGE_IMPORT_ACCESS_KEY",
              help="a MinIO admin's access key (or STOWAGE_IMPORT_ACCESS_KEY)")
@click.option("--secret-key", default=None, envvar="STOWAGE_IMPORT_SECRET_KEY",
              help="its secret key (or STOWAGE_IMPORT_SECRET_KEY, which keeps it out of the process list)")
@click.option("--region", default="us-east-1", show_default=True, help="the region MinIO signs with")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CA certificates for a MinIO with its own certificate")
@click.option("--no-verify-ssl", is_flag=True, help="do not check MinIO's certificate")
@click.option("--root-user", default="minio-root", show_default=True,
              help="the Stowage user (created with the canned admin policy) that gets the keys of MinIO's root "
                   "user's service accounts")
@click.option("--dry-run", is_flag=True, help="print what would be imported (from the export alone); write nothing")
@click.option("--json", "as_json", is_flag=True, help="print the final report as JSON")
def minio_iam(cfg: Config, export_file: str | None, endpoint: str | None, access_key: str | None,
              secret_key: str | None, region: str, ca_bundle: str | None, no_verify_ssl: bool, root_user: str,
              dry_run: bool, as_json: bool) -> None:
    """Import MinIO's users, groups, policies and service accounts."""
    from appliance.engine.errors import StowageError
    from appliance.importer.minio_iam import batches, plan_import

    verify: bool | str = False if no_verify_ssl else (ca_bundle or True)
    if root_user.lower() == "root":
        fail("--root-user: 'root' is reserved for the appliance's root key")
    files, ignored = _read(export_file, endpoint, access_key, secret_key, region, verify)
    try:
        plan = plan_import(files, ignored, root_user=root_user)
    except StowageError as exc:
        fail(f"--root-user: {exc.message}")
        raise  # unreachable: fail exits
    report = ImportReport(dry_run=dry_run, identities=list(plan.mapped))
    for s in plan.skipped:
        report.skip(s["item"], s["reason"])
    if dry_run:
        report.identities += [_describe(it) for it in plan.items]
    else:
        reserved = _reserved_keys(cfg)
        for batch in batches(plan.items):
            result = _apply_guarded(cfg, batch, reserved)
            report.identities += result["imported"]
            for s in result["skipped"]:
                report.skip(s["item"], s["reason"])
    _print(report, as_json)


def _describe(it: dict[str, Any]) -> str:
    if it["kind"] == "key":
        limits = (", with its session policy" if it["session_policy"] else "") + \
            (f", expiring {datetime.fromtimestamp(it['expires_ns'] // 10**9, UTC):%Y-%m-%dT%H:%M:%SZ}"
             if it["expires_ns"] else "")
        return f"access key {it['access_key']} of user {it['user']} ({it['source']}{limits})"
    return f"{it['kind']} {it['name']}"


def _print(report: ImportReport, as_json: bool) -> None:
    if as_json:  # the report names identities and reasons, never a secret
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
        return
    verb = "would import" if report.dry_run else "imported"
    click.echo(f"{verb} {len(report.identities)} identities; {len(report.skipped)} items skipped")
    for item in report.identities:
        click.echo(f"  {item}")
    for s in report.skipped:
        click.echo(f"  skipped {s['item']}: {s['reason']}")

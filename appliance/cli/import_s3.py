"""`stowage import s3 --endpoint URL --access-key ... --secret-key ... [--bucket B ...] [--prefix P]`:
copy buckets from any S3 service (MinIO, Ceph RGW, AWS, Garage, ...) into this appliance, through
its S3 gateway as root. Resumable (a cursor under <state_dir>/import/), so it can run again right
before the switch-over and copy only what changed; `--dry-run` says what it would copy.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import click

from appliance.config import Config, url_parses
from appliance.importer.report import ImportReport

from .common import appliance_options, fail
from .import_minio import minio_iam
from .sizes import human_size

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgKMG]?)(i?)[bB]?(?:/s)?\s*$")


def parse_rate(text: str) -> int:
    """"50M", "1.5GiB/s", "800k" -> bytes per second (1000-based, or 1024 with "i"); "0": none."""
    m = _RATE.match(text)
    if not m:
        raise click.BadParameter(f"expected a rate such as 50M or 1GiB/s, got {text!r}")
    base = 1024 if m.group(3) else 1000
    return int(float(m.group(1)) * base ** " kmg".index(m.group(2).lower() or " "))


def check_endpoint(endpoint: str) -> str:
    """An http:// or https:// URL with a host (and a port that is a number), else a usage error."""
    if not url_parses(endpoint) or urlsplit(endpoint).scheme not in ("http", "https"):
        raise click.BadParameter(f"expected an http:// or https:// URL such as https://minio.lan:9000, "
                                 f"got {endpoint!r}", param_hint="--endpoint")
    return endpoint


def _client(endpoint: str, access_key: str, secret_key: str, region: str, verify: bool | str, parallel: int) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                        region_name=region, verify=verify,
                        config=BotoConfig(s3={"addressing_style": "path"}, max_pool_connections=parallel + 4,
                                          retries={"max_attempts": 5, "mode": "standard"},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))


def target_client(cfg: Config, parallel: int) -> Any:
    from .credentials import credentials_env

    env = credentials_env(cfg)
    if "AWS_ACCESS_KEY_ID" not in env:
        fail("no root key for this appliance: set s3.access_key/s3.secret_key in the config")
    return _client(env["AWS_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                   env["AWS_DEFAULT_REGION"], env.get("AWS_CA_BUNDLE", True), parallel)


@click.group("import")
def import_group() -> None:
    """Bring data in from another storage service."""


@import_group.command("s3")
@appliance_options
@click.option("--endpoint", required=True, help="the source S3 service, e.g. https://minio.lan:9000")
@click.option("--access-key", required=True, envvar="STOWAGE_IMPORT_ACCESS_KEY", help="source access key "
              "(or STOWAGE_IMPORT_ACCESS_KEY)")
@click.option("--secret-key", required=True, envvar="STOWAGE_IMPORT_SECRET_KEY", help="source secret key "
              "(or STOWAGE_IMPORT_SECRET_KEY, which keeps it out of the process list)")
@click.option("--region", default="us-east-1", show_default=True, help="the region the source signs with")
@click.option("--bucket", "buckets", multiple=True, help="only this bucket (repeatable); default: all")
@click.option("--prefix", default="", help="only keys with this prefix")
@click.option("--dry-run", is_flag=True, help="report what would be copied; write nothing")
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(1, 64), help="keys copied at once")
@click.option("--rate-limit", default="0", help="bytes per second read from the source (50M, 1GiB/s); 0: none")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CA certificates for an HTTPS source with its own certificate")
@click.option("--no-verify-ssl", is_flag=True, help="do not check the source's certificate")
@click.option("--json", "as_json", is_flag=True, help="print the final report as JSON")
def import_s3(cfg: Config, endpoint: str, access_key: str, secret_key: str, region: str, buckets: tuple[str, ...],
              prefix: str, dry_run: bool, parallel: int, rate_limit: str, ca_bundle: str | None, no_verify_ssl: bool,
              as_json: bool) -> None:
    """Copy buckets from any S3 service: every version in order (delete markers included) with
    metadata, tags, checksums, storage class and object lock, and the buckets' configuration."""
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from appliance.importer.cursor import Cursor, cursor_path
    from appliance.importer.run import ImportOptions, Plan, run_import

    check_endpoint(endpoint)
    rate = parse_rate(rate_limit)
    verify: bool | str = False if no_verify_ssl else (ca_bundle or True)
    try:
        clients = _clients(cfg, endpoint, access_key, secret_key, region, verify, parallel)
    except ValueError as exc:  # botocore refuses an endpoint it cannot use
        fail(f"error: --endpoint {endpoint}: {exc}")
    cursor = Cursor(cursor_path(cfg.state_dir, endpoint), readonly=dry_run)
    report = ImportReport()
    opts = ImportOptions(list(buckets), prefix, parallel, rate, dry_run)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  disable=as_json, transient=False) as bar:
        data = bar.add_task("data", total=None)
        count = bar.add_task("versions", total=None)

        def on_plan(plans: list[Plan]) -> None:
            bar.update(data, total=sum(p.total_bytes for p in plans) or None)
            bar.update(count, total=sum(p.total_versions for p in plans) or None)

        def progress(bucket: str, nbytes: int, versions: int) -> None:
            bar.update(data, advance=nbytes, description=f"data ({bucket})")
            if versions:
                bar.update(count, advance=versions)

        stopped = ""
        try:
            run_import(clients, cursor, opts, report, on_plan, progress)
        except LookupError as exc:
            fail(str(exc))
        except (ClientError, BotoCoreError) as exc:  # the source (or this appliance) cannot be listed
            stopped = str(exc)
    if stopped:  # after the progress bars are closed
        fail(f"error: import stopped: {stopped}")
    _print_report(report, as_json)
    if report.failed:
        fail(f"{len(report.failed)} items failed; run the import again to retry them")


def _clients(cfg: Config, endpoint: str, access_key: str, secret_key: str, region: str, verify: bool | str,
             parallel: int) -> Any:
    from appliance.importer.copier import Clients

    return Clients(_client(endpoint, access_key, secret_key, region, verify, parallel), target_client(cfg, parallel))


def _print_report(report: ImportReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True, default=str))
        return
    verb = "would copy" if report.dry_run else "copied"
    click.echo(f"{verb} {report.versions} object versions ({human_size(report.bytes)}) and "
               f"{report.delete_markers} delete markers from {len(report.buckets)} buckets; "
               f"{report.unchanged} versions unchanged since the last run; {report.deleted} keys gone from "
               "the source deleted")
    for item in report.configuration:
        click.echo(f"  configuration {item}")
    for item in report.identities:
        click.echo(f"  identity {item}")
    for s in report.skipped:
        click.echo(f"  skipped {s['item']}: {s['reason']}")
    for s in report.failed:
        click.echo(f"  FAILED {s['item']}: {s['reason']}")


import_group.add_command(minio_iam)
commands = [import_group]

"""CLI commands of self-healing: scrub, heal, snapshot-metadata, recover-metadata.

All but recover-metadata talk to the running daemon through the control socket and stream its
progress; recover-metadata runs with the daemon stopped and writes a new metadata DB.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn

from appliance.config import Config
from appliance.control import call

from .common import appliance_options, run_guarded

if TYPE_CHECKING:
    from appliance.engine.progress import RecoveryReport
    from appliance.engine.recover import RecoveryStep
from .progress import Describe, op_progress
from .sizes import human_size


def _op(cfg: Config, op: str, args: dict[str, Any], describe: Describe | None = None, quiet: bool = False) -> Any:
    if describe is None:
        return run_guarded(lambda: call(cfg.control_path, op, args))
    with op_progress(describe, quiet) as progress:
        return run_guarded(lambda: call(cfg.control_path, op, args, on_progress=progress))


def _scrub_line(p: dict[str, Any]) -> str:
    return (f"scrub: {p.get('segments', 0)} segments, {human_size(p.get('bytes_read', 0))} verified, "
            f"{p.get('found', 0)} damaged, {p.get('repaired', 0)} repaired, "
            f"{p.get('unrecoverable', 0)} unrecoverable")


def _heal_line(p: dict[str, Any]) -> str:
    return (f"heal: {p.get('done', 0)}/{p.get('total', 0)} segments, {p.get('rebuilt_shards', 0)} shards rebuilt "
            f"({p.get('moved_shards', 0)} moved)")


def service_lines(name: str, svc: Any) -> str | None:
    """Human lines of a healing service for `stowage status` (None: not one of ours)."""
    if not isinstance(svc, dict):
        return None
    if name == "heal":
        state = "running" if svc.get("running") else "idle"
        out = f"{_heal_line(svc)}, {state}, {svc.get('pending', 0)} queued"
        lost = svc.get("unrecoverable") or []
        if lost:
            out += f"\n  UNRECOVERABLE ({len(lost)}): " + ", ".join(lost[:20]) + (" ..." if len(lost) > 20 else "")
        return out
    if name == "scrub":
        state = "running" if svc.get("running") else "idle"
        return f"{_scrub_line(svc)}, {state}, rate {human_size(svc.get('rate_bytes_per_sec', 0))}/s"
    if name == "drain":
        if not svc:
            return "drain: -"
        return (f"{svc.get('op', 'drain')} {svc.get('disk_id')}: {svc.get('done', 0)}/{svc.get('total', 0)} segments, "
                f"{svc.get('moved_shards', 0)} shards moved" + (", running" if svc.get("running") else ""))
    if name == "snapshot":
        out = f"metadata snapshots: {svc.get('count', 0)} kept, last {svc.get('last_segment', '-')}"
        j = svc.get("journal") or {}
        if j:
            out += (f"\nmetadata journal: on {len(j.get('disks', []))} disks (each commit on {j.get('quorum')}), "
                    f"record {j.get('last_record', 0)}, {human_size(j.get('bytes_since_snapshot', 0))} since the "
                    "last snapshot")
            for disk_id, why in sorted((j.get("stopped") or {}).items()):
                out += f"\n  JOURNAL STOPPED on {disk_id}: {why}"
        return out
    return None


def _print_lost(lost: list[dict[str, Any]]) -> None:
    if not lost:
        return
    click.echo(f"{len(lost)} unrecoverable segments (fewer than k readable chunks):")
    from appliance.engine.progress import describe_ref

    for e in lost:
        objs = ", ".join(describe_ref(r) for r in e.get("objects", [])) or "no object references it"
        click.echo(f"  segment {e['segment_id']}: {objs}")


@click.command()
@appliance_options
@click.option("--no-wait", is_flag=True, help="start the pass and return at once")
@click.option("--json", "as_json", is_flag=True, help="machine-readable result")
@click.option("-q", "--quiet", is_flag=True, help="no progress lines")
def scrub(cfg: Config, no_wait: bool, as_json: bool, quiet: bool) -> None:
    """Verify every chunk of every object now, repairing what is damaged."""
    res = _op(cfg, "scrub.start", {"wait": not no_wait}, _scrub_line, quiet or as_json)
    if as_json:
        click.echo(json.dumps(res, indent=2, sort_keys=True))
    elif no_wait:
        click.echo("scrub pass started; `stowage status` shows its progress")
    else:
        click.echo(_scrub_line(res))
    if res.get("unrecoverable"):
        sys.exit(2)


@click.command()
@appliance_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable result")
@click.option("-q", "--quiet", is_flag=True, help="no progress lines")
def heal(cfg: Config, as_json: bool, quiet: bool) -> None:
    """Repair everything known damaged now (degraded segments, shards on failed disks)."""
    res = _op(cfg, "heal.run", {}, _heal_line, quiet or as_json)
    if as_json:
        click.echo(json.dumps(res, indent=2, sort_keys=True))
        return
    click.echo(_heal_line(res["heal"]))
    pending = res["heal"].get("pending", 0)
    if pending:
        click.echo(f"{pending} segments still wait for a disk to rebuild on")
    _print_lost(res["unrecoverable"])
    if res["unrecoverable"]:
        sys.exit(2)


@click.command("snapshot-metadata")
@appliance_options
def snapshot_metadata(cfg: Config) -> None:
    """Store a metadata snapshot on the data disks now."""
    res = _op(cfg, "meta.snapshot", {})
    click.echo(f"metadata snapshot {res['segment_id']}: {res['records']} records, {human_size(res['length'])}")


class _RecoveryView:
    """Recovery progress: a rich bar per phase on a terminal, plain lines on stderr elsewhere,
    nothing with --json."""

    def __init__(self, progress: Progress | None, echo: bool) -> None:
        self.progress = progress
        self.echo = echo
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, step: RecoveryStep) -> None:
        if self.progress is None:
            if self.echo:
                click.echo(step.message, err=True)
            return
        task = self.tasks.get(step.phase)
        if task is None:
            task = self.tasks[step.phase] = self.progress.add_task(step.message, total=step.total)
        self.progress.update(task, description=step.message, total=step.total, completed=step.done)


@contextmanager
def _recovery_view(as_json: bool) -> Iterator[_RecoveryView]:
    console = Console(stderr=True)
    if as_json or not console.is_terminal:
        yield _RecoveryView(None, not as_json)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console) as progress:
        yield _RecoveryView(progress, False)


def _print_report(cfg: Config, report: RecoveryReport) -> None:
    snap = report.snapshot
    click.echo(f"metadata DB rebuilt in {cfg.meta_path} for appliance {report.appliance_id}")
    click.echo(f"  snapshot: {snap['segment_id'] if snap else 'none found'} "
               f"({report.restored_records} records restored)")
    j = report.journal or {}
    if j.get("files"):
        state = "complete" if j.get("complete") else "INCOMPLETE"
        click.echo(f"  journal: {j.get('records', 0)} commits replayed (records {int(j.get('from_lsn', 0)) + 1}.."
                   f"{j.get('to_lsn', 0)}, {j.get('files')} files): {state}")
    for torn in report.journal_torn:
        click.echo(f"  journal file cut short (the other disks' copies stand in): {torn}")
    if report.restored:
        click.echo("  restored: " + ", ".join(f"{n} {what}" for what, n in report.restored.items() if n))
    if report.versions_added or report.parts_added:
        click.echo(f"  object versions added from shard headers: {len(report.versions_added)}; "
                   f"multipart parts: {report.parts_added}")
    if report.segments_uncommitted:
        click.echo(f"  writes never committed (their shards go with the orphan sweep): {report.segments_uncommitted}")
    if report.degraded_segments:
        click.echo(f"  segments missing shards (queued for healing): {report.degraded_segments}")
    if report.segments_ignored:
        click.echo(f"  segments without a recoverable identity (FUSE-staged, unknown): {report.segments_ignored}")
    if report.not_restored:
        click.echo(f"  NOT RESTORED ({len(report.not_restored)}):")
        for note in report.not_restored:
            click.echo(f"    - {note}")
    else:
        click.echo("  nothing was left out")
    click.echo("start the daemon (`stowage serve`): it takes a metadata snapshot first; the orphan sweep removes "
               "unreferenced shard files")


@click.command("recover-metadata")
@appliance_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable report")
@click.option("--master-key", "master_key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="a master key backup (kms export-master), when the key file is lost too")
def recover_metadata_cmd(cfg: Config, as_json: bool, master_key: Path | None) -> None:
    """Rebuild a lost metadata DB from the data disks (daemon stopped, empty metadata dir).

    Restores the newest metadata snapshot stored on the data disks, replays the metadata journal
    written since, and reconciles with the shard headers. Encrypted objects need the master key:
    from its usual place or --master-key FILE (then added to the usual place). Interrupted, it
    resumes when run again. See docs/metadata-recovery.md for what cannot come back.
    """
    from appliance.diskregistry import daemon_running
    from appliance.engine.recover import RecoveryError, recover_metadata
    from appliance.iam import masterkey
    from appliance.iam.kms import envelope_check

    def recover(view: _RecoveryView) -> RecoveryReport:
        if daemon_running(cfg):
            raise RecoveryError("the daemon is running; stop it first (systemctl stop stowage)")
        if master_key is not None:
            key: masterkey.MasterKey | None = masterkey.parse(master_key.read_bytes(), master_key)
        elif cfg.master_key_path.exists() or masterkey.credential_path() is not None:
            key = masterkey.load_or_create(cfg.master_key_path, create=False)
        else:
            key = None
        report = recover_metadata(cfg, view, envelope_check(key) if key is not None else None)
        if master_key is not None:
            _, added = masterkey.import_from(cfg.master_key_path, master_key)
            if not as_json:
                click.echo(f"master key backup {master_key}: {len(added)} key(s) added to {cfg.master_key_path}",
                           err=True)
        return report

    with _recovery_view(as_json) as view:
        report = run_guarded(lambda: recover(view))
    if as_json:
        click.echo(json.dumps(vars(report), indent=2, sort_keys=True))
        return
    _print_report(cfg, report)


commands = [scrub, heal, snapshot_metadata, recover_metadata_cmd]

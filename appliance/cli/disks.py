"""`stowage disks`: list (the default), smart DISK, add DEVICE.

Read-only views work without the daemon: they read the host (lsblk, blkid, mountinfo, smartctl,
statvfs) and the disks' labels; when the daemon answers on the control socket its own per-disk
counters (I/O errors, checksum failures, latency, state) are merged in. `--json` output is
documented in docs/disks-json.md and versioned by its "format" field.

`remove` and `replace` (at the end) call the daemon's drain/rebuild ops
(appliance/services/drain.py): a disk is released only after every shard it held lives elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from appliance import diskregistry as registry
from appliance.config import Config
from appliance.engine.errors import InvalidArgument, StowageError
from diskmgr.discovery import BlockDevice, DiscoveryError, discover, find_device, suggest_roles
from diskmgr.health import DiskObservation, Health, assess
from diskmgr.label import is_mounted, mount_at, read_label, read_mounts, verify_label
from diskmgr.smart import SmartReport, read_smart
from diskmgr.state import ADMINISTRATIVE, DiskState

from .common import appliance_options, resolve_config, run_guarded
from .progress import op_progress
from .sizes import human_size

JSON_FORMAT = 1


@dataclass
class DiskRow:
    managed: bool
    disk_id: str | None = None
    device: str | None = None
    by_id: str | None = None
    mount_point: str | None = None
    kind: str = ""
    model: str = ""
    serial: str = ""
    size_bytes: int | None = None
    role: str | None = None
    pool: str | None = None
    suggested_role: str | None = None
    suggestion_reason: str = ""
    system: bool = False
    in_use: list[str] = field(default_factory=list)
    state: DiskState = DiskState.OK
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    used_bytes: int | None = None
    free_bytes: int | None = None
    temperature_c: int | None = None
    smart: str = "not_read"
    power_on_hours: int | None = None
    errors: dict[str, int | None] = field(default_factory=dict)
    latency_ms: float | None = None
    shards: int | None = None
    heal_progress: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _errors(smart: SmartReport | None, io: int | None = None, checksum: int | None = None) -> dict[str, int | None]:
    s = smart if smart is not None and smart.available else None
    return {
        "io": io,
        "checksum": checksum,
        "reallocated_sectors": s.reallocated_sectors if s else None,
        "pending_sectors": s.pending_sectors if s else None,
        "offline_uncorrectable": s.offline_uncorrectable if s else None,
        "uncorrected": s.uncorrected_errors if s else None,
        "media_errors": s.media_errors if s else None,
    }


def _daemon_counters(cfg: Config) -> dict[str, dict[str, Any]]:
    if not registry.daemon_running(cfg):
        return {}
    from appliance.control import ControlError, call

    try:
        result = call(cfg.control_path, "disks.counters", timeout=10.0)
    except (ControlError, OSError, ValueError):
        return {}
    rows = result.get("disks") if isinstance(result, dict) else None
    return {r["disk_id"]: r for r in rows or [] if isinstance(r, dict) and isinstance(r.get("disk_id"), str)}


def _managed_dirs(cfg: Config) -> list[Path]:
    dirs = [Path(d.path) for d in cfg.disks]
    with contextlib.suppress(OSError):
        dirs += sorted(p for p in cfg.disks_dir.iterdir() if p.is_dir() and p not in dirs)
    return dirs


def _candidate_dirs(cfg: Config) -> list[Path]:
    """The configured disks and the entries of the disks directory, without touching them: a
    stalled disk mounted there would hang even a stat (its view is taken with a deadline)."""
    dirs = [Path(d.path) for d in cfg.disks]
    with contextlib.suppress(OSError):
        dirs += sorted(p for p in cfg.disks_dir.iterdir() if p not in dirs)
    return dirs


@dataclass
class _PathView:
    """What the host sees at one managed disk's directory (read with a deadline)."""

    exists: bool = False
    is_dir: bool = False
    mounted: bool = False
    disk_id: str | None = None
    role: str | None = None
    pool: str | None = None
    label_error: str = ""
    space: list[int] | None = None  # size, free for us, used (bytes)


def _look_at(path: Path, static: bool, appliance_id: str | None) -> _PathView:
    view = _PathView(exists=path.exists(), is_dir=path.is_dir())
    view.mounted = static or is_mounted(path)
    try:
        label = read_label(path) if view.mounted else None
        if label is not None:
            view.disk_id, view.role, view.pool = label.disk_id, label.role, label.pool
            if appliance_id:
                # a managed disk's mount point is named after the disk recorded there: another
                # disk's label (mounts swapped) keeps it offline in the daemon, so here too
                verify_label(label, appliance_id, None if static else path.name)
    except StowageError as exc:  # ForeignDisk among them
        view.label_error = exc.message
    if view.mounted:
        with contextlib.suppress(OSError):
            st = os.statvfs(path)
            view.space = [st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize,
                          (st.f_blocks - st.f_bfree) * st.f_frsize]
    return view


def _look_at_all(paths: list[tuple[Path, bool]], appliance_id: str | None,
                 deadline_s: float) -> list[_PathView | None]:
    """Every path's view; None for a disk that gave no answer in time (a stalled disk).

    The looking happens in a forked child, one thread per path, each answering on a pipe as soon
    as it can: a thread blocked on a stalled FUSE or NFS disk sits in an uninterruptible wait
    that not even process exit ends, so in this process it would hold the command's stdout open
    for ever. The child is left to finish (or be reaped by init) once the disk answers."""
    views: list[_PathView | None] = [None] * len(paths)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(r)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            lock = threading.Lock()

            def look(i: int, path: Path, static: bool) -> None:
                line = json.dumps([i, dataclasses.asdict(_look_at(path, static, appliance_id))]) + "\n"
                with lock:
                    os.write(w, line.encode())

            threads = [threading.Thread(target=look, args=(i, p, st), daemon=True)
                       for i, (p, st) in enumerate(paths)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(deadline_s)
        finally:
            os._exit(0)
    os.close(w)
    end = time.monotonic() + deadline_s
    buf = b""
    with os.fdopen(r, "rb", buffering=0) as pipe:
        while time.monotonic() < end:
            ready, _, _ = select.select([pipe], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            chunk = pipe.read(65536)
            if not chunk:
                break
            buf += chunk
    for line in buf.splitlines():
        i, fields = json.loads(line)
        views[i] = _PathView(**fields)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return views


def _device_of(path: Path, devices: list[BlockDevice], resolve: bool = True) -> BlockDevice | None:
    # resolve=False: match the path as written, without the lstat calls of resolving it (a
    # stalled disk mounted there would never answer them)
    entry = mount_at(path) if resolve else next(
        (m for m in reversed(read_mounts()) if m.mount_point == os.path.abspath(path)), None)
    if entry is None:
        return None
    for d in devices:
        if d.majmin == entry.majmin:
            return d
    return None


def collect(cfg: Config, *, with_smart: bool = True) -> dict[str, Any]:
    try:
        devices = discover()
        discovery_error = ""
    except DiscoveryError as exc:
        devices, discovery_error = [], str(exc)
    suggestions = {s.path: s for s in suggest_roles(devices)}
    counters = _daemon_counters(cfg)
    smart_cache: dict[str, SmartReport] = {}

    def smart_of(dev: BlockDevice | None) -> SmartReport | None:
        if dev is None or not with_smart or dev.type == "loop":
            return None
        if dev.path not in smart_cache:
            smart_cache[dev.path] = read_smart(dev.path)
        return smart_cache[dev.path]

    try:
        appliance_id: str | None = registry.appliance_id_readonly(cfg)
    except StowageError:
        appliance_id = None
    rows: list[DiskRow] = []
    used_devices: set[str] = set()
    static_dirs = {Path(d.path) for d in cfg.disks}
    paths = [(path, path in static_dirs) for path in _candidate_dirs(cfg)]
    views = _look_at_all(paths, appliance_id, cfg.stall.seconds)
    for (path, static), view in zip(paths, views, strict=True):
        if view is not None and not static and not view.is_dir:
            continue  # a file in the disks directory, not a disk
        row = DiskRow(managed=True, mount_point=str(path), kind="directory" if static else "")
        stalled = view is None
        if view is None:  # described from what needs no answer from the disk
            view = _PathView(exists=True, mounted=True,
                             label_error=f"stalled: no answer within {cfg.stall.seconds:g} s")
        mounted, label_ok, offline_reason = view.mounted, not view.label_error, view.label_error
        row.disk_id, row.role, row.pool = view.disk_id, view.role, view.pool
        if not static and row.disk_id != path.name:  # none, or another disk's label: the recorded one
            row.disk_id, row.role, row.pool = path.name, None, None
        dev = None if static else _device_of(path, devices, resolve=not stalled)
        if dev is not None:
            used_devices.add(dev.path)
            row.device, row.by_id, row.kind = dev.path, dev.by_id or None, dev.kind
            row.model, row.serial, row.size_bytes = dev.model, dev.serial, dev.size
        if view.space is not None:
            row.size_bytes = row.size_bytes or view.space[0]
            row.free_bytes, row.used_bytes = view.space[1], view.space[2]
        daemon = counters.get(row.disk_id or "", {})
        smart = smart_of(dev)
        if not view.exists:
            offline_reason = (f"{path} does not exist (the daemon creates it at its first start)" if static
                              else f"{path} does not exist")
        obs = DiskObservation(
            present=view.exists, mounted=mounted, label_ok=label_ok,
            io_errors=int(daemon.get("io_errors") or 0), checksum_failures=int(daemon.get("checksum_failures") or 0),
            rotational=dev.rotational if dev else None,
            offline_reason=offline_reason or ("" if mounted else f"{path} is not mounted: its disk is missing"),
        )
        _apply_health(row, assess(smart, obs), smart)
        if dev is None:
            row.notes = [n for n in row.notes if n != "SMART not read"]
        _merge_daemon_state(row, daemon)
        row.errors = _errors(smart, obs.io_errors if daemon else None, obs.checksum_failures if daemon else None)
        if isinstance(daemon.get("shards"), int):
            row.shards = daemon["shards"]
        if isinstance(daemon.get("heal_progress"), int | float):
            row.heal_progress = float(daemon["heal_progress"])
        lat = daemon.get("latency_p99_ms")
        row.latency_ms = float(lat) if isinstance(lat, int | float) else None
        rows.append(row)
    for dev in devices:
        if dev.path in used_devices:
            continue
        s = suggestions.get(dev.path)
        smart = smart_of(dev)
        row = DiskRow(
            managed=False, device=dev.path, by_id=dev.by_id or None, kind=dev.kind, model=dev.model,
            serial=dev.serial, size_bytes=dev.size, system=dev.system, in_use=dev.in_use(),
            suggested_role=(s.role or None) if s else None, suggestion_reason=s.reason if s else "",
            role="system" if dev.system else None,
        )
        _apply_health(row, assess(smart, DiskObservation(rotational=dev.rotational)), smart)
        row.errors = _errors(smart)
        rows.append(row)
    out: dict[str, Any] = {
        "format": JSON_FORMAT,
        "appliance_id": appliance_id,
        "daemon": "running" if registry.daemon_running(cfg) else "stopped",
        "disks": [r.to_json() for r in rows],
    }
    if discovery_error:
        out["discovery_error"] = discovery_error
    return out


def _merge_daemon_state(row: DiskRow, daemon: dict[str, Any]) -> None:
    """The daemon's state where it says more than the host-side view: the operator's word
    (draining, removed), and a disk it does not use (offline, failed: the reason it found at
    start or in its last check, which a look at the host may not see)."""
    state = daemon.get("state")
    if state in ADMINISTRATIVE:
        row.state = DiskState(state)
    elif state in (DiskState.OFFLINE, DiskState.FAILED):
        if not row.state.lost:
            row.state = DiskState(state)
        theirs = daemon.get("reasons")
        for reason in theirs if isinstance(theirs, list) else []:
            if isinstance(reason, str) and reason not in row.reasons:
                row.reasons.append(reason)


def _apply_health(row: DiskRow, h: Health, smart: SmartReport | None) -> None:
    row.state, row.reasons, row.notes = h.state, list(h.reasons), list(h.notes)
    if row.kind == "loop":
        row.notes = ["loop device: no SMART" if n == "SMART not read" else n for n in row.notes]
    if smart is not None:
        row.smart = smart.verdict
        row.temperature_c = smart.temperature_c
        row.power_on_hours = smart.power_on_hours
        if not row.model:
            row.model = smart.model
        if not row.serial:
            row.serial = smart.serial


_STATE_STYLE = {DiskState.OK: "green", DiskState.WARNING: "yellow", DiskState.FAILING: "red",
                DiskState.FAILED: "bold red", DiskState.OFFLINE: "bold red"}


def render_table(doc: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"Stowage disks (appliance {doc.get('appliance_id') or 'unknown'}, "
                        f"daemon {doc.get('daemon')})", title_justify="left")
    for col in ("DEVICE", "DISK", "ROLE", "POOL", "STATE", "SIZE", "USED/FREE", "SHARDS", "TEMP", "ERRORS",
                "MODEL", "NOTES"):
        table.add_column(col, overflow="fold")
    for r in doc["disks"]:
        role = r["role"] or (f"({r['suggested_role']}?)" if r["suggested_role"] else "-")
        state = r["state"]
        style = _STATE_STYLE.get(state, "")
        used = (f"{human_size(r['used_bytes'])} / {human_size(r['free_bytes'])}"
                if r["free_bytes"] is not None else "-")
        errs = [f"{k}={v}" for k, v in r["errors"].items() if v]
        notes = r["reasons"] or ([r["suggestion_reason"]] if not r["managed"] else []) or r["notes"]
        if r.get("heal_progress") is not None:
            state += f" {r['heal_progress'] * 100:.0f}%"
        table.add_row(
            r["device"] or r["mount_point"] or "-",
            r["disk_id"] or "-", role, r["pool"] or "-",
            f"[{style}]{state}[/{style}]" if style else state,
            human_size(r["size_bytes"]), used,
            str(r["shards"]) if r.get("shards") is not None else "-",
            f"{r['temperature_c']} °C" if r["temperature_c"] is not None else "-",
            ", ".join(errs) or "0", f"{r['kind']} {r['model']}".strip() or "-",
            "; ".join(notes),
        )
    # a pipe or a log gets the whole table, not one squeezed to 80 columns
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    if doc.get("discovery_error"):
        click.echo(f"note: block devices not listed: {doc['discovery_error']}", err=True)


# --- commands --------------------------------------------------------------------------------


@click.group("disks", invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="config file (default /etc/stowage/stowage.toml)")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="embedded appliance: everything under this directory")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output (docs/disks-json.md)")
@click.option("--no-smart", is_flag=True, help="do not run smartctl (faster)")
@click.pass_context
def disks(ctx: click.Context, config_path: Path | None, data_dir: Path | None, as_json: bool,
          no_smart: bool) -> None:
    """Disks of this appliance and of this host: list (default), smart, add."""
    # options given before the subcommand apply to it too: `stowage disks --data D add ...`
    given = {k: v for k, v in (("config_path", config_path), ("data_dir", data_dir)) if v is not None}
    if given:
        ctx.default_map = {name: dict(given) for name in ("list", "smart", "add", "remove", "replace")}
    if ctx.invoked_subcommand is None:
        cfg = run_guarded(lambda: resolve_config(config_path, data_dir))
        _list(cfg, as_json, no_smart)


def _list(cfg: Config, as_json: bool, no_smart: bool) -> None:
    doc = run_guarded(lambda: collect(cfg, with_smart=not no_smart))
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        render_table(doc)


@disks.command("list")
@appliance_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable output (docs/disks-json.md)")
@click.option("--no-smart", is_flag=True, help="do not run smartctl (faster)")
def list_cmd(cfg: Config, as_json: bool, no_smart: bool) -> None:
    """One row per disk: device, role, pool, state and reasons, space, temperature, errors."""
    _list(cfg, as_json, no_smart)


@disks.command("smart")
@appliance_options
@click.argument("disk")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def smart_cmd(cfg: Config, disk: str, as_json: bool) -> None:
    """SMART detail of DISK (a device path or name, a /dev/disk/by-id name, or a disk id)."""
    report, health = run_guarded(lambda: _smart_for(cfg, disk))
    if as_json:
        click.echo(json.dumps({"format": JSON_FORMAT, "smart": report.to_json(), "state": health.state,
                               "reasons": list(health.reasons), "notes": list(health.notes)},
                              indent=2, sort_keys=True))
        return
    _render_smart(report, health)


def _smart_for(cfg: Config, spec: str) -> tuple[SmartReport, Health]:
    devices = discover(io_counters=False)
    dev = find_device(devices, spec)
    if dev is None:
        for path in _managed_dirs(cfg):
            if path.name == spec or str(path) == spec:
                dev = _device_of(path, devices)
                if dev is None:
                    raise InvalidArgument(f"disk {spec} is not a mounted block device (a directory disk, or "
                                          "its device is missing); it has no SMART data")
                break
    if dev is None:
        raise InvalidArgument(f"{spec}: no such disk or device (see `stowage disks`)")
    report = read_smart(dev.path)
    return report, assess(report, DiskObservation(rotational=dev.rotational))


def _render_smart(r: SmartReport, h: Health) -> None:
    from rich.table import Table

    c = Console()
    style = _STATE_STYLE.get(h.state, "")
    c.print(f"[bold]{r.device}[/bold]  {r.model or ''} {('serial ' + r.serial) if r.serial else ''}".rstrip())
    c.print(f"health: [{style}]{h.state}[/{style}]" + (f" — {'; '.join(h.reasons)}" if h.reasons else ""))
    for note in h.notes:
        c.print(f"note: {note}")
    if not r.available:
        c.print(f"SMART: unavailable ({r.unavailable_reason})")
        return
    t = Table(show_header=False, box=None)
    facts: list[tuple[str, Any]] = [
        ("protocol", r.protocol), ("firmware", r.firmware), ("capacity", human_size(r.capacity_bytes)),
        ("overall verdict", r.verdict.upper()), ("temperature", f"{r.temperature_c} °C" if r.temperature_c
                                                    is not None else None),
        ("power-on hours", r.power_on_hours), ("reallocated sectors", r.reallocated_sectors),
        ("pending sectors", r.pending_sectors), ("offline uncorrectable", r.offline_uncorrectable),
        ("reported uncorrectable", r.reported_uncorrect), ("uncorrected errors", r.uncorrected_errors),
        ("media errors", r.media_errors), ("percentage used", f"{r.percentage_used}%" if r.percentage_used
                                                           is not None else None),
        ("available spare", f"{r.available_spare}% (threshold {r.available_spare_threshold}%)"
         if r.available_spare is not None else None),
        ("attributes failing now", ", ".join(r.failing_now) or None),
        ("attributes failed in the past", ", ".join(r.failed_in_past) or None),
    ]
    for k, v in facts:
        if v not in (None, ""):
            t.add_row(k, str(v))
    c.print(t)
    if r.self_tests:
        st = Table(title="self-test log (newest first)", title_justify="left")
        for col in ("TEST", "RESULT", "HOURS", "FIRST BAD LBA"):
            st.add_column(col)
        for test in r.self_tests[:10]:
            mark = {True: "green", False: "red", None: "yellow"}[test.passed]
            st.add_row(test.kind, f"[{mark}]{test.status}[/{mark}]", str(test.hours if test.hours is not None
                                                                          else "-"),
                       str(test.lba) if test.lba is not None else "-")
        c.print(st)


@disks.command("add")
@appliance_options
@click.argument("device")
@click.option("--role", type=click.Choice(["data", "meta"]), required=True, help="what the disk is for")
@click.option("--pool", default="default", show_default=True, help="pool of a data disk")
@click.option("--force", is_flag=True, help="erase a device that holds data (asks for confirmation)")
@click.option("--yes", is_flag=True, help="with --force: do not ask (for scripts)")
def add_cmd(cfg: Config, device: str, role: str, pool: str, force: bool, yes: bool) -> None:
    """Format DEVICE, mount it under the state directory and give it to the appliance."""
    from diskmgr.prepare import Preflight

    if yes and not force:
        raise click.UsageError("--yes only confirms --force; give both to erase a device without a prompt")

    def confirm(pf: Preflight) -> bool:
        click.echo(f"{pf.device.path} ({pf.device.kind} {pf.device.model} {human_size(pf.device.size)}) is not "
                   "blank:", err=True)
        for why in pf.data:
            click.echo(f"  - {why}", err=True)
        if yes:
            click.echo("--force --yes given: erasing it.", err=True)
            return True
        if not sys.stdin.isatty():
            click.echo("refusing to erase without confirmation (not a terminal); scripts pass --force --yes",
                       err=True)
            return False
        answer = click.prompt(f"Everything on it will be destroyed. Type {pf.device.path} to confirm",
                              default="", show_default=False, err=True)
        return bool(answer.strip() == pf.device.path)

    result = run_guarded(lambda: registry.add_disk(cfg, device, role, pool, force=force, confirm=confirm,
                                                   progress=lambda m: click.echo(m, err=True)))
    click.echo(f"added disk {result.disk_id}: {result.device} ({result.fstype}, UUID={result.fs_uuid}) "
               f"mounted at {result.mount_point}, role {result.role}, pool {result.pool}")
    click.echo(f"  at boot: {result.boot}")
    click.echo(f"  {result.handed_over}")


# --- remove / replace: thin callers of the daemon's drain ops (appliance/services/drain.py); the
# host-side release of a managed disk is diskregistry.release --------------------------------


def _drain_line(p: dict[str, Any]) -> str:
    return f"{p.get('op', 'drain')} {p.get('disk_id')}: {p.get('moved_shards', 0)} shards moved"


def _release_host_side(cfg: Config, res: dict[str, Any]) -> None:
    if registry.release(cfg, res["disk_id"], res["path"]):
        click.echo(f"  unmounted {res['path']}; its boot-time mount was removed; the device can be pulled")


@disks.command("remove")
@appliance_options
@click.argument("disk")
def remove_cmd(cfg: Config, disk: str) -> None:
    """Drain DISK (move every shard to other disks, with progress), then release it."""
    from appliance import control

    with op_progress(_drain_line) as progress:
        res = run_guarded(lambda: control.call(cfg.control_path, "disks.remove", {"disk": disk},
                                               on_progress=progress))
    click.echo(f"disk {res['disk_id']} drained ({res['moved_shards']} shards of {res['segments']} segments "
               f"moved) and removed")
    _release_host_side(cfg, res)


@disks.command("replace")
@appliance_options
@click.argument("old")
@click.argument("new")
def replace_cmd(cfg: Config, old: str, new: str) -> None:
    """Rebuild OLD's shards onto NEW (a disk already added), then release OLD."""
    from appliance import control

    with op_progress(_drain_line) as progress:
        res = run_guarded(lambda: control.call(cfg.control_path, "disks.replace", {"old": old, "new": new},
                                               on_progress=progress))
    line = f"disk {res['disk_id']} replaced by {res['target']}: {res['moved_shards']} shards rebuilt"
    if res.get("elsewhere"):
        why = f" ({res['target']} had no room for them)" if res["target"] in res.get("full", []) else ""
        line += f", {res['elsewhere']} of them on other disks{why}"
    click.echo(line)
    _release_host_side(cfg, res)

"""`stowage durability [--json] [--measure]`: the modelled probability of losing data in a year
for this box (appliance/durability.py; docs/durability.md)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import click

from appliance.config import Config
from appliance.control import ControlError, call
from appliance.durability import DiskInput, Estimate, estimate, shard_bytes
from appliance.engine.codec import auto_geometry

from .common import appliance_options, run_guarded

MEASURE_BYTES = 32 << 20


def measure_write_rate(disk_paths: list[Path]) -> float | None:
    """Sequential write + fdatasync of MEASURE_BYTES into each disk's tmp/: the slowest disk's
    rate bounds a rebuild onto it."""
    rates = []
    block = os.urandom(1 << 20)
    for p in disk_paths:
        tmp = p / "tmp"
        if not tmp.is_dir():
            continue
        f = tmp / f"durability-measure.{os.getpid()}"
        t0 = time.perf_counter()
        try:
            fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                for _ in range(MEASURE_BYTES >> 20):
                    os.write(fd, block)
                os.fdatasync(fd)
            finally:
                os.close(fd)
        except OSError:
            continue
        finally:
            f.unlink(missing_ok=True)
        rates.append(MEASURE_BYTES / max(time.perf_counter() - t0, 1e-6))
    return min(rates) if rates else None


def gather(cfg: Config, measure: bool) -> Estimate:
    from .disks import collect
    from .offline import offline_status

    try:
        status = call(cfg.control_path, "status")
    except ControlError as exc:
        if not exc.context.get("unreachable"):
            raise
        status = offline_status(cfg)
    rows = {r["disk_id"]: r for r in collect(cfg, with_smart=True)["disks"] if r.get("disk_id")}
    by_pool: dict[str, list[DiskInput]] = {}
    paths: list[Path] = []
    for d in status["disks"]:
        if d["state"] == "removed":
            continue
        row = rows.get(d["disk_id"], {})
        path = Path(d["path"])
        paths.append(path)
        by_pool.setdefault(d["pool"], []).append(DiskInput(
            d["disk_id"], d["pool"], str(d["state"]), shard_bytes(path), row.get("errors") or {},
            row.get("power_on_hours")))
    pools = []
    for name, disks in sorted(by_pool.items()):
        pc = cfg.pools.get(name)
        k, m = (pc.k, pc.m) if pc is not None and pc.k > 0 else auto_geometry(len(disks))
        pools.append((name, k, m, disks))
    rate, source = float(cfg.durability.rebuild_bytes_per_sec), "configured"
    if measure:
        measured = measure_write_rate(paths)
        if measured is not None:
            rate, source = measured, "measured"
    return estimate(pools, cfg.durability.afr_percent / 100.0, rate, source, cfg.durability.replication_sites)


def _pct(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.3g}" if p > 0 else "0"


def _nines(n: float | None) -> str:
    return "-" if n is None else ("inf" if n == math.inf else f"{n:.1f}")


def render(e: Estimate) -> None:
    click.echo(f"rebuild speed {e.rebuild_bytes_per_sec / (1 << 20):.0f} MiB/s ({e.rebuild_source}), "
               f"disk AFR {e.base_afr * 100:g}% before wear")
    for p in e.pools:
        click.echo(f"pool {p.pool}: {p.disks} disks ({p.failed} failed), {p.k}+{p.m}, mean AFR "
                   f"{p.afr_mean * 100:.2g}%, rebuild {p.rebuild_hours:.1f} h")
        click.echo(f"  P(loss)/year {_pct(p.annual_loss)}  nines {_nines(p.nines)}   with one more parity disk: "
                   f"{_pct(p.annual_loss_one_more_parity)} ({_nines(p.nines_one_more_parity)} nines)")
        for r in p.disk_rates:
            if r.reasons:
                click.echo(f"  {r.disk_id}: AFR {r.afr * 100:.2g}% ({'; '.join(r.reasons)})")
    click.echo(f"appliance: P(loss)/year {_pct(e.annual_loss)}, {_nines(e.nines)} nines; with one more parity disk "
               f"{_pct(e.annual_loss_one_more_parity)} ({_nines(e.nines_one_more_parity)} nines)")
    if e.annual_loss_with_replication is not None:
        click.echo(f"with replication: {_pct(e.annual_loss_with_replication)} "
                   f"({_nines(e.nines_with_replication)} nines)")
    else:
        click.echo("no replication target configured (durability.replication_sites = 0)")
    click.echo("model and assumptions: docs/durability.md")


@click.command("durability")
@appliance_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--measure", is_flag=True, help="measure the disks' write speed (32 MiB each) for the rebuild speed")
def durability(cfg: Config, as_json: bool, measure: bool) -> None:
    """The modelled probability of losing data in a year, and its nines."""
    e: Estimate = run_guarded(lambda: gather(cfg, measure))
    if as_json:
        doc: dict[str, Any] = e.to_json()
        click.echo(json.dumps(doc, indent=2))
    else:
        render(e)


commands = [durability]

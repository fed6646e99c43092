"""The durability model behind `stowage durability` (formula and assumptions: docs/durability.md).

A pool of N disks whose segments are erasure-coded k+m loses data when m+1 of its disks fail
before the first of them is rebuilt (with segments spread over the pool, any m+1 concurrent
failures hit some segment: the conservative reading). With a per-disk failure rate λ (per
hour, from the annual failure rate) and a rebuild time R (hours), the classic Markov
approximation for R much shorter than 1/λ gives

    MTTDL = (1/R)^m / (λ^(m+1) · N · (N-1) · ... · (N-m))        (hours)
    P(loss in a year) = 1 - exp(-8760 / MTTDL)
    nines = -log10(P)

Disks that are already failed or offline count as failures in progress: the pool has N-f disks
and m-f failures to spare. λ is the pool's mean of its disks' rates; a disk's annual failure
rate is the configured one raised by what SMART shows (`wear_afr`). R is the detection delay
plus the time to write one disk's share of the data at the rebuild speed.

With a replication target the data is lost only if the remote copy is lost too before the
pool is restored from it: P_with = P · (1 - (1 - P)^(W / 8760)), W the hours to copy the
pool's data back at the rebuild speed (the remote assumed as durable as the pool).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HOURS_PER_YEAR = 8760.0
DETECT_HOURS = 0.5  # from a failure to its rebuild starting (the disk monitor, a replacement disk)
MAX_AFR = 0.99
LONG_SERVICE_HOURS = 5 * 8760  # power-on hours past which the bathtub curve rises again

# SMART observation -> factor on the annual failure rate (docs/durability.md: why these)
WEAR_FACTORS: tuple[tuple[str, float], ...] = (
    ("reallocated_sectors", 2.0),
    ("pending_sectors", 3.0),
    ("offline_uncorrectable", 2.0),
    ("uncorrected", 2.0),
    ("media_errors", 2.0),
)
STATE_FACTORS = {"warning": 2.0, "failing": 10.0}
GONE = frozenset({"failed", "offline", "removed"})  # counts as a failure in progress


@dataclass(frozen=True)
class DiskInput:
    disk_id: str
    pool: str
    state: str = "ok"
    data_bytes: int = 0  # shard bytes on the disk: what a rebuild rewrites
    errors: dict[str, int | None] = field(default_factory=dict)  # SMART counters (disks list's "errors")
    power_on_hours: int | None = None


@dataclass(frozen=True)
class DiskRate:
    disk_id: str
    afr: float
    reasons: list[str]


@dataclass(frozen=True)
class PoolEstimate:
    pool: str
    disks: int
    failed: int
    k: int
    m: int
    afr_mean: float
    rebuild_hours: float
    annual_loss: float
    nines: float
    annual_loss_with_replication: float | None
    nines_with_replication: float | None
    annual_loss_one_more_parity: float
    nines_one_more_parity: float
    disk_rates: list[DiskRate]


def shard_bytes(path: Path) -> int:
    """The bytes of the shard files on a disk: what rebuilding it rewrites."""
    total = 0
    try:
        fans = list(os.scandir(path / "shards"))
    except OSError:
        return 0
    for fan in fans:
        try:
            for e in os.scandir(fan.path):
                try:
                    total += e.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
        except OSError:
            continue
    return total


def wear_afr(base: float, disk: DiskInput) -> DiskRate:
    """The disk's annual failure rate: `base`, raised once per kind of wear SMART shows, by its
    health state, and past LONG_SERVICE_HOURS of power-on time."""
    afr, reasons = base, []
    for name, factor in WEAR_FACTORS:
        value = disk.errors.get(name)
        if value:
            afr *= factor
            reasons.append(f"{name.replace('_', ' ')} {value}: x{factor:g}")
    if disk.power_on_hours is not None and disk.power_on_hours >= LONG_SERVICE_HOURS:
        afr *= 1.5
        reasons.append(f"{disk.power_on_hours} power-on hours: x1.5")
    state_factor = STATE_FACTORS.get(disk.state)
    if state_factor:
        afr *= state_factor
        reasons.append(f"state {disk.state}: x{state_factor:g}")
    return DiskRate(disk.disk_id, min(afr, MAX_AFR), reasons)


def rebuild_hours(data_bytes: int, rate_bytes_per_sec: float) -> float:
    return DETECT_HOURS + data_bytes / rate_bytes_per_sec / 3600.0


def annual_loss(n: int, m: int, afr: float, repair_hours: float) -> float:
    """P(data loss within a year) of n disks surviving any m concurrent failures."""
    if n <= 0:
        return 0.0
    if m < 0:
        return 1.0  # already short of disks: data is lost now
    if m + 1 > n:
        return 0.0  # more failures needed than disks: as good as it gets for this model
    lam = afr / HOURS_PER_YEAR
    mu = 1.0 / repair_hours
    ways = math.prod(n - i for i in range(m + 1))
    mttdl = mu ** m / (lam ** (m + 1) * ways)
    return -math.expm1(-HOURS_PER_YEAR / mttdl)


def nines(p: float) -> float:
    return math.inf if p <= 0 else round(-math.log10(p), 2)


def with_replication(p: float, restore_hours: float, sites: int) -> float:
    q = p
    for _ in range(sites):
        q *= -math.expm1(math.log1p(-p) * restore_hours / HOURS_PER_YEAR) if p < 1 else 1.0
    return q


def estimate_pool(pool: str, k: int, m: int, disks: Sequence[DiskInput], base_afr: float, rate: float,
                  replication_sites: int = 0) -> PoolEstimate:
    rates = [wear_afr(base_afr, d) for d in disks]
    alive = [(d, r) for d, r in zip(disks, rates, strict=True) if d.state not in GONE]
    failed = len(disks) - len(alive)
    afr = sum(r.afr for _, r in alive) / len(alive) if alive else base_afr
    share = max((d.data_bytes for d in disks), default=0)
    repair = rebuild_hours(share, rate)
    p = annual_loss(len(alive), m - failed, afr, repair)
    p_more = annual_loss(len(alive) + 1, m + 1 - failed, afr, repair)
    restore = rebuild_hours(sum(d.data_bytes for d in disks) * k // max(k + m, 1), rate)
    p_rep = with_replication(p, restore, replication_sites) if replication_sites else None
    return PoolEstimate(pool, len(disks), failed, k, m, afr, round(repair, 3), p, nines(p),
                        p_rep, nines(p_rep) if p_rep is not None else None, p_more, nines(p_more), rates)


@dataclass(frozen=True)
class Estimate:
    pools: list[PoolEstimate]
    rebuild_bytes_per_sec: float
    rebuild_source: str  # "measured" | "configured"
    base_afr: float
    annual_loss: float
    nines: float
    annual_loss_with_replication: float | None
    nines_with_replication: float | None
    annual_loss_one_more_parity: float
    nines_one_more_parity: float

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        for key in ("nines", "nines_with_replication", "nines_one_more_parity"):
            if doc[key] == math.inf:
                doc[key] = None
        for p in doc["pools"]:
            for key in ("nines", "nines_with_replication", "nines_one_more_parity"):
                if p[key] == math.inf:
                    p[key] = None
        return doc


def _combine(ps: Sequence[float]) -> float:
    """P(at least one of independent events): 1 - prod(1 - p), in logs so that probabilities
    far below the float epsilon are not rounded to 0."""
    if any(p >= 1.0 for p in ps):
        return 1.0
    return -math.expm1(sum(math.log1p(-p) for p in ps))


def estimate(pools: Sequence[tuple[str, int, int, Sequence[DiskInput]]], base_afr: float, rate: float,
             rate_source: str, replication_sites: int = 0) -> Estimate:
    found = [estimate_pool(name, k, m, disks, base_afr, rate, replication_sites) for name, k, m, disks in pools
             if disks]
    p = _combine([e.annual_loss for e in found])
    p_more = _combine([e.annual_loss_one_more_parity for e in found])
    p_rep = _combine([e.annual_loss_with_replication or 0.0 for e in found]) if replication_sites else None
    return Estimate(found, rate, rate_source, base_afr, p, nines(p), p_rep,
                    nines(p_rep) if p_rep is not None else None, p_more, nines(p_more))

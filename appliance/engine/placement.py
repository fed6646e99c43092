"""Choosing disks for a new segment: distinct disks, healthy, weighted by free space.

Efraimidis-Spirakis weighted sampling without replacement: key = u ** (1 / weight). A disk with
twice the free space is twice as likely to get a shard, so disks fill evenly even when mixed
sizes are installed. Spun-down disks (an archive pool's, `Disk.asleep`) come after every awake
one: they are woken only when the awake disks cannot take the segment. A pool that cannot take
`quorum` shards raises InsufficientStorage before any data is written.
"""

from __future__ import annotations

import random

from .codec import Geometry
from .disks import Disk
from .errors import InsufficientStorage


def choose(
    disks: list[Disk], geo: Geometry, need_bytes: int = 0, exclude: frozenset[str] = frozenset()
) -> list[Disk | None]:
    """Disks for shards 0..n-1 (None where the pool has too few disks; at least `quorum` set)."""
    per_shard = -(-need_bytes // geo.k) if need_bytes else 0
    candidates: list[tuple[float, Disk]] = []
    for d in disks:
        if not d.writable or d.disk_id in exclude:
            continue
        free = d.free_bytes()
        if free <= per_shard or free <= 0:
            continue
        candidates.append((random.random() ** (1.0 / free), d))
    candidates.sort(key=lambda t: (not t[1].asleep, t[0]), reverse=True)
    chosen: list[Disk | None] = [d for _, d in candidates[: geo.n]]
    if len(chosen) < geo.quorum:
        raise InsufficientStorage(
            f"pool has {len(chosen)} writable disks with free space; a {geo.k}+{geo.m} segment "
            f"needs at least {geo.quorum}"
        )
    chosen += [None] * (geo.n - len(chosen))
    return chosen

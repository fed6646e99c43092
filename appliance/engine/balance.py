"""How evenly a pool's data is spread over its disks, and which shard to move where (pure).

A pool that grew (disks added) holds its old data on the old disks only: placement weighs new
segments by free space, but nothing moves existing shards. The rebalancer (services/rebalance.py)
moves shards one at a time, each from a disk holding more than its share to the disk holding the
least, until every disk is within the tolerance of its share. A disk's share of the pool's
shard bytes is proportional to its size, so mixed disk sizes fill to the same fraction.

Shard bytes are counted from the segment records (the shard file size a record implies), not
from the filesystems: directory disks of the embedded mode share one filesystem, whose usage says
nothing about any one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .codec import Geometry
from .records import SegmentRecord
from .shardfile import HEADER_SIZE, chunks_bytes


def shard_bytes(rec: SegmentRecord) -> int:
    """The size of each shard file of a segment (header, chunks and their CRCs)."""
    return HEADER_SIZE + chunks_bytes(Geometry(rec.k, rec.m, rec.block_size), rec.length)


@dataclass
class PoolLoad:
    """Shard bytes on each writable disk of a pool, and each disk's size (its weight)."""

    pool: str
    used: dict[str, int]  # disk id -> shard bytes the records place on it
    capacity: dict[str, int]  # disk id -> filesystem size (equal weights when unknown)
    largest_shard: int = 0
    tolerance: float = 0.05
    segments: int = 0  # live segments of the pool
    targets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.refresh_targets()

    def refresh_targets(self) -> None:
        total_cap = sum(self.capacity.values())
        total = sum(self.used.values())
        n = len(self.used)
        self.targets = {d: (total * self.capacity[d] // total_cap if total_cap else total // max(1, n))
                        for d in self.used}

    def excess(self, disk_id: str) -> int:
        """Bytes above (positive) or below (negative) the disk's share."""
        return self.used[disk_id] - self.targets[disk_id]

    def slack(self) -> int:
        """How far from its share a disk may be and still count as balanced: the tolerance of
        the mean share, and at least one shard (shards move whole)."""
        mean = sum(self.targets.values()) // max(1, len(self.targets))
        return max(int(self.tolerance * mean), self.largest_shard)

    def balanced(self) -> bool:
        if len(self.used) < 2:
            return True
        slack = self.slack()
        return all(abs(self.excess(d)) <= slack for d in self.used)

    def spread(self) -> float:
        """(fullest - emptiest) share fill, as a fraction of the mean share: 0 = perfectly even."""
        if len(self.used) < 2:
            return 0.0
        fills = [self.used[d] / self.targets[d] for d in self.used if self.targets[d] > 0]
        return round(max(fills) - min(fills), 4) if fills else 0.0

    def pick(self, rec: SegmentRecord) -> tuple[int, str] | None:
        """(shard index, target disk) of one move of this segment that brings the pool closer
        to balance, or None. The source is the most over-full disk holding a shard of it, the
        target the most under-full disk holding none (two shards of a segment never share a
        disk), and the move must not overshoot: afterwards the target is still below where the
        source was."""
        size = shard_bytes(rec)
        slack = self.slack()
        holders = {d for d in rec.shards if d is not None}
        sources = sorted(((self.excess(d), i, d) for i, d in enumerate(rec.shards)
                          if d is not None and d in self.used and self.excess(d) > slack // 2), reverse=True)
        if not sources:
            return None
        free = [(self.excess(d), d) for d in self.used if d not in holders]
        if not free:
            return None
        dst_excess, dst = min(free)
        src_excess, i, _ = sources[0]
        if dst_excess >= 0 or dst_excess + size >= src_excess - size + slack // 2:
            return None
        return i, dst

    def moved(self, rec: SegmentRecord, src: str, dst: str) -> None:
        size = shard_bytes(rec)
        self.used[src] -= size
        self.used[dst] += size

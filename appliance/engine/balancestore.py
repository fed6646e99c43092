"""The store side of rebalancing: a pool's load, its segments in key order, the saved cursor.

Blocking scans (pool_load, pool_segments_after) run in a worker thread. Moving a shard is the
repair mechanism's (repair.SegmentRepair.move): the new shard file is written under a temporary
name, fsynced and renamed, the new placement committed (synced, journaled), and only then is the
old file removed; a crash in between leaves a surplus file that the start-up orphan sweep
removes, never a record pointing at a file that is not there.
"""

from __future__ import annotations

from . import keys
from .balance import PoolLoad, shard_bytes
from .records import RebalanceCursor, SegmentRecord
from .storecore import StoreCore


class BalanceStore(StoreCore):
    def pool_load(self, pool: str, tolerance: float) -> PoolLoad:
        """Shard bytes per writable disk of `pool`, from every live segment record (blocking)."""
        disks = [d for d in self.disks.pool(pool) if d.writable]
        used = {d.disk_id: 0 for d in disks}
        largest = count = 0
        for _, rec in self.db.scan_records(SegmentRecord, keys.SEGMENT):
            if rec.pool != pool or rec.refcount <= 0:
                continue
            count += 1
            size = shard_bytes(rec)
            largest = max(largest, size)
            for disk_id in rec.shards:
                if disk_id in used:
                    used[disk_id] += size
        capacity = {d.disk_id: d.total_bytes() for d in disks}
        if any(c <= 0 for c in capacity.values()):
            capacity = dict.fromkeys(capacity, 1)  # a disk that cannot tell: weigh all alike
        return PoolLoad(pool, used, capacity, largest, tolerance, count)

    def pool_segments_after(self, pool: str, after: str, limit: int) -> tuple[list[SegmentRecord], str]:
        """Up to `limit` live segments of `pool` following segment id `after` in key order, and
        the last segment id looked at ("" when the walk reached the end) (blocking)."""
        start = keys.segment(after) + b"\x00" if after else keys.SEGMENT
        out: list[SegmentRecord] = []
        last = ""
        seen = 0
        with self.db.iterator(start=start, stop=keys.prefix_successor(keys.SEGMENT)) as it:
            for k, raw in it:
                last = k[1:].decode()
                seen += 1
                rec = SegmentRecord.decode(raw)
                if rec.pool == pool and rec.refcount > 0:
                    out.append(rec)
                if len(out) >= limit or seen >= 16 * limit:
                    return out, last
        return out, ""

    def rebalance_cursor(self, pool: str) -> RebalanceCursor | None:
        """None: the pool was never looked at (an appliance from before rebalancing, or new)."""
        return self.db.get_record(RebalanceCursor, keys.rebalance(pool))

    async def save_rebalance_cursor(self, cur: RebalanceCursor) -> None:
        """Saved through a commit, so the journal (and recover-metadata) keeps it too."""
        async with self.txn() as t:
            t.batch.put(keys.rebalance(cur.pool), cur)

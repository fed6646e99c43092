"""The rebalancer: spread a pool's existing data over disks added to it, in the background.

Every few seconds it compares each pool's writable disks with the set its cursor recorded (the
pool's disks when it was last balanced; a new appliance's disks are recorded as they are). When a
disk joined (added while the daemon ran or while it was stopped, or back from a failure) and the
set has then not changed for `rebalance.settle_seconds`, it measures the pool (engine/balance.py:
shard bytes per disk against each disk's share) and, if some disk is off its share by more than
the tolerance, walks
the pool's segments in key order moving single shards from over-full to under-full disks until
the pool is balanced. A full walk that finds nothing to move ends the rebalance too (the pool is
as even as whole shards allow).

Each move is the repair mechanism's (SegmentRepair.move): the shard's chunks are read and
CRC-verified, written to a temporary file on the target, fsynced and renamed, the new placement
committed (synced and journaled), and the old file is removed at once, or, when a read that took
the old placement is still in progress (store.open_reads), once such reads are done. A crash
leaves at worst a surplus file, which the start-up orphan sweep removes; reads and writes go on
meanwhile (a segment is moved under its
repair lock, which the healer and scrubber share, and placement of new segments is untouched).

The bytes read are charged to `rebalance.rate_bytes_per_sec`. The walk's cursor (RebalanceCursor,
one per pool) is saved every few seconds through a commit, so a restarted daemon resumes after
the last segment it looked at; `stowage status` shows the progress under services.rebalance.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import trio

from appliance.engine.balance import PoolLoad, shard_bytes
from appliance.engine.disks import Disk
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import RebalanceCursor, SegmentRecord

from .heal import Healer
from .loop import Json, run_periodically
from .scrub import TokenBucket

log = logging.getLogger("stowage.rebalance")

POLL_SECONDS = 2.0  # how often the pools' disk sets are compared and old files removed
SAVE_EVERY_SECONDS = 2.0
BATCH = 128  # segment records read from the DB at a time


@dataclass
class PoolProgress:
    """One pool's rebalance, as `stowage status` shows it."""

    disks: int  # writable disks in the pool
    # measured when a disk joined (None: not measured since the daemon started)
    segments: int | None = None  # live segments
    balanced: bool | None = None
    spread: float | None = None  # (fullest - emptiest) fill of the disks' shares; 0 = even
    running: bool = False
    walked: int = 0  # segments looked at in the current walk
    moved_shards: int = 0  # since the pool was first rebalanced
    moved_bytes: int = 0
    pass_started_ns: int = 0
    last_complete_ns: int = 0
    last_error: str | None = None

    def to_json(self) -> Json:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Lingering:
    """The old file of a moved shard, removed once the reads that took the old placement are done."""

    segment_id: str
    shard: int
    disk: Disk


class Rebalancer:
    def __init__(self, store: ObjectStore, healer: Healer) -> None:
        self.store = store
        self.healer = healer
        self.cfg = store.cfg.rebalance
        self.pools: dict[str, PoolProgress] = {}
        self._seen: dict[str, tuple[frozenset[str], float]] = {}  # pool -> its disks, unchanged since
        self._lingering: list[Lingering] = []
        self._bucket = TokenBucket(self.cfg.rate_bytes_per_sec)

    def progress_json(self) -> Json:
        return {"enabled": self.cfg.enabled, "rate_bytes_per_sec": self.cfg.rate_bytes_per_sec,
                "running": any(p.running for p in self.pools.values()),
                "pools": {name: p.to_json() for name, p in sorted(self.pools.items())}}

    def _writable(self, pool: str) -> frozenset[str]:
        return frozenset(d.disk_id for d in self.store.disks.pool(pool) if d.writable)

    async def round(self) -> None:
        """Rebalance the pools that need a look, and remove old files whose grace is over."""
        await self._drop_lingering()
        if not self.cfg.enabled:
            return
        for pool in sorted({d.pool for d in self.store.disks}):
            disks = self._writable(pool)
            cur = await trio.to_thread.run_sync(self.store.rebalance_cursor, pool)
            if pool not in self.pools and cur is not None:
                self.pools[pool] = PoolProgress(len(disks), moved_shards=cur.moved_shards,
                                                moved_bytes=cur.moved_bytes, last_complete_ns=cur.last_complete_ns)
            if cur is None:  # the first start with rebalancing: the pool's disks are what it has
                await self.store.save_rebalance_cursor(RebalanceCursor(pool, disks=sorted(disks)))
                continue
            if cur.pass_started_ns:
                await self.balance(pool, cur)  # resume the walk a restart interrupted
                continue
            known = frozenset(cur.disks)
            if disks <= known:
                if disks != known:  # a disk left: when it is back, it counts as joining
                    cur.disks = sorted(disks)
                    await self.store.save_rebalance_cursor(cur)
                continue
            seen = self._seen.get(pool)
            if seen is None or seen[0] != disks:
                self._seen[pool] = (disks, time.monotonic())
            elif time.monotonic() - seen[1] >= self.cfg.settle_seconds:
                await self.balance(pool, cur)

    async def balance(self, pool: str, cur: RebalanceCursor) -> None:
        """Measure the pool and walk it until it is balanced (resuming a saved walk)."""
        load = await trio.to_thread.run_sync(self.store.pool_load, pool, self.cfg.tolerance)
        p = self.pools[pool] = PoolProgress(len(load.used), load.segments, load.balanced(), load.spread(),
                                            moved_shards=cur.moved_shards, moved_bytes=cur.moved_bytes,
                                            pass_started_ns=cur.pass_started_ns,
                                            last_complete_ns=cur.last_complete_ns)
        if p.balanced and not cur.pass_started_ns:
            cur.disks = sorted(load.used)
            await self.store.save_rebalance_cursor(cur)
            return
        if not cur.pass_started_ns:
            cur.pass_started_ns, cur.after, cur.disks = time.time_ns(), "", sorted(load.used)
            await self.store.save_rebalance_cursor(cur)  # a restart resumes it, whatever happens next
            log.info("pool %s: rebalancing over %d disks (spread %.3f)", pool, len(load.used), p.spread)
        else:
            log.info("pool %s: rebalance resumed after segment %s", pool, cur.after or "-")
        p.running, p.pass_started_ns = True, cur.pass_started_ns
        try:
            moved_in_walk = 0
            while not load.balanced():
                moved, ended = await self._walk(load, cur, p)
                moved_in_walk += moved
                if ended:
                    if moved_in_walk == 0:
                        break  # nothing movable is left: as even as whole shards allow
                    moved_in_walk = 0
            cur.pass_started_ns, cur.after, cur.last_complete_ns = 0, "", time.time_ns()
            cur.disks = sorted(load.used)
            await self.store.save_rebalance_cursor(cur)
            p.balanced, p.spread = load.balanced(), load.spread()
            p.pass_started_ns, p.last_complete_ns = 0, cur.last_complete_ns
            log.info("pool %s: rebalance done, %d shards moved in all, spread %.3f", pool, cur.moved_shards,
                     p.spread)
        finally:
            p.running = False

    async def _walk(self, load: PoolLoad, cur: RebalanceCursor, p: PoolProgress) -> tuple[int, bool]:
        """Walk from the cursor to the end of the segments (or until balanced): (moves, ended)."""
        moved = 0
        last_save = time.monotonic()
        while not load.balanced():
            recs, last = await trio.to_thread.run_sync(self.store.pool_segments_after, load.pool, cur.after,
                                                       BATCH)
            for rec in recs:
                if load.balanced():
                    break
                moved += await self._move_one(load, rec, cur, p)
                p.walked += 1
            cur.after = last
            p.spread = load.spread()
            if time.monotonic() - last_save > SAVE_EVERY_SECONDS or not last:
                await self.store.save_rebalance_cursor(cur)
                last_save = time.monotonic()
            await self._drop_lingering()
            if not last:
                p.walked = 0
                return moved, True
        return moved, False

    async def _move_one(self, load: PoolLoad, rec: SegmentRecord, cur: RebalanceCursor, p: PoolProgress) -> int:
        choice = load.pick(rec)
        if choice is None:
            return 0
        i, dst = choice
        target = self.store.disks.get(dst)
        if target is None:
            return 0
        linger: list[tuple[int, Disk]] = []
        try:
            res = await self.healer.move_shards(rec.segment_id, {i}, prefer=target, throttle=self._bucket.take,
                                                linger=linger)
        except Exception as exc:
            log.exception("rebalance: moving shard %d of segment %s failed; going on", i, rec.segment_id)
            p.last_error = f"{rec.segment_id}: {exc}"
            return 0
        self._lingering += [Lingering(rec.segment_id, j, d) for j, d in linger]
        now = self.store.find_segment(rec.segment_id)
        if res is None or now is None:
            return 0
        n = 0
        for old, new in zip(rec.shards, now.shards, strict=False):
            if old != new and new is not None:
                if old in load.used and new in load.used:
                    load.moved(rec, old, new)
                n += 1
                cur.moved_shards += 1
                cur.moved_bytes += shard_bytes(rec)
        p.moved_shards, p.moved_bytes = cur.moved_shards, cur.moved_bytes
        return n

    async def _drop_lingering(self) -> None:
        reading = self.store.open_reads
        due = [e for e in self._lingering if not reading[e.segment_id]]
        if not due:
            return
        self._lingering = [e for e in self._lingering if reading[e.segment_id]]
        for e in due:
            await self.healer.repair.drop_moved(e.segment_id, e.shard, e.disk)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # old files still lingering when the daemon stops are surplus files for the orphan sweep
        await run_periodically(self.round, lambda: POLL_SECONDS, log=log, what="rebalance round",
                               task_status=task_status)

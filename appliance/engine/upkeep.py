"""The narrow part of the store the background services use (appliance/services/).

Services decide when to look at what; these methods do the looking, so that no service reads
LevelDB keys or shard files itself. The heavier mechanisms have their own modules: segment
verification and repair (repair.py), metadata snapshots (metasnap.py), garbage collection
(gc.py). Methods without `async` scan the DB and block: run them in a worker thread when the
scan may be long (segments_on, shards_per_disk).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from diskmgr.state import DiskState

from . import diskrecords, keys
from .disks import Disk
from .progress import ProgressRecord
from .records import DiskRecord, SegmentRecord
from .storecore import StoreCore

P = TypeVar("P", bound=ProgressRecord)


class UpkeepStore(StoreCore):
    @property
    def appliance_id(self) -> str:
        return self.db.appliance_id

    def find_segment(self, segment_id: str) -> SegmentRecord | None:
        return self.db.get_record(SegmentRecord, keys.segment(segment_id))

    def segment_ids_after(self, after: str, limit: int) -> list[str]:
        """Up to `limit` segment ids following `after` in key order ("" = from the first)."""
        start = keys.segment(after) + b"\x00" if after else keys.SEGMENT
        out: list[str] = []
        with self.db.iterator(start=start, stop=keys.prefix_successor(keys.SEGMENT)) as it:
            for k, _ in it:
                out.append(k[1:].decode())
                if len(out) >= limit:
                    break
        return out

    def _live_on(self, disk_id: str) -> Iterator[tuple[SegmentRecord, list[int]]]:
        """(record, shard indices on the disk) of every live segment with a shard on the disk."""
        for _, rec in self.db.scan_records(SegmentRecord, keys.SEGMENT):
            idx = [i for i, d in enumerate(rec.shards) if d == disk_id]
            if idx and rec.refcount > 0:
                yield rec, idx

    def segments_on(self, disk_id: str) -> list[tuple[str, list[int]]]:
        """(segment id, shard indices) of every live segment with a shard on the disk."""
        return [(rec.segment_id, idx) for rec, idx in self._live_on(disk_id)]

    def stranded_on(self, disk_id: str, targets: set[str]) -> int:
        """Live segments with a shard on the disk that could not move it: fewer of `targets`
        (the disks a drain may write) than it has shards there lie outside its other shards."""
        return sum(1 for rec, idx in self._live_on(disk_id) if len(targets - set(rec.shards)) < len(idx))

    def heal_backlog(self) -> int:
        """Segments queued for healing (H keys): the console's and the metrics' backlog figure."""
        return sum(1 for _ in self.db.scan(keys.HEAL))

    def shards_per_disk(self) -> dict[str, int]:
        """Disk id -> number of shards the segment records place on it."""
        held: dict[str, int] = {}
        for _, rec in self.db.scan_records(SegmentRecord, keys.SEGMENT):
            for disk_id in rec.shards:
                if disk_id:
                    held[disk_id] = held.get(disk_id, 0) + 1
        return held

    async def set_disk_state(self, disk: Disk, state: DiskState) -> None:
        """Change a disk's state in memory and in its persisted record (diskrecords checks the
        transition)."""
        await diskrecords.set_state(self.db, disk, state)

    def disk_record(self, disk_id: str) -> DiskRecord | None:
        return self.db.get_record(DiskRecord, keys.disk(disk_id))

    def load_progress(self, cls: type[P], name: str) -> P | None:
        """A service's persisted progress record (`X<name>`), None if it has none yet."""
        raw = self.db.get(keys.progress(name))
        return cls.decode(raw) if raw is not None else None

    def save_progress(self, name: str, rec: ProgressRecord, sync: bool = False) -> None:
        """Store a service's progress record (blocking: run it in a thread inside the loop)."""
        b = self.db.batch()
        b.put(keys.progress(name), rec.encode())
        self.db.commit_now(b, sync=sync)

    def drop_progress(self, name: str) -> None:
        """Remove a progress record whose work is done (blocking)."""
        b = self.db.batch()
        b.delete(keys.progress(name))
        self.db.commit_now(b, sync=True)

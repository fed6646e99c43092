"""Read-only views without a running daemon: open the metadata DB directly (only possible
while the daemon is stopped, as LevelDB allows one process)."""

from __future__ import annotations

from typing import Any

from appliance import __version__
from appliance.config import Config
from appliance.engine import keys
from appliance.engine.errors import StowageError
from appliance.engine.metadb import MetaDB
from appliance.engine.records import BucketRecord, DiskRecord


def offline_status(cfg: Config) -> dict[str, Any]:
    if not cfg.meta_path.exists():
        raise StowageError(f"no appliance at {cfg.state_dir} (metadata dir {cfg.meta_path} does not exist)")
    try:
        db = MetaDB(cfg.meta_path)
    except StowageError as exc:
        raise StowageError(f"daemon not reachable and metadata DB busy or unreadable: {exc.message}") from exc
    try:
        disks = [rec for _, rec in db.scan_records(DiskRecord, keys.DISK)]
        names = [b.name for _, b in db.scan_records(BucketRecord, keys.BUCKET)]
        counts = {}
        for name in names:
            with db.db.iterator(prefix=keys.latest_prefix(name), include_value=False) as it:
                counts[name] = sum(1 for _ in it)
        return {
            "version": __version__,
            "running": False,
            "s3_endpoint": None,
            "mount": None,
            "pools": [],
            "disks": [{"disk_id": d.disk_id, "path": d.path, "pool": d.pool, "state": d.state, "reasons": []}
                      for d in disks],
            "buckets": len(names),
            "objects": sum(counts.values()),
            "objects_per_bucket": counts,
            "services": {},
        }
    finally:
        db.close()

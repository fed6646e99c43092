"""`stowage status` without a running daemon: read from the metadata DB through the engine (only
possible while the daemon is stopped, as LevelDB allows one process)."""

from __future__ import annotations

from typing import Any

from appliance import __version__
from appliance.config import Config
from appliance.engine import offline
from appliance.engine.errors import StowageError


def offline_status(cfg: Config) -> dict[str, Any]:
    if not cfg.meta_path.exists():
        raise StowageError(f"no appliance at {cfg.state_dir} (metadata dir {cfg.meta_path} does not exist)")
    try:
        found = offline.summary(cfg.meta_path)
    except offline.MetaDBUnavailable as exc:
        raise StowageError(f"daemon not reachable and metadata DB busy or unreadable: {exc.message}") from exc
    counts = found.objects_per_bucket
    return {
        "version": __version__,
        "running": False,
        "s3_endpoint": None,
        "mount": None,
        "pools": [],
        "disks": [{"disk_id": d.disk_id, "path": d.path, "pool": d.pool, "state": d.state, "reasons": []}
                  for d in found.disks],
        "buckets": len(counts),
        "objects": sum(counts.values()),
        "objects_per_bucket": counts,
        "services": {},
    }

"""The lifecycle, restore and rebalance lines in `stowage status`."""

from __future__ import annotations

import time
from typing import Any

from .sizes import human_size


def lifecycle_line(name: str, svc: Any) -> str | None:
    """None: not the lifecycle, restore or rebalance service."""
    if not isinstance(svc, dict):
        return None
    if name == "restore":
        return (f"restore: {svc.get('queued', 0)} queued, {svc.get('active', 0)} restored copies readable, "
                f"{svc.get('restored', 0)} restored ({human_size(svc.get('restored_bytes', 0))}) and "
                f"{svc.get('expired', 0)} expired since start")
    if name == "rebalance":
        return rebalance_lines(svc)
    if name == "spindown":  # per disk of a pool that spins down: applied, failed (hdparm's words) or skipped
        return "spin-down: " + ("; ".join(f"{d} {how}" for d, how in sorted(svc.items())) or "no pool asks for it")
    if name != "lifecycle":
        return None
    if svc.get("running") or svc.get("pass_started_ns"):
        where = f"pass at {svc.get('bucket') or '-'} ({svc.get('phase') or 'starting'}, after {svc.get('after')!r})"
    elif svc.get("last_complete_ns"):
        where = f"idle, last pass {round(time.time() - svc['last_complete_ns'] / 1e9)} s ago"
    else:
        where = "idle, no pass yet"
    return (f"lifecycle: {where}; {svc.get('expired', 0)} expired, {svc.get('markers_removed', 0)} delete markers "
            f"removed, {svc.get('transitioned', 0)} transitioned ({human_size(svc.get('transitioned_bytes', 0))}), "
            f"{svc.get('aborted', 0)} uploads aborted, {svc.get('locked', 0)} kept by object lock, "
            f"{svc.get('tiered', 0)} intelligent-tiering moves")


def rebalance_lines(svc: dict[str, Any]) -> str:
    """One line per pool: balanced or where the rebalance stands."""
    if not svc.get("enabled", True):
        return "rebalance: off"
    out = []
    for pool, p in (svc.get("pools") or {}).items():
        state = ("running, " + f"{p.get('walked', 0)}/{p.get('segments', 0)} segments walked" if p.get("running")
                 else "not measured since start" if "balanced" not in p
                 else "balanced" if p["balanced"] else "as even as whole shards allow")
        spread = f", spread {p['spread']:.3f}" if "spread" in p else ""
        out.append(f"rebalance {pool}: {state}; {p.get('disks', 0)} disks{spread}, "
                   f"{p.get('moved_shards', 0)} shards moved ({human_size(p.get('moved_bytes', 0))})")
    return "\n".join(out) or "rebalance: no pool measured yet"

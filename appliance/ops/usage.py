"""Control ops of usage and quotas (registered by the daemon):

    usage {"bucket"?}                               -> the usage report (engine/usagestore.py)
    quota.set {"kind": "bucket"|"user", "name", "bytes", "objects"}   (both 0: clear)
"""

from __future__ import annotations

from typing import Any

import trio

from appliance.control import ControlServer, Emit
from appliance.engine.objectstore import ObjectStore
from appliance.services.lifecycle import LifecycleWorker


def register(control: ControlServer, store: ObjectStore, lifecycle: LifecycleWorker) -> None:
    async def usage(args: dict[str, Any], emit: Emit) -> Any:
        report = await trio.to_thread.run_sync(store.usage_report, args.get("bucket") or None)
        for b in report["buckets"]:
            b["lifecycle_next_30_days"] = lifecycle.outlook.get(b["bucket"])
        return report

    async def quota_set(args: dict[str, Any], emit: Emit) -> Any:
        rec = await store.set_quota(str(args.get("kind", "")), str(args.get("name", "")),
                                    int(args.get("bytes", 0)), int(args.get("objects", 0)))
        return None if rec is None else {"name": rec.name, "bytes": rec.max_bytes, "objects": rec.max_objects}

    control.register("usage", usage)
    control.register("quota.set", quota_set)

"""Control ops of usage and quotas (registered by the daemon):

    usage {"bucket"?}                               -> the usage report (engine/usagestore.py)
    quota.set {"kind": "bucket"|"user", "name", "bytes", "objects"}   (both 0: clear)

A user quota is stored under the canonical id that buckets record as their owner; the operator
names the user (or "root", or gives the canonical id), and a name no identity holds is refused
(NoSuchEntity) rather than stored as a quota that applies to no one.
"""

from __future__ import annotations

from typing import Any

import trio

from appliance.control import ControlServer, Emit
from appliance.engine.objectstore import ObjectStore
from appliance.iam.errors import NoSuchEntity
from appliance.iam.identities import Identities
from appliance.services.lifecycle import LifecycleWorker


def owner_id(identities: Identities, user: str) -> str:
    """The canonical id a bucket of `user` (a user name, "root", or a canonical id) records."""
    principal = identities.principal_for_user(user) or identities.principal_by_canonical_id(user)
    if principal is None:
        raise NoSuchEntity(f"The user with name {user} cannot be found.")
    return principal.canonical_id


def register(control: ControlServer, store: ObjectStore, lifecycle: LifecycleWorker,
             identities: Identities) -> None:
    async def usage(args: dict[str, Any], emit: Emit) -> Any:
        report = await trio.to_thread.run_sync(store.usage_report, args.get("bucket") or None)
        for b in report["buckets"]:
            b["lifecycle_next_30_days"] = lifecycle.outlook.get(b["bucket"])
        for u in report["user_quotas"]:
            u["name"] = identities.display_name(u["user"]) or u["user"]
        return report

    async def quota_set(args: dict[str, Any], emit: Emit) -> Any:
        kind, name = str(args.get("kind", "")), str(args.get("name", ""))
        max_bytes, max_objects = int(args.get("bytes", 0)), int(args.get("objects", 0))
        if kind == "user":
            try:
                name = owner_id(identities, name)
            except NoSuchEntity:
                if max_bytes or max_objects:
                    raise
                # clearing: the quota of a since deleted user is stored under its old id
        rec = await store.set_quota(kind, name, max_bytes, max_objects)
        return None if rec is None else {"name": rec.name, "bytes": rec.max_bytes, "objects": rec.max_objects}

    control.register("usage", usage)
    control.register("quota.set", quota_set)

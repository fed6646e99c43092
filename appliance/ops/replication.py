"""Control ops of bucket replication (registered by the daemon).

    replication.target.add {"name", "kind": stowage|s3, "endpoint", "access_key", "secret_key",
                            "region", "tls_verify"}   -> the target (its secret stored wrapped)
    replication.target.list {}        -> [{"name", "kind", "endpoint", "arn", ...}]
    replication.target.remove {"name"} -> {"dropped": queued versions removed with it}
    replication.resync {"bucket"}     queue existing versions not replicated yet; streams progress
    replication.status {}             -> per target: backlog (objects, bytes), lag, failures, throughput
"""

from __future__ import annotations

from typing import Any

from appliance.control import ControlServer, Emit
from appliance.services.notifytargets import TargetError
from appliance.services.replicate import ReplicationService


def _str(args: dict[str, Any], name: str) -> str:
    value = args.get(name, "")
    if not isinstance(value, str):
        raise TargetError(f"{name}: expected a string")
    return value


def register(control: ControlServer, r: ReplicationService) -> None:
    async def add(args: dict[str, Any], emit: Emit) -> Any:
        settings = {"endpoint": _str(args, "endpoint"), "access_key": _str(args, "access_key"),
                    "region": _str(args, "region") or "us-east-1", "tls_verify": bool(args.get("tls_verify", True))}
        return await r.target_add(_str(args, "name"), _str(args, "kind") or "stowage", settings,
                                  _str(args, "secret_key"))

    async def listing(args: dict[str, Any], emit: Emit) -> Any:
        return r.target_list()

    async def remove(args: dict[str, Any], emit: Emit) -> Any:
        return {"dropped": await r.target_remove(_str(args, "name"))}

    async def resync(args: dict[str, Any], emit: Emit) -> Any:
        return (await r.resync(_str(args, "bucket"), emit)).to_json()

    async def status(args: dict[str, Any], emit: Emit) -> Any:
        return r.status()

    control.register("replication.target.add", add)
    control.register("replication.target.list", listing)
    control.register("replication.target.remove", remove)
    control.register("replication.resync", resync)
    control.register("replication.status", status)

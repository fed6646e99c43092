"""Control ops of bucket notifications (registered by the daemon).

    notify.target.add {"name", "type": webhook|file, "url", "path", "auth_header", "tls_verify", "ca_file"}
                                     -> the target as listed (the auth header is stored wrapped)
    notify.target.list {}            -> [{"name", "type", "arns", "queued", "delivered", ...}]
    notify.target.remove {"name"}    -> {"dropped": undelivered events removed with it}
    notify.status {}                 -> per-target queue, deliveries, failures, overflow
"""

from __future__ import annotations

from typing import Any

from appliance.control import ControlServer, Emit
from appliance.services.notify import NotifyService
from appliance.services.notifytargets import TargetError


def _str(args: dict[str, Any], name: str) -> str:
    value = args.get(name, "")
    if not isinstance(value, str):
        raise TargetError(f"{name}: expected a string")
    return value


def register(control: ControlServer, n: NotifyService) -> None:
    async def add(args: dict[str, Any], emit: Emit) -> Any:
        kind = _str(args, "type") or "webhook"
        settings: dict[str, Any] = {"url": _str(args, "url")} if kind == "webhook" else {"path": _str(args, "path")}
        if kind == "webhook":
            settings["tls_verify"] = bool(args.get("tls_verify", True))
            if _str(args, "ca_file"):
                settings["ca_file"] = _str(args, "ca_file")
        return await n.target_add(_str(args, "name"), kind, settings, _str(args, "auth_header"))

    async def listing(args: dict[str, Any], emit: Emit) -> Any:
        return n.target_list()

    async def remove(args: dict[str, Any], emit: Emit) -> Any:
        return {"dropped": await n.target_remove(_str(args, "name"))}

    async def status(args: dict[str, Any], emit: Emit) -> Any:
        return n.status()

    control.register("notify.target.add", add)
    control.register("notify.target.list", listing)
    control.register("notify.target.remove", remove)
    control.register("notify.status", status)

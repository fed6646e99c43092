"""Control-socket operations for users and keys (registered by the daemon)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appliance.control import Emit
from appliance.iam import users

if TYPE_CHECKING:
    from appliance.daemon import Daemon


def register(d: Daemon) -> None:
    for op, fn in users.OPS.items():

        async def handler(args: dict[str, Any], emit: Emit, fn: Any = fn) -> Any:
            return fn(d.store.db, args)

        d.control.register(op, handler)

"""Control-socket operations for users and keys (registered by the daemon)."""

from __future__ import annotations

from typing import Any

from appliance.control import ControlServer, Emit
from appliance.engine.metadb import MetaDB
from appliance.iam import users


def register(control: ControlServer, db: MetaDB) -> None:
    for op, fn in users.OPS.items():

        async def handler(args: dict[str, Any], emit: Emit, fn: Any = fn) -> Any:
            return fn(db, args)

        control.register(op, handler)

"""The operator's persisted settings and state, in the metadata DB through MetaDB commits (so
they are journaled and survive `stowage recover-metadata`):

    g<name>    OperatorRecord: the metrics token's digest, the alerts that are firing

(The bucket logging settings, l<bucket>, are the object store's: appliance/engine/logstore.py.)
"""

from __future__ import annotations

from typing import Any

from appliance.engine import keys
from appliance.engine.metadb import MetaDB
from appliance.engine.records import OperatorRecord

METRICS_TOKEN = "metrics-token"
ALERTS = "alerts"


class OperatorState:
    def __init__(self, db: MetaDB) -> None:
        self.db = db

    # g<name>

    def get(self, name: str) -> dict[str, Any] | None:
        rec = self.db.get_record(OperatorRecord, keys.operator(name))
        return rec.value if rec is not None else None

    async def put(self, name: str, value: dict[str, Any]) -> None:
        b = self.db.batch()
        b.put(keys.operator(name), OperatorRecord(name, value))
        await self.db.commit(b)

    def put_now(self, name: str, value: dict[str, Any]) -> None:
        """Blocking, for the CLI while no daemon runs."""
        b = self.db.batch()
        b.put(keys.operator(name), OperatorRecord(name, value))
        self.db.commit_now(b)

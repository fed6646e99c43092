"""/_stowage/v1/health/live and /_stowage/v1/health/ready, as load balancers and Kubernetes
probes expect them.

live: 200 whenever the daemon's event loop answers (a wedged loop answers nothing).
ready: 200 only when the metadata DB takes commits (and its journal has its quorum of disks),
every pool can read and write (at least k readable and k writable disks), and the gateway has
started and is not draining; otherwise 503 with the first reason found. Both are public (they
say nothing about the data) and answer JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from appliance.engine.objectstore import ObjectStore
from s3gw.adminpaths import text_response
from s3gw.http import Request, Response


@dataclass
class Readiness:
    store: ObjectStore
    phase: str = "starting"  # starting | serving | stopping

    def reason(self) -> str | None:
        """Why the appliance is not ready, or None when it is."""
        if self.phase != "serving":
            return f"the daemon is {self.phase}"
        db = self.store.db
        if db.failed:
            return f"metadata DB: {db.failed}"
        j = db.journal
        if j is not None:
            st = j.status()
            if len(st.disks) < st.quorum:
                return f"metadata journal: {len(st.disks)} of the {st.quorum} disks it needs"
        for pool in sorted(set(self.store.disks.pools()) | {"default"}):
            members = self.store.disks.pool(pool)
            if not members:
                continue
            k = self.store.geometry(pool).k
            readable = sum(1 for d in members if d.readable)
            writable = sum(1 for d in members if d.writable)
            if readable < k or writable < k:
                return f"pool {pool}: {readable} readable and {writable} writable disks, {k} needed"
        return None


@dataclass
class HealthEndpoint:
    readiness: Readiness

    async def handle(self, req: Request, rest: str) -> Response:
        if req.method not in ("GET", "HEAD"):
            return text_response(405, "method not allowed\n", headers=[("Allow", "GET, HEAD")])
        if rest == "/live":
            return _json(200, {"status": "live"})
        if rest == "/ready":
            why = self.readiness.reason()
            if why is None:
                return _json(200, {"status": "ready"})
            return _json(503, {"status": "not ready", "reason": why})
        return text_response(404, "not found\n")


def _json(status: int, doc: dict[str, str]) -> Response:
    return text_response(status, json.dumps(doc) + "\n", "application/json")

"""/_stowage/v1/health/ready in each state, in process on a real store: starting, serving,
stopping, disks failed below what a pool needs, a metadata DB that failed a write."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from appliance.engine.objectstore import ObjectStore
from appliance.health import HealthEndpoint, Readiness
from diskmgr.state import DiskState
from s3gw.http import Body, Request

from ..engine.conftest import store_factory  # noqa: F401 - the fixture


async def _ready(endpoint: HealthEndpoint) -> tuple[int, dict[str, Any]]:
    req = Request("GET", "/_stowage/v1/health/ready", {}, Body(None))  # type: ignore[arg-type]
    resp = await endpoint.handle(req, "/ready")
    assert isinstance(resp.body, bytes)
    return resp.status, json.loads(resp.body)


async def test_ready_in_each_state(store_factory: Callable[..., ObjectStore]) -> None:  # noqa: F811
    store = store_factory(k=4, m=2)
    readiness = Readiness(store)
    endpoint = HealthEndpoint(readiness)
    assert await _ready(endpoint) == (503, {"status": "not ready", "reason": "the daemon is starting"})
    readiness.phase = "serving"
    assert await _ready(endpoint) == (200, {"status": "ready"})
    disks = list(store.disks)
    disks[0].state = DiskState.FAILED
    disks[1].state = DiskState.OFFLINE
    assert (await _ready(endpoint))[0] == 200  # k=4 of 6 still read and write
    disks[2].state = DiskState.FAILED
    status, doc = await _ready(endpoint)
    assert status == 503 and doc["reason"] == "pool default: 3 readable and 3 writable disks, 4 needed"
    for d in disks:
        d.state = DiskState.OK
    store.db.failed = "IO error: disk full"
    status, doc = await _ready(endpoint)
    assert status == 503 and doc["reason"] == "metadata DB: IO error: disk full"
    store.db.failed = ""
    readiness.phase = "stopping"
    assert await _ready(endpoint) == (503, {"status": "not ready", "reason": "the daemon is stopping"})
    live = await endpoint.handle(Request("GET", "/_stowage/v1/health/live", {}, Body(None)), "/live")  # type: ignore[arg-type]
    assert live.status == 200

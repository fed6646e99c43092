"""The self-healing services of one store, as one bundle: the healer, the scrubber, the disk
monitor, the drainer, the metadata snapshots and the rebalancer. They share one healer (and so one
per-segment repair lock), which is why they are built together.

The daemon (the composition root) builds the bundle, starts each of `workers()` with
`await nursery.start(...)`, registers the bundle's control ops (appliance/ops/healing.py) and
shows `progress_json()` under "services" in `stowage status`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from appliance.engine.objectstore import ObjectStore

from .diskmon import DiskMonitor
from .drain import Drainer
from .heal import Healer
from .loop import Json
from .rebalance import Rebalancer
from .scrub import Scrubber
from .snapshot import Snapshotter

# A service's `serve(*, task_status)`, for `nursery.start`.
Worker = Callable[..., Awaitable[None]]


@dataclass
class Healing:
    healer: Healer
    scrubber: Scrubber
    monitor: DiskMonitor
    drainer: Drainer
    snapshotter: Snapshotter
    rebalancer: Rebalancer

    @classmethod
    def create(cls, store: ObjectStore, static_paths: set[str]) -> Healing:
        """`static_paths`: the configured disk directories (not managed mounts)."""
        healer = Healer(store)
        return cls(healer=healer, scrubber=Scrubber(store, healer), monitor=DiskMonitor(store, healer, static_paths),
                   drainer=Drainer(store, healer), snapshotter=Snapshotter(store),
                   rebalancer=Rebalancer(store, healer))

    def workers(self) -> list[Worker]:
        return [self.healer.serve, self.monitor.serve, self.scrubber.serve, self.snapshotter.serve,
                self.rebalancer.serve]

    def progress_json(self) -> dict[str, Json]:
        return {"heal": self.healer.progress.to_json(), "scrub": self.scrubber.progress.to_json(),
                "drain": self.drainer.progress_json(), "snapshot": self.snapshotter.progress.to_json(),
                "rebalance": self.rebalancer.progress_json(), "spindown": self.monitor.spin.status()}

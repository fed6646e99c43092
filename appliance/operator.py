"""The operator's side of the daemon, wired in one place: metrics, health, the access logs, the
audit log and alerts. The daemon builds one `Operator`, hands its gateway hooks to the S3
service (`admin` paths, request `observers`, the connection `state`) and starts `workers()`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from appliance.config import Config
from appliance.engine.objectstore import ObjectStore
from appliance.iam.masterkey import MasterKey
from appliance.iam.objectkeys import ObjectKeys
from appliance.services.healing import Healing
from s3gw.adminpaths import AdminPaths
from s3gw.exchange import Observer
from s3gw.http import Request, ServerState
from s3gw.metrics import GatewayMetrics, MetricsEndpoint

from .accesslog import AccessLog
from .alerts import Alerter
from .audit import AuditLog
from .auditing import Auditor
from .health import HealthEndpoint, Readiness
from .metrics import LoopLag, appliance_registry
from .opstate import METRICS_TOKEN, OperatorState
from .s3accesslog import ServerAccessLog

Worker = Callable[..., Awaitable[None]]


@dataclass
class Operator:
    cfg: Config
    store: ObjectStore
    healing: Healing
    keys: ObjectKeys
    master: MasterKey
    state: OperatorState = field(init=False)
    admin: AdminPaths = field(default_factory=AdminPaths)
    registry: CollectorRegistry = field(init=False)
    gateway: GatewayMetrics = field(init=False)
    server: ServerState = field(init=False)
    readiness: Readiness = field(init=False)
    lag: LoopLag = field(init=False)
    auditor: Auditor = field(init=False)
    access_log: AccessLog = field(init=False)
    server_log: ServerAccessLog = field(init=False)
    alerter: Alerter = field(init=False)

    def __post_init__(self) -> None:
        self.state = OperatorState(self.store.db)
        self.registry = appliance_registry(self.store, self.healing)
        self.gateway = GatewayMetrics(self.registry)
        self.server = ServerState(self.cfg.s3.max_connections, self.cfg.s3.max_connections_per_client)
        self.gateway.track_in_flight(lambda: len(self.server.inflight))
        self.lag = LoopLag(self.registry)
        self.readiness = Readiness(self.store)
        self.auditor = Auditor(AuditLog.for_state_dir(self.cfg.state_dir), self.store.db)
        self.access_log = AccessLog(self.cfg, self.store)
        self.alerter = Alerter(self.store, self.healing, self.cfg.alerts, self.state, self.master)
        self.server_log = ServerAccessLog(self.store, self.keys, self.cfg.access_log.delivery_interval_seconds)
        metrics = MetricsEndpoint(self.registry, self.cfg.admin.metrics_public, self._token_digest, self._authorize)
        self.admin.register("metrics", metrics.handle)
        self.admin.register("health", HealthEndpoint(self.readiness).handle)

    def _token_digest(self) -> str | None:
        doc = self.state.get(METRICS_TOKEN)
        digest = doc.get("sha256") if doc else None
        return digest if isinstance(digest, str) else None

    async def _authorize(self, req: Request, action: str) -> bool:
        return await self.admin.authorize(req, action)  # bound late: the S3 application sets it

    @property
    def observers(self) -> list[Observer]:
        return [self.gateway, self.auditor, self.access_log, self.server_log]

    def workers(self) -> list[Worker]:
        return [self.lag.serve, self.server_log.serve, self.alerter.serve]

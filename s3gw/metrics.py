"""The gateway's request metrics (Prometheus, prometheus_client) and the /_stowage/v1/metrics
endpoint.

Per request: one counter increment and one histogram observation on label children cached in a
dict (prometheus_client's `.labels()` takes a lock and builds a tuple each time), three byte
counters. The bucket label is set only for buckets that exist, so random names in requests
cannot grow the series without bound.

The endpoint answers when the request carries the bearer token (`stowage metrics-token`; only
its SHA-256 is stored), or is signed by a principal whose policies allow `stowage:GetMetrics`
(root always), or when admin.metrics_public is true. The exposition is rendered in a worker
thread: the appliance's collectors read the disks and the metadata DB.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from .adminpaths import text_response
from .exchange import Exchange
from .http import Request, Response

# Request duration buckets: 1 ms .. 60 s, roughly x2.5 apart.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Errors that say the caller could not prove who it is, or was refused.
AUTH_FAILURES = frozenset({"SignatureDoesNotMatch", "InvalidAccessKeyId", "AuthorizationHeaderMalformed",
                           "RequestTimeTooSkewed", "ExpiredToken", "InvalidToken", "MissingSecurityHeader",
                           "AccessDenied", "InvalidClientTokenId", "IncompleteSignature"})
METRICS_ACTION = "stowage:GetMetrics"


def status_class(status: int) -> str:
    return f"{status // 100}xx"


@dataclass
class GatewayMetrics:
    """The S3 request families; an Observer of the S3 application."""

    registry: CollectorRegistry
    requests: Counter = field(init=False)
    duration: Histogram = field(init=False)
    received: Counter = field(init=False)
    sent: Counter = field(init=False)
    in_flight: Gauge = field(init=False)
    auth_failures: Counter = field(init=False)
    _children: dict[tuple[str, str, str], tuple[Counter, Histogram, Counter, Counter]] = field(
        init=False, default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("stowage_s3_requests", "S3 and IAM requests answered",
                                ["operation", "status_class", "bucket"], registry=r)
        self.duration = Histogram("stowage_s3_request_duration_seconds",
                                  "Time from a request's arrival to the last byte of its response",
                                  ["operation"], buckets=DURATION_BUCKETS, registry=r)
        self.received = Counter("stowage_s3_received_bytes", "Request body bytes received", ["operation"],
                                registry=r)
        self.sent = Counter("stowage_s3_sent_bytes", "Response body bytes sent", ["operation"], registry=r)
        self.in_flight = Gauge("stowage_s3_requests_in_flight", "Requests being served now", registry=r)
        self.auth_failures = Counter("stowage_s3_auth_failures", "Requests refused for authentication or "
                                     "authorization, by error code", ["code"], registry=r)

    def track_in_flight(self, count: Callable[[], int]) -> None:
        self.in_flight.set_function(lambda: float(count()))

    def observe(self, ex: Exchange) -> None:
        key = (ex.op, status_class(ex.status), ex.bucket)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.duration.labels(ex.op), self.received.labels(ex.op),
                        self.sent.labels(ex.op))
            self._children[key] = children
        req, dur, rx, tx = children
        req.inc()
        dur.observe(ex.duration)
        if ex.bytes_in:
            rx.inc(ex.bytes_in)
        if ex.bytes_out:
            tx.inc(ex.bytes_out)
        if ex.error_code in AUTH_FAILURES:
            self.auth_failures.labels(ex.error_code).inc()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_matches(req: Request, digest: str | None) -> bool:
    """Whether the request's `Authorization: Bearer <token>` hashes to the stored digest."""
    if not digest:
        return False
    scheme, _, token = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return hmac.compare_digest(token_digest(token.strip()), digest)


@dataclass
class MetricsEndpoint:
    """GET /_stowage/v1/metrics."""

    registry: CollectorRegistry
    public: bool
    token_digest: Callable[[], str | None]  # the stored SHA-256 of the bearer token, if one is set
    authorize: Callable[[Request, str], Awaitable[bool]]  # a signed request allowed an action

    async def handle(self, req: Request, rest: str) -> Response:
        if rest not in ("", "/"):
            return text_response(404, "not found\n")
        if req.method not in ("GET", "HEAD"):
            return text_response(405, "method not allowed\n", headers=[("Allow", "GET, HEAD")])
        allowed = self.public or bearer_matches(req, self.token_digest()) or \
            await self.authorize(req, METRICS_ACTION)
        if not allowed:
            return text_response(401, "a bearer token or a signed request allowed stowage:GetMetrics is needed\n",
                                 headers=[("WWW-Authenticate", 'Bearer realm="stowage"')])
        body = await trio.to_thread.run_sync(generate_latest, self.registry)
        return Response(200, [("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store")], body)

"""One request as the observers see it (metrics, access logs): filled in by the S3 application
as the request goes through routing, authentication and the handler, handed to each observer
once, when the response has been sent or has failed.

Cheap on purpose: a slotted dataclass and a few attribute writes per request; the observers do
their own work (counters, a log line) and must not block.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .http import Request, Response
from .numbers import digits


@dataclass(slots=True)
class Exchange:
    request_id: str
    method: str
    remote: str  # "address:port" of the client
    user_agent: str
    started: float = field(default_factory=time.perf_counter)
    wall: float = field(default_factory=time.time)  # when it arrived, for logs
    op: str = "-"  # the S3 operation (routing.Op), "IAM" for the IAM API, "-" when not routed
    bucket: str = ""  # set once the bucket is known to exist (bounded label cardinality)
    named_bucket: str = ""  # the bucket the request names, existing or not (CreateBucket's)
    key: str = ""
    principal: str = ""  # the caller's ARN, "anonymous", or "" before authentication
    access_key: str = ""
    status: int = 0
    error_code: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    duration: float = 0.0  # seconds from arrival to the last byte of the response
    object_size: int | None = None
    query: str = ""  # the raw request target (path?query) for the AWS access log's Request-URI
    tls: bool = False
    referrer: str = ""
    host: str = ""
    # the bucket's settings before a bucket-setting request ran (the audit log's "before")
    bucket_before: dict[str, object] | None = None
    via: str = ""  # "console" for the web console's requests (the audit log's source)


class Observer(Protocol):
    def observe(self, ex: Exchange) -> None:
        """Called once per request, after its response; must not raise or block."""


def begin(req: Request, request_id: str) -> Exchange:
    h = req.headers
    return Exchange(request_id, req.method, req.remote, h.get("user-agent", ""), query=req.target, tls=req.tls,
                    referrer=h.get("referer", ""), host=h.get("host", ""))


def finish(observers: Sequence[Observer], ex: Exchange, req: Request, resp: Response) -> Response:
    """Count the response's bytes as they go out and tell the observers when it is done (at once
    for a body in memory, when a streamed body ends or is closed)."""
    ex.status = resp.status
    if ex.key and req.method in ("GET", "HEAD") and resp.status < 300:
        size = next((v for k, v in resp.headers if k.lower() == "content-length"), "")
        ex.object_size = digits(size)
    if isinstance(resp.body, bytes | bytearray):
        ex.bytes_out = len(resp.body) if req.method != "HEAD" else 0
        _done(observers, ex, req)
        return resp
    if req.method == "HEAD" or resp.status in (204, 304):  # the shell closes such a body unread
        _done(observers, ex, req)
        return resp
    resp.body = _counted(resp.body, observers, ex, req)
    return resp


async def _counted(body: AsyncGenerator[bytes | bytearray, None], observers: Sequence[Observer], ex: Exchange,
                   req: Request) -> AsyncGenerator[bytes | bytearray, None]:
    try:
        async for piece in body:
            ex.bytes_out += len(piece)
            yield piece
    finally:
        await body.aclose()
        _done(observers, ex, req)


def _done(observers: Sequence[Observer], ex: Exchange, req: Request) -> None:
    ex.bytes_in = req.body.bytes_read
    ex.duration = time.perf_counter() - ex.started
    for obs in observers:
        obs.observe(ex)

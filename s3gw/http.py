"""The trio shell: HTTP/1.1 with h11 over TCP (or TLS), one task per connection.

Keep-alive, `Expect: 100-continue` (the 100 goes out when a handler first reads the body, so a
request refused on its headers never uploads), chunked request bodies (h11 de-chunks), an idle
timeout between requests, a request timeout for headers and for each body read, a header-size
cap and a connection cap. Bodies stream in both directions in bounded pieces.

Each request runs in a shielded cancel scope registered with the server: on shutdown the
server gives in-flight requests a short grace deadline while idle connections go at once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import h11
import trio

from .errors import S3Error

log = logging.getLogger("stowage.s3")

RECV_SIZE = 256 * 1024
DRAIN_LIMIT = 256 * 1024  # an unread body this small is drained to keep the connection
LINGER_SECONDS = 2.0
LINGER_BYTES = 8 * 1024 * 1024


class ClientGone(Exception):
    """The client closed the connection or broke the protocol while we were reading."""


class BodyTimeout(Exception):
    """The client stopped sending the body."""


@dataclass
class Request:
    method: str
    target: str  # raw request-target (path?query), percent-encoded as sent
    headers: dict[str, str]  # lower-case name -> values joined with ","
    body: Body
    remote: str = ""
    tls: bool = False


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | AsyncGenerator[bytes, None] = b""  # a generator is closed once sent
    close: bool = False  # close the connection after this response


Handler = Callable[[Request], Awaitable[Response]]


class Body:
    """The request body as an async stream of raw (transfer-decoded) bytes."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn
        self.done = False
        self.bytes_read = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        c = self._conn
        if self.done:
            return
        if c.h11.they_are_waiting_for_100_continue:
            await c.send(h11.InformationalResponse(status_code=100, headers=[]))
        while True:
            event = await c.next_event(c.request_timeout, body=True)
            if isinstance(event, h11.Data):
                self.bytes_read += len(event.data)
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.done = True
                return
            else:
                raise ClientGone("unexpected event in body")

    async def read_all(self, limit: int) -> bytes:
        """A small body (XML documents), refused past `limit` bytes."""
        out = bytearray()
        async for piece in self.chunks():
            out += piece
            if len(out) > limit:
                raise S3Error("MaxMessageLengthExceeded", close=True)
        return bytes(out)


class _Conn:
    def __init__(self, stream: trio.abc.Stream, max_header: int, request_timeout: float) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header)
        self.request_timeout = request_timeout

    async def send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            await self.stream.send_all(data)

    async def next_event(self, receive_timeout: float, *, body: bool = False) -> h11.Event | type[h11.PAUSED]:
        """The next h11 event; `receive_timeout` bounds each wait for bytes, not the whole call."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if body:
                    raise ClientGone(str(exc)) from exc
                raise
            if isinstance(event, h11.Event):
                return event
            if event is h11.PAUSED:
                return h11.PAUSED
            with trio.move_on_after(receive_timeout) as scope:
                try:
                    data = await self.stream.receive_some(RECV_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    raise ClientGone(str(exc)) from exc
            if scope.cancelled_caught:
                if body:
                    raise BodyTimeout()
                raise TimeoutError()
            if not data and body:
                raise ClientGone("connection closed mid-body")
            self.h11.receive_data(bytes(data))


class ServerState:
    """Live connections and in-flight requests, for the cap and for draining on shutdown."""

    def __init__(self, max_connections: int) -> None:
        self.limiter = trio.CapacityLimiter(max_connections)
        self.inflight: set[trio.CancelScope] = set()
        self.draining = False

    def drain(self, grace: float) -> None:
        self.draining = True
        deadline = trio.current_time() + grace
        for scope in self.inflight:
            scope.deadline = min(scope.deadline, deadline)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def _date() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


async def _send_response(conn: _Conn, req_method: str, resp: Response) -> None:
    headers = [(k.encode(), v.encode("latin-1", "replace")) for k, v in resp.headers]
    names = {k.lower() for k, _ in resp.headers}
    headers.append((b"Date", _date().encode()))
    headers.append((b"Server", b"Stowage"))
    if isinstance(resp.body, bytes | bytearray) and "content-length" not in names:
        headers.append((b"Content-Length", str(len(resp.body)).encode()))
    if resp.close:
        headers.append((b"Connection", b"close"))
    # a reason phrase matters: botocore's 100-continue handling needs three status-line fields
    await conn.send(h11.Response(status_code=resp.status, headers=headers, reason=_reason(resp.status)))
    if req_method == "HEAD" or resp.status in (204, 304):
        if not isinstance(resp.body, bytes | bytearray):
            await resp.body.aclose()
        await conn.send(h11.EndOfMessage())
        return
    if isinstance(resp.body, bytes | bytearray):
        if resp.body:
            await conn.send(h11.Data(data=resp.body))
    else:
        try:
            async for piece in resp.body:
                await conn.send(h11.Data(data=piece))
        finally:
            await resp.body.aclose()
    await conn.send(h11.EndOfMessage())


async def _finish_body(conn: _Conn, body: Body, resp: Response) -> bool:
    """After the response: drain a small unread body so the connection can be reused."""
    if conn.h11.their_state is not h11.SEND_BODY:
        return True
    if conn.h11.they_are_waiting_for_100_continue or resp.close:
        return False
    try:
        with trio.move_on_after(conn.request_timeout):
            n = 0
            while True:
                event = await conn.next_event(conn.request_timeout, body=True)
                if isinstance(event, h11.EndOfMessage):
                    return True
                if isinstance(event, h11.Data):
                    n += len(event.data)
                    if n > DRAIN_LIMIT:
                        return False
    except (ClientGone, BodyTimeout):
        return False
    return False


def _will_reuse(conn: _Conn, body: Body, req: h11.Request) -> bool:
    """Decide before responding whether the connection survives (to say Connection: close)."""
    if conn.h11.their_state is not h11.SEND_BODY:
        return True
    if conn.h11.they_are_waiting_for_100_continue:
        return False
    length = dict(req.headers).get(b"content-length")
    if length is None or not length.isdigit():
        return False
    return int(length) - body.bytes_read <= DRAIN_LIMIT


async def serve_connection(
    stream: trio.abc.Stream,
    handler: Handler,
    error_response: Callable[[str], Response],
    state: ServerState,
    *,
    max_header: int,
    request_timeout: float,
    idle_timeout: float,
    remote: str = "",
    tls: bool = False,
) -> None:
    """Serve HTTP/1.1 requests on one connection until it closes, times out or the server stops."""
    conn = _Conn(stream, max_header, request_timeout)
    try:
        while not state.draining:
            try:
                event = await conn.next_event(idle_timeout)
            except TimeoutError:
                return
            except h11.RemoteProtocolError as exc:
                code = "RequestHeaderSectionTooLarge" if exc.error_status_hint == 431 else "InvalidRequest"
                if conn.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    with trio.move_on_after(5):
                        await _send_response(conn, "GET", error_response(code))
                return
            except ClientGone:
                return
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                return
            keep = await _serve_one(conn, event, handler, state, remote, tls)
            if not keep or conn.h11.our_state is not h11.DONE or conn.h11.their_state is not h11.DONE:
                return
            conn.h11.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, ClientGone, BodyTimeout, OSError):
        return
    except Exception:
        # a handler bug or a store failure mid-stream: this connection dies, the server lives
        log.exception("S3 connection from %s failed", remote)
        return
    finally:
        if conn.h11.their_state is h11.SEND_BODY:
            await _linger_close(stream)
        else:
            await trio.aclose_forcefully(stream)


async def refuse_connection(stream: trio.abc.Stream, resp: Response) -> None:
    """Answer `resp` on a connection we will not serve, without reading its request, and close.
    h11 lets a server respond before a request arrives (as for a 408), so even this response is
    framed by h11 like every other one. The caller bounds the time it may take."""
    conn = _Conn(stream, max_header=0, request_timeout=0)  # it never reads
    resp.close = True
    try:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await _send_response(conn, "GET", resp)
    finally:
        await trio.aclose_forcefully(stream)


async def _linger_close(stream: trio.abc.Stream) -> None:
    """Close without losing the last response: a close with unread request bytes in the kernel
    buffer sends RST, and the client may then never see the error we just sent. So: half-close,
    read and discard for a moment, then close."""
    with trio.move_on_after(LINGER_SECONDS) as scope:
        scope.shield = True
        try:
            if isinstance(stream, trio.SocketStream):
                await stream.send_eof()
                discarded = 0
                while discarded < LINGER_BYTES:
                    data = await stream.receive_some(RECV_SIZE)
                    if not data:
                        break
                    discarded += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    await trio.aclose_forcefully(stream)


async def _serve_one(
    conn: _Conn,
    event: h11.Request,
    handler: Handler,
    state: ServerState,
    remote: str,
    tls: bool,
) -> bool:
    headers: dict[str, str] = {}
    for name, value in event.headers:
        k = name.decode("latin-1").lower()
        v = value.decode("latin-1")
        headers[k] = f"{headers[k]},{v}" if k in headers else v
    body = Body(conn)
    req = Request(event.method.decode("ascii", "replace"), event.target.decode("latin-1"), headers, body,
                  remote, tls)
    with trio.CancelScope(shield=True) as scope:
        state.inflight.add(scope)
        try:
            resp = await handler(req)
            if not _will_reuse(conn, body, event) or state.draining:
                resp.close = True
            await _send_response(conn, req.method, resp)
            return await _finish_body(conn, body, resp) and not resp.close
        finally:
            state.inflight.discard(scope)
    return False  # the grace deadline cut the request short

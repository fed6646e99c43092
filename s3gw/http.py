"""The trio shell: HTTP/1.1 with h11 over TCP (or TLS), one task per connection.

Keep-alive, `Expect: 100-continue` (the 100 goes out when a handler first reads the body, so a
request refused on its headers never uploads), chunked request bodies (h11 de-chunks), an idle
timeout between requests, one deadline for a request's line and headers (slowloris), a timeout
for each body read, a cap on the size of the whole header block, and connection caps (global
and per client address). Bodies stream in both directions in bounded pieces.

Each request runs in a shielded cancel scope registered with the server: on shutdown the
server gives in-flight requests a short grace deadline while idle connections go at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
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
ANSWER_TIMEOUT = 5.0  # to send an error the shell answers on its own
_BLANK_LINE = re.compile(rb"\n\r?\n")  # the end of a header block, as h11 finds it


class IdleTimeout(Exception):
    """No byte of a next request arrived within the keep-alive idle time."""


class HeaderTimeout(Exception):
    """The request line and headers did not all arrive within the header deadline."""


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
            # with its reason phrase: botocore before 1.31 (Debian 12's, under duplicity) takes a
            # two-field "HTTP/1.1 100" for the final response and the upload never starts
            await c.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
        while True:
            event = await c.next_body_event()
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
        self.max_header = max_header
        self.request_timeout = request_timeout
        self.held = b""  # bytes of a held event (send(hold=True)), not yet written

    async def send(self, event: h11.Event, *, hold: bool = False) -> None:
        """Send an event; `hold`: keep its bytes to go out with the next event's (a response's
        head and its first body piece in one write)."""
        data = self.h11.send(event)
        if self.held:
            data = self.held + (data or b"")
            self.held = b""
        if hold:
            self.held = data or b""
        elif data:
            await self.stream.send_all(data)

    async def _receive(self) -> bytes:
        try:
            return bytes(await self.stream.receive_some(RECV_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise ClientGone(str(exc)) from exc

    def _check_head_size(self) -> None:
        """h11's max_incomplete_event_size caps only a head still incomplete: a header block
        that arrives whole in one read would be parsed at any size. So the cap is applied here
        to the buffered head, request line included, before h11 parses it."""
        buffered, _ = self.h11.trailing_data
        if len(buffered) <= self.max_header:
            return
        end = _BLANK_LINE.search(buffered, 0, self.max_header + 3)
        if end is None or end.end() > self.max_header:
            raise h11.RemoteProtocolError("request header section too large", error_status_hint=431)

    async def next_request(self, idle_timeout: float, header_timeout: float, *,
                           first: bool) -> h11.Event | type[h11.PAUSED]:
        """The next request head (or the end of the connection).

        Waiting for the first byte of a request on a kept-alive connection is bounded by
        `idle_timeout`. From that byte on (from the accept, for a connection's first request,
        and at once when part of the next request is already buffered) the request line and
        all headers must arrive before one deadline, `header_timeout` later: a timeout per read
        would let a client hold the connection for ever by sending a byte now and then."""
        deadline: float | None = None
        if first or self.h11.trailing_data[0]:
            deadline = trio.current_time() + header_timeout
        while True:
            if self.h11.their_state is h11.IDLE:
                self._check_head_size()
            event = self.h11.next_event()
            if isinstance(event, h11.Event):
                return event
            if event is h11.PAUSED:
                return h11.PAUSED
            if deadline is None:
                with trio.move_on_after(idle_timeout) as scope:
                    data = await self._receive()
                if scope.cancelled_caught:
                    raise IdleTimeout()
                deadline = trio.current_time() + header_timeout
            else:
                with trio.move_on_at(deadline) as scope:
                    data = await self._receive()
                if scope.cancelled_caught:
                    raise HeaderTimeout()
            self.h11.receive_data(data)

    async def next_body_event(self) -> h11.Event | type[h11.PAUSED]:
        """The next event of a request body; `request_timeout` bounds each wait for bytes."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise ClientGone(str(exc)) from exc
            if isinstance(event, h11.Event):
                return event
            if event is h11.PAUSED:
                return h11.PAUSED
            with trio.move_on_after(self.request_timeout) as scope:
                data = await self._receive()
            if scope.cancelled_caught:
                raise BodyTimeout()
            if not data:
                raise ClientGone("connection closed mid-body")
            self.h11.receive_data(data)


class ServerState:
    """Live connections and in-flight requests, for the caps and for draining on shutdown."""

    def __init__(self, max_connections: int, max_per_client: int) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.connections = 0
        self.per_client: dict[str, int] = {}  # client address -> its open connections
        self.inflight: set[trio.CancelScope] = set()
        self.draining = False

    def admit(self, client: str) -> bool:
        """Count a new connection in, or say no: over the global cap, or over the cap of its
        address, which keeps one client that opens (or trickles) many connections from taking
        the slots every other client needs."""
        held = self.per_client.get(client, 0)
        if self.connections >= self.max_connections or held >= self.max_per_client:
            return False
        self.connections += 1
        self.per_client[client] = held + 1
        return True

    def release(self, client: str) -> None:
        self.connections -= 1
        held = self.per_client[client] - 1
        if held:
            self.per_client[client] = held
        else:
            del self.per_client[client]

    def drain(self, grace: float) -> None:
        self.draining = True
        deadline = trio.current_time() + grace
        for scope in self.inflight:
            scope.deadline = min(scope.deadline, deadline)


@functools.lru_cache(maxsize=128)
def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


_date_cache: tuple[int, bytes] = (0, b"")


def _date() -> bytes:
    """The Date header's value, formatted once a second rather than once a response."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode())
    return _date_cache[1]


async def _send_response(conn: _Conn, req_method: str, resp: Response) -> None:
    headers = [(k.encode(), v.encode("latin-1", "replace")) for k, v in resp.headers]
    names = {k.lower() for k, _ in resp.headers}
    headers.append((b"Date", _date()))
    headers.append((b"Server", b"Stowage"))
    if isinstance(resp.body, bytes | bytearray) and "content-length" not in names:
        headers.append((b"Content-Length", str(len(resp.body)).encode()))
    if resp.close:
        headers.append((b"Connection", b"close"))
    # a reason phrase matters: botocore's 100-continue handling needs three status-line fields
    head = h11.Response(status_code=resp.status, headers=headers, reason=_reason(resp.status))
    bodyless = req_method == "HEAD" or resp.status in (204, 304)
    # the head waits for the first body piece: one write for a small response, not two
    await conn.send(head, hold=not bodyless and (bool(resp.body) or not isinstance(resp.body, bytes | bytearray)))
    if bodyless:
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
                event = await conn.next_body_event()
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
    framing = dict(req.headers)
    length = framing.get(b"content-length")
    if length is None:
        # neither header: the request has no body (RFC 9112 6.3), which h11 reports only once
        # read; a GET must not cost its connection
        return b"transfer-encoding" not in framing
    if not length.isdigit():
        return False
    return int(length) - body.bytes_read <= DRAIN_LIMIT


async def serve_connection(
    stream: trio.abc.Stream,
    handler: Handler,
    error_response: Callable[[str], Response],
    state: ServerState,
    *,
    max_header: int,
    header_timeout: float,
    request_timeout: float,
    idle_timeout: float,
    remote: str = "",
    tls: bool = False,
) -> None:
    """Serve HTTP/1.1 requests on one connection until it closes, times out or the server stops."""
    conn = _Conn(stream, max_header, request_timeout)
    first = True
    refused = False  # an error answered before a request was parsed: unread bytes may follow
    try:
        while not state.draining:
            try:
                event = await conn.next_request(idle_timeout, header_timeout, first=first)
            except IdleTimeout:
                return
            except HeaderTimeout:
                # a partial head hears why it is dropped; a connection that sent nothing does not
                if conn.h11.trailing_data[0]:
                    refused = True
                    await _answer_and_close(conn, error_response("RequestTimeout"))
                return
            except h11.RemoteProtocolError as exc:
                code = "RequestHeaderSectionTooLarge" if exc.error_status_hint == 431 else "InvalidRequest"
                refused = True
                await _answer_and_close(conn, error_response(code))
                return
            except ClientGone:
                return
            first = False
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
        if refused or conn.h11.their_state is h11.SEND_BODY:
            await _linger_close(stream)
        else:
            await trio.aclose_forcefully(stream)


async def _answer_and_close(conn: _Conn, resp: Response) -> None:
    """An error the shell answers before any request was routed (the caller then closes)."""
    if conn.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
        with trio.move_on_after(ANSWER_TIMEOUT):
            await _send_response(conn, "GET", resp)


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

"""The trio shell: HTTP/1.1 over TCP (or TLS), one task per connection; requests are parsed
by httptools (llhttp, C) and response heads are written here.

Keep-alive, pipelining, `Expect: 100-continue` (the 100 goes out when a handler first reads
the body, so a request refused on its headers never uploads), chunked request bodies (llhttp
de-chunks), an idle timeout between requests, one deadline for a request's line and headers
(slowloris), a timeout for each body read, a cap on the size of the whole header block, and
connection caps (global and per client address). Bodies stream in both directions in bounded
pieces.

Why llhttp and a hand-written response head, where h11 did both: on a 4 KiB GET, h11's parsing
and framing were a quarter of the event loop's time (bench/README.md "Profile findings").
llhttp is strict where it matters (it refuses Content-Length beside Transfer-Encoding, bad
chunk sizes, duplicate lengths, control characters in the request line and header values).
A response head is a status line and `name: value` lines; what h11 checked there (no CR, LF
or NUL in a value, a body as long as its Content-Length) is checked in `_head` and
`_send_response`.

Each request runs in a shielded cancel scope registered with the server: on shutdown the
server gives in-flight requests a short grace deadline while idle connections go at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import httptools
import trio

from .errors import S3Error
from .numbers import digits

log = logging.getLogger("stowage.s3")

RECV_SIZE = 256 * 1024
# a read inside a request body: on 64 MiB PUTs, 1 MiB reads cost the daemon ~9% less CPU than
# 256 KiB ones (fewer loop passes, parser calls and body pieces per block); bench/README.md
BODY_RECV_SIZE = 1024 * 1024
DRAIN_LIMIT = 256 * 1024  # an unread body this small is drained to keep the connection
LINGER_SECONDS = 2.0
LINGER_BYTES = 8 * 1024 * 1024
COALESCE_BYTES = 64 * 1024  # a body piece this small is copied behind the head (one write); larger: written apart
ANSWER_TIMEOUT = 5.0  # to send an error the shell answers on its own
# with its reason phrase: botocore before 1.31 (Debian 12's, under duplicity) takes a
# two-field "HTTP/1.1 100" for the final response and the upload never starts
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class IdleTimeout(Exception):
    """No byte of a next request arrived within the keep-alive idle time."""


class HeaderTimeout(Exception):
    """The request line and headers did not all arrive within the header deadline."""


class ClientGone(Exception):
    """The client closed the connection or broke the protocol while we were reading."""


class MalformedBody(ClientGone):
    """The body's HTTP framing broke (a chunk size that is not hex, say): the request is answered
    400 and the connection closed, since nothing after the bad bytes can be framed again."""


class BodyTimeout(Exception):
    """The client stopped sending the body."""


class BadRequest(Exception):
    """A request head llhttp refused, or one over the header cap (`too_large`)."""

    def __init__(self, why: str, *, too_large: bool = False) -> None:
        super().__init__(why)
        self.too_large = too_large


@dataclass
class Request:
    method: str
    target: str  # raw request-target (path?query), percent-encoded as sent
    headers: dict[str, str]  # lower-case name -> values joined with ","
    body: Body
    remote: str = ""
    tls: bool = False
    via_admin: bool = False  # came through the admin listen address (adminserver.py), not the S3 port


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | AsyncGenerator[bytes | bytearray, None] = b""  # a generator is closed once sent
    close: bool = False  # close the connection after this response


Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class _Head:
    """A parsed request line and header block."""

    method: str
    target: str
    headers: dict[str, str]
    keep_alive: bool  # the client's wish: HTTP/1.1 without "Connection: close", or 1.0 with keep-alive
    http11: bool


_END = object()  # the event of a message's end, in _Conn.events beside heads and body pieces


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
        if c.expect_100:
            c.expect_100 = False
            # no 100 once body bytes are here (the client stopped waiting: botocore sends the
            # body after 1 s): a late interim response is one more thing a client can misread
            if not c.events:
                await c.stream.send_all(CONTINUE)
        while True:
            event = await c.next_body_event()
            if event is _END:
                self.done = True
                return
            assert isinstance(event, bytes)
            self.bytes_read += len(event)
            yield event

    async def read_all(self, limit: int) -> bytes:
        """A small body (XML documents), refused past `limit` bytes."""
        out = bytearray()
        async for piece in self.chunks():
            out += piece
            if len(out) > limit:
                raise S3Error("MaxMessageLengthExceeded", close=True)
        return bytes(out)


class _Conn:
    """One connection's parser state. llhttp parses everything it is fed and calls back, so
    the callbacks queue events (a head, body pieces, a message's end) that the serving task
    takes in order; a pipelined next request waits in the queue. At most one read
    (RECV_SIZE, BODY_RECV_SIZE in a body) is fed at a time, and only when the queue is empty, so
    the queue is bounded."""

    def __init__(self, stream: trio.abc.Stream, max_header: int, request_timeout: float) -> None:
        self.stream = stream
        self.parser = httptools.HttpRequestParser(self)
        self.max_header = max_header
        self.request_timeout = request_timeout
        self.events: deque[object] = deque()
        self.in_head = False  # a request line has begun and its header block has not ended
        self.in_body = False  # a request head was taken and its end was not (h11's SEND_BODY)
        self.expect_100 = False  # the current request waits for "100 Continue" (nothing sent yet)
        # a request that asked for 100 Continue and whose framing says no body follows: its
        # final response goes out behind a 100 all the same (see next_request)
        self.continue_owed = False
        self.upgraded = False  # llhttp stopped at an Upgrade/CONNECT request: nothing after it is read
        self.eof = False
        self.error: BadRequest | None = None  # llhttp refused bytes after the queued events
        self._head_size = 0
        self._url: list[bytes] = []
        self._headers: dict[str, str] = {}
        self._too_large = False
        self._bad_host = ""  # why the head's Host is refused (a callback's error reaches _feed wrapped)
        self._ended_in_feed = False

    # --- llhttp callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head = True
        self._head_size = 0
        self._bad_host = ""
        self._url = []
        self._headers = {}

    def _grow(self, n: int) -> None:
        self._head_size += n
        if self._head_size > self.max_header:
            self._too_large = True
            raise BadRequest("request header section too large", too_large=True)

    def on_url(self, url: bytes) -> None:
        self._grow(len(url) + 16)  # the method, spaces, version and line end
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value) + 4)
        k = name.decode("latin-1").lower()
        v = value.decode("latin-1")
        h = self._headers
        if k == "host" and k in h:
            self._bad_host = "more than one Host header"
        h[k] = f"{h[k]},{v}" if k in h else v

    def on_headers_complete(self) -> None:
        self.in_head = False
        p = self.parser
        # RFC 9112 3.2: an HTTP/1.1 request without a Host, or with two, is answered 400; the
        # host chooses the bucket (virtual-hosted style) and is signed, so it must be one
        if not self._bad_host and p.get_http_version() == "1.1" and "host" not in self._headers:
            self._bad_host = "no Host header"
        if self._bad_host:
            raise BadRequest(self._bad_host)
        self.events.append(_Head(p.get_method().decode("ascii", "replace"), b"".join(self._url).decode("latin-1"),
                                 self._headers, p.should_keep_alive(), p.get_http_version() == "1.1"))

    def on_body(self, body: bytes) -> None:
        self.events.append(body)

    def on_message_complete(self) -> None:
        self.events.append(_END)
        self._ended_in_feed = True

    # --- reading --------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        """Parse `data` into events. The header cap holds for a block that arrives whole (the
        callbacks count it) and for one still incomplete: the bytes of every read taken while
        a head is unfinished count against it (llhttp itself buffers a header being read)."""
        began = self.in_head
        self._ended_in_feed = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.upgraded = True  # the request is queued whole; the connection ends after it
        except httptools.HttpParserError as exc:
            error = BadRequest("request header section too large", too_large=True) if self._too_large \
                else BadRequest(self._bad_host or str(exc) or type(exc).__name__)
            if not self.events:
                raise error from None
            # the requests before the bad bytes are served first (an HTTP/1.0 request followed
            # by more bytes, say); the error is raised when the queue reaches it
            self.error = error
            return
        if self.in_head:
            # the whole read counts when this head began before it or at its start
            self._head_size += len(data) if began or not self._ended_in_feed else 0
            if self._head_size > self.max_header:
                raise BadRequest("request header section too large", too_large=True)

    async def _receive(self, size: int = RECV_SIZE) -> bytes:
        try:
            return bytes(await self.stream.receive_some(size))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise ClientGone(str(exc)) from exc

    async def next_request(self, idle_timeout: float, header_timeout: float, *, first: bool) -> _Head | None:
        """The next request head, or None at the end of the connection.

        Waiting for the first byte of a request on a kept-alive connection is bounded by
        `idle_timeout`. From that byte on (from the accept, for a connection's first request,
        and at once when part of the next request is already buffered) the request line and
        all headers must arrive before one deadline, `header_timeout` later: a timeout per read
        would let a client hold the connection for ever by sending a byte now and then."""
        deadline: float | None = None
        if first or self.in_head:
            deadline = trio.current_time() + header_timeout
        while True:
            if self.events:
                event = self.events.popleft()
                if not isinstance(event, _Head):
                    raise ClientGone("body bytes where a request was expected")
                self.in_body = True
                self.expect_100 = event.http11 and event.headers.get("expect", "").lower() == "100-continue"
                self.continue_owed = False
                if self.events and self.events[0] is _END:  # no body at all (RFC 9112 6.3)
                    self.events.popleft()
                    # RFC 9110 10.1.1 lets a server skip the 100 here, but botocore (urllib3 2)
                    # then keeps the early final response's status line on the connection and
                    # reads it again as the next request's: an aws CLI upload of an empty file
                    # made the next upload on that connection wait 60 s and lose its ETag
                    self.continue_owed = self.expect_100
                    self.in_body = self.expect_100 = False
                return event
            if self.error is not None:
                raise self.error
            if self.eof or self.upgraded:
                if self.in_head:
                    raise ClientGone("connection closed inside a request head")
                return None
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
            if not data:
                self.eof = True
            else:
                self._feed(data)

    async def next_body_event(self) -> object:
        """The next body piece (bytes) or _END; `request_timeout` bounds each wait for bytes."""
        while True:
            if self.events:
                event = self.events.popleft()
                if event is _END:
                    self.in_body = False
                elif isinstance(event, _Head):
                    raise ClientGone("a request head inside a body")
                else:
                    self.expect_100 = False  # the client sent body bytes without waiting
                return event
            if self.error is not None:
                raise MalformedBody(str(self.error))
            if self.eof or self.upgraded:
                raise ClientGone("connection closed mid-body")
            with trio.move_on_after(self.request_timeout) as scope:
                data = await self._receive(BODY_RECV_SIZE)
            if scope.cancelled_caught:
                raise BodyTimeout()
            if not data:
                self.eof = True
                raise ClientGone("connection closed mid-body")
            try:
                self._feed(data)
            except BadRequest as exc:
                raise MalformedBody(str(exc)) from exc


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


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """A response head. A value with CR, LF or NUL would split or end the head (response
    splitting); h11 refused one, and so does this: one count per character over the whole
    block rather than a scan per value."""
    lines = "".join([f"{k}: {v}\r\n" for k, v in headers])
    n = len(headers)
    if lines.count("\n") != n or lines.count("\r") != n or "\0" in lines:
        raise ValueError("a response header holds CR, LF or NUL")
    return b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, _reason(status), lines.encode("latin-1", "replace"))


async def _send_response(conn: _Conn, req_method: str, resp: Response, *, http11: bool = True) -> None:
    headers = list(resp.headers)
    length: int | None = None
    for k, v in headers:
        if k.lower() == "content-length":
            length = int(v)
    headers.append(("Date", _date().decode()))
    headers.append(("Server", "Stowage"))
    whole = resp.body if isinstance(resp.body, bytes | bytearray) else None
    streamed = whole is None
    chunked = False
    bodyless = req_method == "HEAD" or resp.status in (204, 304)
    if whole is not None and length is None:
        length = len(whole)
        headers.append(("Content-Length", str(length)))
    elif streamed and length is None and not bodyless:
        if http11:
            chunked = True
            headers.append(("Transfer-Encoding", "chunked"))
        else:
            resp.close = True  # an HTTP/1.0 body without a length ends with the connection
    if resp.close:
        headers.append(("Connection", "close"))
    # a reason phrase matters: botocore's 100-continue handling needs three status-line fields
    head = _head(resp.status, headers)
    if conn.continue_owed:
        head = CONTINUE + head
        conn.continue_owed = False
    conn.expect_100 = False  # a final response ends any wait for 100 Continue
    send = conn.stream.send_all
    if bodyless:
        if streamed:
            await resp.body.aclose()  # type: ignore[union-attr]
        await send(head)
        return
    if whole is not None:
        if len(whole) != length:
            raise ValueError(f"a body of {len(whole)} bytes under Content-Length {length}")
        # the head and a small body in one write, not two
        await send(head + whole if len(whole) <= COALESCE_BYTES else head)
        if len(whole) > COALESCE_BYTES:
            await send(whole)
        return
    gen = resp.body
    assert not isinstance(gen, bytes | bytearray)
    sent = 0
    pending = head  # the head waits for the first body piece: one write, not two
    try:
        async for piece in gen:
            if not piece:
                continue
            sent += len(piece)
            if length is not None and sent > length:
                raise ValueError(f"more than Content-Length {length} bytes of body")
            prefix = pending + b"%x\r\n" % len(piece) if chunked else pending
            suffix = b"\r\n" if chunked else b""
            if len(piece) <= COALESCE_BYTES:
                pending = b""
                await send(b"".join((prefix, piece, suffix)) if prefix or suffix else piece)
            else:  # a large piece goes as it is: copying it behind the head cost more than a write
                if prefix:
                    await send(prefix)
                await send(piece)
                pending = suffix  # goes ahead of the next piece, or with the tail
    finally:
        await gen.aclose()
    if length is not None and sent != length:
        raise ValueError(f"{sent} bytes of body under Content-Length {length}")
    tail = b"0\r\n\r\n" if chunked else b""
    if pending or tail:
        await send(pending + tail)


async def _finish_body(conn: _Conn, body: Body, resp: Response) -> bool:
    """After the response: drain a small unread body so the connection can be reused."""
    if not conn.in_body:
        return True
    if conn.expect_100 or resp.close:
        return False
    try:
        with trio.move_on_after(conn.request_timeout):
            n = 0
            while True:
                event = await conn.next_body_event()
                if event is _END:
                    return True
                assert isinstance(event, bytes)
                n += len(event)
                if n > DRAIN_LIMIT:
                    return False
    except (ClientGone, BodyTimeout):
        return False
    return False


def _will_reuse(conn: _Conn, body: Body, req: Request) -> bool:
    """Decide before responding whether the connection survives (to say Connection: close)."""
    if not conn.in_body:
        return True
    if conn.expect_100:
        return False
    length = digits(req.headers.get("content-length", ""))
    if length is None:
        return False  # chunked: its length is unknown
    return length - body.bytes_read <= DRAIN_LIMIT


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
                head = await conn.next_request(idle_timeout, header_timeout, first=first)
            except IdleTimeout:
                return
            except HeaderTimeout:
                # a partial head hears why it is dropped; a connection that sent nothing does not
                if conn.in_head:
                    refused = True
                    await _answer_and_close(conn, error_response("RequestTimeout"))
                return
            except BadRequest as exc:
                refused = True
                await _answer_and_close(conn, error_response(
                    "RequestHeaderSectionTooLarge" if exc.too_large else "InvalidRequest"))
                return
            except ClientGone:
                return
            first = False
            if head is None:
                return
            if not await _serve_one(conn, head, handler, error_response, state, remote, tls) or conn.in_body:
                return
    except (trio.BrokenResourceError, trio.ClosedResourceError, ClientGone, BodyTimeout, OSError):
        return
    except Exception:
        # a handler bug or a store failure mid-stream: this connection dies, the server lives
        log.exception("S3 connection from %s failed", remote)
        return
    finally:
        if refused or conn.in_body:
            await _linger_close(stream)
        else:
            await trio.aclose_forcefully(stream)


async def _answer_and_close(conn: _Conn, resp: Response) -> None:
    """An error the shell answers before any request was routed (the caller then closes)."""
    resp.close = True
    with trio.move_on_after(ANSWER_TIMEOUT):
        await _send_response(conn, "GET", resp)


async def refuse_connection(stream: trio.abc.Stream, resp: Response) -> None:
    """Answer `resp` on a connection we will not serve, without reading its request, and close.
    The caller bounds the time it may take."""
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


async def _serve_one(conn: _Conn, head: _Head, handler: Handler, error_response: Callable[[str], Response],
                     state: ServerState, remote: str, tls: bool) -> bool:
    """One request and its response; whether the connection may carry another."""
    body = Body(conn)
    body.done = not conn.in_body  # a request without a body has ended with its head
    req = Request(head.method, head.target, head.headers, body, remote, tls)
    with trio.CancelScope(shield=True) as scope:
        state.inflight.add(scope)
        try:
            try:
                resp = await handler(req)
            except MalformedBody:  # a handler that does not answer it itself (the admin port's)
                resp = error_response("InvalidRequest")
                resp.close = True
            if not head.keep_alive or not _will_reuse(conn, body, req) or state.draining or conn.upgraded:
                resp.close = True
            await _send_response(conn, req.method, resp, http11=head.http11)
            return await _finish_body(conn, body, resp) and not resp.close
        finally:
            state.inflight.discard(scope)
    return False  # the grace deadline cut the request short

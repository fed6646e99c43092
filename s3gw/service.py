"""The S3 service for the daemon: bind cfg.s3.listen, serve until cancelled, drain briefly.

`await nursery.start(serve_s3, store, cfg, credentials)` returns the bound port (port 0 works).
On cancellation the listeners close at once, idle keep-alive connections are dropped, and
requests in flight get DRAIN_GRACE seconds to finish before they are cut.
"""

from __future__ import annotations

import logging
import ssl
from functools import partial
from typing import Any

import trio

from appliance.config import Config, parse_listen

from .app import CredentialSource, S3App
from .http import ServerState, serve_connection

log = logging.getLogger("stowage.s3")
DRAIN_GRACE = 5.0
TLS_HANDSHAKE_TIMEOUT = 10.0


def _tls_context(cfg: Config) -> ssl.SSLContext | None:
    if not cfg.s3.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg.s3.tls_cert, cfg.s3.tls_key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def serve_s3(
    store: Any,
    cfg: Config,
    credentials: CredentialSource,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    host, port = parse_listen(cfg.s3.listen)
    app = S3App(store, cfg, credentials)
    tls = _tls_context(cfg)
    state = ServerState(cfg.s3.max_connections)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    s3 = cfg.s3

    async def handle(stream: trio.SocketStream) -> None:
        try:
            state.limiter.acquire_on_behalf_of_nowait(stream)
        except trio.WouldBlock:
            await _refuse(stream, app)
            return
        try:
            try:
                peer = stream.socket.getpeername()
                remote = f"{peer[0]}:{peer[1]}"
            except OSError:
                remote = ""
            conn: trio.abc.Stream = stream
            if tls is not None:
                tls_stream = trio.SSLStream(stream, tls, server_side=True, https_compatible=True)
                with trio.move_on_after(TLS_HANDSHAKE_TIMEOUT) as scope:
                    try:
                        await tls_stream.do_handshake()
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                        await trio.aclose_forcefully(stream)
                        return
                if scope.cancelled_caught:
                    await trio.aclose_forcefully(stream)
                    return
                conn = tls_stream
            await serve_connection(conn, app.handle, app.error_response, state, max_header=s3.max_header_bytes,
                                   request_timeout=s3.request_timeout, idle_timeout=s3.idle_timeout,
                                   remote=remote, tls=tls is not None)
        finally:
            state.limiter.release_on_behalf_of(stream)

    log.info("S3 gateway listening on %s:%d%s", host, bound, " (TLS)" if tls else "")
    async with trio.open_nursery() as nursery:
        try:
            task_status.started(bound)
            async with trio.open_nursery() as accept:
                for listener in listeners:
                    accept.start_soon(partial(trio.serve_listeners, handle, [listener], handler_nursery=nursery))
        finally:
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await listener.aclose()
                state.drain(DRAIN_GRACE)


async def _refuse(stream: trio.SocketStream, app: S3App) -> None:
    """Over the connection cap: answer 503 SlowDown without reading the request."""
    with trio.move_on_after(2):
        resp = app.error_response("SlowDown")
        assert isinstance(resp.body, bytes)
        head = "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in resp.headers if k.lower() != "content-type")
        head += f"Content-Length: {len(resp.body)}\r\n\r\n"
        try:
            await stream.send_all(head.encode() + resp.body)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    await trio.aclose_forcefully(stream)

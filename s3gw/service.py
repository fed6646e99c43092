"""The S3 service for the daemon: bind cfg.s3.listen, serve until cancelled, drain briefly.

`await nursery.start(serve_s3, store, cfg, identities, keys)` returns the bound Endpoint (port 0 works).
On cancellation the listeners close at once, idle keep-alive connections are dropped, and
requests in flight get DRAIN_GRACE seconds to finish before they are cut.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import trio

from appliance.config import Config, parse_listen
from appliance.engine import ObjectStore
from appliance.iam.admin import IdentityAdmin
from appliance.iam.objectkeys import ObjectKeys
from appliance.services.eventhub import EventHub

from .adminpaths import AdminPaths
from .app import S3App
from .console import Console
from .console.admin import ApplianceAdmin
from .exchange import Observer
from .http import ServerState, refuse_connection, serve_connection
from .iamapi import ChangeHook, IamApi

log = logging.getLogger("stowage.s3")
DRAIN_GRACE = 5.0
TLS_HANDSHAKE_TIMEOUT = 10.0
REFUSE_TIMEOUT = 2.0  # to answer 503 SlowDown over a connection cap


@dataclass(frozen=True)
class Endpoint:
    """Where the gateway listens, as serve_s3 reports it once bound."""

    scheme: str  # "https" when s3.tls_cert is set
    host: str  # the host part of s3.listen as configured, not the resolved address
    port: int  # the bound port: s3.listen may ask for port 0

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def _tls_context(cfg: Config) -> ssl.SSLContext | None:
    if not cfg.s3.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg.s3.tls_cert, cfg.s3.tls_key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume it is reachable from outside


def _peer(stream: trio.SocketStream) -> tuple[str, str]:
    """(client address, "address:port") of the connection's peer."""
    try:
        peer = stream.socket.getpeername()
    except OSError:
        return "", ""
    return str(peer[0]), f"{peer[0]}:{peer[1]}"


async def serve_s3(
    store: ObjectStore,
    cfg: Config,
    identities: IdentityAdmin,
    keys: ObjectKeys,
    *,
    admin: AdminPaths | None = None,
    observers: Sequence[Observer] = (),
    state: ServerState | None = None,
    iam_changes: ChangeHook | None = None,
    events: EventHub | None = None,
    tls_context: Callable[[], ssl.SSLContext] | None = None,
    console_admin: ApplianceAdmin | None = None,
    task_status: trio.TaskStatus[Endpoint] = trio.TASK_STATUS_IGNORED,
) -> None:
    """`admin`: the /_stowage/v1/ endpoints; `observers`: told of every request (metrics, access
    logs); `state`: the connection and in-flight bookkeeping, when the caller wants to read it;
    `iam_changes`: told of every change made through the IAM API (the audit log); `tls_context`:
    the daemon's current server context (appliance/tls.py), asked per connection so a reloaded
    certificate serves new connections while those in flight keep theirs; `console_admin`: the
    daemon's side of the console's appliance pages (disks, durability, version, charts)."""
    host, port = parse_listen(cfg.s3.listen)
    app = S3App(store, cfg, identities.identities, keys, IamApi(cfg, identities, iam_changes), admin, observers,
                events)
    console: Console | None = None
    if "console" not in app.admin.handlers:  # the web console acts through this application
        console = Console(app, console_admin)
        app.admin.register("console", console.handle)
    if tls_context is None:
        fixed = _tls_context(cfg)
        tls_context = None if fixed is None else (lambda: fixed)
    tls = tls_context
    state = state or ServerState(cfg.s3.max_connections, cfg.s3.max_connections_per_client)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound: int = listeners[0].socket.getsockname()[1]
    if console is not None:  # its links from the admin address must point here
        console.s3_scheme, console.s3_port = ("https" if tls else "http"), bound
    s3 = cfg.s3

    async def handle(stream: trio.SocketStream) -> None:
        client, remote = _peer(stream)
        if not state.admit(client):
            with trio.move_on_after(REFUSE_TIMEOUT):
                await refuse_connection(stream, app.error_response("SlowDown"))
            return
        try:
            conn: trio.abc.Stream = stream
            if tls is not None:
                tls_stream = trio.SSLStream(stream, tls(), server_side=True, https_compatible=True)
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
                                   header_timeout=s3.header_timeout, request_timeout=s3.request_timeout,
                                   idle_timeout=s3.idle_timeout, remote=remote, tls=tls is not None)
        finally:
            state.release(client)

    log.info("S3 gateway listening on %s:%d%s", host, bound, " (TLS)" if tls else "")
    if tls is None and not _loopback(host):
        log.warning("S3 gateway listens on %s without TLS: requests and object data cross the network "
                    "unencrypted; set s3.tls_cert and s3.tls_key, or [tls] mode = \"on\"", host)
    async with trio.open_nursery() as nursery:
        try:
            task_status.started(Endpoint("https" if tls else "http", host, bound))
            async with trio.open_nursery() as accept:
                for listener in listeners:
                    accept.start_soon(partial(trio.serve_listeners, handle, [listener], handler_nursery=nursery))
        finally:
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await listener.aclose()
                state.drain(DRAIN_GRACE)

"""The optional admin listen address (admin.listen): the same /_stowage/v1/ endpoints as the S3
port, and nothing else, on an address of their own (for a scraper on a management network);
its `/` leads to the web console. Plain HTTP with the gateway's HTTP shell and limits."""

from __future__ import annotations

import logging

import trio

from appliance.config import Config, parse_listen

from .adminpaths import PREFIX, AdminPaths, text_response
from .http import Request, Response, ServerState, serve_connection

log = logging.getLogger("stowage.admin")


async def serve_admin(admin: AdminPaths, cfg: Config, *,
                      task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    host, port = parse_listen(cfg.admin.listen)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound: int = listeners[0].socket.getsockname()[1]
    state = ServerState(64, 16)
    s3 = cfg.s3

    def refused(code: str) -> Response:
        return text_response(400, f"{code}\n", headers=[("Connection", "close")])

    async def route(req: Request) -> Response:
        req.via_admin = True
        if req.target.partition("?")[0] == "/" and "console" in admin.handlers:
            return text_response(308, "the console\n", headers=[("Location", PREFIX + "console/")])
        return await admin.handle(req)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            peer = stream.socket.getpeername()
            client, remote = str(peer[0]), f"{peer[0]}:{peer[1]}"
        except OSError:
            client = remote = ""
        if not state.admit(client):
            await trio.aclose_forcefully(stream)
            return
        try:
            await serve_connection(stream, route, refused, state, max_header=s3.max_header_bytes,
                                   header_timeout=s3.header_timeout, request_timeout=s3.request_timeout,
                                   idle_timeout=s3.idle_timeout, remote=remote)
        finally:
            state.release(client)

    log.info("admin endpoints listening on %s:%d", host, bound)
    async with trio.open_nursery() as nursery:
        try:
            task_status.started(bound)
            await trio.serve_listeners(handle, listeners, handler_nursery=nursery)
        finally:
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await listener.aclose()
            state.drain(1.0)

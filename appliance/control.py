"""The local control socket: how the CLI talks to the running daemon.

Protocol (version 1): JSON lines over a Unix stream socket (mode 0600, root only, peer checked
with SO_PEERCRED). The client sends one request `{"v": 1, "op": "...", "args": {...}}`; the
server answers with zero or more `{"progress": {...}}` lines and then exactly one
`{"ok": true, "result": ...}` or `{"ok": false, "error": CODE, "message": TEXT}` line.
Services register handlers with `ControlServer.register(op, handler)`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from appliance.engine.errors import StowageError

PROTOCOL = 1
MAX_REQUEST = 1 << 20
log = logging.getLogger("stowage.control")

Emit = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[dict[str, Any], Emit], Awaitable[Any]]
# (op, args) before each request -> what the audit log keeps as its "before" state
BeforeHook = Callable[[str, dict[str, Any]], Awaitable[Any]]
# (op, args, caller's uid, caller's pid, result or None, error code or "", BeforeHook's answer)
# after each request
CallHook = Callable[[str, dict[str, Any], int, int, Any, str, Any], None]


class ControlError(StowageError):
    code = "ControlError"


class ControlServer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handlers: dict[str, Handler] = {}
        self.on_call: CallHook | None = None  # the audit log of administrative changes
        self.before_call: BeforeHook | None = None

    def register(self, op: str, handler: Handler) -> None:
        self.handlers[op] = handler

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            await sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(16)
        listener = trio.SocketListener(sock)
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                await trio.serve_listeners(self._handle, [listener], handler_nursery=nursery)
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            creds = stream.socket.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, _gid = struct.unpack("3i", creds)
            if uid not in (0, os.getuid()):
                await self._send(stream, {"ok": False, "error": "AccessDenied", "message": "root only"})
                return
            buf = b""
            while b"\n" not in buf:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
                if len(buf) > MAX_REQUEST:
                    await self._send(stream, {"ok": False, "error": "BadRequest", "message": "request too large"})
                    return
            try:
                req = json.loads(buf.split(b"\n", 1)[0])
                op, args = req["op"], req.get("args") or {}
                if not isinstance(args, dict):
                    raise TypeError("args must be an object")
            except (ValueError, KeyError, TypeError) as exc:
                await self._send(stream, {"ok": False, "error": "BadRequest", "message": str(exc)})
                return
            handler = self.handlers.get(op)
            if handler is None:
                await self._send(stream, {"ok": False, "error": "UnknownOperation", "message": f"unknown op {op!r}"})
                return

            async def emit(progress: dict[str, Any]) -> None:
                await self._send(stream, {"progress": progress})

            before = await self.before_call(op, args) if self.before_call is not None else None
            try:
                result = await handler(args, emit)
                reply: dict[str, Any] = {"ok": True, "result": result}
            except StowageError as exc:
                reply = {"ok": False, "error": exc.code, "message": exc.message}
            except trio.BrokenResourceError:
                return
            except Exception as exc:  # the daemon survives a failing command; the CLI sees why
                log.exception("control op %s failed", op)
                reply = {"ok": False, "error": "InternalError", "message": f"{type(exc).__name__}: {exc}"}
            if self.on_call is not None:
                self.on_call(op, args, uid, pid, reply.get("result"), "" if reply["ok"] else str(reply["error"]),
                             before)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._send(stream, reply)

    @staticmethod
    async def _send(stream: trio.SocketStream, obj: dict[str, Any]) -> None:
        await stream.send_all(json.dumps(obj, default=str).encode() + b"\n")


def call(
    path: Path,
    op: str,
    args: dict[str, Any] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
) -> Any:
    """Blocking client for the CLI. Raises ControlError (daemon unreachable or op failed)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError as exc:
        s.close()
        raise ControlError(f"cannot reach the daemon at {path}: {exc.strerror or exc} (is `stowage serve` running?)",
                           unreachable=True) from exc
    with s, s.makefile("rb") as f:
        s.sendall(json.dumps({"v": PROTOCOL, "op": op, "args": args or {}}).encode() + b"\n")
        for line in f:
            msg = json.loads(line)
            if "progress" in msg:
                if on_progress:
                    on_progress(msg["progress"])
                continue
            if msg.get("ok"):
                return msg.get("result")
            err = ControlError(msg.get("message", "failed"))
            err.code = msg.get("error", "ControlError")
            raise err
    raise ControlError("the daemon closed the connection without an answer")

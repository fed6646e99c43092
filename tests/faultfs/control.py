"""The control socket of a fault disk, and the client tests use.

One JSON request per connection, one JSON line back: {"ok": true, "result": ...} or
{"ok": false, "error": "..."}. Operations:

    ping                                  -> {"epoch"}
    add_rule {ops, path, errno, probability, delay, hang, stall, after, times, seed} -> {"id"}
    release {id}                          remove a rule; operations it holds go on
    clear                                 remove every rule, and the "full" state
    full {on}                             report no free space; refuse growth with ENOSPC
    ordered_names {on}                    every fsync also commits every name change (ext4's model)
    rules                                 -> [rule, ...] with their match and hit counts
    stats                                 -> {"counts", "hung", "parked", "dirty", "epoch"}
    power_off                             park every operation from now on (the moment of a cut)
    power_cut                             (power_off if not yet) then reset every file and
                                          directory to its durable state, clear the rules, power on
"""

from __future__ import annotations

import errno as errno_mod
import json
import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trio

from .fs import FaultFS

MAX_REQUEST = 1 << 16


class ControlError(Exception):
    pass


def _errno(value: Any) -> int:
    if value in (None, 0, ""):
        return 0
    if isinstance(value, int):
        return value
    code = getattr(errno_mod, str(value), None)
    if not isinstance(code, int):
        raise ValueError(f"unknown errno {value!r}")
    return code


class ControlServer:
    def __init__(self, fs: FaultFS, path: Path) -> None:
        self.fs = fs
        self.faults = fs.faults
        self.path = path

    def handle(self, req: dict[str, Any]) -> Any:
        op = req.get("op")
        faults = self.faults
        if op == "ping":
            return {"epoch": self.fs.epoch}
        if op == "add_rule":
            stall = req.get("stall")
            rule = faults.add(
                list(req.get("ops") or ["all"]), path=str(req.get("path") or "*"), errno=_errno(req.get("errno")),
                probability=float(req.get("probability", 1.0)), delay=float(req.get("delay", 0.0)),
                hang=bool(req.get("hang")) or stall is not None,
                until=time.monotonic() + float(stall) if stall is not None else None,
                after=int(req.get("after", 0)), times=req.get("times"), seed=int(req.get("seed", 0)))
            return {"id": rule.rule_id}
        if op == "release":
            faults.release(int(req["id"]))
            return None
        if op == "clear":
            faults.clear()
            return None
        if op == "full":
            faults.full = bool(req.get("on", True))
            return None
        if op == "ordered_names":
            self.fs.d.ordered_names = bool(req.get("on", True))
            return None
        if op == "rules":
            return [r.describe() for r in faults.rules.values()]
        if op == "stats":
            return {"counts": dict(faults.counts), "hung": faults.hung(), "parked": faults.power.parked,
                    "dirty": self.fs.d.dirty(), "epoch": self.fs.epoch}
        if op == "power_off":
            faults.power.cut()
            return {"parked": faults.power.parked}
        if op == "power_cut":
            faults.power.cut()
            faults.clear()
            report = self.fs.power_cut()
            faults.power.restore()
            return asdict(report)
        raise ValueError(f"unknown control operation {op!r}")

    async def _client(self, stream: trio.SocketStream) -> None:
        async with stream:
            buf = b""
            while b"\n" not in buf and len(buf) < MAX_REQUEST:
                piece = await stream.receive_some(4096)
                if not piece:
                    break
                buf += piece
            try:
                reply: dict[str, Any] = {"ok": True, "result": self.handle(json.loads(buf))}
            except Exception as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            await stream.send_all(json.dumps(reply).encode() + b"\n")

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.path.unlink(missing_ok=True)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.bind(str(self.path))
        sock.listen(64)
        listener = trio.SocketListener(sock)
        task_status.started()
        await trio.serve_listeners(self._client, [listener])


class FaultControl:
    """Blocking client of one fault disk's control socket."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def call(self, op: str, timeout: float = 120.0, **args: Any) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.path))
            s.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
            buf = b""
            while piece := s.recv(65536):
                buf += piece
        reply = json.loads(buf)
        if not reply["ok"]:
            raise ControlError(reply["error"])
        return reply["result"]

    # --- faults ----------------------------------------------------------------------------------

    def rule(self, ops: list[str] | str = "all", path: str = "*", **kw: Any) -> int:
        return int(self.call("add_rule", ops=[ops] if isinstance(ops, str) else ops, path=path, **kw)["id"])

    def eio(self, ops: list[str] | str = "all", path: str = "*", probability: float = 1.0, **kw: Any) -> int:
        """Fail matching operations with EIO."""
        return self.rule(ops, path, errno="EIO", probability=probability, **kw)

    def enospc(self, ops: list[str] | str = "writes", path: str = "*", **kw: Any) -> int:
        return self.rule(ops, path, errno="ENOSPC", **kw)

    def latency(self, seconds: float, ops: list[str] | str = "all", path: str = "*", **kw: Any) -> int:
        return self.rule(ops, path, delay=seconds, **kw)

    def hang(self, ops: list[str] | str = "all", path: str = "*", **kw: Any) -> int:
        """Matching operations wait until `release(id)`."""
        return self.rule(ops, path, hang=True, **kw)

    def stall(self, seconds: float, ops: list[str] | str = "all", path: str = "*") -> int:
        """Matching operations wait until `seconds` from now (or an earlier release)."""
        return self.rule(ops, path, stall=seconds)

    def release(self, rule_id: int) -> None:
        self.call("release", id=rule_id)

    def clear(self) -> None:
        self.call("clear")

    def fill(self, on: bool = True) -> None:
        """The disk is full (statfs shows no free space; growing it fails with ENOSPC)."""
        self.call("full", on=on)

    def ordered_names(self, on: bool = True) -> None:
        """Switch to (or from) the journaling filesystem's model: any fsync commits every name change."""
        self.call("ordered_names", on=on)

    # --- state -----------------------------------------------------------------------------------

    def rules(self) -> list[dict[str, Any]]:
        return list(self.call("rules"))

    def stats(self) -> dict[str, Any]:
        return dict(self.call("stats"))

    def hits(self, rule_id: int) -> int:
        return next((int(r["hits"]) for r in self.rules() if r["id"] == rule_id), 0)

    def hung(self) -> int:
        return int(self.stats()["hung"])

    def ping(self) -> dict[str, Any]:
        return dict(self.call("ping", timeout=5.0))

    # --- power -----------------------------------------------------------------------------------

    def power_off(self) -> None:
        self.call("power_off")

    def power_cut(self) -> dict[str, Any]:
        return dict(self.call("power_cut"))

"""A webhook receiver for the notification tests: a real HTTP server on a free port, in a thread,
that records every POSTed JSON body and can be told to refuse (503) for a while."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def poll(cond: Callable[[], bool], timeout: float = 60.0, what: Callable[[], str] = lambda: "") -> None:
    """Until cond() holds; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s {what()}")
        time.sleep(0.05)


class Receiver:
    def __init__(self, auth: str = "") -> None:
        self.messages: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.refusing = False
        self.refused = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    if outer.refusing or (auth and self.headers.get("Authorization") != auth):
                        outer.refused += 1
                        self.send_response(503)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    outer.messages.append(json.loads(body))
                    outer.headers.append(dict(self.headers))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def records(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for m in self.messages for r in m.get("Records", [])]

    def tests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if m.get("Event") == "s3:TestEvent"]

    def wait_for(self, cond: Callable[[], bool], timeout: float = 60.0) -> None:
        poll(cond, timeout, lambda: f"{len(self.messages)} messages")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""Waiting in tests: poll for a condition with a deadline, never sleep for a guessed time."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable

import trio


def wait_for(pred: Callable[[], object], timeout: float = 60.0, what: str = "condition",
             interval: float = 0.05) -> None:
    """Return once `pred()` is true; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


async def await_for(pred: Callable[[], object], seconds: float = 60.0, what: str = "condition",
                    interval: float = 0.02) -> None:
    """`wait_for` inside trio: the loop keeps running while it polls."""
    with trio.move_on_after(seconds):
        while not pred():
            await trio.sleep(interval)
        return
    raise AssertionError(f"timed out after {seconds:g}s waiting for {what}")


def url_refused(url: str, code: int = 403) -> bool:
    """Whether a GET of `url` is now answered with `code` (a presigned URL that expired)."""
    try:
        with urllib.request.urlopen(url):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == code

"""A token bucket of bytes per second, shared by the copy threads."""

from __future__ import annotations

import threading
import time


class RateLimit:
    def __init__(self, bytes_per_sec: int) -> None:
        """bytes_per_sec <= 0: no limit."""
        self.rate = bytes_per_sec
        self._lock = threading.Lock()
        self._allowance = float(bytes_per_sec)
        self._last = time.monotonic()

    def take(self, n: int) -> None:
        """Block until `n` bytes may pass (a burst of at most one second's worth)."""
        if self.rate <= 0 or n <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._allowance = min(float(self.rate), self._allowance + (now - self._last) * self.rate)
            self._last = now
            self._allowance -= n
            wait = -self._allowance / self.rate if self._allowance < 0 else 0.0
        if wait > 0:
            time.sleep(wait)

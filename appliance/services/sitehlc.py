"""A hybrid logical clock (Kulkarni et al., 2014) for site replication's last-writer-wins.

A timestamp is one integer: the wall clock in milliseconds in the high bits and a logical
counter in the low LOGICAL_BITS. `now()` for a local event, `observe(remote)` when a peer's
change arrives: every timestamp this clock gives afterwards is larger than both, so a write
made after seeing another one always wins over it, whatever the wall clocks say, while
timestamps stay close to real time. A remote timestamp too far ahead of the local wall clock
is refused (ClockSkew) instead of dragging this clock into the future.
Pure and thread-safe: no I/O besides reading the wall clock given to it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LOGICAL_BITS = 16
MAX_DRIFT_MS = 5 * 60 * 1000


class ClockSkew(ValueError):
    """A remote timestamp is further ahead of the local wall clock than the drift allowed."""


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def pack(physical_ms: int, logical: int = 0) -> int:
    return (physical_ms << LOGICAL_BITS) | logical


def physical(ts: int) -> int:
    return ts >> LOGICAL_BITS


def logical(ts: int) -> int:
    return ts & ((1 << LOGICAL_BITS) - 1)


def describe(ts: int) -> str:
    """Readable form for status output: ISO time (UTC, ms) and the logical counter."""
    ms = physical(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z+{logical(ts)}"


@dataclass
class Hlc:
    clock: Callable[[], int] = wall_ms
    max_drift_ms: int = MAX_DRIFT_MS
    last: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> int:
        """The timestamp of a local event: past every earlier one, and at least the wall clock."""
        with self._lock:
            self.last = max(self.last + 1, pack(self.clock()))
            return self.last

    def after(self, ts: int) -> int:
        """A local event that must order after `ts` (a record's stamp this box accepted earlier:
        a wall clock set back across a restart must not make a new write lose to an old one)."""
        with self._lock:
            self.last = max(self.last + 1, ts + 1, pack(self.clock()))
            return self.last

    def observe(self, remote: int) -> int:
        """Take in a remote event's timestamp; returns the local timestamp after it."""
        with self._lock:
            wall = self.clock()
            if physical(remote) > wall + self.max_drift_ms:
                raise ClockSkew(f"remote clock {physical(remote) - wall} ms ahead of ours "
                                f"(more than {self.max_drift_ms} ms)")
            self.last = max(self.last + 1, remote + 1, pack(wall))
            return self.last

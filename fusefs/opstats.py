"""How many FUSE operations the mount served and how long each took, for the metrics endpoint.

`instrument(ops)` wraps the handler methods of one StowageFS instance (pyfuse3 looks them up on
the instance per request) with a timer that counts into a lifetime log-bucket histogram per
operation (diskmgr.latency's buckets): one clock read pair and an index lookup per operation.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pyfuse3

from diskmgr.latency import LatencyHistogram

TIMED = ("lookup", "getattr", "setattr", "readlink", "statfs", "create", "open", "read", "write", "flush", "fsync",
         "release", "opendir", "readdir", "releasedir", "mkdir", "rmdir", "unlink", "rename", "link", "symlink",
         "mknod", "getxattr", "setxattr", "listxattr", "removexattr", "access")


@dataclass
class OpStats:
    latency: dict[str, LatencyHistogram] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # FUSE errors answered, per operation

    def histogram(self, op: str) -> LatencyHistogram:
        h = self.latency.get(op)
        if h is None:
            h = self.latency[op] = LatencyHistogram()
        return h


STATS = OpStats()  # one mount per process (pyfuse3 has a single session)


def _timed(op: str, fn: Callable[..., Awaitable[Any]], stats: OpStats) -> Callable[..., Awaitable[Any]]:
    hist = stats.histogram(op)

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            stats.errors[op] = stats.errors.get(op, 0) + 1
            raise
        finally:
            hist.observe(time.perf_counter() - t0)

    return wrapper


def instrument(ops: object, stats: OpStats = STATS) -> None:
    for op in TIMED:
        fn = getattr(ops, op, None)
        if fn is not None:
            setattr(ops, op, _timed(op, fn, stats))

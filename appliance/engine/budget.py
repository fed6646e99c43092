"""The bytes large streams may hold in flight, shared by all of them.

A large write holds blocks in its pipeline (queued for the MD5 and the coder, encoded chunks
queued for the shard writers) and a large read the batches it reads and reads ahead: ~20-35 MiB
per stream at full depth, so the daemon's memory grew with the number of concurrent large
transfers (bench/README.md, round 24: 16 concurrent 64 MiB PUTs, 494 MiB of PSS). Two budgets
per process bound it (config [memory]): writes take a block's share of `write_buffer_bytes`
before the block enters the pipeline, waiting while it is spent (the shard writers give it back
at the disks' speed, never at a client's); reads take a batch's share of `read_buffer_bytes`
only when it is free, and otherwise take smaller batches, down to a block at a time outside the
budget (a reader holds its share while its client takes the batch, so a slow client must not
make others wait). With few streams each runs at full depth; with many they share the budgets.

Hand-written: trio's semaphores count units one at a time, and taking a block's share as several
units could leave streams each holding part of what they need while none can go on; a take here
is all or nothing, in arrival order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import trio


@dataclass
class _Waiter:
    n: int
    granted: trio.Event = field(default_factory=trio.Event)


class ByteBudget:
    """A weighted semaphore of bytes (trio's thread only). A take larger than the whole budget
    is cut to the budget (it then waits for every other holder: one block never deadlocks)."""

    def __init__(self, total: int) -> None:
        if total <= 0:
            raise ValueError("a budget needs at least one byte")
        self.total = total
        self.used = 0
        self.peak = 0  # the most ever held at once (tests and metrics)
        self._waiters: deque[_Waiter] = deque()

    def _grant(self, n: int) -> None:
        self.used += n
        self.peak = max(self.peak, self.used)

    def try_take(self, n: int, spare: int = 0) -> int:
        """Take `n` bytes (cut to the budget) if they are free, with `spare` more left free
        after them, and nobody waits; the bytes taken, 0 if none were."""
        n = min(n, self.total)
        if self._waiters or self.used + n + spare > self.total:
            return 0
        self._grant(n)
        return n

    async def take(self, n: int) -> int:
        """Take `n` bytes (cut to the budget), waiting in line until they are free; the bytes
        taken, to be given back with `give`."""
        got = self.try_take(n)
        if got:
            await trio.lowlevel.checkpoint()
            return got
        waiter = _Waiter(min(n, self.total))
        self._waiters.append(waiter)
        try:
            await waiter.granted.wait()
        except BaseException:
            if waiter.granted.is_set():
                self.give(waiter.n)  # granted as it was cancelled: pass it on
            else:
                self._waiters.remove(waiter)
                self._wake()  # the next in line may fit where this one did not
            raise
        return waiter.n

    def give(self, n: int) -> None:
        if n <= 0:
            return
        self.used -= n
        if self.used < 0:
            raise AssertionError(f"budget given back more than taken ({self.used})")
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.used + self._waiters[0].n <= self.total:
            waiter = self._waiters.popleft()
            self._grant(waiter.n)
            waiter.granted.set()

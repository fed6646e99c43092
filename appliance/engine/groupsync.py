"""Group commit: many writers, one sync at a time, each covering every write made before it.

A writer makes its write (unsynced), then calls `wait(ticket)` with the number its write got.
If no sync is running, it becomes the leader: it reads how far the writes have got (`written`,
which counts only writes that have completed), runs the sync once, and wakes every writer whose
ticket that sync covered. Writers arriving during a sync wait for it to end and then lead the
next one, so under load each sync serves everyone who arrived during the previous one, and a
lone writer pays exactly one sync, as before. Nobody returns before a sync that started after
its write had completed: that is the acknowledgement.

A sync that fails raises in the leader and in every writer it would have covered; later writers
try again (the owner decides whether a failure is final, as MetaDB does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import trio


class GroupSync:
    def __init__(self, sync: Callable[[], None], written: Callable[[], int]) -> None:
        """`sync`: make every completed write durable (blocking). `written`: the highest
        ticket whose write has completed."""
        self._sync = sync
        self._written = written
        self._cond = threading.Condition()
        self._synced = 0  # every ticket up to this is durable
        self._running = False
        self._failed: tuple[int, BaseException] | None = None  # (covered up to, error) of the last sync
        self.syncs = 0  # how many syncs ran (the benchmark divides writes by it)

    @property
    def synced(self) -> int:
        return self._synced

    def wait(self, ticket: int) -> None:
        """Block until the write numbered `ticket` is durable (blocking: call from a thread)."""
        with self._cond:
            while self._synced < ticket:
                if self._running:
                    self._cond.wait()
                    failed = self._failed
                    if failed is not None and failed[0] >= ticket:
                        raise failed[1]
                    continue
                self._running = True
                upto = self._written()
                self._cond.release()
                try:
                    self._sync()
                except BaseException as exc:
                    self._cond.acquire()
                    self._failed = (upto, exc)
                    self._running = False
                    self._cond.notify_all()
                    raise
                self._cond.acquire()
                self.syncs += 1
                self._failed = None
                self._synced = max(self._synced, upto)
                self._running = False
                self._cond.notify_all()


class LoopGroup:
    """GroupSync's rule on the trio loop's side: one task at a time makes the worker-thread call
    `work(upto)`, `upto` being `target()` as it starts (everything the call must cover); tasks
    arriving meanwhile wait for it to end, then the next of them leads. One thread call per
    group instead of one per writer, each of which would wake at every sync. A failed call
    raises in every task whose number it covered; later ones try again."""

    def __init__(self, work: Callable[[int], None], target: Callable[[], int]) -> None:
        self._work = work
        self._target = target
        self.done = 0  # every number up to this is covered
        self._running: trio.Event | None = None
        self._failed: tuple[int, Exception] | None = None

    async def wait(self, n: int) -> None:
        while n > self.done:
            running = self._running
            if running is not None:
                await running.wait()
                failed = self._failed
                if failed is not None and failed[0] >= n:
                    raise failed[1]
                continue
            finished = self._running = trio.Event()
            upto = self._target()
            try:
                # not abandoned on cancel: the waiting tasks need the call to end, not the leader
                await trio.to_thread.run_sync(self._work, upto)
            except Exception as exc:
                self._failed = (upto, exc)
                raise
            else:
                self._failed = None
                self.done = max(self.done, upto)
            finally:
                self._running = None
                finished.set()

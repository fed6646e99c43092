"""The shape every service shares: do some work, survive its failure, wait, repeat.

`run_periodically` is that loop (a failed round is logged and retried at the next one, never
ends the service, so one damaged record cannot stop healing for good). `Wakeup` lets a
control op or another service end the wait early. `Passes` counts the passes of a service
that works in passes (heal, scrub), so a control op can wait for the pass that starts after
it asked, streaming progress meanwhile through an `Emit` callback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

# A JSON document for the control socket: service progress, op results.
Json = dict[str, Any]
# Streams one progress document to the control-socket client that is waiting on an op.
Emit = Callable[[Json], Awaitable[None]]


class Wakeup:
    """A wake-up that is not lost: set() while nobody waits ends the next wait at once."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, at_most: float) -> None:
        with trio.move_on_after(at_most):
            await self._event.wait()
        self._event = trio.Event()


class Passes:
    """Started/finished pass counters and a way to wait for a pass to finish."""

    def __init__(self) -> None:
        self.started = 0
        self.done = 0
        self._finished = trio.Event()

    def begin(self) -> None:
        self.started += 1

    def end(self) -> None:
        self.done += 1
        self._finished.set()
        self._finished = trio.Event()

    async def wait_for(self, number: int, emit: Emit | None = None,
                       progress: Callable[[], Json] | None = None) -> None:
        """Until pass `number` has finished; every half second, emit `progress()`."""
        while self.done < number:
            with trio.move_on_after(0.5):
                await self._finished.wait()
            if emit is not None and progress is not None:
                await emit(progress())


async def run_periodically(work: Callable[[], Awaitable[object]], interval: Callable[[], float], *,
                           log: logging.Logger, what: str, wakeup: Wakeup | None = None,
                           wait_first: bool = False,
                           task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Run `work`, then wait `interval()` seconds (or until `wakeup` is set), forever."""
    task_status.started()

    async def pause() -> None:
        if wakeup is not None:
            await wakeup.wait(interval())
        else:
            await trio.sleep(interval())

    if wait_first:
        await pause()
    while True:
        try:
            await work()
        except Exception:
            log.exception("%s failed; retrying later", what)
        await pause()

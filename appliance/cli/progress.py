"""Progress of a long control-socket operation (scrub, heal, drain, replace), drawn by `rich`.

The daemon streams progress dicts; `OpProgress` turns each into one task line: a bar with
done/total, rate and time left when the operation knows its total, a spinner with the
description otherwise. On a terminal the line updates in place and disappears at the end (the
command prints its result); elsewhere (logs, pipes) plain progress lines go to stderr, at most one
every PLAIN_EVERY seconds, so stdout stays the result alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PLAIN_EVERY = 2.0


class RateColumn(ProgressColumn):
    """Items per second (segments, objects), as rich measures them."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.1f}/s" if task.speed else "", style="progress.data.speed")

Describe = Callable[[dict[str, Any]], str]


class OpProgress:
    """Callable for `control.call(on_progress=...)`; `describe` renders the text of one update."""

    def __init__(self, progress: Progress | None, describe: Describe, plain: bool = False) -> None:
        self.progress = progress
        self.describe = describe
        self.plain = plain  # no terminal: a line now and then
        self.task: TaskID | None = None
        self._last = 0.0
        self._started = time.monotonic()

    def _line(self, p: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last < PLAIN_EVERY:
            return
        self._last = now
        done, total = p.get("done", 0), p.get("total") or 0
        rate = done / max(now - self._started, 1e-6)
        tail = f" {done}/{total} ({rate:.1f}/s)" if total else ""
        print(f"{self.describe(p)}{tail}", file=sys.stderr, flush=True)

    def __call__(self, p: dict[str, Any]) -> None:
        if self.progress is None:
            if self.plain:
                self._line(p)
            return
        total = p.get("total") or None
        text = self.describe(p)
        if self.task is None:
            self.task = self.progress.add_task(text, total=total)
        self.progress.update(self.task, description=text, total=total, completed=p.get("done", 0))


@contextmanager
def op_progress(describe: Describe, quiet: bool = False) -> Iterator[OpProgress]:
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield OpProgress(None, describe, plain=not quiet)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               RateColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield OpProgress(progress, describe)

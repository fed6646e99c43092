"""Progress of a long control-socket operation (scrub, heal, drain, replace), drawn by `rich`.

The daemon streams progress dicts; `OpProgress` turns each into one task line: a bar with
done/total when the operation knows its total, a spinner with the description otherwise. On a
terminal the line updates in place and disappears at the end (the command prints its result);
elsewhere (logs, pipes) nothing is drawn, so scripted output stays the result alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn

Describe = Callable[[dict[str, Any]], str]


class OpProgress:
    """Callable for `control.call(on_progress=...)`; `describe` renders the text of one update."""

    def __init__(self, progress: Progress | None, describe: Describe) -> None:
        self.progress = progress
        self.describe = describe
        self.task: TaskID | None = None

    def __call__(self, p: dict[str, Any]) -> None:
        if self.progress is None:
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
        yield OpProgress(None, describe)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield OpProgress(progress, describe)

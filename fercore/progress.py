"""Rich console and progress bars shared by every command.

All progress goes to stderr so stdout stays clean for tables and paths. Set
``FER_PROGRESS=0`` to silence bars (e.g. in batch jobs); they are also quiet when stderr is
not a terminal, apart from the final state.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

T = TypeVar("T")

#: Console for messages and bars (stderr).
console = Console(stderr=True, highlight=False)
#: Console for results meant for pipes (stdout).
out_console = Console(highlight=False)


def progress_enabled() -> bool:
    return os.environ.get("FER_PROGRESS", "1") not in ("0", "false", "no")


def make_progress(*, transient: bool = False) -> Progress:
    """A :class:`rich.progress.Progress` with the toolkit's standard columns. A transient bar
    is off when stderr is not a terminal: it would leave nothing but blank lines in a log."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=not progress_enabled() or (transient and not console.is_terminal),
    )


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (``total`` defaults to ``len(iterable)``)."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with make_progress() as p:
        task = p.add_task(description, total=total)
        for item in iterable:
            yield item
            p.advance(task)

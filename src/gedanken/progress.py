"""Progress of long CLI jobs (the demo, an audit): a live spinner with the elapsed time on a terminal, and
timestamped lines where output goes to a file or a CI log, where a spinner shows nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextmanager
def progress_messages(console: Console, start: str) -> Iterator[Callable[[str], None]]:
    """Yield ``say(message)``, which shows what a long job is doing now, starting with ``start``."""
    if console.is_terminal:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(start, total=None)
            yield lambda msg: bar.update(task, description=msg)
        return
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        console.print(f"[{time.perf_counter() - t0:5.0f} s] {msg}", highlight=False, markup=False)

    say(start)
    yield say

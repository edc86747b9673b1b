"""A progress bar over the steps of a run: done / total, with cache hits and failures."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class StepProgress:
    """Advances as step outcomes arrive in the driver."""

    def __init__(self, console: Console):
        self._progress = Progress(
            TextColumn("steps", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = None
        self._counts = {"cached": 0, "failed": 0}

    def __enter__(self) -> StepProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def start(self, preview) -> None:
        total = sum(count for count, _ in preview.steps.values())
        self._task = self._progress.add_task("steps", total=total, detail="")

    def advance(self, outcome) -> None:
        if outcome.status in self._counts:
            self._counts[outcome.status] += 1
        detail = f"{self._counts['cached']} cached, {self._counts['failed']} failed"
        self._progress.update(self._task, advance=1, detail=detail)

"""Progress over the steps of a run: done / total, with cache hits and failures.

On a terminal, a live bar. Without one (output to a file: a batch job, ``nohup``) a bar
prints nothing until the end, so plain lines instead: one every few steps or every
30 s, whichever comes first, and a last one however the run ends (finished, Ctrl-C,
SIGTERM, an error), so a log always says how far a run got.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clustergrid.errors import Interrupted

#: lines a run prints without a terminal from its step count (the clock adds more)
LINES_PER_RUN = 20
#: the longest a run without a terminal stays silent, in seconds
EVERY_SECONDS = 30.0


class StepProgress:
    """Advances as step outcomes arrive in the driver. ``every_steps`` and
    ``every_seconds`` space the lines printed without a terminal (default: about
    ``LINES_PER_RUN`` over the run, and at least one every ``EVERY_SECONDS``)."""

    def __init__(self, console: Console, every_steps: int | None = None,
                 every_seconds: float = EVERY_SECONDS):
        self._console = console
        self._live = console.is_terminal
        self._every_steps = every_steps
        self._every_seconds = every_seconds
        self._progress = Progress(
            TextColumn("steps", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) if self._live else None
        self._task = None
        self._counts = {"cached": 0, "failed": 0}
        self._total: int | None = None
        self._done = 0
        self._started = time.monotonic()
        self._printed_at = self._printed_steps = 0.0
        # The clock thread and the driver both print; one line at a time.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._clock: threading.Thread | None = None

    def __enter__(self) -> StepProgress:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self._progress is not None:
            self._progress.__exit__(kind, error, traceback)
            return
        self._stop.set()
        if self._clock is not None:
            self._clock.join()
        if self._total:
            ending = ("finished" if kind is None else
                      "interrupted" if issubclass(kind, KeyboardInterrupt | Interrupted)
                      else "stopped by an error")
            with self._lock:
                self._print(ending)

    def start(self, preview) -> None:
        total = sum(count for count, _ in preview.steps.values())
        self._started = self._printed_at = time.monotonic()
        if self._progress is not None:
            self._task = self._progress.add_task("steps", total=total, detail="")
            return
        self._total = total
        if not total:
            return
        if self._every_steps is None:
            self._every_steps = max(1, round(total / LINES_PER_RUN))
        self._clock = threading.Thread(target=self._tick, name="clustergrid-progress",
                                       daemon=True)
        self._clock.start()

    def advance(self, outcome) -> None:
        if outcome.status in self._counts:
            self._counts[outcome.status] += 1
        if self._progress is not None:
            detail = f"{self._counts['cached']} cached, {self._counts['failed']} failed"
            self._progress.update(self._task, advance=1, detail=detail)
            return
        with self._lock:
            self._done += 1
            if (self._total and self._done < self._total
                    and self._done - self._printed_steps >= self._every_steps):
                self._print()

    def line(self) -> str:
        """Where the run is, e.g. ``steps 40/142 (28%): 3 cached, 0 failed, 12.3 s``."""
        total = self._total or 0
        share = int(100 * self._done / total) if total else 100
        return (f"steps {self._done}/{total} ({share}%): {self._counts['cached']} cached, "
                f"{self._counts['failed']} failed, {time.monotonic() - self._started:.1f} s")

    def _print(self, ending: str | None = None) -> None:
        """Print where the run is; called holding the lock."""
        self._console.print(self.line() + (f" ({ending})" if ending else ""),
                            highlight=False, markup=False)
        self._printed_at, self._printed_steps = time.monotonic(), self._done

    def _tick(self) -> None:
        # A step may run for many minutes: the clock, not only outcomes, prints lines.
        while not self._stop.wait(min(1.0, self._every_seconds)):
            with self._lock:
                if time.monotonic() - self._printed_at >= self._every_seconds:
                    self._print()

"""Runs the plan's steps, serially or in a pool of worker processes.

Steps are passed to workers as small descriptions and exchange data only through the
cache, by key, so the same steps can run under any executor. A step whose parent failed
is skipped; everything independent of a failure still runs.
"""

from __future__ import annotations

import os
import signal
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from clustergrid.cache import Cache
from clustergrid.plan import Step
from clustergrid.registry import Registry, load_registry
from clustergrid.stages import run_step


@dataclass(frozen=True)
class StepOutcome:
    """What happened to one step: ``computed``, ``cached``, ``failed`` or ``skipped``."""

    key: str
    stage: str
    status: str
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: the exception's class name, e.g. ``ValueError``
    error_type: str | None = None
    traceback: str | None = None


def execute_step(step: Step, cache: Cache, registry: Registry) -> StepOutcome:
    """Run one step and report, never raise: exceptions do not cross process boundaries
    reliably, and a failure is a result to record. A damaged entry is removed by
    ``Cache.valid`` and computed again, never used."""
    if cache.valid(step.key):
        return StepOutcome(step.key, step.stage, "cached", cache.meta(step.key))
    try:
        meta = run_step(step, cache, registry)
    except Exception as exc:
        return StepOutcome(
            step.key, step.stage, "failed", error=str(exc),
            error_type=type(exc.__cause__ or exc).__name__,
            traceback="".join(traceback.format_exception(exc)),
        )
    return StepOutcome(step.key, step.stage, "computed", meta)


def execute(
    steps: Iterable[Step],
    cache: Cache,
    registry: Registry,
    workers: int = 1,
    on_outcome: Callable[[StepOutcome], None] = lambda outcome: None,
) -> dict[str, StepOutcome]:
    """Run ``steps``, which list every step's parents before it; ``on_outcome`` sees each
    result as it arrives, in the driver process."""
    steps = list(steps)
    outcomes: dict[str, StepOutcome] = {}

    def record(outcome: StepOutcome) -> None:
        outcomes[outcome.key] = outcome
        on_outcome(outcome)

    def blocked_by(step: Step) -> StepOutcome | None:
        for parent in step.parents:
            outcome = outcomes.get(parent)
            if outcome is not None and outcome.status in ("failed", "skipped"):
                return outcome
        return None

    def skip(step: Step, cause: StepOutcome) -> None:
        record(StepOutcome(step.key, step.stage, "skipped", error=cause.error,
                           error_type=cause.error_type, traceback=cause.traceback))

    if workers <= 1:
        for step in steps:
            cause = blocked_by(step)
            if cause:
                skip(step, cause)
            else:
                record(execute_step(step, cache, registry))
        return outcomes

    pending = {step.key: step for step in steps}
    running: dict[Future, Step] = {}
    context = get_context("spawn")  # workers start clean: no inherited threads or locks
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(registry.extra_modules, workers),
    ) as pool, _stopped_on_interrupt(pool):
        while pending or running:
            settled = len(outcomes)
            for key, step in list(pending.items()):
                cause = blocked_by(step)
                if cause:
                    del pending[key]
                    skip(step, cause)
                elif all(parent in outcomes for parent in step.parents):
                    del pending[key]
                    if cache.valid(key):  # no need to wake a worker for a cache hit
                        record(execute_step(step, cache, registry))
                    else:
                        running[pool.submit(_execute_in_worker, step, str(cache.root))] = step
            if not running:
                if len(outcomes) == settled:  # nothing can ever become ready
                    raise RuntimeError(f"steps whose parents are not in the plan: {list(pending)}")
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                step = running.pop(future)
                try:
                    record(future.result())
                except BrokenProcessPool as exc:
                    record(StepOutcome(step.key, step.stage, "failed",
                                       error=f"the worker process died: {exc}",
                                       error_type=type(exc).__name__))
    return outcomes


@contextmanager
def _stopped_on_interrupt(pool: ProcessPoolExecutor) -> Iterator[None]:
    """On Ctrl-C (or any error of the driver) stop the workers now: leaving the pool's
    block would otherwise wait for every submitted step. A killed step leaves no entry,
    only a scratch folder that the next run removes."""
    try:
        yield
    except BaseException:
        # The pool has no public way to stop running tasks before Python 3.14.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise


_worker_registry: Registry | None = None
#: the variables BLAS libraries read for their thread count, once, when loaded
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _start_worker(extra_modules: tuple[str, ...], workers: int) -> None:
    global _worker_registry
    # Ctrl-C reaches the whole process group: the driver alone handles it, stopping the
    # workers, instead of each printing its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Share the cores between workers instead of each BLAS/torch pool claiming all.
    threads = max(1, (os.cpu_count() or 1) // workers)
    user_set = any(variable in os.environ for variable in BLAS_VARIABLES)
    for variable in ("OMP_NUM_THREADS", *BLAS_VARIABLES):
        os.environ.setdefault(variable, str(threads))
    # OpenMP's idle threads otherwise spin for milliseconds after each parallel loop, on
    # cores the other workers need (openTSNE's single-threaded FFT step: a third of its
    # time on a busy 2-core machine). Read when OpenMP loads, after this.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if not user_set:
        # numpy's BLAS was loaded with this module, before the variables were set, and
        # reads them only then: limit its pool directly (libraries loaded later read them).
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads, user_api="blas")
    _worker_registry = load_registry(extra_modules)


def _execute_in_worker(step: Step, cache_root: str) -> StepOutcome:
    return execute_step(step, Cache(cache_root), _worker_registry)

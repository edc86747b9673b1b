"""Runs the plan's steps on a Dask cluster: a LocalCluster started for the run, or an
existing scheduler at ``address`` (e.g. workers started by dask-jobqueue on SLURM).

Steps travel to workers as small descriptions plus the cache root, and exchange data only
through the cache, by key, exactly as under the local executor. The cache folder must
therefore be storage that the driver and every worker see at the same path (a shared
file system on a real cluster); the driver process alone talks to MLflow.

Worker deaths: the scheduler counts a death against every task the dead worker held and
gives up on a task after ``distributed.scheduler.allowed-failures`` deaths, raising
``KilledWorker``. For a LocalCluster that limit is set to ``retries``; a remote scheduler
uses its own configuration. Because the count is per held task, the driver hands out only
as many steps as the cluster has threads, so a worker holds little more than the step it
runs and a crashing step does not use up the retries of innocent ones.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack

import dask
from distributed import Client, Future, KilledWorker, LocalCluster, as_completed

from clustergrid.cache import Cache
from clustergrid.executor import StepOutcome, execute_step
from clustergrid.plan import Step
from clustergrid.registry import Registry, load_registry


def execute_dask(
    steps: Iterable[Step],
    cache: Cache,
    registry: Registry,
    workers: int = 1,
    address: str | None = None,
    retries: int = 1,
    on_outcome: Callable[[StepOutcome], None] = lambda outcome: None,
) -> dict[str, StepOutcome]:
    """Run ``steps`` (parents listed before children) on Dask; ``on_outcome`` sees each
    result in the driver as it arrives. With ``address=None`` a LocalCluster of
    ``workers`` single-threaded processes is started and closed; otherwise the cluster at
    ``address`` is used and left running."""
    with ExitStack() as stack:
        if address is None:
            # The scheduler reads allowed-failures when it starts: deaths tolerated per task.
            stack.enter_context(dask.config.set(
                {"distributed.scheduler.allowed-failures": retries}))
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.CRITICAL))
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(Client(address))
        return _run(client, list(steps), cache, registry, on_outcome)


def _run(client: Client, steps: list[Step], cache: Cache, registry: Registry,
         on_outcome: Callable[[StepOutcome], None]) -> dict[str, StepOutcome]:
    outcomes: dict[str, StepOutcome] = {}
    pending = {step.key: step for step in steps}
    running: dict[Future, Step] = {}
    arrivals = as_completed()
    # Workers may sit elsewhere, with another working directory.
    cache_root = os.path.abspath(cache.root)

    def record(outcome: StepOutcome) -> None:
        outcomes[outcome.key] = outcome
        on_outcome(outcome)

    while pending or running:
        settled = len(outcomes)
        # Re-read each time: a remote cluster may scale, or lose workers, mid-run.
        free = max(1, sum(client.nthreads().values())) - len(running)
        for key, step in list(pending.items()):
            cause = _blocked_by(step, outcomes)
            if cause:
                del pending[key]
                record(StepOutcome(step.key, step.stage, "skipped", error=cause.error,
                                   error_type=cause.error_type, traceback=cause.traceback))
            elif all(parent in outcomes for parent in step.parents):
                if cache.valid(key):  # no need to wake a worker for a cache hit
                    del pending[key]
                    record(execute_step(step, cache, registry))
                elif free > 0:
                    del pending[key]
                    free -= 1
                    future = client.submit(
                        _execute_on_worker, step, cache_root, registry.extra_modules,
                        # unique, readable keys: the dashboard groups tasks by stage
                        key=f"{step.stage}-{step.key}-{uuid.uuid4().hex[:8]}")
                    running[future] = step
                    arrivals.add(future)
        if not running:
            if len(outcomes) == settled:  # nothing can ever become ready
                raise RuntimeError(f"steps whose parents are not in the plan: {list(pending)}")
            continue
        future = next(arrivals)
        step = running.pop(future)
        try:
            record(future.result())
        except Exception as exc:  # KilledWorker, or the scheduler went away
            record(StepOutcome(step.key, step.stage, "failed", error=_died(exc),
                               error_type=type(exc).__name__))
        future.release()
    return outcomes


def _blocked_by(step: Step, outcomes: dict[str, StepOutcome]) -> StepOutcome | None:
    # Same rule as clustergrid.executor.execute (a nested helper there, copied here).
    for parent in step.parents:
        outcome = outcomes.get(parent)
        if outcome is not None and outcome.status in ("failed", "skipped"):
            return outcome
    return None


def _died(exc: Exception) -> str:
    if isinstance(exc, KilledWorker):
        # The nanny restarts a worker past its memory limit; a crash reads the same.
        return ("the worker process died while running this step, on every try (out of "
                f"memory, or a crash): {exc}")
    return f"the Dask task did not return ({type(exc).__name__}): {exc}"


#: extra plugin modules -> registry, loaded once per worker process
_registries: dict[tuple[str, ...], Registry] = {}


def _execute_on_worker(step: Step, cache_root: str,
                       extra_modules: tuple[str, ...]) -> StepOutcome:
    """The Dask task: one step, with the worker's registry (never raises)."""
    if extra_modules not in _registries:
        _registries[extra_modules] = load_registry(extra_modules)
    return execute_step(step, Cache(cache_root), _registries[extra_modules])

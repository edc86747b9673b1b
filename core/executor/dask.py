"""The Dask backend: steps run on a Dask cluster, a LocalCluster started for the run or an
existing scheduler at ``address`` (e.g. workers started by dask-jobqueue on SLURM).

Steps travel to workers as small descriptions plus the cache root, and exchange data only
through the cache, by key, exactly as under the local backend. The cache folder must
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
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack

import dask
from distributed import Client, Future, KilledWorker, LocalCluster, as_completed

from clustergrid.cache import Cache
from clustergrid.executor.outcomes import StepOutcome, execute_step
from clustergrid.executor.scheduler import schedule
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
        return schedule(steps, cache, registry, _DaskCluster(client, cache, registry),
                        on_outcome)


class _DaskCluster:
    """Steps as tasks of a Dask client, as many at a time as its cluster has threads."""

    def __init__(self, client: Client, cache: Cache, registry: Registry):
        self.client = client
        # Workers may sit elsewhere, with another working directory.
        self.cache_root = os.path.abspath(cache.root)
        self.extra_modules = registry.extra_modules
        self.arrivals = as_completed()

    def free(self, running: int) -> int:
        # Re-read each time: a remote cluster may scale, or lose workers, mid-run.
        return max(1, sum(self.client.nthreads().values())) - running

    def submit(self, step: Step) -> Future:
        future = self.client.submit(
            _execute_on_worker, step, self.cache_root, self.extra_modules,
            # unique, readable keys: the dashboard groups tasks by stage
            key=f"{step.stage}-{step.key}-{uuid.uuid4().hex[:8]}")
        self.arrivals.add(future)
        return future

    def collect(self, running: Mapping[Future, Step]
                ) -> tuple[dict[Future, StepOutcome], list[Future]]:
        future = next(self.arrivals)
        try:
            outcome = future.result()
        except Exception as exc:  # KilledWorker, or the scheduler went away
            step = running[future]
            outcome = StepOutcome(step.key, step.stage, "failed", error=_died(exc),
                                  error_type=type(exc).__name__)
        future.release()
        # Dask retries a step whose worker died and fails only the task it gave up on.
        return {future: outcome}, []


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

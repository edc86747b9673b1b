"""Runs the plan's steps: one scheduler, two backends.

``scheduler.py`` hands out the steps whose parents are done, records what comes back and
skips what descends from a failure; a backend only says how a step reaches a worker and
how its result, or its worker's death, comes back: ``local.py``, a pool of processes on
this machine (also of one worker, each under a memory limit), and ``dask.py``, a Dask
cluster (imported only when an experiment asks for one). ``outcomes.py`` holds what a
worker runs, one step, and the outcome it reports.

Steps are passed to workers as small descriptions and exchange data only through the
cache, by key, so the same steps can run under any backend.
"""

from clustergrid.executor.local import (
    BLAS_VARIABLES,
    IN_PROCESS_ENV,
    MEMORY_ERRORS,
    WORKER_CRASHED,
    WORKER_KILLED,
    WORKER_MEMORY_ENV,
    execute,
    worker_memory_limit,
)
from clustergrid.executor.outcomes import StepOutcome, execute_step

__all__ = [
    "BLAS_VARIABLES",
    "IN_PROCESS_ENV",
    "MEMORY_ERRORS",
    "WORKER_CRASHED",
    "WORKER_KILLED",
    "WORKER_MEMORY_ENV",
    "StepOutcome",
    "execute",
    "execute_step",
    "worker_memory_limit",
]

"""What a worker runs, one step, and the outcome it reports, whatever the backend."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from clustergrid import memory
from clustergrid.cache import Cache
from clustergrid.plan import Step
from clustergrid.registry import Registry
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


def execute_step(step: Step, cache: Cache, registry: Registry,
                 memory_limit: int | None = None) -> StepOutcome:
    """Run one step and report, never raise: exceptions do not cross process boundaries
    reliably, and a failure is a result to record. A damaged entry is removed by
    ``Cache.valid`` and computed again, never used. ``memory_limit``: the bytes this
    worker may allocate, if it limits itself, named in a ``MemoryError``'s message."""
    if cache.valid(step.key):
        return StepOutcome(step.key, step.stage, "cached", cache.meta(step.key))
    try:
        meta = run_step(step, cache, registry)
    except Exception as exc:
        cause = exc.__cause__ or exc
        error = str(exc)
        if isinstance(cause, MemoryError):  # numpy's is a subclass with a private name
            error_type = "MemoryError"
            if memory_limit is not None:
                error += (f" (this worker's memory limit is {memory.human_bytes(memory_limit)}; "
                          f"{memory.WORKER_MEMORY_VARIABLE} changes it)")
        else:
            error_type = type(cause).__name__
        return StepOutcome(step.key, step.stage, "failed", error=error, error_type=error_type,
                           traceback="".join(traceback.format_exception(exc)))
    return StepOutcome(step.key, step.stage, "computed", meta)

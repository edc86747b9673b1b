"""The scheduling loop every backend shares.

It hands out the steps whose parents are done, answers cache hits itself, records each
outcome as it comes back and skips every step that descends from a failure, while
everything independent of it still runs. A ``Backend`` says only how a step reaches a
worker and how its result, or its worker's death, comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Protocol

from clustergrid.cache import Cache
from clustergrid.executor.outcomes import StepOutcome, execute_step
from clustergrid.plan import Step
from clustergrid.registry import Registry


class Backend(Protocol):
    """Where steps run: how one is handed to a worker, and how what it came to is read."""

    def free(self, running: int) -> int | None:
        """How many more steps to hand out now, with ``running`` in flight; ``None``: any
        number (the backend queues what its workers cannot start yet)."""

    def submit(self, step: Step) -> Hashable:
        """Start ``step``; a handle that ``collect`` answers by."""

    def collect(self, running: Mapping[Hashable, Step]
                ) -> tuple[dict[Hashable, StepOutcome], list[Hashable]]:
        """Wait until at least one of the ``running`` steps (by handle) ends. The outcomes
        of those that ended, by handle (a step whose worker died alone fails with why);
        and the handles of those whose worker died with others in flight, the culprit
        unknown: the scheduler runs each of them again alone, so only the culprit fails."""


def schedule(steps: Iterable[Step], cache: Cache, registry: Registry, backend: Backend,
             on_outcome: Callable[[StepOutcome], None]) -> dict[str, StepOutcome]:
    """Run ``steps``, which list every step's parents before it, on ``backend``;
    ``on_outcome`` sees each result as it arrives, in the driver process."""
    outcomes: dict[str, StepOutcome] = {}
    pending = {step.key: step for step in steps}
    running: dict[Hashable, Step] = {}
    #: steps in flight when a worker died, each to run again alone
    suspects: list[Step] = []

    def record(outcome: StepOutcome) -> None:
        outcomes[outcome.key] = outcome
        on_outcome(outcome)

    while pending or running or suspects:
        settled = len(outcomes)
        if suspects:
            if not running:
                step = suspects.pop(0)
                running[backend.submit(step)] = step
        else:
            free = backend.free(len(running))
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
                    elif free is None or free > 0:
                        del pending[key]
                        free = None if free is None else free - 1
                        running[backend.submit(step)] = step
        if not running:
            if len(outcomes) == settled and not suspects:  # nothing can ever become ready
                raise RuntimeError(f"steps whose parents are not in the plan: {list(pending)}")
            continue
        ended, lost = backend.collect(running)
        for handle, outcome in ended.items():
            del running[handle]
            record(outcome)
        suspects.extend(running.pop(handle) for handle in lost)
    return outcomes


def _blocked_by(step: Step, outcomes: dict[str, StepOutcome]) -> StepOutcome | None:
    """The failed or skipped parent whose error ``step`` inherits, if any."""
    for parent in step.parents:
        outcome = outcomes.get(parent)
        if outcome is not None and outcome.status in ("failed", "skipped"):
            return outcome
    return None

"""The driver of ``clustergrid run``: plan the grid, run what is missing, log every combination.

Only this process talks to MLflow. Child runs are logged as combinations complete, so a
crash loses nothing already computed (the cache) or logged (the store), and the next
invocation resumes where this one stopped.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clustergrid import stages
from clustergrid.cache import Cache
from clustergrid.directions import metric_directions
from clustergrid.errors import Interrupted
from clustergrid.executor import MEMORY_ERRORS, StepOutcome, execute
from clustergrid.locations import Locations, locate, store_exists
from clustergrid.locks import held
from clustergrid.memory import Need, WorkerMemory, worker_memory
from clustergrid.plan import Combination, Plan, Step, make_plan
from clustergrid.record import (
    ARTIFACTS,
    INVOCATION_SUMMARY,
    SKIPPED,
    TAG_HASH,
    combination_record,
    invocation_skipped,
    step_folder,
)
from clustergrid.registry import Registry
from clustergrid.spec import ExecutorConfig, Experiment
from clustergrid.tracking import Tracker


@dataclass
class Preview:
    """What a run would do, as ``--dry-run`` prints it."""

    combinations: int
    finished: int
    to_run: int
    #: stage -> (unique steps needed, of which already cached)
    steps: dict[str, tuple[int, int]]
    #: what would be costly to run, one line each (``clustergrid.costs``; dry runs only)
    warnings: list[str] = field(default_factory=list)
    #: stage -> the largest memory one of its steps to compute needs, where known
    #: (``costs.dry_run_memory``; dry runs only)
    memory: dict[str, Need] = field(default_factory=dict)
    #: the memory a worker has, and where that comes from (dry runs only)
    worker_memory: WorkerMemory | None = None
    #: combinations left out because they failed for lack of memory last time
    #: (``--retry-failed`` runs them)
    out_of_memory: int = 0


@dataclass
class RunSummary:
    """What a run did."""

    experiment: str
    tracking_uri: str
    cache_root: Path
    preview: Preview
    parent_run_id: str | None = None
    #: status -> count, over the steps this invocation needed
    step_status: Counter = field(default_factory=Counter)
    finished: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    wall_time: float = 0.0
    #: ``(dataset, file, reason)`` of each item the datasets dropped (``on_error: skip``)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    #: where their list lies: a file on this machine, or the file of the invocation's run
    skipped_list: str | None = None


def preview(plan: Plan, cache: Cache, finished: set[str], resume: bool,
            out_of_memory: set[str] = frozenset()) -> Preview:
    todo = _todo(plan, finished, resume, out_of_memory)
    totals = Counter()
    cached = Counter()
    # One pass, and no file system call per step when there is no cache yet: a dry run
    # of 100,000 combinations should answer in seconds.
    look = cache.root.is_dir()
    for step in plan.steps_for(todo):
        totals[step.stage] += 1
        cached[step.stage] += look and cache.has(step.key)
    counts = {stage.name: (totals[stage.name], cached[stage.name]) for stage in stages.STAGES}
    done = sum(c.key in finished for c in plan.combinations)
    left_out = sum(c.key in out_of_memory and c.key not in finished
                   for c in plan.combinations) if resume else 0
    return Preview(len(plan.combinations), done, len(todo), counts, out_of_memory=left_out)


def _todo(plan: Plan, finished: set[str], resume: bool,
          out_of_memory: set[str] = frozenset()) -> list[Combination]:
    """The combinations to run: all of them without ``resume``, else those with neither a
    FINISHED run nor a last run that failed for lack of memory."""
    if not resume:
        return list(plan.combinations)
    return [c for c in plan.combinations
            if c.key not in finished and c.key not in out_of_memory]


def out_of_memory_hashes(tracker: Tracker, finished: set[str]) -> set[str]:
    """The combinations whose latest run FAILED for lack of memory (its ``error.type`` a
    ``MemoryError`` or a worker the operating system killed), and none FINISHED: a rerun
    would most likely fail the same way, after as long."""
    latest: dict[str, Any] = {}
    for run in tracker.combination_runs():
        key = run.data.tags.get(TAG_HASH)
        if key and (key not in latest or run.info.start_time > latest[key].info.start_time):
            latest[key] = run
    return {key for key, run in latest.items() if key not in finished
            and run.info.status == "FAILED" and run.data.tags.get("error.type") in MEMORY_ERRORS}


def dry_run(experiment: Experiment, registry: Registry, tracking_uri: str | None,
            resume: bool = True, retry_failed: bool = False,
            workers: int | None = None) -> tuple[Plan, Preview]:
    """The plan and what running it would do on ``workers`` (default: the executor's);
    creates nothing, not even the store."""
    from clustergrid import costs

    plan = make_plan(experiment, registry)
    where = locate(experiment, tracking_uri)
    uri = where.store
    finished: set[str] = set()
    out_of_memory: set[str] = set()
    if resume and store_exists(uri):
        try:
            tracker = Tracker(uri, experiment.name, create=False)
            finished = tracker.finished_hashes()
            if not retry_failed:
                out_of_memory = out_of_memory_hashes(tracker, finished)
        except Exception:  # no such experiment yet: nothing finished
            finished = set()
    cache = Cache(where.cache)
    previewed = preview(plan, cache, finished, resume, out_of_memory)
    # Only estimates: the dimensions clusterers will see, from the cache or the data's shape.
    previewed.warnings = costs.dry_run_warnings(_todo(plan, finished, resume, out_of_memory),
                                                registry, cache, experiment.verdict)
    # The largest memory a step of each stage needs, beside what a worker will have.
    previewed.memory = costs.dry_run_memory(plan, _todo(plan, finished, resume, out_of_memory),
                                            registry, cache)
    previewed.worker_memory = worker_memory(workers or experiment.executor.workers)
    return plan, previewed


def run(
    experiment: Experiment,
    registry: Registry,
    tracking_uri: str | None = None,
    workers: int | None = None,
    resume: bool = True,
    on_start: Callable[[Preview], None] = lambda preview: None,
    on_outcome: Callable[[StepOutcome], None] = lambda outcome: None,
    wait: bool = False,
    retry_failed: bool = False,
) -> RunSummary:
    """Run every combination not yet finished and log each to MLflow; one whose last run
    failed for lack of memory only with ``retry_failed``.

    One run of an experiment on a store at a time: a second one waits for the first
    (``wait=True``) or is refused in one line naming it, so nothing is computed or logged
    twice. Different experiments on one store run side by side."""
    started = time.perf_counter()
    plan = make_plan(experiment, registry)
    where = locate(experiment, tracking_uri)
    cache = Cache(where.cache)
    with held(where.locks / f"{experiment.name}.lock",
              f"experiment '{experiment.name}' on {where.uri}", wait=wait):
        # Scratch folders of killed runs; those of live runs (other experiments) stay.
        cache.clean_scratch()
        return _run_locked(experiment, plan, registry, where, cache, workers, resume,
                           on_start, on_outcome, started, retry_failed)


def _run_locked(experiment: Experiment, plan: Plan, registry: Registry, where: Locations,
                cache: Cache, workers: int | None, resume: bool,
                on_start: Callable[[Preview], None],
                on_outcome: Callable[[StepOutcome], None], started: float,
                retry_failed: bool = False) -> RunSummary:
    """``run``, once it holds the experiment's lock."""
    new_store = not store_exists(where.store)
    # Every MLflow call runs on this one driver thread, in order, while steps compute:
    # workers never open the store, so even creating it (seconds, for SQLite) can
    # overlap with the first steps. A new store cannot hold finished runs to resume.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clustergrid-mlflow") as mlflow:
        opened = mlflow.submit(Tracker, where.store, experiment.name)
        # Only the finished runs hold the first step back; marking abandoned runs KILLED
        # follows on the MLflow thread while steps compute.
        finished = (mlflow.submit(lambda: opened.result().finished_hashes()).result()
                    if resume and not new_store else set())
        out_of_memory = (mlflow.submit(lambda: out_of_memory_hashes(opened.result(), finished))
                         .result() if resume and not new_store and not retry_failed else set())
        abandoned = mlflow.submit(lambda: opened.result().mark_abandoned_runs_killed())
        todo = _todo(plan, finished, resume, out_of_memory)
        summary = RunSummary(experiment.name, where.uri, cache.root,
                             preview(plan, cache, finished, resume, out_of_memory))
        on_start(summary.preview)
        if not todo:
            abandoned.result()  # the store exists once run() returns, even with nothing to do
            summary.wall_time = time.perf_counter() - started
            return summary
        parent = mlflow.submit(lambda: opened.result().start_invocation(
            params={"file": str(experiment.source or ""),
                    "executor": experiment.executor.kind,
                    "workers": workers or experiment.executor.workers,
                    "seeds": ",".join(map(str, experiment.seeds))},
            tags={"clustergrid.combinations": str(len(todo))},
        ))
        # A combination is logged as soon as the last of its steps is in.
        waiting = {combination: set(combination.steps.values()) for combination in todo}
        users: dict[str, list[Combination]] = {}
        for combination in todo:
            for key in combination.steps.values():
                users.setdefault(key, []).append(combination)
        outcomes: dict[str, StepOutcome] = {}
        logged: list[Future] = []
        shared_logged: set[str] = set()

        def record(outcome: StepOutcome) -> None:
            outcomes[outcome.key] = outcome
            summary.step_status[outcome.status] += 1
            on_outcome(outcome)
            for combination in users.get(outcome.key, ()):
                waiting[combination].discard(outcome.key)
                if not waiting[combination]:
                    complete(combination)

        def complete(combination: Combination) -> None:
            steps = {stage: outcomes[key] for stage, key in combination.steps.items()}
            failure = _failure(steps)
            if failure is None:
                summary.finished += 1
            else:
                summary.failed.append((combination.label(), failure.error or ""))
            logged.append(mlflow.submit(
                lambda: opened.result().log_combination(parent.result(), combination_record(
                    plan, combination, steps, failure, cache))))
            # The files of a step shared by many combinations (thumbnails, trained
            # weights, maps) are logged once, to the invocation's run.
            for stage, outcome in steps.items():
                if stages.get(stage).scope == "shared" and outcome.key not in shared_logged:
                    shared_logged.add(outcome.key)
                    logged.append(mlflow.submit(lambda outcome=outcome, stage=stage: (
                        _log_step_files(opened.result(), parent.result(), stage, outcome,
                                        cache))))

        status = "FAILED"
        interrupted = False
        try:
            executor = experiment.executor.model_copy(
                update={"workers": workers or experiment.executor.workers})
            run_steps(plan.steps_for(todo), cache, registry, executor, record)
            status = "FINISHED"
        except KeyboardInterrupt:
            # Everything complete is logged below before leaving, then said in one line.
            status, interrupted = "KILLED", True
        finally:
            summary.wall_time = time.perf_counter() - started
            summary.skipped = _skipped(plan, outcomes)
            texts = {INVOCATION_SUMMARY: json.dumps(
                _invocation_summary(plan, registry, summary, outcomes, cache), indent=1)}
            if summary.skipped:
                texts[SKIPPED] = invocation_skipped(summary.skipped)
            ended = mlflow.submit(lambda: opened.result().end_invocation(
                parent.result(), status, tags={
                    "clustergrid.finished": str(summary.finished),
                    "clustergrid.failed": str(len(summary.failed)),
                    "clustergrid.wall_time": f"{summary.wall_time:.2f}",
                }, texts=texts))
            for future in (abandoned, *logged, ended):
                future.result()  # an MLflow error surfaces here, after every step ran
            summary.parent_run_id = parent.result()
            if summary.skipped:
                folder = ended.result()
                summary.skipped_list = (str(folder / SKIPPED) if folder is not None else
                                        f"{SKIPPED} of run {summary.parent_run_id}")
    if interrupted:
        raise Interrupted(
            f"interrupted: {summary.finished + len(summary.failed)} of {len(todo)} "
            f"combinations were logged ({summary.finished} finished) and "
            f"{summary.step_status['computed']} computed steps are cached; run again to "
            "resume") from None
    return summary


def run_steps(steps: list[Step], cache: Cache, registry: Registry, executor: ExecutorConfig,
              on_outcome: Callable[[StepOutcome], None]) -> dict[str, StepOutcome]:
    """Run the steps on the executor the experiment names."""
    if executor.kind == "dask":
        from clustergrid.executor.dask import execute_dask

        return execute_dask(steps, cache, registry, workers=executor.workers,
                            address=executor.address, retries=executor.retries,
                            on_outcome=on_outcome)
    return execute(steps, cache, registry, executor.workers, on_outcome)


def _failure(steps: dict[str, StepOutcome]) -> StepOutcome | None:
    """The failed step of a combination (a skipped step carries its ancestor's error);
    a report's map or the verdict's evidence failing does not fail the combination."""
    needed = [o for stage, o in steps.items() if stages.get(stage).decides_success]
    return next((o for o in needed if o.status == "failed"),
                next((o for o in needed if o.status == "skipped"), None))


def _log_step_files(tracker: Tracker, parent: str, stage: str, outcome: StepOutcome,
                    cache: Cache) -> None:
    """A shared step's files, once per invocation: ``steps/<stage>-<key>/<name>`` in the
    invocation's run (a combination's ``clustergrid.step.<stage>`` tag gives the key)."""
    if outcome.status not in ("computed", "cached"):
        return
    for name in outcome.meta.get("artifacts", []):
        tracker.log_file(parent, cache.path(outcome.key) / ARTIFACTS / name,
                         step_folder(stage, outcome.key))


def _skipped(plan: Plan, outcomes: dict[str, StepOutcome]) -> list[tuple[str, str, str]]:
    """``(dataset, file, reason)`` of each item dropped by the datasets this run read or
    took from the cache."""
    skipped = []
    for step in plan.steps.values():
        outcome = outcomes.get(step.key)
        if step.stage == "data" and outcome is not None \
                and outcome.status in ("computed", "cached"):
            skipped += [(_dataset_label(step), where, reason)
                        for where, reason in outcome.meta.get("skipped", [])]
    return skipped


def _dataset_label(step: Step) -> str:
    """A data step's dataset and transforms, as the report's summary names them."""
    return " + ".join(component.label() for component in step.components)


def _invocation_summary(plan: Plan, registry: Registry, summary: RunSummary,
                        outcomes: dict[str, StepOutcome], cache: Cache) -> dict:
    """What the report's summary shows of one invocation: datasets, steps per stage and
    their wall time, total wall time."""
    per_stage: dict[str, dict[str, float]] = {}
    for outcome in outcomes.values():
        entry = per_stage.setdefault(plan.steps[outcome.key].stage, Counter())
        entry[outcome.status] += 1
        if outcome.status == "computed":
            entry["wall_time"] += float(outcome.meta.get("wall_time", 0.0))
    datasets = []
    for step in plan.steps.values():
        if step.stage == "data" and step.key in outcomes and cache.has(step.key):
            meta = cache.meta(step.key)
            counts = None
            if cache.contains(step.key, "labels"):
                labels = cache.load(step.key, "labels")
                counts = np.bincount(labels[labels >= 0]).tolist()
            datasets.append({"key": step.key, "label": _dataset_label(step), "n": meta.get("n"),
                "class_names": meta.get("class_names"), "class_counts": counts,
                "skipped": len(meta.get("skipped", [])),
                # A table's features and their units.
                **{key: meta[key] for key in ("features", "units") if key in meta}})
    metrics = [registry.get("metric", m.plugin).cls for m in plan.experiment.metrics]
    return {"combinations": summary.preview.combinations, "to_run": summary.preview.to_run,
            # Which way each logged score is better, so reports need not have the plugins.
            "directions": {**metric_directions(metrics), **stages.logged_directions()},
            "finished": summary.finished,
            "failed": [{"pipeline": p, "error": e} for p, e in summary.failed],
            "wall_time": summary.wall_time,
            "stages": {stage: dict(counts) for stage, counts in per_stage.items()},
            "datasets": datasets}

"""Runner overhead: `clustergrid run` against calling the same unique steps directly.

Every side computes exactly the plan's unique steps (describe and cards included),
serially, in this process, after the same imports. The runner adds the cache (disk
writes and reads) and the executor; `clustergrid run` adds MLflow on top (a parent run,
one child run per combination with its params, metrics, tags and files, the store's
creation when it is new) and the report, timed on its own too. Machines are shared and
noisy, so each side is timed several times, alternating, and the medians are compared.
On a machine other jobs keep busy, OMP_NUM_THREADS=1 keeps k-means' threads from
waiting on each other for whole time slices (which makes every side slow and erratic).

    python tests/benchmarks/bench_runner.py [experiments/quickstart.yaml] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from clustergrid import cards, runner
from clustergrid.cache import Cache
from clustergrid.executor import execute
from clustergrid.outliers import knn_outlier_scores, most_unusual
from clustergrid.plan import make_plan
from clustergrid.registry import Registry
from clustergrid.report import write_report
from clustergrid.spec import load_experiment
from clustergrid.stages import (
    UNUSUAL_SIZE,
    build,
    contingency,
    gallery,
    trustworthiness,
)
from clustergrid.thumbnails import thumbnail_index, thumbnails

QUICKSTART = Path(__file__).parents[2] / "experiments" / "quickstart.yaml"


def direct(plan, registry: Registry) -> int:
    """Every unique step of the plan, computed in memory with no cache and no tracking:
    the same computations as ``clustergrid.stages`` (thumbnails, outlier scores, galleries
    and cards included), none of its disk writes."""
    out: dict[str, dict] = {}
    for step in plan.steps.values():
        if step.stage == "data":
            dataset = build(step.components[0], registry)
            images = dataset.read(0, len(dataset))
            for component in step.components[1:]:
                images = build(component, registry).transform(images)
            shown = thumbnail_index(len(images))
            out[step.key] = {"images": images, "labels": dataset.labels(),
                             "ids": np.asarray(dataset.ids(), dtype=str), "shown": shown,
                             "thumbnails": thumbnails(images[shown]),
                             "class_names": dataset.class_names()}
        elif step.stage == "encode":
            encoder = build(step.components[0], registry, step.seed)
            images = out[step.parents[0]]["images"]
            out[step.key] = {"X": encoder.fit(images).transform(images)}
        elif step.stage == "reduce":
            reducer = build(step.components[0], registry, step.seed)
            X = out[step.parents[0]]["X"]
            reduced = reducer.fit_transform(X)
            quality = trustworthiness(X, reduced) if reduced is not X else None
            out[step.key] = {"X": reduced, "trustworthiness": quality}
        elif step.stage == "cluster":
            clusterer = build(step.components[0], registry, step.seed)
            X = out[step.parents[0]]["X"]
            labels = clusterer.fit_predict(X)
            scores = getattr(clusterer, "outlier_scores_", None)
            out[step.key] = {"labels": labels, "outlier_scores":
                             knn_outlier_scores(X) if scores is None else scores}
        elif step.stage == "probe":
            encode, data = step.parents
            out[step.key] = {m.plugin: build(m, registry).compute(out[encode]["X"], None,
                                                                  out[data]["labels"])
                             for m in step.components}
        elif step.stage == "stability":
            labelings = [out[key]["labels"] for key in step.parents]
            out[step.key] = {"ari": [adjusted_rand_score(a, b)
                                     for a, b in itertools.combinations(labelings, 2)]}
        elif step.stage == "score":
            cluster, reduce, data = step.parents
            truth, labels = out[data]["labels"], out[cluster]["labels"]
            X = out[reduce]["X"]
            unusual = most_unusual(out[cluster]["outlier_scores"], size=UNUSUAL_SIZE)
            out[step.key] = {
                **{m.plugin: build(m, registry).compute(X, labels, truth)
                   for m in step.components},
                "confusion": None if truth is None else contingency(truth, labels),
                "gallery": gallery(X, labels, out[data]["shown"]),
                "unusual": thumbnails(out[data]["images"][unusual]),
            }
        elif step.stage == "describe":
            images = out[step.parents[0]]["images"]
            index = cards.sample_index(len(images), dict(step.options)["max_items"])
            out[step.key] = {"index": index, "names": cards.descriptor_names(images.shape[1]),
                             "descriptors": cards.describe_images(images, index)}
        elif step.stage == "cards":
            cluster, reduce, describe, data = (out[key] for key in step.parents)
            index, truth = describe["index"], data["labels"]
            out[step.key] = {
                "cards": cards.cluster_cards(
                    describe["descriptors"], describe["names"], cluster["labels"], index,
                    X=reduce["X"], truth=truth, class_names=data["class_names"],
                    ids=data["ids"]),
                "nuisance": cards.nuisance_check(cluster["labels"][index],
                                                 describe["descriptors"], describe["names"],
                                                 None if truth is None else truth[index]),
            }
        else:
            raise ValueError(f"no direct version of the {step.stage} stage")
    return len(plan.steps)


def machinery(plan, registry: Registry) -> int:
    """The runner without MLflow: the same steps through the cache and the executor."""
    cache = Cache(tempfile.mkdtemp(prefix="bench-cache-"))
    outcomes = execute(plan.steps_for(plan.combinations), cache, registry, workers=1)
    return sum(outcome.status == "computed" for outcome in outcomes.values())


def with_runner(experiment, registry: Registry, store: Path | None = None
                ) -> tuple[int, float]:
    """`clustergrid run` as the CLI does it: cold cache; a new store unless ``store``;
    then its report. The steps computed, and the report's seconds."""
    folder = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    os.chdir(store or folder)
    experiment = replace(experiment, name=f"bench-{folder.name}", cache=str(folder / "cache"))
    summary = runner.run(experiment, registry, workers=1)
    started = time.perf_counter()
    write_report(None, experiment.name, folder / "report.html")
    assert summary.failed == [], summary.failed
    return summary.step_status["computed"], time.perf_counter() - started


DIRECT = "unique steps called directly, in memory"
MACHINERY = "plan + cache + executor (no MLflow)"
EXISTING = "clustergrid run, existing MLflow store"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default=str(QUICKSTART))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    registry = Registry.load()
    # Without the report's map or the verdict's evidence: the runner's overhead is
    # measured on the grid itself (bench_verdict.py measures the verdict's cost).
    experiment = replace(load_experiment(args.experiment, registry), map=None, verdict=None)
    plan = make_plan(experiment, registry)
    store = Path(tempfile.mkdtemp(prefix="bench-store-"))
    with_runner(experiment, registry, store)  # warm-up: first imports; creates `store`
    sides = {
        DIRECT: lambda: (direct(plan, registry), None),
        MACHINERY: lambda: (machinery(plan, registry), None),
        EXISTING: lambda: with_runner(experiment, registry, store),
        "clustergrid run, new MLflow store": lambda: with_runner(experiment, registry),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    reports: dict[str, list[float]] = {name: [] for name in sides}
    steps = {}
    for _ in range(args.repeats):  # alternate, so load changes hit every side alike
        for name, side in sides.items():
            started = time.perf_counter()
            steps[name], report = side()
            times[name].append(time.perf_counter() - started)
            if report is not None:
                reports[name].append(report)
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians[DIRECT]
    print(f"experiment: {experiment.name}, {len(plan.combinations)} combinations, "
          f"{len(plan.steps)} unique steps, serial, median of {args.repeats}")
    print("| | steps computed | wall time (s) | overhead | of which the report (s) |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in medians.items():
        report = f"{statistics.median(reports[name]):.2f}" if reports[name] else ""
        print(f"| {name} | {steps[name]} | {seconds:.2f} | {100 * (seconds / base - 1):+.1f}% "
              f"| {report} |")
    # The measure: the run on an existing store against the runner without MLflow,
    # with the report it writes and without.
    run = medians[EXISTING]
    without = statistics.median(t - r for t, r in zip(times[EXISTING], reports[EXISTING],
                                                      strict=True))
    print(f"\n{EXISTING} against {MACHINERY}: "
          f"{100 * (run / medians[MACHINERY] - 1):+.1f}% with its report, "
          f"{100 * (without / medians[MACHINERY] - 1):+.1f}% without")


if __name__ == "__main__":
    main()

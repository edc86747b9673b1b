"""Runner overhead: `clustergrid run` against calling the same unique steps directly.

Every side computes exactly the plan's unique steps, serially, in this process, after
the same imports. The runner adds the cache (disk writes and reads) and the executor;
`clustergrid run` adds MLflow on top (a parent run, one child run per combination with
its labels as an artifact, the store's creation when it is new) and the report.
Machines are shared and noisy, so each side is timed several times, alternating, and
the medians are compared.

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

from sklearn.metrics import adjusted_rand_score

from clustergrid import runner
from clustergrid.cache import Cache
from clustergrid.executor import execute
from clustergrid.plan import make_plan
from clustergrid.registry import Registry
from clustergrid.report import write_report
from clustergrid.spec import load_experiment
from clustergrid.stages import build, trustworthiness

QUICKSTART = Path(__file__).parents[2] / "experiments" / "quickstart.yaml"


def direct(plan, registry: Registry) -> int:
    """Every unique step of the plan, computed in memory with no cache and no tracking."""
    out: dict[str, dict] = {}
    for step in plan.steps.values():
        if step.stage == "data":
            dataset = build(step.components[0], registry)
            images = dataset.read(0, len(dataset))
            for component in step.components[1:]:
                images = build(component, registry).transform(images)
            out[step.key] = {"images": images, "labels": dataset.labels()}
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
            out[step.key] = {"labels": clusterer.fit_predict(out[step.parents[0]]["X"])}
        elif step.stage == "probe":
            encode, data = step.parents
            out[step.key] = {m.plugin: build(m, registry).compute(out[encode]["X"], None,
                                                                  out[data]["labels"])
                             for m in step.components}
        elif step.stage == "stability":
            labelings = [out[key]["labels"] for key in step.parents]
            out[step.key] = {"ari": [adjusted_rand_score(a, b)
                                     for a, b in itertools.combinations(labelings, 2)]}
        else:  # score
            cluster, reduce, data = step.parents
            truth = out[data]["labels"]
            out[step.key] = {
                m.plugin: build(m, registry).compute(out[reduce]["X"], out[cluster]["labels"],
                                                     truth)
                for m in step.components
            }
    return len(plan.steps)


def machinery(plan, registry: Registry) -> int:
    """The runner without MLflow: the same steps through the cache and the executor."""
    cache = Cache(tempfile.mkdtemp(prefix="bench-cache-"))
    outcomes = execute(plan.steps_for(plan.combinations), cache, registry, workers=1)
    return sum(outcome.status == "computed" for outcome in outcomes.values())


def with_runner(experiment, registry: Registry, store: Path | None = None) -> int:
    """`clustergrid run` as the CLI does it: cold cache; a new store unless ``store``."""
    folder = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    os.chdir(store or folder)
    experiment = replace(experiment, name=f"bench-{folder.name}", cache=str(folder / "cache"))
    summary = runner.run(experiment, registry, workers=1)
    write_report(None, experiment.name, folder / "report.html")
    assert summary.failed == [], summary.failed
    return summary.step_status["computed"]


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
        "unique steps called directly, in memory": lambda: direct(plan, registry),
        "plan + cache + executor (no MLflow)": lambda: machinery(plan, registry),
        "clustergrid run, existing MLflow store": lambda: with_runner(experiment, registry, store),
        "clustergrid run, new MLflow store": lambda: with_runner(experiment, registry),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    steps = {}
    for _ in range(args.repeats):  # alternate, so load changes hit every side alike
        for name, side in sides.items():
            started = time.perf_counter()
            steps[name] = side()
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["unique steps called directly, in memory"]
    print(f"experiment: {experiment.name}, {len(plan.combinations)} combinations, "
          f"{len(plan.steps)} unique steps, serial, median of {args.repeats}")
    print("| | steps computed | wall time (s) | overhead |")
    print("|---|---:|---:|---:|")
    for name, seconds in medians.items():
        print(f"| {name} | {steps[name]} | {seconds:.2f} | {100 * (seconds / base - 1):+.1f}% |")


if __name__ == "__main__":
    main()

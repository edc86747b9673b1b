"""Runner overhead: `clustergrid run` against calling the same unique steps directly.

Both sides compute exactly the plan's unique steps, serially, in this process, after
the same imports; the runner adds the cache (disk writes and reads), the MLflow store
(created from scratch) with one child run per combination, and the report. Machines are
shared and noisy, so each side is timed several times, alternating, and the medians are
compared.

    python tests/benchmarks/bench_runner.py [experiments/quickstart.yaml] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from clustergrid import runner
from clustergrid.plan import make_plan
from clustergrid.registry import Registry
from clustergrid.report import write_report
from clustergrid.spec import load_experiment
from clustergrid.stages import build

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
            out[step.key] = {"X": reducer.fit_transform(out[step.parents[0]]["X"])}
        elif step.stage == "cluster":
            clusterer = build(step.components[0], registry, step.seed)
            out[step.key] = {"labels": clusterer.fit_predict(out[step.parents[0]]["X"])}
        else:
            cluster, reduce, data = step.parents
            truth = out[data]["labels"]
            out[step.key] = {
                m.plugin: build(m, registry).compute(out[reduce]["X"], out[cluster]["labels"],
                                                     truth)
                for m in step.components
            }
    return len(plan.steps)


def with_runner(experiment, registry: Registry) -> int:
    """`clustergrid run` as the CLI does it, in a fresh folder: cold cache, new store."""
    folder = tempfile.mkdtemp(prefix="bench-runner-")
    os.chdir(folder)
    summary = runner.run(experiment, registry, workers=1)
    write_report(None, experiment.name, Path(folder) / "report.html")
    assert summary.failed == [], summary.failed
    return summary.step_status["computed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default=str(QUICKSTART))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    registry = Registry.load()
    experiment = load_experiment(args.experiment, registry)
    plan = make_plan(experiment, registry)
    np.random.seed(0)
    times: dict[str, list[float]] = {"direct": [], "runner": []}
    steps = {}
    with_runner(experiment, registry)  # warm-up: first imports of sklearn, mlflow
    for _ in range(args.repeats):
        for name, function in (("direct", direct), ("runner", with_runner)):
            started = time.perf_counter()
            steps[name] = function(plan if name == "direct" else experiment, registry)
            times[name].append(time.perf_counter() - started)
    direct_s, runner_s = (statistics.median(times[k]) for k in ("direct", "runner"))
    print(f"experiment: {experiment.name}, {len(plan.combinations)} combinations, "
          f"{len(plan.steps)} unique steps, median of {args.repeats}")
    print("| | steps computed | wall time (s) |")
    print("|---|---:|---:|")
    print(f"| unique steps called directly | {steps['direct']} | {direct_s:.2f} |")
    print(f"| clustergrid run (cache + MLflow + report) | {steps['runner']} | {runner_s:.2f} |")
    print(f"| overhead | | {100 * (runner_s / direct_s - 1):+.1f}% |")


if __name__ == "__main__":
    main()

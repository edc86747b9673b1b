"""What writing a combination's run in one transaction saves against MLflow's client calls.

A combination's run is written either in one transaction into MLflow's tables (the
default on a local SQLite store whose tables are of a tested revision,
``tracking.WRITER_SCHEMAS``) or through MLflow's public client (``create_run``,
``log_batch``, artifacts, ``set_terminated``). This times both on a realistic grid: the
quickstart with a convolutional autoencoder (20 epochs) in place of the raw pixels,
whose compute is a few seconds per combination. The grid runs once from a cold cache
with the direct writer; then again, from the warm cache into a fresh store, once per
writer and ``--repeats`` times, alternating: a warm run computes nothing and logs every
combination, so the difference between the writers is in what it logs. Reported: the
cold run's time, each writer's time inside ``log_combination`` (median), and the
saving as a share of the cold run.

    python tests/benchmarks/bench_tracking.py [--repeats 3]

Results are printed as Markdown and written to tests/benchmarks/results/tracking.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from clustergrid import runner
from clustergrid.registry import Registry
from clustergrid.spec import parse_experiment
from clustergrid.tracking import Tracker

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).parent / "results"


def timed_run(spec: dict, registry: Registry, store: Path, cache: Path,
              direct: bool) -> tuple[float, float, int]:
    """The run's wall time, the seconds spent writing combinations and how many."""
    spec = {**spec, "tracking": {"uri": str(store)}, "cache": str(cache)}
    experiment = parse_experiment(yaml.safe_dump(spec), registry)
    original_log, original_writes = Tracker.log_combination, Tracker._writes_runs
    spent, count = [0.0], [0]

    def log_combination(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original_log(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start
            count[0] += 1

    Tracker.log_combination = log_combination
    Tracker._writes_runs = original_writes if direct else (lambda self: False)
    try:
        start = time.perf_counter()
        runner.run(experiment, registry)
        return time.perf_counter() - start, spent[0], count[0]
    finally:
        Tracker.log_combination, Tracker._writes_runs = original_log, original_writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    registry = Registry.load()
    spec = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    spec.update(name="tracking", map=None,
                encoders=[{"plugin": "autoencoder", "epochs": 20}])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chdir(tmp)  # runs write nothing into the checkout
        cold, _, combinations = timed_run(spec, registry, folder / "cold", folder / "cache",
                                          direct=True)
        writes: dict[bool, list[float]] = {True: [], False: []}
        for repeat in range(args.repeats):
            for direct in (True, False):
                store = folder / f"store-{repeat}-{direct}"
                writes[direct].append(timed_run(spec, registry, store, folder / "cache",
                                                direct)[1])
    one, client = statistics.median(writes[True]), statistics.median(writes[False])
    text = "\n".join([
        "| grid | combinations | cold run | one transaction | MLflow's client | saved |",
        "|---|---|---|---|---|---|",
        f"| quickstart with an autoencoder | {combinations} | {cold:.1f} s | {one:.2f} s | "
        f"{client:.2f} s | {(client - one) / cold:.1%} of the run |",
    ])
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tracking.md").write_text(text + "\n")


if __name__ == "__main__":
    main()

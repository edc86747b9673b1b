"""A grid through clustergrid against the same grid run from scratch, combination by combination.

The grid: 1 dataset x 3 encoders x 3 reducers x 4 clusterers = 36 combinations, one
seed (1,000 `sim-galaxies` images of 32x32, one band, `normalize`d; `pixels`, `pixels`
with ``downsample: 2``, `morphology`; `none`, `pca` (10), `umap` (5-d, fixed
``random_state``); `kmeans`, `gmm` (diag), `hdbscan`, `agglomerative`; metrics
``ari`` and ``silhouette``).

Two sides, both serial, in this process, after the same imports and a warm-up (UMAP's
and HDBSCAN's JIT compilation, first imports):

- clustergrid: ``runner.run(experiment, registry, workers=1)`` with a cold cache and a
  new MLflow store, in a fresh temporary working directory. Each shared step (the data,
  each encoder, each reducer) is computed once; MLflow logs every combination.
  clustergrid also computes ``reduce.trustworthiness`` for each reducer output, which
  the plain side does not.
- plain: what a notebook does, a loop over the 36 combinations that, for each one,
  simulates the dataset, normalizes it, fits the encoder and encodes, reduces,
  clusters and scores, sharing nothing between combinations and logging nothing.

Both sides instantiate the same plugin classes, whose ``transform`` (encoders) and
``fit_transform`` (reducers) are wrapped in this process with call counters, as are the
dataset's ``read`` (clustergrid's data step reads once, in batches of 256: 4 calls for
1,000 images; the plain loop reads all at once, once per combination). With
``workers=1`` the runner executes every step in this process, so the counters see its
calls. The sides alternate over ``--repeats`` and the medians are compared.

    python tests/benchmarks/bench_grid.py [--repeats 3] [--n-samples 1000]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from clustergrid import runner
from clustergrid.registry import Registry
from clustergrid.spec import Experiment, parse_experiment
from clustergrid.stages import build

GRID = """\
name: bench-grid
seeds: [0]
datasets:
  - plugin: sim-galaxies
    n_samples: {n}
    size: 32
    bands: 1
transforms:
  - plugin: normalize
encoders:
  - plugin: pixels
  - plugin: pixels
    downsample: 2
  - plugin: morphology
reducers:
  - plugin: none
  - plugin: pca
    n_components: 10
  - plugin: umap
    n_components: 5
    random_state: 0
clusterers:
  - plugin: kmeans
    n_clusters: 4
  - plugin: gmm
    n_clusters: 4
    covariance_type: diag
  - plugin: hdbscan
    min_cluster_size: 20
  - plugin: agglomerative
    n_clusters: 4
metrics: [ari, silhouette]
map: null  # no report maps: the plain script draws none either
verdict: null  # nor verdict evidence: bench_verdict.py measures its cost
executor: {{kind: local, workers: 1}}
tracking: {{uri: null}}
"""

#: (kind, method) whose calls are counted
COUNTED = {"dataset": "read", "encoder": "transform", "reducer": "fit_transform"}
CALLS: Counter = Counter()


def count_calls(registry: Registry, experiment: Experiment) -> None:
    """Wrap the counted method of every class the grid uses, once per class."""
    components = [
        *(choice.dataset for choice in experiment.datasets),
        *experiment.encoders, *experiment.reducers,
    ]
    for cls, kind in {(registry.get(c.kind, c.plugin).cls, c.kind) for c in components}:
        method = COUNTED[kind]
        original = getattr(cls, method)

        def counted(self, *args, _original=original, _kind=kind, **kwargs):
            CALLS[_kind] += 1
            return _original(self, *args, **kwargs)

        setattr(cls, method, counted)


def plain(experiment: Experiment, registry: Registry) -> int:
    """Every combination from scratch, as a notebook loop: nothing shared, nothing cached."""
    (seed,) = experiment.seeds
    done = 0
    for choice, encoder_spec, reducer_spec, clusterer_spec in itertools.product(
        experiment.datasets, experiment.encoders, experiment.reducers, experiment.clusterers
    ):
        dataset = build(choice.dataset, registry)
        images = np.asarray(dataset.read(0, len(dataset)), dtype=np.float32)
        truth = np.asarray(dataset.labels())
        for transform in choice.transforms:
            images = build(transform, registry).transform(images)
        encoder = build(encoder_spec, registry, seed)
        X = encoder.fit(images).transform(images)
        reduced = build(reducer_spec, registry, seed).fit_transform(X)
        labels = build(clusterer_spec, registry, seed).fit_predict(reduced)
        scores = {m.plugin: build(m, registry).compute(reduced, labels, truth)
                  for m in experiment.metrics}
        assert len(scores) == len(experiment.metrics)
        done += 1
    return done


def with_clustergrid(experiment: Experiment, registry: Registry) -> int:
    """``runner.run`` with a cold cache and a new store, in a fresh working directory."""
    folder = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    os.chdir(folder)
    experiment = replace(experiment, cache=str(folder / "cache"))
    summary = runner.run(experiment, registry, workers=1)
    assert summary.failed == [], summary.failed
    return summary.finished


def warm_up(experiment: Experiment, registry: Registry) -> None:
    """First imports and JIT compilation (UMAP, HDBSCAN), on a small version of the data."""
    choice = experiment.datasets[0]
    small = replace(choice.dataset,
                    params=tuple({**choice.dataset.kwargs, "n_samples": 200}.items()))
    dataset = build(small, registry)
    images = build(choice.transforms[0], registry).transform(dataset.read(0, len(dataset)))
    X = build(experiment.encoders[0], registry).fit(images).transform(images)
    for encoder in experiment.encoders[1:]:
        build(encoder, registry).fit(images).transform(images)
    for reducer in experiment.reducers:
        reduced = build(reducer, registry, 0).fit_transform(X)
    for clusterer in experiment.clusterers:
        labels = build(clusterer, registry, 0).fit_predict(reduced)
    for metric in experiment.metrics:
        build(metric, registry).compute(reduced, labels, np.asarray(dataset.labels()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=1000)
    args = parser.parse_args()
    registry = Registry.load()
    experiment = parse_experiment(GRID.format(n=args.n_samples), registry)
    warm_up(experiment, registry)
    count_calls(registry, experiment)
    sides = {
        "clustergrid (runner.run, cold cache, new MLflow store)":
            lambda: with_clustergrid(experiment, registry),
        "plain loop, every combination from scratch": lambda: plain(experiment, registry),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    calls: dict[str, Counter] = {}
    combinations: dict[str, int] = {}
    for _ in range(args.repeats):  # alternate, so load changes hit both sides alike
        for name, side in sides.items():
            CALLS.clear()
            started = time.perf_counter()
            combinations[name] = side()
            times[name].append(time.perf_counter() - started)
            calls[name] = Counter(CALLS)
    medians = {name: statistics.median(values) for name, values in times.items()}
    grid, loop = medians.values()
    print(f"grid: {len(experiment.encoders)} encoders x {len(experiment.reducers)} reducers x "
          f"{len(experiment.clusterers)} clusterers on {args.n_samples} sim-galaxies images, "
          f"serial, median of {args.repeats} (all runs: "
          + "; ".join(f"{', '.join(f'{t:.1f}' for t in v)} s" for v in times.values()) + ")")
    print("| | combinations | wall time (s) | dataset reads | encoder calls | reducer calls |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, seconds in medians.items():
        print(f"| {name} | {combinations[name]} | {seconds:.1f} | {calls[name]['dataset']} | "
              f"{calls[name]['encoder']} | {calls[name]['reducer']} |")
    print(f"\nplain / clustergrid wall time: {loop / grid:.2f}x")


if __name__ == "__main__":
    main()

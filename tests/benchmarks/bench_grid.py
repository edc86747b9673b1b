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

``--probes`` measures instead what the representation probes (``knn_accuracy``,
``linear_probe``, computed once per encoder output) cost in that grid: clustergrid alone
runs it with the probes added to the metrics, the probes' ``compute`` timed, as is every
step (each stage function of ``clustergrid.stages``, wrapped in this process). It runs
twice per repeat, alternating: with the probes as they were before they fitted on one
thread (``old_*`` below, copies kept here for this comparison only), and as they are.
The probes' share is their time over the steps' compute time; the target is 10 %. Then
each implementation scores the grid's three encoder outputs, a PCA-10 of the pixels and
the scikit-learn digits pixels, against the old probe's spread over its folds.

    python tests/benchmarks/bench_grid.py --probes [--repeats 1] [--n-samples 1000]
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

from clustergrid import runner, stages
from clustergrid.plugins.metrics.representation import (
    KnnAccuracy,
    LinearProbe,
    _folds,
    _labelled,
    probe_scores,
)
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
metrics: [{metrics}]
map: null  # no report maps: the plain script draws none either
verdict: null  # nor verdict evidence: bench_verdict.py measures its cost
executor: {{kind: local, workers: 1}}
tracking: {{uri: null}}
"""

METRICS = "ari, silhouette"
PROBES = "knn_accuracy, linear_probe"

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


# ------------------------------------------------------------------ the probes' share

NAN = float("nan")


def old_knn_folds(self, X, true_labels) -> np.ndarray | None:
    """The old k-NN probe's accuracy on each fold; None when it is undefined."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    X, truth, classes, smallest = _labelled(X, true_labels, self.max_points, self.seed)
    if len(classes) < 2 or smallest < 2:
        return None
    folds = _folds(self.n_folds, smallest, self.seed)
    n_neighbors = min(self.n_neighbors, len(truth) - len(truth) // folds.n_splits - 1)
    model = KNeighborsClassifier(n_neighbors=max(1, n_neighbors))
    return cross_val_score(model, X, truth, cv=folds)


def old_knn_accuracy(self, X, labels=None, true_labels=None) -> float:
    """``KnnAccuracy.compute`` before it fitted on one thread."""
    accuracy = old_knn_folds(self, X, true_labels)
    return NAN if accuracy is None else float(accuracy.mean())


def old_probe_predictions(self, X, true_labels):
    """The old linear probe's labels, classes, out-of-fold probabilities and folds;
    None when it is undefined."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, truth, classes, smallest = _labelled(X, true_labels, self.max_points, self.seed)
    if len(classes) < 2 or smallest < 2:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=1000))
    folds = _folds(self.n_folds, smallest, self.seed)
    proba = cross_val_predict(model, X, truth, cv=folds, method="predict_proba")
    return truth, classes, proba, folds


def old_probe_scores(predicted) -> dict[str, float | list[float]]:
    """The old linear probe's logged values from ``old_probe_predictions`` (computed
    from the probabilities as they still are)."""
    if predicted is None:
        return {"probe_accuracy": NAN, "probe_auc": NAN}
    truth, classes, proba, _ = predicted
    return probe_scores(truth, classes, proba)


def old_linear_probe(self, X, labels=None, true_labels=None) -> dict[str, float | list[float]]:
    """``LinearProbe.compute`` before it fitted on one thread."""
    return old_probe_scores(old_probe_predictions(self, X, true_labels))


#: implementation -> probe class -> its ``compute``
IMPLEMENTATIONS = {
    "old": {KnnAccuracy: old_knn_accuracy, LinearProbe: old_linear_probe},
    "new": {KnnAccuracy: KnnAccuracy.compute, LinearProbe: LinearProbe.compute},
}
#: "steps", "stage.<stage>", "probes" and each probe's name -> seconds in this process
SECONDS: Counter = Counter()


def timed(function, *names: str):
    """``function``, adding its wall time to ``SECONDS`` under each of ``names``, and the
    process's CPU time under ``<name> cpu``."""
    def wrapper(*args, **kwargs):
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            for name in names:
                SECONDS[name] += time.perf_counter() - started
                SECONDS[f"{name} cpu"] += time.process_time() - cpu
    return wrapper


def use_probes(implementation: str) -> None:
    """Make the probe classes compute with ``implementation``, timed."""
    for cls, compute in IMPLEMENTATIONS[implementation].items():
        cls.compute = timed(compute, "probes", cls.name)


def fold_spread(predicted) -> tuple[float, float]:
    """Standard deviation over the folds of the old probe's accuracy and macro AUC."""
    from sklearn.metrics import roc_auc_score

    truth, classes, proba, folds = predicted
    accuracy, auc = [], []
    for _, test in folds.split(np.zeros(len(truth)), truth):
        accuracy.append(np.mean(classes[proba[test].argmax(1)] == truth[test]))
        auc.append(roc_auc_score(truth[test], proba[test], multi_class="ovr", labels=classes))
    return float(np.std(accuracy)), float(np.std(auc))


def embeddings(experiment: Experiment, registry: Registry) -> dict[str, tuple]:
    """Name -> (features, labels): the grid's encoder outputs, PCA-10 of its pixels, and
    the scikit-learn digits (8x8 pixels)."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    choice = experiment.datasets[0]
    dataset = build(choice.dataset, registry)
    images = build(choice.transforms[0], registry).transform(dataset.read(0, len(dataset)))
    truth = np.asarray(dataset.labels())
    found = {}
    for encoder in experiment.encoders:
        X = build(encoder, registry).fit(images).transform(images)
        found[f"galaxies, {encoder.label()}"] = X, truth
    pixels = next(iter(found.values()))[0]
    found["galaxies, pixels, PCA-10"] = PCA(10, random_state=0).fit_transform(pixels), truth
    digits = load_digits()
    found["digits, 8x8 pixels"] = digits.data.astype(np.float32), digits.target
    return found


def compare_scores(experiment: Experiment, registry: Registry) -> None:
    """Old and new probes on each embedding: time, scores, and the old fold spread."""
    print("\n| embedding | dims | old s | new s | old / new | probe_accuracy old, new "
          "(fold sd) | probe_auc old, new (fold sd) | knn_accuracy old, new (fold sd) | "
          "all within 1 sd |")
    print("|---|---:|---:|---:|---:|---|---|---|---|")
    for name, (X, truth) in embeddings(experiment, registry).items():
        probe, knn = LinearProbe(), KnnAccuracy()
        started = time.perf_counter()
        predicted = old_probe_predictions(probe, X, truth)
        old = old_probe_scores(predicted)
        knn_folds = old_knn_folds(knn, X, truth)
        old_seconds = time.perf_counter() - started
        started = time.perf_counter()
        new = probe.compute(X, None, truth)
        new_knn = knn.compute(X, None, truth)
        new_seconds = time.perf_counter() - started
        sd_accuracy, sd_auc = fold_spread(predicted)
        old_knn, sd_knn = float(knn_folds.mean()), float(np.std(knn_folds))
        within = (abs(new["probe_accuracy"] - old["probe_accuracy"]) <= sd_accuracy
                  and abs(new["probe_auc"] - old["probe_auc"]) <= sd_auc
                  and abs(new_knn - old_knn) <= sd_knn)
        print(f"| {name} | {X.shape[1]} | {old_seconds:.2f} | {new_seconds:.2f} | "
              f"{old_seconds / new_seconds:.1f}x | "
              f"{old['probe_accuracy']:.4f}, {new['probe_accuracy']:.4f} ({sd_accuracy:.4f}) | "
              f"{old['probe_auc']:.4f}, {new['probe_auc']:.4f} ({sd_auc:.4f}) | "
              f"{old_knn:.4f}, {new_knn:.4f} ({sd_knn:.4f}) | {'yes' if within else 'NO'} |")


def probes_share(args, registry: Registry) -> None:
    """The grid with the probes, old and new: their share of the steps' compute time."""
    experiment = parse_experiment(GRID.format(n=args.n_samples,
                                              metrics=f"{METRICS}, {PROBES}"), registry)
    warm_up(experiment, registry)
    for stage in stages.STAGES:
        # Declarations are frozen: only this benchmark wraps their functions, in place.
        object.__setattr__(stage, "run", timed(stage.run, "steps", f"stage.{stage.name}"))
    runs: dict[str, list[Counter]] = {"old": [], "new": []}
    walls: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(args.repeats):  # alternate, so load changes hit both alike
        for implementation in runs:
            use_probes(implementation)
            SECONDS.clear()
            started = time.perf_counter()
            with_clustergrid(experiment, registry)
            walls[implementation].append(time.perf_counter() - started)
            runs[implementation].append(Counter(SECONDS))
    print(f"grid: {len(experiment.encoders)} encoders x {len(experiment.reducers)} reducers x "
          f"{len(experiment.clusterers)} clusterers on {args.n_samples} sim-galaxies images, "
          f"metrics {METRICS}, {PROBES}; clustergrid serial, cold cache; median of "
          f"{args.repeats}; probe steps: {len(experiment.encoders)} (one per encoder output)")
    print("| probes | grid wall (s) | steps' compute (s) | probe stage (s) | knn_accuracy (s) "
          "| linear_probe (s) | probes' CPU (s) | probes' share | share / 10% target |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for implementation, measured in runs.items():
        def median(key, measured=measured):
            return statistics.median(m[key] for m in measured)
        share = statistics.median(m["probes"] / m["steps"] for m in measured)
        print(f"| {implementation} | {statistics.median(walls[implementation]):.1f} | "
              f"{median('steps'):.1f} | {median('stage.probe'):.1f} | "
              f"{median('knn_accuracy'):.2f} | {median('linear_probe'):.2f} | "
              f"{median('probes cpu'):.1f} | {share:.1%} | {share / 0.10:.2f} |")
    print("all runs (probes s / steps s): " + "; ".join(
        f"{name}: " + ", ".join(f"{m['probes']:.1f}/{m['steps']:.1f}" for m in measured)
        for name, measured in runs.items()))
    use_probes("new")
    compare_scores(experiment, registry)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--probes", action="store_true",
                        help="the probes' share of the grid's compute, old and new")
    args = parser.parse_args()
    registry = Registry.load()
    if args.probes:
        probes_share(args, registry)
        return
    experiment = parse_experiment(GRID.format(n=args.n_samples, metrics=METRICS), registry)
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

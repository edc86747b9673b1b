"""What the verdict's evidence costs beside the grid's own compute.

Each grid runs once from a cold cache; every computed step's wall time is summed by
stage. Reported: the grid's own compute (data, encode, probe, reduce, cluster, score,
stability), the report's (map, describe, cards), the evidence's (reference, the reducer's
and the clusterer's null and subsample fits, resampling, calibration) and its share of
the grid's own. "Unshared" is what the evidence would cost if every pipeline refitted
its reducer on the null draws and subsamples itself, as before the reducer's fits became
steps of their own: each clusterer's null and subsample steps counted with the reducer
step they read.

    python tests/benchmarks/bench_evidence.py [--workdir DIR]

Grids: the quickstart (digits, pixels, none and PCA, k-means at 3 ks, 3 seeds); digits
through UMAP with three clusterers after it (k-means, a BIC-chosen mixture, HDBSCAN),
one seed; the quickstart's pipelines on 20,000 points (ten 64-D blobs), where the
evidence's samples (``max_points``) are a twentieth of the data; and the quickstart
with a convolutional autoencoder trained for 20 epochs in place of the raw pixels.
Results are printed as Markdown and written to tests/benchmarks/results/evidence.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

from clustergrid import runner
from clustergrid.registry import Registry
from clustergrid.spec import parse_experiment

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).parent / "results"
GRID = {"data", "encode", "probe", "reduce", "cluster", "score", "stability"}
REPORT = {"map", "describe", "cards"}
UMAP_GRID = {
    "name": "umap-three", "seeds": [0], "datasets": [{"plugin": "digits"}],
    "transforms": [{"plugin": "normalize"}], "encoders": [{"plugin": "pixels"}],
    "reducers": [{"plugin": "umap", "n_components": 5}],
    "clusterers": [{"plugin": "kmeans", "n_clusters": 10},
                   {"plugin": "gmm", "n_clusters": "auto", "k_range": [[5, 12]]},
                   {"plugin": "hdbscan", "min_cluster_size": 15}],
    "metrics": ["ari", "silhouette"], "map": None,
}


LARGE_GRID_DATA = [{"plugin": "blobs", "n_samples": 20000, "n_features": 64, "centers": 10,
                    "cluster_std": 4.0}]


def stage_times(spec: dict, registry: Registry, folder: Path) -> dict[str, float]:
    """Seconds of compute per stage, and ``unshared``: the null and subsample steps as
    if each had refitted its reducer."""
    spec = {**spec, "tracking": {"uri": str(folder / "store")}, "cache": str(folder / "cache")}
    experiment = parse_experiment(yaml.safe_dump(spec), registry)
    outcomes = []
    runner.run(experiment, registry, on_outcome=outcomes.append)
    computed = {o.key: o for o in outcomes if o.status == "computed"}
    times: dict[str, float] = defaultdict(float)
    for outcome in computed.values():
        times[outcome.stage] += outcome.meta.get("wall_time", 0.0)
    from clustergrid.plan import make_plan

    plan = make_plan(experiment, registry)
    unshared = 0.0
    for key, outcome in computed.items():
        if outcome.stage in ("null", "subsample"):
            reduced = next(p for p in plan.steps[key].parents
                           if plan.steps[p].stage.endswith("_reduce"))
            unshared += computed[reduced].meta.get("wall_time", 0.0) if reduced in computed \
                else 0.0
    times["unshared_refits"] = unshared
    return times


def row(name: str, times: dict[str, float]) -> str:
    grid = sum(t for s, t in times.items() if s in GRID)
    report = sum(t for s, t in times.items() if s in REPORT)
    evidence = sum(t for s, t in times.items()
                   if s not in GRID | REPORT and s != "unshared_refits")
    shared_reduce = times.get("null_reduce", 0.0) + times.get("subsample_reduce", 0.0)
    unshared = evidence - shared_reduce + times["unshared_refits"]
    return (f"| {name} | {grid:.1f} s | {report:.1f} s | {evidence:.1f} s | "
            f"{evidence / grid:.0%} | {unshared:.1f} s | {unshared / grid:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    registry = Registry.load()
    quickstart = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    quickstart["map"] = None
    lines = ["| grid | grid's own compute | report's | evidence | its share | unshared "
             "evidence | its share |", "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.workdir.resolve() if args.workdir else Path(tmp)
        os.chdir(tmp)  # runs write nothing into the checkout
        large = {**quickstart, "name": "large", "datasets": LARGE_GRID_DATA, "transforms": []}
        trained = {**quickstart, "name": "trained",
                   "encoders": [{"plugin": "autoencoder", "epochs": 20}]}
        grids = (("quickstart", quickstart), ("UMAP + 3 clusterers", UMAP_GRID),
                 ("quickstart on 20,000 points", large),
                 ("quickstart with an autoencoder", trained))
        for name, spec in grids:
            lines.append(row(name, stage_times(spec, registry, folder / spec["name"])))
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "evidence.md").write_text(text + "\n")


if __name__ == "__main__":
    main()

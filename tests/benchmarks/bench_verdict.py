"""The label-free verdict graded by labels it never sees, and tried on data with nothing
to find.

1. **A battery of shapes** (labelled), one grid each: scikit-learn's moons, circles,
   stretched (anisotropic), unequal-variance and unbalanced groups and groups in uniform
   background noise (``shapes``), in 2-D and some in 10-D; Gaussian blobs of k = 3, 5
   and 8 in 2 to 10 dimensions; digits; the three simulators; and the FR-DEEP radio
   galaxies of ``../shared/data`` (skipped when absent). Points and digits go through
   reducers ``none`` and ``standardize``, images through encoders ``pixels`` and
   ``morphology`` and ``pca`` (10); the clusterers are ``kmeans`` (k = 2, 3, 4, 6, 8 and
   auto), ``gmm`` (auto), ``agglomerative`` (auto) with ward, average and single linkage,
   and ``hdbscan``. Reported per set: the ARI of the verdict's first choice, of the
   pipeline with the highest silhouette, the highest Calinski-Harabasz, the lowest
   Davies-Bouldin, and the best ARI of the grid (the oracle), with their means.
2. **Structureless data**, ``--draws`` seeds each (default 10): images of pure pixel
   noise, and one Gaussian blob in embedding space (``blobs`` with ``centers: 1``), through
   a grid of 12 pipelines. Reported: how many draws the verdict called structureless.
3. **Cost**: the quickstart grid from a cold cache with ``verdict: null`` and with the
   default verdict, alternating, ``--repeats`` times; the median wall times and their ratio.

    python tests/benchmarks/bench_verdict.py [--draws 10] [--repeats 2]
                                             [--only battery|structureless|cost]
                                             [--sets moons,digits] [--workdir DIR]

The tables are printed as Markdown and written to tests/benchmarks/results/verdict.md,
with every pipeline's evidence and ARI in verdict-<dataset>.csv beside it. With
``--workdir`` the runs' stores and caches are kept there, so a second call recomputes
nothing and only re-reads the verdict.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import yaml

from clustergrid import runner
from clustergrid.registry import Registry
from clustergrid.results import load_results, pipeline_names
from clustergrid.spec import parse_experiment
from clustergrid.verdict import recommend

ROOT = Path(__file__).resolve().parents[2]
FRDEEP = ROOT.parent / "shared" / "data" / "frdeep_first"
RESULTS = Path(__file__).parent / "results"

CLUSTERERS = [
    {"plugin": "kmeans", "n_clusters": [2, 3, 4, 6, 8, "auto"]},
    {"plugin": "gmm", "n_clusters": "auto", "k_range": [[2, 10]]},
    {"plugin": "agglomerative", "n_clusters": "auto", "k_range": [[2, 10]],
     "linkage": ["ward", "average", "single"]},
    {"plugin": "hdbscan", "min_cluster_size": 15},
]
IMAGES = {"encoders": [{"plugin": "pixels"}, {"plugin": "morphology"}],
          "reducers": [{"plugin": "pca", "n_components": 10}],
          "transforms": [{"plugin": "normalize"}]}
POINTS = {"encoders": [{"plugin": "pixels"}],
          "reducers": [{"plugin": "none"}, {"plugin": "standardize"}]}
#: what each grid scores besides the verdict's evidence: the indices it is compared with
INDICES = {"silhouette": "max", "calinski_harabasz": "max", "davies_bouldin": "min"}


def _shapes(kind: str, dimensions: int = 2) -> tuple[dict, dict]:
    return {"plugin": "shapes", "kind": kind, "n_samples": 500,
            "n_features": dimensions}, POINTS


BATTERY = {
    **{kind: _shapes(kind) for kind in ("moons", "circles", "anisotropic", "varied",
                                        "unbalanced", "background")},
    **{f"{kind} 10-D": _shapes(kind, 10) for kind in ("moons", "circles", "background")},
    "blobs k=3 2-D": ({"plugin": "blobs", "centers": 3, "n_features": 2, "n_samples": 500},
                      POINTS),
    "blobs k=5 5-D": ({"plugin": "blobs", "centers": 5, "n_features": 5, "n_samples": 500,
                       "cluster_std": 1.5}, POINTS),
    "blobs k=8 10-D": ({"plugin": "blobs", "centers": 8, "n_features": 10, "n_samples": 600,
                        "cluster_std": 2.0}, POINTS),
    "digits": ({"plugin": "digits", "n_samples": 1000}, POINTS),
    "sim-galaxies": ({"plugin": "sim-galaxies", "n_samples": 400, "size": 32}, IMAGES),
    "sim-lenses": ({"plugin": "sim-lenses", "n_samples": 300, "size": 32}, IMAGES),
    "sim-cherenkov": ({"plugin": "sim-cherenkov", "n_samples": 400, "size": 32}, IMAGES),
    # One FR-DEEP image is blank: skipped, as a user would.
    "FR-DEEP": ({"plugin": "images", "path": str(FRDEEP), "labels_from": "folders",
                 "on_error": "skip", "transforms": [{"plugin": "resize", "size": 32}]},
                IMAGES),
}
STRUCTURELESS_GRID = {
    "encoders": [{"plugin": "pixels"}],
    "reducers": [{"plugin": "none"}, {"plugin": "pca", "n_components": 5}],
    "clusterers": [{"plugin": "kmeans", "n_clusters": [2, 4, "auto"]},
                   {"plugin": "gmm", "n_clusters": "auto"},
                   {"plugin": "agglomerative", "n_clusters": "auto"},
                   {"plugin": "hdbscan", "min_cluster_size": 15}],
}
STRUCTURELESS = {
    "pure-noise images": lambda seed: {"plugin": "noise", "n_samples": 400, "size": 16,
                                       "seed": seed},
    "one Gaussian blob": lambda seed: {"plugin": "blobs", "centers": 1, "n_samples": 400,
                                       "seed": seed},
}


def run_grid(name: str, dataset: dict, grid: dict, registry: Registry, folder: Path,
             **extra) -> list:
    """Run one experiment in ``folder`` and return the verdict on its dataset."""
    spec = {"name": name, "seeds": [0], "datasets": [dataset], "map": None,
            "metrics": ["ari"], "executor": {"workers": 2},
            "tracking": {"uri": str(folder / "store")}, "cache": str(folder / "cache"),
            **grid, **extra}
    experiment = parse_experiment(yaml.safe_dump(spec), registry)
    summary = runner.run(experiment, registry)
    frame = load_results(str(folder / "store"), name)
    RESULTS.mkdir(exist_ok=True)
    frame.to_csv(RESULTS / f"verdict-{folder.name}.csv", index=False)
    return recommend(frame), summary, frame


def battery(registry: Registry, tmp: Path, sets: list[str] | None) -> list[str]:
    columns = ["verdict", "silhouette", "calinski_harabasz", "davies_bouldin", "oracle"]
    rows = ["| dataset | verdict's first choice | " + " | ".join(
                f"ARI: {c}" for c in columns) + " | structure |",
            "|---|---|" + "---|" * (len(columns) + 1)]
    scores: dict[str, list[float]] = {c: [] for c in columns}
    for label, (dataset, grid) in BATTERY.items():
        if sets and label not in sets:
            continue
        if dataset["plugin"] == "images" and not FRDEEP.is_dir():
            rows.append(f"| {label} | skipped: {FRDEEP} is absent |" + " |" * (len(columns) + 1))
            continue
        folder = tmp / label.replace(" ", "_").replace("=", "")
        grid = {"clusterers": CLUSTERERS, **grid,
                "metrics": ["ari", *INDICES]}
        (verdict,), _, frame = run_grid("battery", dataset, grid, registry, folder)
        picks = {"verdict": verdict.grade["choice"], "oracle": verdict.grade["best"],
                 **{index: index_choice(frame, index, way) for index, way in INDICES.items()}}
        for column in columns:
            scores[column].append(picks[column])
        rows.append(f"| {label} | {verdict.choice.pipeline} | " + " | ".join(
            f"{picks[c]:.3f}" for c in columns) + f" | {'yes' if verdict.structure else 'no'} |")
        print(rows[-1], flush=True)
    rows.append(f"| **mean** ({len(scores['oracle'])} sets) | | " + " | ".join(
        f"**{statistics.mean(scores[c]):.3f}**" for c in columns) + " | |")
    return ["### A battery of shapes, digits and the simulators", "", *rows]


def index_choice(frame, index: str, way: str) -> float:
    """The ARI of the pipeline an internal index would choose (best mean over seeds)."""
    by_pipeline = frame.groupby(pipeline_names(frame))[[index, "ari"]].mean().dropna(
        subset=[index])
    chosen = by_pipeline[index].idxmax() if way == "max" else by_pipeline[index].idxmin()
    return float(by_pipeline.loc[chosen, "ari"])


def structureless(registry: Registry, tmp: Path, draws: int) -> list[str]:
    rows = ["| data | draws | called structureless | pipelines per draw |", "|---|---|---|---|"]
    for label, dataset in STRUCTURELESS.items():
        empty = 0
        for seed in range(draws):
            folder = tmp / f"{label.replace(' ', '_')}-{seed}"
            (verdict,), _, _ = run_grid("structureless", dataset(seed), STRUCTURELESS_GRID,
                                     registry, folder)
            empty += not verdict.structure
            print(f"{label} draw {seed}: structure={verdict.structure} "
                  f"(first: {verdict.choice.pipeline}, p={verdict.choice.p_value:.2g})",
                  flush=True)
        rows.append(f"| {label} | {draws} | {empty} | {len(verdict.ranking)} |")
    return ["### Structureless data", "", *rows]


def cost(registry: Registry, tmp: Path, repeats: int) -> list[str]:
    spec = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(repeats):
        for side, verdict in (("without", None), ("with", {})):
            folder = Path(tempfile.mkdtemp(dir=tmp))  # a cold cache every time
            spec_here = {**spec, "verdict": verdict,
                         "tracking": {"uri": str(folder / "store")},
                         "cache": str(folder / "cache")}
            experiment = parse_experiment(yaml.safe_dump(spec_here), registry)
            times[side].append(runner.run(experiment, registry).wall_time)
            print(f"quickstart {side} verdict: {times[side][-1]:.1f} s", flush=True)
    without, with_ = statistics.median(times["without"]), statistics.median(times["with"])
    return ["### Cost on the quickstart grid", "",
            f"| verdict | wall time (median of {repeats}) |", "|---|---|",
            f"| none | {without:.1f} s |", f"| default | {with_:.1f} s |", "",
            f"Ratio: {with_ / without:.2f}."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", choices=["battery", "structureless", "cost"])
    parser.add_argument("--sets", help="comma-separated battery sets (default: all)")
    parser.add_argument("--workdir", type=Path, help="keep the runs' stores and caches here")
    args = parser.parse_args()
    registry = Registry.load()
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.workdir.resolve() if args.workdir else Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        os.chdir(tmp)  # runs write nothing into the checkout
        if args.only in (None, "battery"):
            sets = args.sets.split(",") if args.sets else None
            parts += [*battery(registry, tmp, sets), ""]
        if args.only in (None, "structureless"):
            parts += [*structureless(registry, tmp, args.draws), ""]
        if args.only in (None, "cost"):
            parts += cost(registry, tmp, args.repeats)
    text = "\n".join(parts)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "verdict.md").write_text(text + "\n")


if __name__ == "__main__":
    main()

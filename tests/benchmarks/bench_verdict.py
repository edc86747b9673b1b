"""The label-free verdict graded by labels it never sees, and tried on data with nothing
to find.

1. **Structured data** (labelled): digits, the three simulators, Gaussian blobs of k = 3,
   5 and 8, and the FR-DEEP radio galaxies of ``../shared/data`` (skipped when absent).
   Each runs one grid: encoders ``pixels`` (and ``morphology`` for images), reducer
   ``pca`` (10) or none for blobs, clusterers ``kmeans`` at k = 2, 3, 4, 6, 8 and auto,
   ``gmm`` and ``agglomerative`` at auto, ``hdbscan``. Reported: the ARI of the verdict's
   first choice, the best ARI of the same grid, their gap, and whether the verdict saw
   structure. On blobs, the k that each ``auto`` clusterer chose.
2. **Structureless data**, ``--draws`` seeds each (default 10): images of pure pixel
   noise, and one Gaussian blob in embedding space (``blobs`` with ``centers: 1``), through
   a grid of 12 pipelines. Reported: how many draws the verdict called structureless.
3. **Cost**: the quickstart grid from a cold cache with ``verdict: null`` and with the
   default verdict, alternating, ``--repeats`` times; the median wall times and their ratio.

    python tests/benchmarks/bench_verdict.py [--draws 10] [--repeats 2] [--only structured]
                                             [--workdir DIR]

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
from clustergrid.results import load_results
from clustergrid.spec import parse_experiment
from clustergrid.verdict import recommend

ROOT = Path(__file__).resolve().parents[2]
FRDEEP = ROOT.parent / "shared" / "data" / "frdeep_first"
RESULTS = Path(__file__).parent / "results"

CLUSTERERS = [
    {"plugin": "kmeans", "n_clusters": [2, 3, 4, 6, 8, "auto"]},
    {"plugin": "gmm", "n_clusters": "auto", "k_range": [[2, 10]]},
    {"plugin": "agglomerative", "n_clusters": "auto", "k_range": [[2, 10]]},
    {"plugin": "hdbscan", "min_cluster_size": 15},
]
IMAGES = {"encoders": [{"plugin": "pixels"}, {"plugin": "morphology"}],
          "reducers": [{"plugin": "pca", "n_components": 10}],
          "transforms": [{"plugin": "normalize"}]}
EMBEDDED = {"encoders": [{"plugin": "pixels"}], "reducers": [{"plugin": "none"}]}

STRUCTURED = {
    "digits": ({"plugin": "digits", "n_samples": 1000}, IMAGES),
    "sim-galaxies": ({"plugin": "sim-galaxies", "n_samples": 400, "size": 32}, IMAGES),
    "sim-lenses": ({"plugin": "sim-lenses", "n_samples": 300, "size": 32}, IMAGES),
    "sim-cherenkov": ({"plugin": "sim-cherenkov", "n_samples": 400, "size": 32}, IMAGES),
    **{f"blobs k={k}": ({"plugin": "blobs", "centers": k, "n_samples": 600}, EMBEDDED)
       for k in (3, 5, 8)},
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
    return recommend(frame), summary


def structured(registry: Registry, tmp: Path) -> list[str]:
    rows = ["| dataset | first choice (verdict) | its ARI | best ARI | gap | structure |",
            "|---|---|---|---|---|---|"]
    ks = ["| blobs | kmeans auto | gmm auto | agglomerative auto |", "|---|---|---|---|"]
    for label, (dataset, grid) in STRUCTURED.items():
        if dataset["plugin"] == "images" and not FRDEEP.is_dir():
            rows.append(f"| {label} | skipped: {FRDEEP} is absent | | | | |")
            continue
        folder = tmp / label.replace(" ", "_").replace("=", "")
        grid = {"clusterers": CLUSTERERS, **grid}
        (verdict,), _ = run_grid("structured", dataset, grid, registry, folder)
        g = verdict.grade
        rows.append(f"| {label} | {verdict.choice.pipeline} | {g['choice']:.3f} | "
                    f"{g['best']:.3f} | {g['best'] - g['choice']:.3f} | "
                    f"{'yes' if verdict.structure else 'no'} |")
        print(rows[-1], flush=True)
        if dataset["plugin"] == "blobs":
            chosen = {a.pipeline.split(" / ")[-1].split("[")[0]: a.clusters
                      for a in verdict.ranking if "n_clusters=auto" in a.pipeline}
            ks.append(f"| k = {dataset['centers']} | {chosen['kmeans']:.0f} | "
                      f"{chosen['gmm']:.0f} | {chosen['agglomerative']:.0f} |")
    return ["### Structured data", "", *rows, "", "### k chosen without labels", "", *ks]


def structureless(registry: Registry, tmp: Path, draws: int) -> list[str]:
    rows = ["| data | draws | called structureless | pipelines per draw |", "|---|---|---|---|"]
    for label, dataset in STRUCTURELESS.items():
        empty = 0
        for seed in range(draws):
            folder = tmp / f"{label.replace(' ', '_')}-{seed}"
            (verdict,), _ = run_grid("structureless", dataset(seed), STRUCTURELESS_GRID,
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
    parser.add_argument("--only", choices=["structured", "structureless", "cost"])
    parser.add_argument("--workdir", type=Path, help="keep the runs' stores and caches here")
    args = parser.parse_args()
    registry = Registry.load()
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.workdir.resolve() if args.workdir else Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        os.chdir(tmp)  # runs write nothing into the checkout
        if args.only in (None, "structured"):
            parts += [*structured(registry, tmp), ""]
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

"""Does ``gmm`` finish on the data users gave it? Every covariance type at a few ks, on
standardised digits and on simulated galaxy pixels, fitted as the cluster stage fits it.

Each dataset goes through the runner's own data, encode and reduce stages
(``run_step``): digits / pixels / standardize (64 dimensions, 1,797 points) and
sim-galaxies / pixels / none (``--size`` x ``--size`` stamps in one band, ``--n``
stamps). The embeddings are stored as float32; ``gmm`` is then fitted at each k as the
cluster stage does for a fixed k (``clusterer_input``, the cast to the clusterer's
declared ``dtype``, float64, then its ``_fit``), and, for comparison, on the float32
embeddings as stored, which is what the stage gave it before. A cell reads ``ok`` with
the wall time and EM iterations, or the error's start. Last, the rate the dry run's
rough times assume is measured where its warnings apply: a full-covariance mixture
(k=4, 5 EM iterations) on 2,000 Gaussian points in 512 dimensions, in multiply-adds
(as ``clustergrid.costs`` counts them) per second of wall time. One BLAS thread.

    python tests/benchmarks/bench_mixtures.py [--ks 2,5,10] [--seeds 0] [--n 400] [--size 16]

The table is printed as Markdown and written to tests/benchmarks/results/mixtures.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from clustergrid import costs
from clustergrid.cache import Cache
from clustergrid.plan import make_plan
from clustergrid.registry import Registry
from clustergrid.spec import Component, parse_experiment
from clustergrid.stages import build, clusterer_input, run_step

ROOT = Path(__file__).resolve().parents[2]
COVARIANCES = ("full", "tied", "diag", "spherical")

EXPERIMENT = """\
name: bench-mixtures
datasets:
  - plugin: digits
  - plugin: sim-galaxies
    n_samples: {n}
    size: {size}
    bands: 1
encoders:
  - plugin: pixels
reducers:
  - plugin: {reducer}
clusterers:
  - plugin: gmm
metrics: [silhouette]
verdict: null
"""


def embeddings(n: int, size: int, registry: Registry, folder: Path) -> dict[str, np.ndarray]:
    """name -> the float32 embeddings the cluster stage would load."""
    cache = Cache(folder)
    found = {}
    for label, reducer, plugin in (("digits / pixels / standardize", "standardize", "digits"),
                                   ("sim-galaxies / pixels / none", "none", "sim-galaxies")):
        text = EXPERIMENT.format(n=n, size=size, reducer=reducer)
        plan = make_plan(parse_experiment(text, registry), registry)
        combination = next(c for c in plan.combinations if c.dataset.dataset.plugin == plugin)
        for stage in ("data", "encode", "reduce"):
            step = plan.steps[combination.steps[stage]]
            if not cache.has(step.key):
                run_step(step, cache, registry)
        found[label] = cache.load(combination.steps["reduce"], "X")
    return found


def fit(registry: Registry, X: np.ndarray, covariance: str, k: int, seed: int,
        cast: bool) -> str:
    """A cell of the table."""
    component = Component("clusterer", "gmm", (("covariance_type", covariance),
                                               ("n_clusters", k), ("random_state", seed)))
    gmm = build(component, registry)
    data = clusterer_input(gmm, X) if cast else X
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: counted as iterations
            _, model = gmm._fit(data, k)
    except Exception as exc:
        return f"FAILED {type(exc).__name__}: {str(exc)[:40]}"
    return f"ok {time.perf_counter() - started:.2f} s, {model.n_iter_} it"


def rate(n: int = 2000, d: int = 512, k: int = 4, iterations: int = 5) -> float:
    """Multiply-adds per second of a full-covariance fit in high dimension, as counted by
    ``costs.MixtureCost`` (the initialisation's M-step counted as one more iteration)."""
    from sklearn.mixture import GaussianMixture

    X = np.random.default_rng(0).standard_normal((n, d))
    model = GaussianMixture(k, max_iter=iterations, tol=0.0, random_state=0,
                            init_params="random_from_data")
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: it is stopped on purpose
        model.fit(X)
    elapsed = time.perf_counter() - started
    cost = costs.MixtureCost(n=n, d=d, ks=(k,), covariance_type="full")
    return cost.per_iteration() * (model.n_iter_ + 1) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="2,5,10")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--n", type=int, default=400, help="simulated stamps")
    parser.add_argument("--size", type=int, default=16, help="stamp side in pixels")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    registry = Registry.load()
    rows = ["| data | d | covariance | k | seed | float64 (the stage now) | float32 (before) |",
            "|---|---|---|---|---|---|---|"]
    failures, fits = 0, 0
    with tempfile.TemporaryDirectory() as folder, threadpool_limits(1):
        for label, X in embeddings(args.n, args.size, registry, Path(folder)).items():
            for covariance in COVARIANCES:
                for k in ks:
                    for seed in seeds:
                        now = fit(registry, X, covariance, k, seed, cast=True)
                        before = fit(registry, X, covariance, k, seed, cast=False)
                        fits += 1
                        failures += now.startswith("FAILED")
                        rows.append(f"| {label} | {X.shape[1]} | {covariance} | {k} | {seed} "
                                    f"| {now} | {before} |")
                        print(rows[-1], flush=True)
        measured = rate()
    summary = (f"\n{fits - failures} of {fits} float64 fits finished. Full covariances in 512 "
               f"dimensions ran at {measured:.1e} multiply-adds/s on one BLAS thread (the "
               f"dry run assumes {costs.MULTIPLY_ADDS_PER_SECOND:.0e}).\n")
    table = "\n".join(rows) + "\n" + summary
    print(summary)
    out = ROOT / "tests" / "benchmarks" / "results" / "mixtures.md"
    out.write_text(table)
    print(f"written to {out}")


if __name__ == "__main__":
    main()

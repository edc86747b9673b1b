"""Orientation-free embeddings graded by labels: each encoder with and without
``symmetry: d4`` on the simulated galaxies and lenses, and on the FR-DEEP radio galaxies
of ``../shared/data/frdeep_first`` (skipped when absent).

Each dataset goes through the runner's own data and encode stages (``run_step``), after
``normalize`` (FR-DEEP resized to 32x32 first). Reported per encoder: the ARI of k-means
(k = the number of classes, 10 initialisations) on PCA to 10 dimensions, the
``linear_probe`` ROC AUC (on PCA to 50 dimensions), the verdict's ranking score
``gap`` of that k-means clustering against its Gaussian null (5 draws, the verdict's
default), and the encode wall time with d4 over the time without (the encoder's
``transform`` runs 8 times; a trained encoder is fitted once either way).

    python tests/benchmarks/bench_symmetry.py [--autoencoder] [--n 400]

``--autoencoder`` adds a small ``autoencoder`` (5 epochs on the CPU; about a minute more
per dataset on 2 cores). The table is printed as Markdown and written to
tests/benchmarks/results/symmetry.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from clustergrid import evidence
from clustergrid.cache import Cache
from clustergrid.plan import Step, config_hash
from clustergrid.plugins.metrics.representation import LinearProbe
from clustergrid.registry import Registry
from clustergrid.spec import Component
from clustergrid.stages import run_step
from clustergrid.symmetry import options

ROOT = Path(__file__).resolve().parents[2]
FRDEEP = ROOT.parent / "shared" / "data" / "frdeep_first"
RESULTS = Path(__file__).parent / "results"
#: the verdict's defaults (``verdict:`` in an experiment file)
NULL_DRAWS, MAX_POINTS = 5, 1000

NORMALIZE = Component("transform", "normalize", ())
ENCODERS = [Component("encoder", "pixels", ()), Component("encoder", "morphology", ())]
AUTOENCODER = Component("encoder", "autoencoder", (
    ("latent_dim", 16), ("depth", 2), ("channels", 8), ("epochs", 5), ("batch_size", 32),
    ("device", "cpu"), ("random_state", 0)))


def datasets(n: int) -> dict[str, tuple[Component, ...] | None]:
    """Each dataset's chain (dataset, then transforms), or None when it is absent."""
    frdeep = (Component("dataset", "images", (
        ("path", str(FRDEEP)), ("labels_from", "folders"), ("on_error", "skip"))),
        Component("transform", "resize", (("size", 32),)), NORMALIZE)
    return {
        "sim-galaxies": (Component("dataset", "sim-galaxies", (("n_samples", n),
                                                               ("size", 32))), NORMALIZE),
        "sim-lenses": (Component("dataset", "sim-lenses", (("n_samples", n), ("size", 32))),
                       NORMALIZE),
        "FR-DEEP": frdeep if FRDEEP.is_dir() else None,
    }


def pipeline(X: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, space)`` of the graded pipeline: PCA to 10 dimensions, k-means."""
    space = PCA(n_components=min(10, X.shape[1], len(X)), random_state=seed).fit_transform(X)
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(space), space


def verdict_gap(X: np.ndarray, labels: np.ndarray, space: np.ndarray, k: int,
                draws: int = NULL_DRAWS) -> float:
    """The verdict's ranking score, as its ``null`` and ``calibration`` steps compute it:
    the mean log W of the same pipeline refitted on draws from the embedding's Gaussian
    null, minus the clustering's own log W (higher: more structure than chance)."""
    model = evidence.gaussian_model(X, MAX_POINTS)
    null = []
    for draw in range(draws):
        data = evidence.draw_reference(model["mean"], model["axes"], min(len(X), MAX_POINTS),
                                       seed=draw)
        null_labels, null_space = pipeline(data, k, seed=draw)
        null.append(evidence.log_dispersion(null_space, null_labels, MAX_POINTS))
    return float(np.mean(null) - evidence.log_dispersion(space, labels, MAX_POINTS))


def grade(X: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(ARI of k-means on PCA-10 against the classes, linear-probe ROC AUC, the
    verdict's gap of that clustering)."""
    known = truth >= 0
    X, truth = X[known], truth[known]
    k = len(np.unique(truth))
    labels, space = pipeline(X, k)
    # The probe reads PCA-50 features: on 1,024 raw pixels its logistic regression
    # takes minutes to converge on 2 cores.
    probe = PCA(n_components=min(50, X.shape[1], len(X)), random_state=0).fit_transform(X)
    auc = LinearProbe().compute(probe, None, truth)["probe_auc"]
    return adjusted_rand_score(truth, labels), float(auc), verdict_gap(X, labels, space, k)


def bench(chain: tuple[Component, ...], encoders: list[Component], registry: Registry,
          cache: Cache) -> list[tuple]:
    """Per encoder: ARI, AUC and gap without, then with d4, and the encode time ratio."""
    data = config_hash(["data", [c.label() for c in chain]])
    run_step(Step("data", data, chain), cache, registry)
    truth = cache.load(data, "labels")
    rows = []
    for encoder in encoders:
        scores, times = [], []
        for chosen in ((), options("d4")):
            key = config_hash(["encode", data, encoder.label(), list(chosen)])
            meta = run_step(Step("encode", key, (encoder,), (data,), None, chosen),
                            cache, registry)
            times.append(meta["wall_time"])
            scores.append(grade(cache.load(key, "X"), truth))
        rows.append((encoder.label(), *scores[0], *scores[1], times[1] / times[0]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400, help="simulated images per dataset")
    parser.add_argument("--autoencoder", action="store_true")
    args = parser.parse_args()
    registry = Registry.load()
    encoders = [*ENCODERS, *([AUTOENCODER] if args.autoencoder else [])]
    lines = ["| dataset | encoder | ARI | ARI d4 | probe AUC | probe AUC d4 | gap | gap d4 "
             "| encode time d4 / none |",
             "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Cache(tmp)
        for name, chain in datasets(args.n).items():
            if chain is None:
                lines.append(f"| {name} | skipped: {FRDEEP} is absent | | | | | | | |")
                print(lines[-1], flush=True)
                continue
            for label, ari, auc, gap, ari_d4, auc_d4, gap_d4, ratio in bench(
                    chain, encoders, registry, cache):
                lines.append(f"| {name} | {label.split('[')[0]} | {ari:.3f} | {ari_d4:.3f} | "
                             f"{auc:.3f} | {auc_d4:.3f} | {gap:.3f} | {gap_d4:.3f} | "
                             f"{ratio:.1f}x |")
                print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "symmetry.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""The ``tsne`` reducer (openTSNE) against scikit-learn's Barnes-Hut t-SNE: time and quality.

Run as a script (not collected by pytest)::

    python tests/benchmarks/bench_tsne.py --sizes 10000,100000

Data: that of ``bench_clustering.py`` (``make_blobs``, 10 centres in 64 dimensions,
float32, seed 0). At each size clustergrid's ``tsne`` and ``sklearn.manifold.TSNE``
(``method="barnes_hut"``) embed the same points in 2-d with the same settings:
perplexity 30, PCA initialisation, 1,000 iterations of which the first 250 have early
exaggeration 12, a learning rate chosen from the number of points, seed 0, and the same
number of threads (``--threads``, default all cores; scikit-learn's gradient runs on
OpenMP threads, limited to as many). scikit-learn runs only up to ``--sklearn-limit``
points. Both run in this one process, one after the other, after an untimed warm-up on
500 points that pays for imports.

Speed must not come from a worse embedding, so each embedding is also scored:
``trustworthiness`` (scikit-learn, 10 neighbours; 1 means no point has a neighbour in
the embedding that it lacks in the data) on the same random subsample of
``--quality-sample`` points, and the kNN agreement: the fraction of points whose 10
nearest neighbours in the embedding are mostly from its own generating blob. The KL
divergence each library reports is shown too (each computed with its own approximation),
and the CPU seconds of the process (all threads), which a loaded machine inflates less
than wall-clock seconds.

Both libraries run on one OpenMP runtime (their wheels bundle the same libgomp, loaded
once), whose idle threads by default spin for some milliseconds after each parallel
loop: through openTSNE's single-threaded FFT step and scikit-learn's serial tree
building they take cores the timed code needs when the machine is busy with other work.
The header names ``OMP_WAIT_POLICY`` as set in the environment (``passive`` stops the
spinning; it must be set before Python starts), and each line the load average after
that run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
from bench_clustering import N_CENTERS, _data

PERPLEXITY = 30.0
MAX_ITER = 1000
SEED = 0


def _clustergrid(threads: int) -> Callable[[np.ndarray], tuple[np.ndarray, float]]:
    from clustergrid.plugins.reducers.tsne import TSNE

    def embed(X: np.ndarray) -> tuple[np.ndarray, float]:
        reducer = TSNE(perplexity=PERPLEXITY, max_iter=MAX_ITER, initialization="pca",
                       n_jobs=threads, random_state=SEED)
        return reducer.fit_transform(X), reducer.metrics_["kl_divergence"]

    return embed


def _sklearn(threads: int) -> Callable[[np.ndarray], tuple[np.ndarray, float]]:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    def embed(X: np.ndarray) -> tuple[np.ndarray, float]:
        model = TSNE(perplexity=PERPLEXITY, max_iter=MAX_ITER, init="pca",
                     learning_rate="auto", method="barnes_hut", n_jobs=threads,
                     random_state=SEED)
        # n_jobs is only its neighbour search; the gradient's threads are OpenMP's.
        with threadpool_limits(limits=threads, user_api="openmp"):
            out = model.fit_transform(X)
        return out.astype(np.float32), float(model.kl_divergence_)

    return embed


def _knn_agreement(embedding: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    from sklearn.neighbors import NearestNeighbors

    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(
        embedding, return_distance=False)[:, 1:]
    return float(np.mean((truth[neighbours] == truth[:, None]).mean(axis=1) > 0.5))


def _quality(X: np.ndarray, embedding: np.ndarray, truth: np.ndarray,
             sample: np.ndarray) -> dict[str, float]:
    from sklearn.manifold import trustworthiness

    return {"trustworthiness": float(trustworthiness(X[sample], embedding[sample],
                                                     n_neighbors=10)),
            "knn_agreement": _knn_agreement(embedding, truth)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000",
                        help="comma-separated numbers of points (default 10000)")
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads for both libraries (default all cores)")
    parser.add_argument("--sklearn-limit", type=int, default=20_000,
                        help="run scikit-learn only up to this many points")
    parser.add_argument("--quality-sample", type=int, default=2000,
                        help="points in the trustworthiness subsample")
    args = parser.parse_args(argv)

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    methods = {"clustergrid tsne (openTSNE)": _clustergrid(args.threads),
               "sklearn TSNE (Barnes-Hut)": _sklearn(args.threads)}
    print(f"# t-SNE benchmark: make_blobs, {args.dims}-d, {N_CENTERS} centres, float32; "
          f"perplexity {PERPLEXITY:g}, pca init, {MAX_ITER} iterations, "
          f"{args.threads} threads, OMP_WAIT_POLICY "
          f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}", file=sys.stderr)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}", file=sys.stderr)
    warmup, _, _ = _data(500, args.dims)
    for embed in methods.values():
        embed(warmup)  # imports, thread pools

    rows = []
    for n in sizes:
        X, _, truth = _data(n, args.dims)
        sample = np.random.default_rng(SEED).choice(n, size=min(n, args.quality_sample),
                                                    replace=False)
        seconds = {}
        for label, embed in methods.items():
            if label.startswith("sklearn") and n > args.sklearn_limit:
                continue
            start, cpu = time.perf_counter(), time.process_time()
            embedding, kl = embed(X)
            seconds[label] = time.perf_counter() - start
            cpu = time.process_time() - cpu
            scores = _quality(X, embedding, truth, sample)
            rows.append((n, label, seconds[label], cpu, scores["trustworthiness"],
                         scores["knn_agreement"], kl))
            print(f"n={n:>7,d} {label:28s} {seconds[label]:8.1f} s ({cpu:.1f} s CPU)  "
                  "trustworthiness "
                  f"{scores['trustworthiness']:.4f}  kNN agreement "
                  f"{scores['knn_agreement']:.4f}  KL {kl:.3f}  (load average "
                  f"{os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
        if len(seconds) == 2:
            ours, theirs = seconds.values()
            rows.append((n, "ratio (sklearn s / openTSNE s)", theirs / ours, None, None,
                         None, None))

    print()
    print(f"| points | t-SNE | seconds | CPU seconds | trustworthiness "
          f"({args.quality_sample:,} sampled) | kNN agreement | KL |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n, label, value, cpu, trust, agreement, kl in rows:
        if trust is None:
            print(f"| {n:,} | **{label}** | **{value:.1f}x** | | | | |")
        else:
            print(f"| {n:,} | {label} | {value:.1f} | {cpu:.1f} | {trust:.4f} | "
                  f"{agreement:.4f} | {kl:.3f} |")


if __name__ == "__main__":
    main()

"""Time and memory of every built-in reducer, clusterer and metric on blob data.

Run as a script (not collected by pytest)::

    python tests/benchmarks/bench_clustering.py --sizes 10000,100000

Data: ``make_blobs`` with 10 centres in 64 dimensions (float32, seed 0); metrics get
the true blob labels with 5% turned into noise as the clustering. Each measurement
runs in a fresh subprocess, after an untimed warm-up on 500 points (5,000 for umap)
that pays for imports and numba compilation once, as a grid worker would. The table
gives each step's wall-clock seconds, the process's peak resident memory during the
step (Linux ``VmHWM``, reset after the warm-up; ``ru_maxrss`` elsewhere), which counts
native allocations by numba, Cython and BLAS that ``tracemalloc`` would miss, and how
far above the resident memory before the step (libraries and data) that peak went.
Steps whose cost grows as n^2 (spectral, agglomerative, exact silhouette; not t-SNE,
which openTSNE computes from nearest neighbours and an FFT-interpolated gradient) are
skipped above ``--quadratic-limit`` points; a step over ``--timeout`` seconds or
``--max-memory-gb`` is stopped and reported as such.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

N_CENTERS = 10


@dataclass(frozen=True)
class Case:
    """One component with the settings it is benchmarked with."""

    kind: str
    label: str
    make: Callable[[], Any]
    quadratic: bool = False
    #: points in the untimed warm-up run; umap-learn compiles its nearest-neighbour
    #: descent (used from 4,096 points up) only when it first runs it.
    warmup: int = 500


def _cases() -> list[Case]:
    from clustergrid.plugins.clusterers.agglomerative import Agglomerative
    from clustergrid.plugins.clusterers.birch import Birch
    from clustergrid.plugins.clusterers.dbscan import DBSCAN
    from clustergrid.plugins.clusterers.gmm import GaussianMixture
    from clustergrid.plugins.clusterers.hdbscan import HDBSCAN
    from clustergrid.plugins.clusterers.kmeans import KMeans
    from clustergrid.plugins.clusterers.minibatch_kmeans import MiniBatchKMeans
    from clustergrid.plugins.clusterers.spectral import Spectral
    from clustergrid.plugins.metrics import external, internal
    from clustergrid.plugins.reducers.pca import PCA
    from clustergrid.plugins.reducers.standardize import Standardize
    from clustergrid.plugins.reducers.tsne import TSNE
    from clustergrid.plugins.reducers.umap import UMAP

    k = N_CENTERS
    cases = [
        Case("reducer", "standardize", Standardize),
        Case("reducer", "pca (10)", lambda: PCA(n_components=10)),
        Case("reducer", "pca (0.9 variance)", lambda: PCA(n_components=0.9)),
        Case("reducer", "umap (5-d, 15 nn)", lambda: UMAP(n_components=5, random_state=0),
             warmup=5_000),
        Case("reducer", "tsne (2-d, openTSNE)", lambda: TSNE(random_state=0)),
        Case("clusterer", f"kmeans (k={k})", lambda: KMeans(k, random_state=0)),
        Case("clusterer", "kmeans (auto, k 2-10)",
             lambda: KMeans("auto", k_range=[2, 10], random_state=0)),
        Case("clusterer", f"minibatch-kmeans (k={k})", lambda: MiniBatchKMeans(k, random_state=0)),
        Case("clusterer", f"gmm (k={k}, full)", lambda: GaussianMixture(k, random_state=0)),
        Case("clusterer", "gmm (auto bic, k 2-10, diag)",
             lambda: GaussianMixture("auto", covariance_type="diag", criterion="bic",
                                     random_state=0)),
        Case("clusterer", "hdbscan (min_cluster_size=50)", lambda: HDBSCAN(min_cluster_size=50)),
        Case("clusterer", "dbscan (eps=10, min_samples=10)",
             lambda: DBSCAN(eps=10.0, min_samples=10)),
        Case("clusterer", f"birch (k={k}, threshold=8)", lambda: Birch(k, threshold=8.0)),
        Case("clusterer", f"agglomerative (k={k}, ward)", lambda: Agglomerative(k),
             quadratic=True),
        Case("clusterer", f"spectral (k={k}, 10-nn graph)", lambda: Spectral(k, random_state=0),
             quadratic=True),
        Case("metric", "silhouette (exact)", lambda: internal.Silhouette(max_exact=10**12),
             quadratic=True),
        Case("metric", "silhouette (sampled, 5 x 2000)",
             lambda: internal.Silhouette(max_exact=0, sample_size=2000, n_repeats=5)),
    ]
    for metric in (*internal.METRICS, *external.METRICS):
        if metric is not internal.Silhouette:
            cases.append(Case("metric", metric.name, metric))
    return cases


def _data(n: int, dims: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n, n_features=dims, centers=N_CENTERS, random_state=0)
    labels = y.copy()
    labels[np.random.default_rng(0).random(n) < 0.05] = -1
    return X.astype(np.float32), labels, y


def _status_mib(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in MiB; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _maxrss_mib() -> float:
    # ru_maxrss is in KiB on Linux and bytes on macOS. It survives exec, so a child
    # inherits its parent's peak: only a fallback where VmHWM cannot be reset.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _child(label: str, data_dir: str) -> None:
    """Run one case in this (fresh) process and print its measurements as JSON."""
    case = next(c for c in _cases() if c.label == label)
    # Loaded, not generated here, so make_blobs' float64 temporaries do not set a high
    # water mark that would hide the step's own memory.
    X, labels, y = (np.load(os.path.join(data_dir, f"{name}.npy")) for name in ("X", "labels", "y"))
    n = len(X)

    def run(count: int) -> None:
        component = case.make()
        if case.kind == "reducer":
            component.fit_transform(X[:count])
        elif case.kind == "clusterer":
            component.fit_predict(X[:count])
        else:
            truth = y[:count] if component.needs_labels else None
            component.compute(X[:count], labels[:count], truth)

    # A small warm-up run first: imports, numba compilation (umap, pynndescent) and
    # thread pools are paid once per worker in a real grid, not per step.
    run(min(case.warmup, n))
    gc.collect()
    exact = _reset_peak()
    before = _status_mib("VmRSS") if exact else _maxrss_mib()
    start = time.perf_counter()
    run(n)
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM") if exact else _maxrss_mib()
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "step_mib": peak - before}))


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _measure(case: Case, data_dir: str, timeout: float, max_mib: float) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), "--child", case.label,
               "--data", data_dir]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    start = time.monotonic()
    # Poll rather than communicate(timeout=...) so a step that would exhaust the
    # machine's memory is stopped before the kernel's OOM killer picks a victim.
    while process.poll() is None:
        if time.monotonic() - start > timeout:
            process.kill()
            process.wait()
            return {"note": f"timeout (> {timeout:.0f} s)"}
        if _rss_mib(process.pid) > max_mib:
            process.kill()
            process.wait()
            return {"note": f"stopped at > {max_mib / 1024:.0f} GiB RSS"}
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
        return {"note": f"failed: {last[:80]}"}
    return json.loads(stdout.strip().splitlines()[-1])


def _cell(result: dict[str, Any] | None) -> tuple[str, str]:
    if result is None:
        return "skipped: O(n^2)", ""
    if "note" in result:
        return result["note"], ""
    return f"{result['seconds']:.2f}", f"{result['peak_mib']:.0f} (+{result['step_mib']:.0f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000",
                        help="comma-separated numbers of points (default 10000,100000)")
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--only", default="",
                        help="comma-separated substrings; run only cases whose label has one")
    parser.add_argument("--quadratic-limit", type=int, default=20_000,
                        help="skip O(n^2) steps above this many points")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per step")
    parser.add_argument("--max-memory-gb", type=float, default=16.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        _child(args.child, args.data)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    cases = [c for c in _cases() if not wanted or any(w in c.label for w in wanted)]
    print(f"# clustergrid benchmark: make_blobs, {args.dims}-d, {N_CENTERS} centres, float32",
          file=sys.stderr)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}", file=sys.stderr)
    results: dict[tuple[str, int], dict[str, Any] | None] = {}
    total = time.monotonic()
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="clustergrid-bench-") as data_dir:
            for name, array in zip(("X", "labels", "y"), _data(n, args.dims), strict=True):
                np.save(os.path.join(data_dir, f"{name}.npy"), array)
            for case in cases:
                if case.quadratic and n > args.quadratic_limit:
                    results[(case.label, n)] = None
                    continue
                result = _measure(case, data_dir, args.timeout, args.max_memory_gb * 1024)
                results[(case.label, n)] = result
                seconds, memory = _cell(result)
                print(f"{case.kind:9s} {case.label:34s} n={n:>7d} {seconds:>12s} s  {memory} MiB",
                      file=sys.stderr, flush=True)

    header = "| kind | component |"
    rule = "|---|---|"
    for n in sizes:
        header += f" {n:,} pts: s | {n:,} pts: peak RSS MiB (+step) |"
        rule += "---:|---:|"
    print()
    print(header)
    print(rule)
    for case in cases:
        row = f"| {case.kind} | {case.label} |"
        for n in sizes:
            seconds, memory = _cell(results[(case.label, n)])
            row += f" {seconds} | {memory} |"
        print(row)
    print()
    print(f"Total {time.monotonic() - total:.0f} s. Peak RSS is the step's process during "
          "the step (Python, libraries, data included); +step is how far it rose above the "
          "resident memory just before the step. "
          f"O(n^2) steps skipped above {args.quadratic_limit:,} points.")


if __name__ == "__main__":
    main()

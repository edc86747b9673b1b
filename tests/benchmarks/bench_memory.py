"""Do components' memory declarations (``Component.memory_estimate``) match what fitting
really takes? For gmm (full and diagonal covariances), agglomerative (ward) and spectral
(its default nearest-neighbour graph, and rbf) at three sizes, the declared estimate
against the peak of what fitting allocated, measured in a fresh interpreter per case by
tracemalloc (numpy's allocations are visible to it) and by the rise of the peak resident
size (``ru_maxrss``, which also sees C libraries' own buffers), on Gaussian blobs in the
precision the clusterer declares: the input itself is not counted, as the declaration
does not count it. One BLAS thread.

    python tests/benchmarks/bench_memory.py [--quick]

Prints a Markdown table; ``ratio`` is the estimate over the larger of the two measures
(the aim: within a factor of 2, and rather above 1 than below: an estimate refuses steps).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

#: (plugin, parameters, [(n, d), ...]): sizes where the quadratic term shows
CASES = [
    ("gmm", {"n_clusters": 4, "covariance_type": "full"}, [(500, 100), (1000, 200), (1000, 400)]),
    ("gmm", {"n_clusters": 4, "covariance_type": "diag"},
     [(2000, 100), (5000, 200), (10000, 400)]),
    ("agglomerative", {"n_clusters": 4, "linkage": "ward"}, [(1000, 20), (2000, 20), (4000, 20)]),
    ("spectral", {"n_clusters": 4}, [(1000, 10), (2000, 10), (4000, 10)]),
    ("spectral", {"n_clusters": 4, "affinity": "rbf"}, [(500, 10), (1000, 10), (2000, 10)]),
]


def measure(plugin: str, params: dict, n: int, d: int) -> tuple[int, int]:
    """``(traced, resident)``: the peak bytes tracemalloc saw while ``plugin`` fitted
    ``n x d`` blobs, and how far the process's peak resident size rose above its size
    before the fit (what C libraries allocate, SuperLU's factors say, is seen there only)."""
    import resource
    import tracemalloc

    import numpy as np
    from sklearn.datasets import make_blobs

    from clustergrid.registry import Registry

    cls = Registry.load().get("clusterer", plugin).cls
    component = cls(**({"random_state": 0} if cls.is_stochastic() else {}), **params)
    X, _ = make_blobs(n_samples=n, n_features=d, centers=4, random_state=0)
    X = np.asarray(X, dtype=cls.dtype or np.float32)
    # A first fit on a few points imports what fitting imports: modules are not counted.
    component.fit_predict(X[:: max(1, n // 60)])
    with open("/proc/self/statm") as statm:
        before = int(statm.read().split()[1]) * resource.getpagesize()
    tracemalloc.start()
    component.fit_predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    resident = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return peak, max(0, resident)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smallest size of each")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one measurement, in a child
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(*json.loads(args.case))))
        return

    from clustergrid.memory import human_bytes
    from clustergrid.registry import Registry

    registry = Registry.load()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    print("| clusterer | n | d | estimate | tracemalloc peak | resident rise | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for plugin, params, sizes in CASES:
        cls = registry.get("clusterer", plugin).cls
        label = plugin + "[" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + "]"
        for n, d in sizes[:1] if args.quick else sizes:
            done = subprocess.run(
                [sys.executable, __file__, "--case", json.dumps([plugin, params, n, d])],
                capture_output=True, text=True, env=env, check=True)
            traced, resident = json.loads(done.stdout.strip().splitlines()[-1])
            estimate = cls(**params).memory_estimate(n, d)
            shown = human_bytes(estimate) if estimate is not None else "unknown"
            ratio = f"{estimate / max(traced, resident):.2f}" if estimate is not None else ""
            print(f"| {label} | {n:,} | {d:,} | {shown} | {human_bytes(traced)} | "
                  f"{human_bytes(resident)} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()

"""Do components' memory declarations (``Component.memory_estimate``) match what fitting
really takes? For gmm (full and diagonal covariances), agglomerative (ward) and spectral
(its default nearest-neighbour graph, and rbf) at three sizes, the declared estimate
against the peak of what fitting allocated, measured in a fresh interpreter per case by
tracemalloc (numpy's allocations are visible to it) and by the rise of the peak resident
size (``ru_maxrss``, which also sees C libraries' own buffers), on Gaussian blobs in the
precision the clusterer declares: the input itself is not counted, as the declaration
does not count it. One BLAS thread.

Then the encoders that train a network (autoencoder, simclr, denoising-contrastive, the
classifier's CNN) and the pretrained ImageNet CNN, on the CPU with one torch thread, at
three image sizes: the estimate against the rise of the peak resident size over one epoch
of ``fit`` and a ``transform`` of every image (torch's allocations are invisible to
tracemalloc), after a fit on a few images has loaded what fitting loads. The classifier
also fine-tunes EfficientNet-Lite0 (the ``imagenet`` extra), whose images are resized
to 224 x 224 whatever their size.

    python tests/benchmarks/bench_memory.py [--quick] [--only clusterers|encoders]

Prints Markdown tables; ``ratio`` is the estimate over the larger of the measures
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


#: (plugin, parameters, [(n, (channels, height, width)), ...]): one epoch on the CPU, at
#: sizes where the activations of a batch outweigh what torch's first use leaves
ONE_EPOCH = {"epochs": 1, "device": "cpu", "random_state": 0}
ENCODER_CASES = [
    ("autoencoder", ONE_EPOCH, [(256, (1, 32, 32)), (256, (1, 64, 64)), (256, (3, 96, 96))]),
    ("simclr", ONE_EPOCH, [(256, (1, 32, 32)), (256, (1, 64, 64)), (256, (3, 64, 64))]),
    ("denoising-contrastive", ONE_EPOCH,
     [(256, (1, 32, 32)), (256, (1, 64, 64)), (256, (3, 64, 64))]),
    ("classifier", ONE_EPOCH, [(256, (1, 32, 32)), (256, (1, 64, 64)), (256, (3, 96, 96))]),
    ("classifier", {**ONE_EPOCH, "backbone": "pretrained", "model": "efficientnet-lite0",
                    "batch_size": 16},
     [(64, (3, 64, 64)), (64, (1, 128, 128)), (64, (3, 224, 224))]),
    ("pretrained", {"model": "efficientnet-lite0", "device": "cpu"},
     [(256, (3, 64, 64)), (256, (1, 128, 128)), (256, (3, 256, 256))]),
]


def measure_encoder(plugin: str, params: dict, n: int, shape: list[int]) -> int:
    """How far the peak resident size rose while ``plugin`` fitted ``n`` images of
    ``shape`` (uniform noise, two classes) and embedded them, above the size before."""
    import resource

    import numpy as np
    import torch

    from clustergrid.registry import Registry

    torch.set_num_threads(1)
    cls = Registry.load().get("encoder", plugin).cls
    images = np.random.default_rng(0).random((n, *shape), dtype=np.float32)
    labels = np.arange(n) % 2
    # A fit on a few images first: what torch loads on first use is not counted.
    warm = cls(**{**params, "batch_size": 4})
    warm.fit(images[:16], labels[:16])
    warm.transform(images[:16])
    del warm
    with open("/proc/self/statm") as statm:
        before = int(statm.read().split()[1]) * resource.getpagesize()
    encoder = cls(**params)
    encoder.fit(images, labels)
    encoder.transform(images)
    return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)


def encoder_table(quick: bool, env: dict) -> None:
    from clustergrid.memory import human_bytes
    from clustergrid.registry import Registry

    registry = Registry.load()
    print("| encoder | n | image | estimate | resident rise | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for plugin, params, sizes in ENCODER_CASES:
        cls = registry.get("encoder", plugin).cls
        shown = {k: v for k, v in params.items() if k not in ONE_EPOCH}
        label = plugin + ("[" + ",".join(f"{k}={v}" for k, v in shown.items()) + "]"
                          if shown else "")
        for n, shape in sizes[:1] if quick else sizes:
            done = subprocess.run(
                [sys.executable, __file__, "--encoder",
                 json.dumps([plugin, params, n, list(shape)])],
                capture_output=True, text=True, env=env, check=True)
            resident = json.loads(done.stdout.strip().splitlines()[-1])
            d = shape[0] * shape[1] * shape[2]
            estimate = cls(**params).memory_estimate(n, d)
            print(f"| {label} | {n:,} | {'x'.join(map(str, shape))} | "
                  f"{human_bytes(estimate)} | {human_bytes(resident)} | "
                  f"{estimate / max(resident, 1):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smallest size of each")
    parser.add_argument("--only", choices=("clusterers", "encoders"))
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one measurement, in a child
    parser.add_argument("--encoder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(*json.loads(args.case))))
        return
    if args.encoder:
        print(json.dumps(measure_encoder(*json.loads(args.encoder))))
        return

    from clustergrid.memory import human_bytes
    from clustergrid.registry import Registry

    registry = Registry.load()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    if args.only == "encoders":
        encoder_table(args.quick, env)
        return
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
    if args.only is None:
        print()
        encoder_table(args.quick, env)


if __name__ == "__main__":
    main()

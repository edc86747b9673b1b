"""Scale: 100,000 simulated 64x64 images through `clustergrid.runner.run`, time and memory.

Method. The script writes two experiment files, one per encoder, over the same dataset
(`sim-cherenkov`, ``--n`` images of 64x64, the fastest simulator):

- `pixels` with ``downsample: 2`` (1,024 floats per image, 400 MB at 100k), and
- `autoencoder` (``latent_dim: 16``, ``epochs: 2``, or ``--epochs``), trained on a random subset of
  ``--train`` images (2,000) and then applied to all ``--n``: the encoder's ``fit`` is
  wrapped in the child process to train on the subset, so the timed part at full size
  is inference (its ``transform``). The wrapper records the fit and the transform wall
  times separately, since MLflow's ``time.encode`` holds their sum.

each clustered two ways: `pca` (20 components; 10 after the 16-d autoencoder) +
`minibatch-kmeans` (k = 3), and `umap` (5 components, fixed ``random_state``) +
`hdbscan` (``min_cluster_size: 200``); metrics ``ari`` and ``silhouette`` (sampled
above 10,000 points).

Each experiment runs in its own child process (``runner.run(..., workers=1)``, so every
step runs in that process), one after the other, sharing one cache folder and one
MLflow store in a fresh temporary directory: the second child finds the dataset in the
cache (its ``time.data`` is the first child's, read back from the cache entry). The
peak resident memory of each child is its ``ru_maxrss``, read with ``os.wait4`` on that
child alone (``RUSAGE_CHILDREN`` would be the maximum over all children waited for so
far). Per-stage wall times are the ``time.<stage>`` metrics of the MLflow combination
runs. Memory-mapped cache files count in the resident set while their pages are
touched, so reading the 1.6 GB image stack shows up in the peak. Target: every child
under 4 GB.

On this project's 2-core machine N = 100,000 takes about 8.5 minutes in all (the
simulation, UMAP and HDBSCAN on 20 PCA components of pixels dominate) and each child
peaks near 2.3 GiB; ``--n 50000`` about 6 minutes.

    python tests/benchmarks/bench_scale.py                 # N = 100,000
    python tests/benchmarks/bench_scale.py --n 20000       # smaller
    python tests/benchmarks/bench_scale.py --keep          # keep the temporary folder
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENCODERS = {
    "pixels": "  - plugin: pixels\n    downsample: 2\n",
    "autoencoder": "  - plugin: autoencoder\n    latent_dim: 16\n    epochs: {epochs}\n"
                   "    random_state: 0\n    device: cpu\n",
}

EXPERIMENT = """\
name: {name}
seeds: [0]
datasets:
  - plugin: sim-cherenkov
    n_samples: {n}
    size: 64
transforms:
  - plugin: normalize
encoders:
{encoder}reducers:
  - plugin: pca
    n_components: {pca}
  - plugin: umap
    n_components: 5
    random_state: 0
clusterers:
  - plugin: minibatch-kmeans
    n_clusters: 3
  - plugin: hdbscan
    min_cluster_size: 200
metrics: [ari, silhouette]
map: null  # report maps are measured by bench_report.py
verdict: null  # the verdict's cost is measured by bench_verdict.py
executor: {{kind: local, workers: 1}}
tracking: {{uri: null}}
cache: {cache}
"""

STAGES = ("data", "encode", "reduce", "cluster", "score")
GIB = 1024**3


def child(config_path: str) -> None:
    """One experiment, in this process: wrap the encoder, run, write what was measured."""
    import numpy as np

    from clustergrid import runner
    from clustergrid.registry import Registry
    from clustergrid.spec import parse_experiment

    config = json.loads(Path(config_path).read_text())
    os.chdir(config["workdir"])
    registry = Registry.load()
    timings: dict[str, float] = {}
    encoder_cls = registry.get("encoder", config["encoder"]).cls
    fit, transform = encoder_cls.fit, encoder_cls.transform

    def timed_fit(self, images, labels=None):
        started = time.perf_counter()
        if config["encoder"] == "autoencoder" and len(images) > config["train"]:
            rng = np.random.default_rng(0)
            rows = np.sort(rng.choice(len(images), config["train"], replace=False))
            images = np.asarray(images[rows], dtype=np.float32)
            labels = None if labels is None else labels[rows]
        result = fit(self, images, labels)
        timings["encoder fit"] = time.perf_counter() - started
        return result

    def timed_transform(self, images):
        started = time.perf_counter()
        result = transform(self, images)
        # Called once per slice of images: the total is the sum.
        timings["encoder transform"] = (timings.get("encoder transform", 0.0)
                                        + time.perf_counter() - started)
        return result

    encoder_cls.fit, encoder_cls.transform = timed_fit, timed_transform
    experiment = parse_experiment(config["yaml"], registry)
    started = time.perf_counter()
    summary = runner.run(experiment, registry, workers=1)
    import resource

    Path(config["result"]).write_text(json.dumps({
        "wall": time.perf_counter() - started,
        "timings": timings,
        "step_status": dict(summary.step_status),
        "failed": summary.failed,
        "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


def run_child(config: dict, folder: Path) -> dict:
    """Run one experiment in a child process; its own peak RSS through ``os.wait4``."""
    path = folder / f"{config['encoder']}.json"
    path.write_text(json.dumps(config))
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, "--child", str(path)])
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"child for {config['encoder']} exited with {process.returncode}")
    result = json.loads(Path(config["result"]).read_text())
    result["process_wall"] = wall
    result["peak_rss"] = usage.ru_maxrss * 1024  # KiB on Linux
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="images (default 100,000)")
    parser.add_argument("--train", type=int, default=2000,
                        help="images the autoencoder trains on (default 2,000)")
    parser.add_argument("--epochs", type=int, default=2, help="autoencoder epochs (2)")
    parser.add_argument("--encoders", default="pixels,autoencoder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results = {}
    try:
        for encoder in args.encoders.split(","):
            name = f"scale-{encoder}"
            # PCA cannot keep more components than the 16-d autoencoder embedding has.
            pca = 20 if encoder == "pixels" else 10
            yaml = EXPERIMENT.format(name=name, n=args.n, cache=folder / "cache", pca=pca,
                                     encoder=ENCODERS[encoder].format(epochs=args.epochs))
            config = {"encoder": encoder, "yaml": yaml, "workdir": str(folder),
                      "train": args.train, "result": str(folder / f"{encoder}-result.json")}
            print(f"running {name} (N = {args.n:,}) ...", file=sys.stderr, flush=True)
            results[encoder] = run_child(config, folder)
        os.chdir(folder)
        report(args, results)
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def report(args: argparse.Namespace, results: dict[str, dict]) -> None:
    from clustergrid.tracking import Tracker

    print(f"N = {args.n:,} sim-cherenkov images of 64x64, serial (workers=1), "
          f"autoencoder trained on {min(args.train, args.n):,} images for {args.epochs} "
          f"epoch(s)\n")
    print("| encoder | reducer + clusterer | " + " | ".join(f"{s} (s)" for s in STAGES)
          + " | ari | silhouette |")
    print("|---|---|" + "---:|" * (len(STAGES) + 2))
    for encoder in results:
        runs = Tracker(None, f"scale-{encoder}", create=False).combination_runs()
        rows = []
        for run in runs:
            params, metrics = run.data.params, run.data.metrics
            pipeline = " + ".join(params.get(k, "?") for k in ("reducer", "clusterer"))
            rows.append((pipeline, metrics))
        for pipeline, metrics in sorted(rows, key=lambda row: row[0]):
            cells = [f"{metrics.get(f'time.{stage}', float('nan')):.1f}" for stage in STAGES]
            cells += [f"{metrics.get('ari', float('nan')):.3f}",
                      f"{metrics.get('silhouette', float('nan')):.3f}"]
            print(f"| {encoder} | {pipeline} | " + " | ".join(cells) + " |")
    print()
    print("| child process | steps computed / cached | encoder fit (s) | "
          "encoder transform (s) | wall time (s) | peak RSS (GiB) | under 4 GB |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for encoder, result in results.items():
        status = result["step_status"]
        timings = result["timings"]
        peak = result["peak_rss"]
        print(f"| {encoder} | {status.get('computed', 0)} / {status.get('cached', 0)} | "
              f"{timings.get('encoder fit', float('nan')):.1f} | "
              f"{timings.get('encoder transform', float('nan')):.1f} | "
              f"{result['process_wall']:.1f} | {peak / GIB:.2f} | "
              f"{'yes' if peak < 4e9 else 'NO'} |")
        if result["failed"]:
            print(f"\nfailed in {encoder}: {result['failed']}")


if __name__ == "__main__":
    main()

"""How long the HTML report takes to build, and how large it is, for a grid of 120
combinations on 2,000 images.

The grid: 2,000 `sim-galaxies` images (32x32, one band, `normalize`d) x 3 encoders
(`pixels`, `pixels` with ``downsample: 2``, `morphology`) x 4 reducers (`none`, `pca`
with 2, 5 and 10 components) x 10 clusterers (`kmeans` with k = 2..8, `gmm` (diag) with
k = 2 and 4, `hdbscan`), one seed, every built-in metric, the default UMAP maps. It runs
once, with the local executor; then the report is built ``--repeats`` times from the
store (``clustergrid report``'s code path: everything read back from MLflow) and the
median build time, the file size and the share of its thumbnails and explorer data are
printed.

    python tests/benchmarks/bench_report.py [--repeats 3] [--n-samples 2000]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from clustergrid import runner
from clustergrid.registry import Registry
from clustergrid.report import write_report
from clustergrid.spec import parse_experiment

GRID = """\
name: bench-report
seeds: [0]
datasets:
  - plugin: sim-galaxies
    n_samples: {n}
    size: 32
    bands: 1
transforms:
  - plugin: normalize
encoders:
  - plugin: pixels
    downsample: [1, 2]
  - plugin: morphology
reducers:
  - plugin: none
  - plugin: pca
    n_components: [2, 5, 10]
clusterers:
  - plugin: kmeans
    n_clusters: [2, 3, 4, 5, 6, 7, 8]
  - plugin: gmm
    covariance_type: diag
    n_clusters: [2, 4]
  - plugin: hdbscan
    min_cluster_size: 20
executor: {{kind: local, workers: 2}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=2000)
    args = parser.parse_args()
    registry = Registry.load()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        experiment = parse_experiment(GRID.format(n=args.n_samples), registry)
        started = time.perf_counter()
        summary = runner.run(experiment, registry)
        grid_time = time.perf_counter() - started
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            path = write_report(None, experiment.name, Path(tmp) / "report.html")
            times.append(time.perf_counter() - started)
        text = path.read_text()
        size = path.stat().st_size
        sprites = sum(len(m) for m in re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]+", text))
        data = re.search(r"id='explorer-data'>(.*?)</script>", text, re.S)
        print(f"grid: {summary.finished} combinations finished, {len(summary.failed)} failed, "
              f"on {args.n_samples} images, in {grid_time:.1f} s")
        for error in sorted({error for _, error in summary.failed}):
            print(f"  failed: {error}")
        print("| report | value |")
        print("|---|---:|")
        print(f"| build time (median of {args.repeats}) | {statistics.median(times):.1f} s |")
        print(f"| file size | {size / 1e6:.1f} MB |")
        print(f"| of which thumbnails (one sprite per dataset) | {sprites / 1e6:.2f} MB |")
        print(f"| of which explorer data (maps, clusters, galleries, curves) | "
              f"{(len(data.group(1)) - sprites) / 1e6:.2f} MB |")


if __name__ == "__main__":
    main()

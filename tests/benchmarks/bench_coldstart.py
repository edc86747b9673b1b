"""Cold start: what the report's map adds to a small grid, run as a user runs it.

Each run is ``clustergrid run experiments/quickstart.yaml`` in a fresh process and a
fresh folder (new MLflow store, empty step cache), as typed on the command line; the
only difference between the two sides is the map: the default (UMAP) against
``map: null``. numba's disk cache lives in its own temporary folder
(``NUMBA_CACHE_DIR``), so the first run is a machine's very first (everything UMAP and
its nearest-neighbour search compile), and the runs after it find the compiled code as
any later run, or spawned worker, does. The sides alternate; medians are compared.

    python tests/benchmarks/bench_coldstart.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

QUICKSTART = Path(__file__).parents[2] / "experiments" / "quickstart.yaml"
CLUSTERGRID = Path(sys.executable).with_name("clustergrid")


def timed_run(experiment: Path, numba_cache: Path) -> float:
    """Seconds for one ``clustergrid run`` of ``experiment`` in a new, empty folder."""
    folder = Path(tempfile.mkdtemp(prefix="bench-coldstart-"))
    try:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache), "CI": "true"}
        start = time.perf_counter()
        subprocess.run([str(CLUSTERGRID), "run", str(experiment)], cwd=folder, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-coldstart-"))
    spec = yaml.safe_load(QUICKSTART.read_text())
    default_map = work / "quickstart.yaml"
    default_map.write_text(yaml.safe_dump(spec))
    no_map = work / "quickstart-no-map.yaml"
    no_map.write_text(yaml.safe_dump({**spec, "map": None}))
    numba_cache = work / "numba"

    first = timed_run(default_map, numba_cache)
    times: dict[str, list[float]] = {"default map (UMAP)": [], "map: null": []}
    for _ in range(args.repeats):
        times["map: null"].append(timed_run(no_map, numba_cache))
        times["default map (UMAP)"].append(timed_run(default_map, numba_cache))
    shutil.rmtree(work, ignore_errors=True)

    baseline = statistics.median(times["map: null"])
    print(f"quickstart, `clustergrid run` in a fresh process and folder "
          f"(median of {args.repeats}, alternating)\n")
    print("| | wall time (s) | against `map: null` |")
    print("|---|---:|---:|")
    print(f"| default map, first run on the machine (numba compiles) | {first:.1f} "
          f"| {first / baseline:.2f} |")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {median / baseline:.2f} |")


if __name__ == "__main__":
    main()

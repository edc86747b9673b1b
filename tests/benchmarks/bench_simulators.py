"""Generation speed of the simulated datasets, printed as a markdown table.

Run: ``python tests/benchmarks/bench_simulators.py [--n 500] [--size 64]``. One
process; each dataset first reads one item so imports and the cached camera geometry
are not timed.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from clustergrid.plugins.datasets.sim_cherenkov import SimCherenkov
from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies
from clustergrid.plugins.datasets.sim_lenses import SimLenses


def readers(n: int, size: int) -> dict[str, Callable[[int, int], np.ndarray]]:
    """Name -> ``read(start, stop)`` of each configuration timed."""
    cherenkov = SimCherenkov(n_samples=n, size=size)
    return {
        "sim-galaxies (g, r, i)": SimGalaxies(n_samples=n, size=size).read,
        "sim-galaxies (r only)": SimGalaxies(n_samples=n, size=size, bands=1).read,
        "sim-lenses": SimLenses(n_samples=n, size=size).read,
        "sim-cherenkov (square image)": cherenkov.read,
        "sim-cherenkov (hex pixels)": cherenkov.read_pixels,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Time the simulated datasets.")
    parser.add_argument("--n", type=int, default=500, help="images per dataset")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    args = parser.parse_args()

    print(f"{args.n} images of {args.size}x{args.size}, one process, "
          f"{platform.machine()}, numpy {np.__version__}\n")
    print("| dataset | seconds | images / s |")
    print("|---|---:|---:|")
    for name, read in readers(args.n, args.size).items():
        read(0, 1)
        started = time.perf_counter()
        images = read(0, args.n)
        elapsed = time.perf_counter() - started
        assert len(images) == args.n
        print(f"| {name} | {elapsed:.2f} | {args.n / elapsed:.0f} |")


if __name__ == "__main__":
    main()

"""Streaming: N one-file-per-image ``.npy`` through clustergrid vs plain NumPy, speed and memory.

Method. The script writes ``--n`` random 64x64 float32 images, one ``.npy`` file each
(DeepLense style; 1.6 GB at 100k), into a temporary folder, in batches so that writing
them holds one batch in memory. It refuses to start with less than 4 GB of free disk.
Then two child processes run one after the other on the same files:

- ``clustergrid``: the ``npy`` dataset (``NpyFiles``, which lists and validates every
  file first) read through ``normalize`` (min-max) and ``crop`` (``--crop``, 32 pixels)
  with the runner's own streaming code: ``clustergrid.stages.transformed_batches``
  written into a memory-mapped ``.npy`` stack (as the data stage caches it), then the
  ``pixels`` encoder's ``transform`` on that memmap (as the encode stage does). The
  MLflow store, the reducer and the clusterer are left out: they do not touch images.
- ``numpy``: ``np.stack([np.load(f) for f in files])``, then the same min-max, crop and
  flatten with NumPy on the whole array: what a notebook would do.

Both produce the same ``(n, crop * crop)`` float32 matrix (checked on a sample row when
``--check`` is given). Throughput is images per second of each child's work, from before
listing the files to the finished matrix (imports excluded). Peak memory is the child's
``ru_maxrss`` read with ``os.wait4`` on that child alone. Pages of the memory-mapped
stack count in the resident set while touched, so they show in clustergrid's peak.
The OS page cache is warm for both children (the files were just written).

    python tests/benchmarks/bench_streaming.py                  # N = 100,000
    python tests/benchmarks/bench_streaming.py --n 20000 --size 64
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

import numpy as np

#: Files written per batch while generating the data set (bounds the writer's memory).
WRITE_BATCH = 1000
#: Free disk required before writing anything.
MIN_FREE = 4 * 2**30


def write_images(folder: Path, n: int, size: int) -> None:
    """``n`` random ``size x size`` float32 images, ``img_000000.npy``..., in batches."""
    rng = np.random.default_rng(0)
    for start in range(0, n, WRITE_BATCH):
        batch = rng.random((min(WRITE_BATCH, n - start), size, size), dtype=np.float32)
        for offset, image in enumerate(batch):
            np.save(folder / f"img_{start + offset:07d}.npy", image)


def run_clustergrid(folder: Path, crop: int, work: Path) -> np.ndarray:
    """The runner's data and encode stages, streaming: bounded by one batch."""
    from clustergrid.plugins.datasets.npy import NpyFiles
    from clustergrid.plugins.encoders.pixels import Pixels
    from clustergrid.registry import Registry
    from clustergrid.spec import Component
    from clustergrid.stages import transformed_batches

    registry = Registry.load()
    transforms = (
        Component("transform", "normalize", (("method", "minmax"),)),
        Component("transform", "crop", (("size", crop),)),
    )
    dataset = NpyFiles(path=str(folder))
    n = len(dataset)
    images = None
    for start, batch in transformed_batches(dataset, transforms, registry):
        if images is None:
            images = np.lib.format.open_memmap(
                work / "images.npy", mode="w+", dtype=np.float32, shape=(n, *batch.shape[1:])
            )
        images[start : start + len(batch)] = batch
    images.flush()
    del images
    # The encode stage reopens the cached stack memory-mapped, as here.
    stack = np.load(work / "images.npy", mmap_mode="r")
    return Pixels().transform(stack)


def run_numpy(folder: Path, crop: int) -> np.ndarray:
    """Everything in memory at once: the straightforward NumPy version."""
    files = sorted(folder.glob("*.npy"))
    images = np.stack([np.load(f) for f in files])
    low = images.min(axis=(1, 2), keepdims=True)
    span = images.max(axis=(1, 2), keepdims=True) - low
    images = (images - low) / np.where(span > 0, span, 1)
    top = (images.shape[1] - crop) // 2
    left = (images.shape[2] - crop) // 2
    cropped = images[:, top : top + crop, left : left + crop]
    return np.ascontiguousarray(cropped).reshape(len(images), -1)


def child(args: argparse.Namespace) -> None:
    """One measured run; prints a JSON line with its wall time and output shape."""
    folder = Path(args.folder)
    started = time.perf_counter()
    if args.child == "clustergrid":
        X = run_clustergrid(folder, args.crop, Path(args.work))
    else:
        X = run_numpy(folder, args.crop)
    elapsed = time.perf_counter() - started
    sample = X[len(X) // 2].tolist() if args.check else None
    print(json.dumps({"seconds": elapsed, "shape": list(X.shape), "sample": sample}))


def measure(kind: str, folder: Path, work: Path, crop: int, check: bool) -> dict:
    """Run ``kind`` in a child process; its result plus its own peak RSS in MB."""
    command = [sys.executable, __file__, "--child", kind, "--folder", str(folder),
               "--work", str(work), "--crop", str(crop)] + (["--check"] if check else [])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    # wait4 on this pid alone: RUSAGE_CHILDREN would be the max over every child so far.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{kind} child failed with exit code {process.returncode}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of images")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--crop", type=int, default=32, help="central crop side")
    parser.add_argument("--check", action="store_true", help="compare a sample row")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", choices=["clustergrid", "numpy"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    temp = Path(tempfile.mkdtemp(prefix="clustergrid-bench-streaming-"))
    needed = args.n * (args.size * args.size * 4 + 128)  # + the .npy header
    free = shutil.disk_usage(temp).free
    if free < MIN_FREE or free < 2 * needed:
        shutil.rmtree(temp)
        raise SystemExit(f"{free / 2**30:.1f} GB free in {temp.parent}; need at least "
                         f"{max(MIN_FREE, 2 * needed) / 2**30:.1f} GB")
    try:
        folder = temp / "images"
        folder.mkdir()
        started = time.perf_counter()
        write_images(folder, args.n, args.size)
        print(f"wrote {args.n} files of {args.size}x{args.size} float32 in "
              f"{time.perf_counter() - started:.0f} s under {folder}", file=sys.stderr)
        results = {}
        for kind in ("clustergrid", "numpy"):
            work = temp / f"work-{kind}"
            work.mkdir()
            results[kind] = measure(kind, folder, work, args.crop, args.check)
            print(f"{kind}: {results[kind]['seconds']:.1f} s, "
                  f"{results[kind]['peak_mb']:.0f} MB", file=sys.stderr)
        if args.check and results["clustergrid"]["sample"] != results["numpy"]["sample"]:
            diff = np.abs(np.subtract(results["clustergrid"]["sample"],
                                      results["numpy"]["sample"])).max()
            print(f"warning: sample rows differ by up to {diff:g}", file=sys.stderr)
        rate = {kind: args.n / r["seconds"] for kind, r in results.items()}
        print(f"\nN = {args.n}, {args.size}x{args.size} float32, one .npy per image; "
              f"normalize (minmax) + crop {args.crop} + pixels\n")
        print("| pipeline | images/s | wall (s) | peak memory (MB) |")
        print("|---|---:|---:|---:|")
        for kind, r in results.items():
            print(f"| {kind} | {rate[kind]:,.0f} | {r['seconds']:.1f} | {r['peak_mb']:,.0f} |")
        print(f"\nthroughput ratio clustergrid / numpy: {rate['clustergrid'] / rate['numpy']:.2f}")
        print(f"peak memory ratio clustergrid / numpy: "
              f"{results['clustergrid']['peak_mb'] / results['numpy']['peak_mb']:.2f}")
    finally:
        if args.keep:
            print(f"kept {temp}", file=sys.stderr)
        else:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Encoders on the CPU: fit time, transform throughput and peak memory per image size.

Input: ``N`` images of ``SimGalaxies(n_samples=N, size=S, bands=3, seed=0)``, each
min-max normalised to [0, 1] (3 channels, so the pretrained backbones take them
directly). The parent process simulates them once per size and saves them to a temporary
``.npy``; every (encoder, size) is then measured in a fresh child process (this script
re-invoked with ``--child ENCODER SIZE``), one at a time, so no measurement inherits
another's memory, caches or threads. In the child: build the encoder, ``fit`` on the N
images (timed: "fit s"; the labels are passed to the ``classifier``; encoders that do
not train have nothing to fit, shown as "-"), one warm-up ``transform`` of a few images,
then a timed ``transform`` of all N images ("images/s"). "peak MB" is the child's peak
resident set size at the end (``VmHWM`` of ``/proc/self/status``; ``ru_maxrss``
elsewhere: on Linux it carries over the parent's RSS through fork and exec): Python,
torch and the other imports, the images and the encoder together; the row
"(imports + data only)" gives that floor.

Trained encoders run one epoch (``epochs=1``) on ``device="cpu"``. The ``pretrained``
rows use a DINOv2-small-sized ViT (``Dinov2Config(hidden_size=384,
num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536, patch_size=14,
image_size=224)``) and a ResNet-50 (``ResNetConfig()`` defaults) built with RANDOM
weights and saved with ``save_pretrained`` to a temporary folder: nothing is
downloaded, and the compute cost (hence throughput and memory) does not depend on the
weights' values, so the numbers are those of ``facebook/dinov2-small`` and
``microsoft/resnet-50``. Both resize every image to 224 px, so their cost is the same
at every input size.

A child that runs past ``--timeout`` seconds is stopped and measured again with a
quarter of the images; the table says which N each row used.

    python tests/benchmarks/bench_encoders.py [--n 256] [--sizes 64,224] [--timeout 180]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ENCODERS = ["pixels", "morphology", "autoencoder", "denoising-contrastive", "simclr",
            "classifier", "pretrained-dinov2-small", "pretrained-resnet-50"]
TRAINED = {"autoencoder", "denoising-contrastive", "simclr", "classifier"}
BASELINE = "none"
WARMUP = 4


def make_data(n: int, size: int, path: Path) -> None:
    """``n`` simulated galaxies of ``size`` px, per-image min-max to [0, 1], and labels."""
    from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies

    dataset = SimGalaxies(n_samples=n, size=size, bands=3, seed=0)
    images = dataset.read(0, n).astype(np.float32)
    low = images.min(axis=(1, 2, 3), keepdims=True)
    high = images.max(axis=(1, 2, 3), keepdims=True)
    images = (images - low) / np.maximum(high - low, 1e-12)
    np.save(path / f"images-{size}.npy", images)
    np.save(path / f"labels-{size}.npy", np.asarray(dataset.labels()))


def make_models(path: Path) -> None:
    """DINOv2-small and ResNet-50 architectures with random weights, saved locally."""
    import torch
    from transformers import Dinov2Config, Dinov2Model, ResNetConfig, ResNetModel

    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                             intermediate_size=1536, patch_size=14, image_size=224)
                ).save_pretrained(path / "dinov2-small")
    ResNetModel(ResNetConfig()).save_pretrained(path / "resnet-50")


def build_encoder(name: str, models: Path):
    if name == "pixels":
        from clustergrid.plugins.encoders.pixels import Pixels
        return Pixels()
    if name == "morphology":
        from clustergrid.plugins.encoders.morphology import Morphology
        return Morphology()
    if name == "autoencoder":
        from clustergrid.plugins.encoders.autoencoder import Autoencoder
        return Autoencoder(depth=3, epochs=1, device="cpu", random_state=0)
    if name == "denoising-contrastive":
        from clustergrid.plugins.encoders.denoising_contrastive import DenoisingContrastive
        return DenoisingContrastive(epochs=1, device="cpu", random_state=0)
    if name == "simclr":
        from clustergrid.plugins.encoders.simclr import SimCLR
        return SimCLR(epochs=1, device="cpu", random_state=0)
    if name == "classifier":
        from clustergrid.plugins.encoders.classifier import Classifier
        return Classifier(backbone="cnn", epochs=1, device="cpu", random_state=0)
    if name.startswith("pretrained-"):
        from clustergrid.plugins.encoders.pretrained import Pretrained
        return Pretrained(model=str(models / name.removeprefix("pretrained-")), device="cpu")
    raise ValueError(f"unknown encoder {name!r}")


def child(name: str, size: int, n: int, work: Path) -> None:
    """One measurement; prints one JSON line."""
    import torch  # noqa: F401  (imported for every encoder alike, baseline included)

    images = np.load(work / f"images-{size}.npy")[:n]
    labels = np.load(work / f"labels-{size}.npy")[:n]
    result = {"encoder": name, "size": size, "n": len(images)}
    if name != BASELINE:
        encoder = build_encoder(name, work)
        started = time.perf_counter()
        encoder.fit(images, labels if name == "classifier" else None)
        result["fit_s"] = time.perf_counter() - started
        encoder.transform(images[:WARMUP])  # warm-up: lazy inits, first-call allocations
        started = time.perf_counter()
        X = encoder.transform(images)
        seconds = time.perf_counter() - started
        result.update(transform_s=seconds, images_per_s=len(images) / seconds,
                      dim=int(np.asarray(X).reshape(len(images), -1).shape[1]))
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


def peak_mb() -> float:
    """This process's peak RSS. Linux's ``ru_maxrss`` survives ``execve`` and so starts at
    the parent's RSS at fork time (the parent holds torch and the images); ``VmHWM`` is
    the high-water mark of this process's own address space only."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, size: int, n: int, work: Path, timeout: float) -> dict:
    """Run one child; on timeout, again with a quarter of the images."""
    while True:
        command = [sys.executable, __file__, "--child", name, str(size), "--n", str(n),
                   "--work", str(work)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  check=True)
        except subprocess.TimeoutExpired:
            if n <= 16:
                raise
            print(f"  {name} @ {size}px: over {timeout:.0f} s with N={n}; retrying with "
                  f"N={n // 4}", file=sys.stderr)
            n //= 4
            continue
        except subprocess.CalledProcessError as error:
            print(error.stderr, file=sys.stderr)
            return {"encoder": name, "size": size, "n": n, "error": True}
        return json.loads(done.stdout.strip().splitlines()[-1])


def row(result: dict, n: int) -> str:
    name = result["encoder"]
    label = "(imports + data only)" if name == BASELINE else name
    shown_n = f"**{result['n']}**" if result["n"] != n else str(result["n"])
    if result.get("error"):
        return f"| {label} | {result['size']} | {shown_n} | failed | | | |"
    if name == BASELINE:
        return f"| {label} | {result['size']} | {shown_n} | | | | {result['peak_mb']:.0f} |"
    fit = f"{result['fit_s']:.1f}" if name in TRAINED else "-"
    return (f"| {label} | {result['size']} | {shown_n} | {result['dim']} | {fit} | "
            f"{result['images_per_s']:.1f} | {result['peak_mb']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--sizes", default="64,224")
    parser.add_argument("--encoders", default=",".join(ENCODERS))
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds per child before retrying it with N/4")
    parser.add_argument("--child", nargs=2, metavar=("ENCODER", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.n, Path(args.work))
        return

    started = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    encoders = [BASELINE, *args.encoders.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-encoders-") as folder:
        work = Path(folder)
        for size in sizes:
            make_data(args.n, size, work)
        if any(name.startswith("pretrained-") for name in encoders):
            make_models(work)
        results = []
        for size in sizes:
            for name in encoders:
                results.append(measure(name, size, args.n, work, args.timeout))
                print(f"  {row(results[-1], args.n)}", file=sys.stderr, flush=True)
    total = time.perf_counter() - started
    print(f"N={args.n} images per measurement (bold: lowered after a timeout), "
          f"{os.cpu_count()} CPUs, torch threads default, one fresh process each, "
          f"total {total:.0f} s")
    print("| encoder | size (px) | N | dim | fit s (1 epoch) | transform images/s | peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for result in results:
        print(row(result, args.n))


if __name__ == "__main__":
    main()

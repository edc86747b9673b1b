"""ImageNet features on simulated galaxies and lenses: frozen (a linear probe) and
fine-tuned (the ``classifier``) against raw pixels and a CNN trained from scratch.

In parts, on the CPU, torch on one thread (as the runner's workers train):

``frozen``: the ``linear_probe`` metric (5-fold logistic regression on standardised
features, macro one-vs-rest ROC AUC; chance is 0.5) of raw pixels (per-image min-max to
[0, 1], flattened) against ``pretrained`` with ``model: efficientnet-lite0`` (real
ImageNet weights, 1280 pooled features) on the same images, by number of items ``n``
(the first ``n`` of the stack; classes are balanced round-robin). Data:
``SimGalaxies(size=32, bands=3, seed=0)``; ``SimLenses(size=64, seed=0)`` as it is
(``default``), after an asinh stretch (``stretch``: ``interval: percentile`` 99.5, which
lifts the faint arcs above the lens galaxy's core), without the lens galaxy's light
(``no lens light``), and without sky and read noise (``no sky noise``: photon noise of
the lens and arcs only). The efficientnet input of one channel is repeated to three,
min-max scaled and normalised as EfficientNet-Lite was trained, ``(x - 0.498) / 0.502``
(``Backbone.prepare``); the printed input range checks it.

``finetune``: the ``classifier`` encoder at equal epochs and batch size (16), Adam at
lr 1e-3: ``cnn`` (the small CNN from scratch), ``pretrained`` efficientnet-lite0
fine-tuned with its defaults (BatchNorm statistics frozen, the backbone at
``backbone_lr`` 1e-4 under the head's 1e-3), with one lr of 1e-3 for every weight, and
with one lr and the BatchNorm statistics re-estimated from each batch
(``batch_norm: train``, the classifier's behaviour before version 1), and ``frozen``
(the backbone frozen, a linear head trained). The scores are the classifier's own on its
stratified held-out 20 % (``val_auc``, macro one-vs-rest; ``val_accuracy``), for each
seed given (``random_state``: the split, the initialisation and the batch order). The
CNN is also shown at five times the epochs, for what more training buys it. Each row's
seconds are its ``fit`` on this machine.

``signal``: why the lenses are hard. Item ``i`` of ``SimLenses`` restricted to one class
has the same lens and source in every class, so for 60 such matched lenses the
noise-free image with subhalos (or a vortex) minus the one without is the substructure's
own change; its norm is compared (median ratio) with that of one exposure's noise and of
the difference between two neighbouring smooth lenses.

``scale`` (not run by default: about 30 min): the small CNN from scratch on 6,000 lenses
(4,800 to train), 15 epochs, batch 32, its default lr.

    python tests/benchmarks/bench_finetune.py [--parts frozen,finetune,signal,scale]
        [--n-lenses 150,300,600,900] [--n-lenses-finetune 300] [--n-galaxies 300]
        [--epochs 4] [--seeds 0,1] [--n-lenses-scale 6000] [--epochs-scale 15]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODEL = "efficientnet-lite0"


def minmax(images: np.ndarray) -> np.ndarray:
    """Per-image min-max to [0, 1]."""
    low = images.min(axis=(1, 2, 3), keepdims=True)
    high = images.max(axis=(1, 2, 3), keepdims=True)
    return ((images - low) / np.maximum(high - low, 1e-12)).astype(np.float32)


def galaxies(n: int) -> tuple[np.ndarray, np.ndarray]:
    from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies

    data = SimGalaxies(n_samples=n, size=32, bands=3, seed=0)
    return data.read(0, n), np.asarray(data.labels())


def lenses(n: int, **params) -> tuple[np.ndarray, np.ndarray]:
    from clustergrid.plugins.datasets.sim_lenses import SimLenses

    data = SimLenses(n_samples=n, size=64, seed=0, **params)
    return data.read(0, n), np.asarray(data.labels())


def asinh(images: np.ndarray) -> np.ndarray:
    from clustergrid.plugins.transforms.stretch import Stretch

    return Stretch(stretch="asinh", interval="percentile", percentile=99.5).transform(images)


def probe_auc(features: np.ndarray, labels: np.ndarray) -> float:
    from clustergrid.plugins.metrics.representation import LinearProbe

    return LinearProbe().compute(features, true_labels=labels)["probe_auc"]


def frozen(ns: list[int], n_galaxies: int) -> None:
    from clustergrid.plugins.encoders.pretrained import Pretrained

    encoder = Pretrained(model=MODEL, device="cpu", rescale=False)
    cases = {
        "sim-galaxies (3 bands, 32 px)": lambda n: _scaled(galaxies(n)),
        "sim-lenses default": lambda n: _scaled(lenses(n)),
        "sim-lenses stretch": lambda n: _stretched(lenses(n)),
        "sim-lenses no lens light": lambda n: _scaled(lenses(n, lens_light=False)),
        "sim-lenses no sky noise": lambda n: _scaled(lenses(n, sky_level=0.0, read_noise=0.0)),
    }
    print("\n## Frozen features: linear-probe AUC (chance 0.5)\n")
    print("| data | n | pixels | efficientnet-lite0 | embed s |")
    print("|---|---:|---:|---:|---:|")
    for name, make in cases.items():
        largest = n_galaxies if name.startswith("sim-galaxies") else max(ns)
        images, labels = make(largest)
        started = time.perf_counter()
        features = encoder.fit(images[:2]).transform(images)
        seconds = time.perf_counter() - started
        if name == "sim-lenses default":
            pixels = encoder.backbone_.prepare(images[:64], rescale=False)
            print(f"(the lenses enter efficientnet from {float(pixels.min()):.2f} to "
                  f"{float(pixels.max()):.2f})")
        pixels = images.reshape(len(images), -1)
        for n in ([largest] if name.startswith("sim-galaxies") else ns):
            print(f"| {name} | {n} | {probe_auc(pixels[:n], labels[:n]):.3f} | "
                  f"{probe_auc(features[:n], labels[:n]):.3f} | "
                  f"{seconds * n / largest:.0f} |", flush=True)


def _scaled(data):
    return minmax(data[0]), data[1]


def _stretched(data):
    return asinh(data[0]).astype(np.float32), data[1]


def finetune(n_galaxies: int, n_lenses: int, epochs: int, seeds: list[int]) -> None:
    from clustergrid.plugins.encoders.classifier import Classifier

    pretrained = dict(backbone="pretrained", model=MODEL)
    configs = {
        "cnn from scratch": {},
        f"cnn from scratch, {5 * epochs} epochs": dict(epochs=5 * epochs),
        "efficientnet fine-tuned (defaults)": pretrained,
        "efficientnet fine-tuned, BatchNorm statistics frozen, one lr 1e-3":
            dict(pretrained, backbone_lr=1e-3),
        "efficientnet fine-tuned, BatchNorm statistics trained, one lr 1e-3":
            dict(pretrained, backbone_lr=1e-3, batch_norm="train"),
        "efficientnet frozen + linear head": dict(pretrained, freeze=True),
    }
    datasets = {
        f"sim-galaxies, {n_galaxies} (3 bands, 32 px)": galaxies(n_galaxies),
        f"sim-lenses, {n_lenses} (64 px)": lenses(n_lenses),
    }
    print(f"\n## Classifier at {epochs} epochs, batch 16: held-out scores (chance 0.5)\n")
    print("| data | classifier | seed | val_auc | val_accuracy | fit s |")
    print("|---|---|---:|---:|---:|---:|")
    for data_name, (images, labels) in datasets.items():
        for name, params in configs.items():
            params = {"epochs": epochs, **params}
            for seed in seeds:
                started = time.perf_counter()
                model = Classifier(batch_size=16, lr=1e-3, random_state=seed, device="cpu",
                                   **params)
                scores = model.fit(images, labels).metrics_
                print(f"| {data_name} | {name} | {seed} | {scores['val_auc']:.3f} | "
                      f"{scores['val_accuracy']:.3f} | {time.perf_counter() - started:.0f} |",
                      flush=True)


def signal(n: int) -> None:
    from clustergrid.plugins.datasets import sim_lenses

    def read(name: str) -> np.ndarray:
        return lenses(n, classes=[name])[0].astype(np.float64)

    noisy = read("no_substructure")
    observe = sim_lenses.observe
    # Noise-free: the expected counts of the same draws (the noise is drawn last).
    sim_lenses.observe = lambda expected, rng, background, read_noise: expected
    try:
        clean = {name: read(name) for name in sim_lenses.SimLenses.CLASSES}
    finally:
        sim_lenses.observe = observe
    smooth = clean["no_substructure"]

    def norms(difference: np.ndarray) -> np.ndarray:
        return np.linalg.norm(difference.reshape(n, -1), axis=1)

    noise, between = norms(noisy - smooth), norms(smooth - np.roll(smooth, 1, axis=0))
    print(f"\n## What the substructure changes in a lens image ({n} matched lenses)\n")
    print("| class | its change / one exposure's noise | its change / lens-to-lens difference |")
    print("|---|---:|---:|")
    for name in ("subhalos", "vortex"):
        change = norms(clean[name] - smooth)
        print(f"| {name} | {np.median(change / noise):.2f} | {np.median(change / between):.2f} |")


def scale(n: int, epochs: int) -> None:
    from clustergrid.plugins.encoders.classifier import Classifier

    images, labels = lenses(n)
    started = time.perf_counter()
    scores = Classifier(epochs=epochs, batch_size=32, random_state=0, device="cpu").fit(
        images, labels).metrics_
    print(f"\n## CNN from scratch on {n} lenses, {epochs} epochs\n")
    print(f"held-out val_auc {scores['val_auc']:.3f}, val_accuracy {scores['val_accuracy']:.3f}, "
          f"lowest val_loss {min(scores['val_loss']):.3f} (chance ln 3 = {np.log(3):.3f}), "
          f"{time.perf_counter() - started:.0f} s")


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="frozen,finetune,signal",
                        help="of frozen, finetune, signal and scale (about 30 min)")
    parser.add_argument("--n-lenses", default="150,300,600,900",
                        help="the frozen probe's lens sample sizes")
    parser.add_argument("--n-lenses-finetune", type=int, default=300,
                        help="the fine-tuning's lens sample")
    parser.add_argument("--n-galaxies", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--n-lenses-scale", type=int, default=6000)
    parser.add_argument("--epochs-scale", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    parts = args.parts.split(",")
    if "frozen" in parts:
        frozen([int(n) for n in args.n_lenses.split(",")], args.n_galaxies)
    if "finetune" in parts:
        finetune(args.n_galaxies, args.n_lenses_finetune, args.epochs,
                 [int(s) for s in args.seeds.split(",")])
    if "signal" in parts:
        signal(60)
    if "scale" in parts:
        scale(args.n_lenses_scale, args.epochs_scale)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()

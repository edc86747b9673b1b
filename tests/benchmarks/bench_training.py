"""One training epoch of each trained encoder: the plugin's loop against a bare PyTorch loop.

Input: ``N`` images of ``SimGalaxies(n_samples=N, size=S, bands=3, seed=0)``, each
min-max normalised to [0, 1], written with ``np.lib.format.open_memmap`` and opened again
with ``mmap_mode="r"``: the memory-mapped float32 stack the grid hands to ``fit``.

For each of ``autoencoder``, ``simclr`` and ``denoising-contrastive`` (default parameters,
``device="cpu"``, ``random_state=0``):

- plugin: ``fit(stack)`` with ``epochs=1``, timed whole, minus the time spent in the
  plugin's ``build`` (model construction, a one-time cost a bare loop pays alike). What is
  left is everything the plugin does for one epoch: split, seeding, ``deterministic()``,
  the progress bar, batches read from the memory map, the training steps, the validation
  pass over the held-out ``val_fraction`` and the copies of the best weights.
- bare: the same ``nn.Module`` (the plugin's own ``build``), the same loss, augmentations
  and noise (the plugin's own ``losses``, so the only difference is the loop machinery),
  the same batch size and training split, Adam with the same ``lr``, the training images
  as one in-memory torch tensor, and a plain loop: ``torch.randperm`` order, ``x =
  data[rows]``, ``zero_grad``/``backward``/``step``. "bare + val" adds what the plugin
  does by design after each epoch: one ``torch.no_grad`` pass of the same loss over the
  held-out images, in eval mode.

Ratios: plugin / (bare + val) is the cost of the loop machinery alone; plugin / bare
counts the validation pass against the plugin too. "val %" is the validation pass's share
of the bare + val epoch. Bare and plugin epochs alternate in this one process (the order
swapping every repeat), after one untimed warm-up of each on a few batches (first-call
kernel selection; imports: the plugin's first ``torch.use_deterministic_algorithms``
imports ``torch._inductor.config``, 1-3 s once per process, not per epoch), so that both
sides see the same machine load and thread pools; seconds are medians over
``--repeats``, ratios medians of the ratio within each repeat. Each is given for
wall-clock time and, in brackets, for the process's CPU time: on a shared machine the
wall clock mostly measures the other jobs, while the CPU time of a one-thread run
(``--threads 1``) is the work done. With more threads, CPU time also counts the threads'
spin-waiting.

    python tests/benchmarks/bench_training.py [--n 1000] [--size 32] [--repeats 5]
                                              [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

ENCODERS = ["autoencoder", "simclr", "denoising-contrastive"]
LIMIT = 1.25


def make_stack(n: int, size: int, path: Path) -> np.ndarray:
    """``n`` normalised simulated galaxies as a read-only memory-mapped ``.npy`` stack."""
    from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies

    images = SimGalaxies(n_samples=n, size=size, bands=3, seed=0).read(0, n)
    low = images.min(axis=(1, 2, 3), keepdims=True)
    high = images.max(axis=(1, 2, 3), keepdims=True)
    stack = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=images.shape)
    stack[:] = (images - low) / np.maximum(high - low, 1e-12)
    stack.flush()
    del stack
    return np.load(path, mmap_mode="r")


def make_encoder(name: str):
    common = dict(epochs=1, device="cpu", random_state=0)
    if name == "autoencoder":
        from clustergrid.plugins.encoders.autoencoder import Autoencoder
        return Autoencoder(**common)
    if name == "simclr":
        from clustergrid.plugins.encoders.simclr import SimCLR
        return SimCLR(**common)
    if name == "denoising-contrastive":
        from clustergrid.plugins.encoders.denoising_contrastive import DenoisingContrastive
        return DenoisingContrastive(**common)
    raise ValueError(f"unknown encoder {name!r}")


class Clock:
    """Wall-clock and process CPU seconds since ``start()``."""

    def start(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def read(self) -> np.ndarray:
        return np.array([time.perf_counter() - self.wall, time.process_time() - self.cpu])


def plugin_epoch(name: str, stack: np.ndarray) -> np.ndarray:
    """(wall, CPU) seconds of ``fit(stack)`` with one epoch, less the model construction."""
    encoder = make_encoder(name)
    build = encoder.build
    built = []

    def timed_build(*args):
        clock = Clock().start()
        model = build(*args)
        built.append(clock.read())
        return model

    encoder.build = timed_build
    clock = Clock().start()
    encoder.fit(stack)
    return clock.read() - sum(built)


class BareLoop:
    """The plugin's model and loss in a plain PyTorch loop over in-memory tensors."""

    def __init__(self, name: str, stack: np.ndarray):
        import torch

        from clustergrid.plugins.support.training import split_indices

        self.encoder = make_encoder(name)
        # The plugin's split sizes (which rows go where does not change the cost).
        train_idx, val_idx = split_indices(len(stack), self.encoder.val_fraction, seed=0)
        self.train_x = torch.from_numpy(np.array(stack[train_idx]))
        self.val_x = torch.from_numpy(np.array(stack[val_idx]))
        self.shape = stack.shape[1:]

    def epoch(self) -> tuple[np.ndarray, np.ndarray]:
        """(wall, CPU) seconds of one training epoch, and of one validation pass."""
        import torch

        encoder = self.encoder
        torch.manual_seed(0)
        model = encoder.build(*self.shape)
        encoder.model_ = model  # ``losses`` reads the model from here
        generator = torch.Generator().manual_seed(1)

        clock = Clock().start()
        optimizer = torch.optim.Adam(model.parameters(), lr=encoder.lr)
        model.train()
        order = torch.randperm(len(self.train_x), generator=generator)
        for start in range(0, len(order), encoder.batch_size):
            x = self.train_x[order[start : start + encoder.batch_size]]
            if len(x) < 2:
                continue
            loss = encoder.losses(x, generator)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        trained = clock.read()

        clock.start()
        model.eval()
        val_generator = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for start in range(0, len(self.val_x), encoder.batch_size):
                encoder.losses(self.val_x[start : start + encoder.batch_size], val_generator)
        return trained, clock.read()


def measure(name: str, stack: np.ndarray, repeats: int) -> dict:
    """Medians over ``repeats`` of bare and plugin epochs, run alternately; the ratios are
    medians of the ratios within each repeat (its bare and plugin epochs ran back to back,
    under the same load)."""
    # Warm-up on a few batches: first-call kernel selection and allocations, both sides.
    head = stack[: 3 * make_encoder(name).batch_size]
    BareLoop(name, head).epoch()
    plugin_epoch(name, head)
    bare = BareLoop(name, stack)
    train, val, plugin = [], [], []
    for repeat in range(repeats):
        for side in ("bare", "plugin") if repeat % 2 == 0 else ("plugin", "bare"):
            if side == "bare":
                t, v = bare.epoch()
                train.append(t)
                val.append(v)
            else:
                plugin.append(plugin_epoch(name, stack))
    train, val, plugin = np.array(train), np.array(val), np.array(plugin)  # (repeats, 2)
    median = partial(np.median, axis=0)
    return {"encoder": name, "bare": median(train), "bare_val": median(train + val),
            "plugin": median(plugin), "val_share": median(val / (train + val)),
            "ratio_val": median(plugin / (train + val)), "ratio": median(plugin / train),
            "runs": plugin[:, 0]}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--encoders", default=",".join(ENCODERS))
    parser.add_argument("--threads", type=int, default=0,
                        help="torch.set_num_threads for the whole run (0: leave torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ENCODERS:  # import every plugin before timing anything
        make_encoder(name)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op / "
          f"{torch.get_num_interop_threads()} inter-op threads; N={args.n} images "
          f"3x{args.size}x{args.size}, median of {args.repeats}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-training-") as folder:
        stack = make_stack(args.n, args.size, Path(folder) / "images.npy")
        for name in args.encoders.split(","):
            result = measure(name, stack, args.repeats)
            results.append(result)
            print(f"  {name}: plugin runs {', '.join(f'{s:.2f}' for s in result['runs'])} s",
                  flush=True)
        del stack

    print("\nWall-clock seconds per epoch (CPU-time ratios in brackets):\n")
    print("| encoder | bare | bare + val | val % | plugin | plugin / (bare + val) "
          "| plugin / bare |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['encoder']} | {r['bare'][0]:.2f} | {r['bare_val'][0]:.2f} | "
              f"{100 * r['val_share'][0]:.0f} | {r['plugin'][0]:.2f} | "
              f"{r['ratio_val'][0]:.2f} ({r['ratio_val'][1]:.2f}) | "
              f"{r['ratio'][0]:.2f} ({r['ratio'][1]:.2f}) |")
    worst = max(r["ratio"][0] for r in results)
    verdict = "ok" if worst <= LIMIT else "OVER"
    print(f"\nworst plugin / bare (wall): {worst:.2f} (limit {LIMIT}): {verdict}")


if __name__ == "__main__":
    main()

"""Shared pieces of the trained torch encoders: seeding, splits, streaming, the epoch loop,
augmentations, noise, NT-Xent, SSIM, batched inference, and the memory they take.

torch is imported inside the functions only, so that discovering plugins stays fast.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clustergrid import Encoder
from clustergrid.memory import FLOAT32, image_shape
from clustergrid.plugins.support.devices import on_cpu


class TrainedEncoder(Encoder):
    """Base of the encoders that train a torch model on the dataset.

    Subclasses implement ``build(channels, height, width)`` (a module with an ``encode``
    method) and ``losses(batch, generator)`` (a dict with the ``loss`` to minimise and
    parts to log); an encoder with a ``depth`` parameter needs image sides divisible by
    ``2**depth``. The trained weights (``state_dict_``) are saved with the step, so they
    are cached with the embeddings and logged.
    """

    def build(self, channels: int, height: int, width: int):
        raise NotImplementedError

    def losses(self, batch, generator) -> dict:
        raise NotImplementedError

    def check_parameters(self) -> None:
        """Raise ValueError for parameter values the model cannot be built with."""

    def memory_estimate(self, n: int, d: int) -> int:
        """Bytes of training on ``n`` images of ``d`` values (shaped as
        ``memory.image_shape`` guesses) and embedding them: one training step of
        ``losses`` on a batch, run on the meta device (``measure_training``), gives the
        weights and the activations. Counted on the CPU: the weights ``ADAM_COPIES``
        times and once more for the best weights early stopping keeps, the step's
        activations (``Allocations.training``: views, noise and the loss's maps
        included), the float32 batch read, the embeddings (``embedding_bytes``) and the
        split and shuffled order (``INDEX_COPIES`` int64 per image). The images are
        streamed batch by batch: the dataset is never copied whole. On an accelerator the
        network and its activations take the accelerator's memory: the worker holds the
        weights once (``state_dict_``), the batch, the embeddings and the order."""
        shape = image_shape(d, 2 ** int(getattr(self, "depth", 0)))
        batch = max(2, min(int(n), int(self.batch_size)))
        trained = measure_training(self, shape, batch)
        host = (trained.weights + batch * d * FLOAT32 + embedding_bytes(n, trained.dim)
                + INDEX_COPIES * n * INDEX)
        if on_cpu(self.device):
            host += ADAM_COPIES * trained.weights + trained.step.training()
        return host

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None) -> TrainedEncoder:
        from clustergrid.plugins.support.devices import select_device

        self.check_parameters()
        n, c, h, w = check_images(images, getattr(self, "depth", 0))
        device = select_device(self.device)
        seed = seed_everything(self.random_state)
        train_idx, val_idx = split_indices(n, self.val_fraction, seed)
        self.model_ = self.build(c, h, w).to(device)
        self.device_ = device
        self.metrics_ = train(self.model_, self.losses, images, train_idx, val_idx,
                              epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                              patience=self.patience, seed=seed, device=device,
                              name=self.name)
        self.state_dict_ = {k: v.detach().cpu() for k, v in self.model_.state_dict().items()}
        self.image_shape_ = (c, h, w)
        return self

    def check_fitted(self, images: np.ndarray) -> None:
        """Raise unless fitted, on images shaped like the training images."""
        if not hasattr(self, "model_"):
            raise ValueError(f"{self.name} must be fitted before transform")
        _, c, h, w = check_images(images, getattr(self, "depth", 0))
        if (c, h, w) != self.image_shape_:
            raise ValueError(f"trained on images shaped {self.image_shape_}, got {(c, h, w)}")

    def transform(self, images: np.ndarray) -> np.ndarray:
        self.check_fitted(images)
        return predict(self.model_.encode, images, self.batch_size, self.device_)

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        state = getattr(self, "state_dict_", None)
        if state:
            # safetensors, not torch.save: loading it back never unpickles anything.
            save_file({k: v.contiguous() for k, v in state.items()},
                      str(folder / "weights.safetensors"))


def seed_everything(random_state: int | None) -> int:
    """Seed torch's global RNG (it draws the initial weights) and return the seed used:
    ``random_state`` itself, or a fresh one when it is None."""
    import torch

    seed = int(np.random.SeedSequence(random_state).generate_state(1)[0])
    torch.manual_seed(seed)
    return seed


@contextmanager
def deterministic():
    """Deterministic torch kernels for the duration of a training run, then the previous
    settings again (they are process-wide, and other code in the worker may not want them).

    ``warn_only``: an op without a deterministic version warns instead of failing. With
    the seeds fixed, the same ``random_state`` then gives the same weights on the CPU.
    ``fill_uninitialized_memory`` is turned off meanwhile: with it, deterministic mode
    writes NaN into every new tensor (each activation and gradient), a guard against ops
    that read memory they never wrote, which no op here does. It cost 4-8 % of a training
    step on one CPU thread (more with several, each fill being one more parallel pass),
    and the results are the same bit for bit without it.
    """
    import torch
    import torch.utils.deterministic

    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill


def make_generator(seed: int, device) -> Any:
    """A torch generator on ``device`` for augmentations and noise: a private stream, so
    that the draws do not depend on what else consumed the global RNG."""
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def split_indices(n: int, val_fraction: float, seed: int,
                  min_train: int = 2, min_val: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and validation indices: a random ``val_fraction`` held out.

    Sorted, so a memory-mapped array is read forwards. Raises a ValueError when either
    side would have fewer than ``min_train`` / ``min_val`` images.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = round(n * val_fraction)
    if n_val < min_val or n - n_val < min_train:
        raise ValueError(
            f"too few images ({n}) for a validation split of {val_fraction}: need at least "
            f"{min_train} for training and {min_val} for validation"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def iter_batches(images: np.ndarray, indices: np.ndarray, batch_size: int,
                 rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Batches of ``images[indices]`` as float32 arrays, shuffled when ``rng`` is given.

    Each batch reads only its own rows (sorted fancy indexing), so a memory-mapped array
    larger than memory is streamed; shuffling permutes which rows go together.
    """
    order = rng.permutation(indices) if rng is not None else indices
    for start in range(0, len(order), batch_size):
        chunk = np.sort(order[start : start + batch_size])
        yield np.asarray(images[chunk], dtype=np.float32)


def check_images(images: np.ndarray, depth: int = 0) -> tuple[int, int, int, int]:
    """``images.shape`` after checking it is ``(n, c, h, w)`` with h, w divisible by
    ``2**depth`` (the encoders halve the image ``depth`` times and mirror it back)."""
    if images.ndim != 4:
        raise ValueError(f"expected images shaped (n, c, h, w), got shape {images.shape}")
    n, c, h, w = images.shape
    factor = 2**depth
    if h % factor or w % factor:
        raise ValueError(
            f"image size {h}x{w} is not divisible by 2**depth = {factor} (depth={depth}): "
            f"crop or resize the images (transforms 'crop' or 'resize'), or lower depth"
        )
    return n, c, h, w


def as_widths(channels: int | tuple[int, ...] | list[int], depth: int | None = None
              ) -> tuple[int, ...]:
    """Channel widths per level: a tuple as given, or a base width doubled per level."""
    if isinstance(channels, int):
        if depth is None:
            raise ValueError("a single channel width needs a depth")
        return tuple(channels * 2**i for i in range(depth))
    widths = tuple(int(c) for c in channels)
    if not widths or min(widths) < 1:
        raise ValueError(f"channel widths must be positive, got {channels}")
    return widths


# --- augmentations and corruption ----------------------------------------------------


def augment(x, generator, max_shift: int = 2):
    """A random view of each image: flips, 90-degree rotations and a shift of up to
    ``max_shift`` pixels (zero padding, then a random crop back to size).

    Galaxy and detector images have no preferred orientation, so these are label-free
    symmetries. Rotations by 90 degrees need square images; others get 0 or 180 degrees.
    Per image, in this order of draws: a flip of the columns with probability 1/2, 0-3
    counter-clockwise quarter turns (``torch.rot90``), then row and column offsets.
    """
    import torch

    n, c, h, w = x.shape
    dev = x.device
    flip = torch.rand(n, generator=generator, device=dev) < 0.5
    turns = torch.randint(0, 4, (n,), generator=generator, device=dev)
    if h != w:
        turns = turns - turns % 2  # 0 or 2 quarter turns keep the shape
    rows = torch.arange(h, device=dev).expand(n, h)
    cols = torch.arange(w, device=dev).expand(n, w)
    if max_shift > 0:
        s = max_shift
        dy = torch.randint(0, 2 * s + 1, (n,), generator=generator, device=dev)
        dx = torch.randint(0, 2 * s + 1, (n,), generator=generator, device=dev)
        rows, cols = rows + (dy - s)[:, None], cols + (dx - s)[:, None]
        inside = (((rows >= 0) & (rows < h))[:, :, None]
                  & ((cols >= 0) & (cols < w))[:, None, :])
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    # The whole view is one gather from x, as index arithmetic rather than a flip, a
    # rotation per number of turns, padding and a crop (each a pass over the batch).
    # Pixel (r, c) of the view comes from the flipped image's pixel (src_r, src_c), both
    # linear in (r, c): coefficients (src_r: r, c, 1; src_c: r, c, 1) per number of turns.
    linear = torch.tensor([[1, 0, 0, 0, 1, 0], [0, 1, 0, -1, 0, w - 1],
                           [-1, 0, h - 1, 0, -1, w - 1], [0, -1, h - 1, 1, 0, 0]],
                          device=dev)[turns]
    row_r, row_c, row_1, col_r, col_c, col_1 = linear.unbind(1)
    flipped = flip.long()
    sign = 1 - 2 * flipped  # the flip mirrors the source column: w - 1 - src_c
    per_row = w * row_r + sign * col_r
    per_col = w * row_c + sign * col_c
    offset = w * row_1 + sign * col_1 + flipped * (w - 1)
    index = ((per_row[:, None] * rows)[:, :, None]
             + (per_col[:, None] * cols + offset[:, None])[:, None, :])
    out = x.reshape(n, c, h * w).gather(2, index.view(n, 1, h * w).expand(n, c, h * w))
    out = out.view(n, c, h, w)
    if max_shift > 0:
        out = torch.where(inside[:, None], out, torch.zeros((), dtype=x.dtype, device=dev))
    return out


def corrupt(x, noise_level: float, generator):
    """``x`` with Poisson (shot) noise plus Gaussian (read) noise, both of rms
    ``noise_level`` at intensity 1.

    The shot noise draws ``Poisson(x / noise_level**2)`` counts and rescales them, so its
    rms grows as ``sqrt(x)``: bright cores stay recognisable while faint outskirts drown,
    as in a shallower exposure. Negative pixels contribute no shot noise.
    """
    import torch

    if noise_level <= 0:
        return x
    gain = 1.0 / noise_level**2
    shot = torch.poisson(x.clamp(min=0) * gain, generator=generator) / gain
    noisy = shot + torch.where(x < 0, x, torch.zeros_like(x))
    read = torch.randn(x.shape, generator=generator, device=x.device) * noise_level
    return noisy + read


# --- losses ---------------------------------------------------------------------------


def nt_xent(z1, z2, temperature: float = 0.5):
    """NT-Xent (SimCLR) loss: each view must pick its partner among the 2n - 1 others by
    cosine similarity / ``temperature``."""
    import torch
    import torch.nn.functional as F

    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -1e9)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def gaussian_window(size: int = 7, sigma: float = 1.5, device=None):
    """A normalised 2-d Gaussian kernel shaped (1, 1, size, size)."""
    import torch

    r = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_map(x, y, data_range: float = 1.0, window: int = 7, sigma: float = 1.5):
    """Per-pixel SSIM of ``x`` against ``y`` (n, c, h, w), Gaussian-weighted local
    statistics (Wang et al. 2004, C1 = (0.01 L)^2, C2 = (0.03 L)^2).

    Reflect padding keeps the map the size of the image, so it can be averaged over any
    mask (here the foreground). Windows larger than the image are shrunk to fit.
    """
    import torch.nn.functional as F

    c = x.shape[1]
    window = min(window, x.shape[-1], x.shape[-2])
    window -= 1 - window % 2  # odd
    kernel = gaussian_window(window, sigma, x.device).expand(c, 1, window, window)
    pad = window // 2

    def blur(t):
        return F.conv2d(F.pad(t, (pad, pad, pad, pad), mode="reflect"), kernel, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )


def masked_mean(values, mask):
    """Mean of ``values`` where ``mask`` is true (broadcast over channels); 0 if empty."""
    mask = mask.expand_as(values).to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def total_variation(x, mask=None):
    """Mean absolute difference between neighbouring pixels (where both are in ``mask``)."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs()
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs()
    if mask is None:
        return dy.mean() + dx.mean()
    my = mask[..., 1:, :] & mask[..., :-1, :]
    mx = mask[..., :, 1:] & mask[..., :, :-1]
    return masked_mean(dy, my) + masked_mean(dx, mx)


def foreground_mask(x, k: float = 1.0):
    """Pixels brighter than ``mean + k * std`` of their own image (channels summed).

    A per-image threshold needs no noise model and adapts to bright and faint sources;
    the clean view is used, so the mask does not flicker with the noise draw.
    """
    total = x.sum(dim=1, keepdim=True)
    mean = total.mean(dim=(-2, -1), keepdim=True)
    std = total.std(dim=(-2, -1), keepdim=True)
    return total > mean + k * std


# --- the training loop and inference -----------------------------------------------


def progress_bar():
    """A Rich progress bar on stderr that vanishes when done (silent when not a TTY)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.fields[loss]}"), TimeRemainingColumn(), transient=True,
                    console=console, disable=not console.is_terminal)


def train(model, step: Callable[[np.ndarray, Any], dict[str, Any]], images: np.ndarray,
          train_idx: np.ndarray, val_idx: np.ndarray, *, epochs: int, batch_size: int,
          lr: float, patience: int, seed: int, device, name: str = "training",
          validate: Callable[[], dict[str, float]] | None = None) -> dict[str, Any]:
    """A minimal epoch loop with Adam, validation after every epoch and early stopping.

    ``step(batch, generator)`` returns a dict of scalar tensors with a ``loss`` key (and
    any parts to log). Training batches are shuffled, and augmented with one generator
    that runs on across epochs; validation re-seeds its generator each epoch, so every
    epoch is scored on the same views and noise draws: the curve measures the model, not
    the dice.
    ``validate()`` may add held-out scores after each epoch. When the validation loss has
    not improved for ``patience`` epochs, training stops and the best weights are
    restored. Returns ``metrics_``: per-epoch lists ``train_<part>`` and ``val_<part>``,
    plus ``best_epoch`` (0-based) and ``epochs_run``.
    """
    import torch

    if epochs < 1 or batch_size < 2 or patience < 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 2 (NT-Xent and batch statistics "
                         f"need pairs) and patience >= 0; got {epochs}, {batch_size}, {patience}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    train_gen = make_generator(seed + 1, device)
    history: dict[str, list[float]] = {}
    best, best_epoch = float("inf"), 0
    best_state: dict[str, Any] | None = None  # None: the model holds the best weights

    def record(prefix: str, parts: PartSums):
        for key, value in parts.means().items():
            history.setdefault(f"{prefix}_{key}", []).append(value)

    with deterministic(), progress_bar() as bar:
        for epoch in range(epochs):
            if best_state is None:
                # Before training moves them; the initial weights stay if no epoch scores.
                best_state = snapshot(model)
            task = bar.add_task(f"{name} epoch {epoch + 1}/{epochs}",
                                total=-(-len(train_idx) // batch_size), loss="")
            shown_at = time.monotonic()
            model.train()
            parts = PartSums()
            for batch in iter_batches(images, train_idx, batch_size, rng):
                if len(batch) < 2:  # NT-Xent and batch statistics need a pair
                    continue
                losses = step(torch.from_numpy(batch).to(device), train_gen)
                optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                optimizer.step()
                parts.add(losses, len(batch))
                bar.advance(task)
                # Reading the loss waits for the device: only for a visible bar, at its pace.
                if not bar.disable and time.monotonic() - shown_at > LOSS_SHOWN_EVERY_S:
                    bar.update(task, loss=f"loss {float(losses['loss'].detach()):.4f}")
                    shown_at = time.monotonic()
            record("train", parts)
            bar.remove_task(task)

            model.eval()
            val_gen = make_generator(seed + 2, device)
            parts = PartSums()
            with torch.no_grad():
                for batch in iter_batches(images, val_idx, batch_size):
                    parts.add(step(torch.from_numpy(batch).to(device), val_gen), len(batch))
            record("val", parts)
            if validate is not None:
                for key, value in validate().items():
                    history.setdefault(key, []).append(float(value))
            current = history["val_loss"][-1]
            if current < best:
                best, best_epoch, best_state = current, epoch, None
            elif epoch - best_epoch >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {**history, "best_epoch": float(best_epoch),
            "epochs_run": float(len(history["val_loss"]))}


#: seconds between two readings of the loss for the progress bar
LOSS_SHOWN_EVERY_S = 0.5


class PartSums:
    """Per-batch loss parts of one epoch, kept on their device until the epoch ends.

    ``float(part)`` after every batch would make the host wait for the device each time;
    the parts are read back once, in ``means``, and summed in the same order and
    precision (Python floats) as when they were read one by one.
    """

    def __init__(self):
        self.values: dict[str, list[Any]] = {}
        self.weights: dict[str, list[int]] = {}
        self.count = 0

    def add(self, parts: dict[str, Any], weight: int) -> None:
        for key, value in parts.items():
            self.values.setdefault(key, []).append(value.detach().reshape(()))
            self.weights.setdefault(key, []).append(weight)
        self.count += weight

    def means(self) -> dict[str, float]:
        """The mean of each part over the epoch's items (batches weighted by their size)."""
        import torch

        means = {}
        for key, values in self.values.items():
            total = 0.0
            for value, weight in zip(torch.stack(values).cpu().tolist(), self.weights[key],
                                     strict=True):
                total += value * weight
            means[key] = total / max(self.count, 1)
        return means


def snapshot(model) -> dict[str, Any]:
    """A copy of the model's weights and buffers (``clone``: several times faster than
    ``copy.deepcopy`` of the state dict, with the same values)."""
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def predict(fn: Callable[[Any], Any], images: np.ndarray, batch_size: int, device,
            ) -> np.ndarray:
    """``fn`` applied batch by batch under ``torch.inference_mode``: ``(n, d)`` float32.

    Reads ``batch_size`` rows at a time, so a memory-mapped input is streamed.
    """
    import torch

    n = len(images)
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            # A copy: a read-only memory map would give torch a non-writable tensor.
            batch = np.array(images[start : start + batch_size], dtype=np.float32)
            result = fn(torch.from_numpy(batch).to(device)).float().cpu().numpy()
            result = result.reshape(len(batch), -1)
            if out is None:
                out = np.empty((n, result.shape[1]), dtype=np.float32)
            out[start : start + len(batch)] = result
    if out is None:
        raise ValueError("no images to encode")
    return out


# --- memory -------------------------------------------------------------------------

#: copies of the weights training with Adam holds, each as large as the weights: the
#: weights, their gradients, Adam's two moments and the temporaries of its ``foreach``
#: step
ADAM_COPIES = 5
#: tensors a forward without gradients holds at once, in units of the largest one it
#: makes: a block's input, and its widest layer's input, padded input, output and
#: normalised output (EfficientNet-Lite0 on the CPU peaks at 5.1 times its largest
#: feature map: tests/benchmarks/bench_memory.py)
INFERENCE_COPIES = 5
#: what backward holds besides what the forward kept, in units of the largest
#: activation: a layer's output gradient, its input gradient and its kernel's workspace
BACKWARD_COPIES = 3
#: int64 arrays of one value per image a training holds: the shuffled order, the
#: training and validation indices
INDEX_COPIES = 3
INDEX = 8


@dataclass(frozen=True)
class Allocations:
    """Bytes of the tensors a computation made: ``total`` (views and in-place results,
    which allocate nothing, left out) and the ``largest`` of them."""

    total: int = 0
    largest: int = 0

    def training(self) -> int:
        """The peak of a training step whose forward this is: every tensor the forward
        made, as if all were kept for backward (most are: the inputs of convolutions,
        norms and activations; the rest errs above), and the gradients backward makes."""
        return self.total + BACKWARD_COPIES * self.largest

    def inference(self) -> int:
        """The peak of this forward without gradients: a few tensors live at once."""
        return INFERENCE_COPIES * self.largest


def allocations(compute: Callable[[], Any]) -> Allocations:
    """What ``compute()`` allocates, counted op by op as it runs. Given meta tensors and a
    network built on the meta device, only shapes are worked out: nothing is allocated
    or computed, so even a large network is sized in a fraction of a second."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    found = {"total": 0, "largest": 0}

    class Counting(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if not any(value.alias_info is not None for value in func._schema.returns):
                for tensor in tree_leaves(out):
                    if isinstance(tensor, torch.Tensor):
                        size = tensor.numel() * tensor.element_size()
                        found["total"] += size
                        found["largest"] = max(found["largest"], size)
            return out

    with Counting():
        compute()
    return Allocations(**found)


def parameter_bytes(model, trainable: bool | None = None) -> int:
    """Bytes of ``model``'s weights: all of them, or those that train (``trainable``
    true) or not (false)."""
    return sum(p.numel() * p.element_size() for p in model.parameters()
               if trainable is None or p.requires_grad == trainable)


def embedding_bytes(n: int, dim: int) -> int:
    """The float32 embeddings of the images a row-wise encoder is given at once: the
    runner passes at most ``stages.ENCODE_BATCH_SIZE`` of them."""
    from clustergrid.stages import ENCODE_BATCH_SIZE

    return min(int(n), ENCODE_BATCH_SIZE) * int(dim) * FLOAT32


@dataclass(frozen=True)
class Trained:
    """A trained encoder's network as ``measure_training`` sizes it: ``weights`` bytes,
    one training ``step`` and the embedding's ``dim``."""

    weights: int
    step: Allocations
    dim: int


#: what ``measured`` found, by key: a refusal asks for the estimate of many sizes of one
#: step, which share the network and the batch
_MEASURED: dict[tuple, Any] = {}


def measured(key: tuple, measure: Callable[[], Any]) -> Any:
    """``measure()``, once per ``key`` in this process."""
    if key not in _MEASURED:
        _MEASURED[key] = measure()
    return _MEASURED[key]


def measure_training(encoder: TrainedEncoder, shape: tuple[int, int, int], batch: int
                     ) -> Trained:
    """``encoder``'s network (``build``) for images of ``shape`` on the meta device, and
    one call of its ``losses`` on a batch of ``batch`` of them: the very step training
    runs, augmentations, noise and loss maps included, counted by ``allocations``."""
    import torch

    def measure() -> Trained:
        encoder.check_parameters()
        with torch.device("meta"):
            model = encoder.build(*shape)
            images = torch.empty(batch, *shape)
        probe = copy.copy(encoder)  # ``losses`` reads ``model_``: the meta one, here
        probe.model_ = model
        step = allocations(lambda: probe.losses(images, None)["loss"])
        dim = model.eval().encode(images[:1]).reshape(1, -1).shape[1]
        return Trained(parameter_bytes(model), step, int(dim))

    return measured((type(encoder), repr(encoder), shape, batch), measure)

"""Shared machinery of the simulated datasets: seeding, class mix, optics and noise.

Every simulated item is generated from its own random stream, derived from the
dataset's ``seed`` and the item's index, so any slice ``read(start, stop)`` is produced
on its own and is identical to the same rows of a full read: a dataset of millions of
images streams in batches without anything being generated twice or kept in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from clustergrid import Dataset

#: Bump when a helper's output changes: it is part of every simulator's fingerprint.
HELPERS_VERSION = "1"

# Separate spawn-key namespaces keep the per-item streams and the label streams
# independent of each other whatever the indices.
_ITEM_STREAM = 0
_LABEL_STREAM = 1
#: items whose weighted labels are drawn from one stream, so a slice draws few blocks
_LABEL_BLOCK = 4096


def item_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of item ``index`` of a dataset seeded with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_ITEM_STREAM, index)))


def pixel_grid(size: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the pixel centres of a ``size`` x ``size`` image, relative to its centre.

    ``x`` grows with the column and ``y`` with the row (FITS convention, origin at the
    bottom left when displayed); ``scale`` is the size of one pixel (e.g. arcsec).
    """
    axis = (np.arange(size) - (size - 1) / 2) * scale
    x, y = np.meshgrid(axis, axis)
    return x, y


def bin_pixels(image: np.ndarray, factor: int) -> np.ndarray:
    """Sums over ``factor`` x ``factor`` blocks of the last two axes: the flux per pixel
    of a model sampled on a grid ``factor`` times finer (which tames cuspy profiles)."""
    if factor == 1:
        return image
    *lead, h, w = image.shape
    blocks = image.reshape(*lead, h // factor, factor, w // factor, factor)
    return blocks.sum(axis=(-3, -1))


def rotate(
    x: np.ndarray, y: np.ndarray, x0: float, y0: float, angle: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along (``u``) and across (``v``) an axis at ``angle`` through ``(x0, y0)``."""
    cos, sin = np.cos(angle), np.sin(angle)
    dx, dy = x - x0, y - y0
    return dx * cos + dy * sin, -dx * sin + dy * cos


def sersic_bn(n: float) -> float:
    """``b_n`` such that ``r_eff`` encloses half the light (Ciotti & Bertin 1999 series)."""
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n**2)


def sersic(r: np.ndarray, r_eff: float, n: float) -> np.ndarray:
    """Sersic surface brightness at elliptical radius ``r``, equal to 1 at ``r_eff``."""
    return np.exp(-sersic_bn(n) * ((r / r_eff) ** (1 / n) - 1))


def moffat_kernel(fwhm: float, beta: float = 3.5) -> np.ndarray:
    """A unit-sum Moffat PSF (the wings of seeing-limited stars); ``fwhm`` in pixels."""
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    x, y = pixel_grid(2 * int(np.ceil(3 * fwhm)) + 1)
    kernel = (1 + (x**2 + y**2) / alpha**2) ** -beta
    return kernel / kernel.sum()


def gaussian_kernel(fwhm: float) -> np.ndarray:
    """A unit-sum circular Gaussian PSF; ``fwhm`` in pixels."""
    sigma = fwhm / 2.3548
    x, y = pixel_grid(2 * int(np.ceil(4 * sigma)) + 1)
    kernel = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``image`` (2-D, or a stack along the first axis) convolved with ``kernel``, same size."""
    from scipy.signal import fftconvolve

    if image.ndim == 3:
        kernel = kernel[None]
    # FFT round-off leaves tiny negative values where the model is empty.
    return np.clip(fftconvolve(image, kernel, mode="same", axes=(-2, -1)), 0, None)


def observe(
    expected: np.ndarray,
    rng: np.random.Generator,
    background: float,
    read_noise: float,
    excess_noise: float = 0.0,
) -> np.ndarray:
    """A background-subtracted exposure of ``expected`` counts per pixel.

    Photon (Poisson) noise of source plus background, then Gaussian noise of variance
    ``read_noise**2 + excess_noise**2 * counts`` (read-out electronics, and the gain
    spread of a photomultiplier's single photo-electrons), then the mean background
    level subtracted as a pipeline would.
    """
    counts = rng.poisson(np.clip(expected, 0, None) + background).astype(np.float64)
    sigma = np.sqrt(read_noise**2 + excess_noise**2 * counts)
    return counts - background + rng.normal(0.0, 1.0, size=expected.shape) * sigma


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A draw uniform in ``log`` between ``low`` and ``high`` (fluxes, sizes)."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


class SimulatedDataset(Dataset):
    """Base of the simulated labelled datasets: class mix, seeding, slicing, fingerprint.

    Subclasses set ``CLASSES`` and ``version``, store ``n_samples``, ``size``, ``seed``,
    ``classes`` and ``class_weights`` among their parameters, and implement
    ``_simulate(rng, class_name) -> (native, truth)``: the item in its native form and a
    dict of the parameters drawn for it. ``_image`` turns a native item into a
    ``(c, h, w)`` image when the two differ (a camera's pixel vector, say).

    Without ``class_weights`` labels go round-robin over the chosen classes (item ``i``
    has class ``i % k``), exactly balanced; with weights each label is drawn from the
    seed, so the mix is random but reproducible.
    """

    CLASSES: ClassVar[tuple[str, ...]] = ()

    n_samples: int
    size: int
    seed: int
    classes: Sequence[str] | None
    class_weights: Sequence[float] | Mapping[str, float] | None

    # -- subclass hooks -------------------------------------------------------------

    def _simulate(self, rng: np.random.Generator, class_name: str) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    def _image(self, native: np.ndarray) -> np.ndarray:
        return native

    def _check(self) -> None:
        """Raise ValueError for invalid simulator-specific parameters."""

    # -- the Dataset contract -------------------------------------------------------

    def __len__(self) -> int:
        self._validate()
        return int(self.n_samples)

    def read(self, start: int, stop: int) -> np.ndarray:
        natives = self._natives(start, stop, want_truth=False)[0]
        images = np.empty((len(natives), *self.image_shape), dtype=np.float32)
        for row, native in enumerate(natives):
            images[row] = self._image(native)
        return images

    def labels(self) -> np.ndarray:
        return self._labels(0, len(self))

    def class_names(self) -> list[str]:
        return list(self._chosen_classes())

    def fingerprint(self) -> str:
        self._validate()  # so that bad parameters fail when the grid is planned
        params = ",".join(f"{k}={v!r}" for k, v in sorted(self.get_params().items()))
        return f"{self.name}:v{self.version}:helpers{HELPERS_VERSION}:{params}"

    # -- extras ---------------------------------------------------------------------

    def truth(self, start: int, stop: int) -> list[dict[str, Any]]:
        """The parameters drawn for items ``start:stop`` (class, sizes, positions...).

        Costs as much as reading the items: they are simulated again.
        """
        return self._natives(start, stop, want_truth=True)[1]

    # -- internals ------------------------------------------------------------------

    def _natives(
        self, start: int, stop: int, want_truth: bool
    ) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
        indices = range(len(self))[start:stop]  # slicing semantics, like an array's
        names = self._chosen_classes()
        labels = self._labels(indices.start, indices.stop) if len(indices) else []
        natives, truths = [], []
        for index, label in zip(indices, labels, strict=True):
            native, truth = self._simulate(item_rng(self.seed, index), names[label])
            natives.append(native)
            if want_truth:
                truths.append({"index": index, "class": names[label], **truth})
        return natives, truths

    def _chosen_classes(self) -> tuple[str, ...]:
        if self.classes is None:
            return self.CLASSES
        chosen = (self.classes,) if isinstance(self.classes, str) else tuple(self.classes)
        unknown = [name for name in chosen if name not in self.CLASSES]
        if unknown or not chosen or len(set(chosen)) != len(chosen):
            raise ValueError(
                f"classes must be distinct names among {list(self.CLASSES)}, got {list(chosen)}"
            )
        return chosen

    def _weights(self) -> np.ndarray | None:
        names = self._chosen_classes()
        if self.class_weights is None:
            return None
        if isinstance(self.class_weights, Mapping):
            unknown = set(self.class_weights) - set(names)
            if unknown:
                raise ValueError(f"class_weights names {sorted(unknown)} not among {list(names)}")
            weights = np.array([float(self.class_weights.get(n, 0.0)) for n in names])
        else:
            weights = np.asarray(self.class_weights, dtype=float)
            if weights.shape != (len(names),):
                raise ValueError(
                    f"class_weights needs one weight per class {list(names)}, got "
                    f"{list(self.class_weights)}"
                )
        if not np.all(np.isfinite(weights)) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"class_weights must be non-negative with a positive sum: {weights}")
        return weights / weights.sum()

    def _labels(self, start: int, stop: int) -> np.ndarray:
        weights = self._weights()
        if weights is None:
            return (np.arange(start, stop) % len(self._chosen_classes())).astype(np.int64)
        if stop <= start:
            return np.empty(0, dtype=np.int64)
        first, last = start // _LABEL_BLOCK, (stop - 1) // _LABEL_BLOCK
        draws = np.concatenate([
            np.random.default_rng(
                np.random.SeedSequence(self.seed, spawn_key=(_LABEL_STREAM, block))
            ).random(_LABEL_BLOCK)
            for block in range(first, last + 1)
        ])[start - first * _LABEL_BLOCK : stop - first * _LABEL_BLOCK]
        edges = np.cumsum(weights)
        edges[-1] = 1.0  # round-off must not leave draws past the last class
        return np.searchsorted(edges, draws, side="right").astype(np.int64)

    def _validate(self) -> None:
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, int | np.integer):
            raise ValueError(f"n_samples must be an integer, got {self.n_samples!r}")
        if self.n_samples < 0:
            raise ValueError(f"n_samples must be >= 0, got {self.n_samples}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if isinstance(self.size, bool) or not isinstance(self.size, int | np.integer):
            raise ValueError(f"size must be an integer, got {self.size!r}")
        if self.size < 8:
            raise ValueError(f"size must be >= 8 pixels, got {self.size}")
        self._weights()  # validates classes too
        self._check()

    def _require(self, positive: Sequence[str] = (), non_negative: Sequence[str] = ()) -> None:
        """Raise ValueError unless the named parameters are positive / non-negative numbers."""
        for names, low, strict in ((positive, 0, True), (non_negative, 0, False)):
            for name in names:
                value = getattr(self, name)
                ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
                if not ok or not (value > low if strict else value >= low):
                    kind = "positive" if strict else ">= 0"
                    raise ValueError(f"{name} must be a number {kind}, got {value!r}")

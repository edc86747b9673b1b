"""Small helpers shared by the image transforms (not a component itself).

Every transform works image by image (or channel by channel) so that its output for an
image never depends on the other images of the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def as_float32(images: np.ndarray) -> np.ndarray:
    """``images`` as a 4-d float32 array ``(n, c, h, w)``; a clear error otherwise."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (n, c, h, w), got shape {images.shape}")
    return images.astype(np.float32, copy=False)


def map_units(
    images: np.ndarray, func: Callable[[np.ndarray], np.ndarray], per_channel: bool
) -> np.ndarray:
    """Apply ``func`` to each image ``(c, h, w)``, or to each channel ``(h, w)``.

    ``func`` must keep the shape of its input; the result is float32.
    """
    images = as_float32(images)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        if per_channel:
            for j, plane in enumerate(image):
                out[i, j] = func(plane)
        else:
            out[i] = func(image)
    return out


def map_planes(images: np.ndarray, func: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``func`` to each 2-d plane ``(h, w)``; ``func`` may change the plane's shape."""
    images = as_float32(images)
    planes = [[func(plane) for plane in image] for image in images]
    if not planes or not planes[0]:
        return images
    return np.asarray(planes, dtype=np.float32)


def rescale_unit(values: np.ndarray) -> np.ndarray:
    """Min-max rescale to [0, 1] over the finite values (float64).

    Non-finite values are left as they are; a constant input (or one with no finite
    value) maps to zeros rather than NaN, as in ``normalize``.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.where(np.isfinite(values), 0.0, values)
    low, span = finite.min(), finite.max() - finite.min()
    return (values - low) / (span if span > 0 else 1.0)


def pair(size: int | list[int], name: str, component: str) -> tuple[int, int]:
    """``size`` (an int, or ``[h, w]``) as a ``(h, w)`` tuple of positive ints."""
    if isinstance(size, int | np.integer) and not isinstance(size, bool):
        size = [int(size), int(size)]
    size = list(size)
    if len(size) != 2 or not all(isinstance(s, int | np.integer) and s > 0 for s in size):
        raise ValueError(
            f"{component}: {name} must be a positive int or a list [height, width] "
            f"of positive ints, got {size!r}"
        )
    return int(size[0]), int(size[1])

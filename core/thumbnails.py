"""Small 8-bit pictures of images, for montages and the report's maps and galleries."""

from __future__ import annotations

import numpy as np

#: side of a thumbnail in the report, in pixels
THUMBNAIL_SIZE = 32
#: at most this many items per dataset get a thumbnail (and a point on the report's maps)
MAX_THUMBNAILS = 2500


def display_image(image: np.ndarray) -> np.ndarray:
    """8-bit grayscale (1 channel, or the mean of 2 or 4+) or RGB (the first 3, shown
    red to blue as the last to first channel, the astronomical convention for g, r, i),
    stretched linearly between the image's 1st and 99.5th percentiles."""
    planes = image[::-1] if image.shape[0] == 3 else image.mean(axis=0, keepdims=True)
    finite = np.isfinite(planes)
    low, high = (np.percentile(planes[finite], (1, 99.5)) if finite.any() else (0.0, 1.0))
    scaled = np.clip((np.where(finite, planes, low) - low) / max(high - low, 1e-12), 0, 1)
    pixels = (scaled * 255).astype(np.uint8)
    return pixels[0] if len(pixels) == 1 else np.moveaxis(pixels, 0, -1)


def thumbnails(images: np.ndarray, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 RGB thumbnails of ``(n, channels, h, w)`` images."""
    from PIL import Image

    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        picture = Image.fromarray(display_image(np.asarray(image, dtype=np.float32)))
        out[i] = np.asarray(picture.convert("RGB").resize((size, size), Image.BILINEAR))
    return out


def thumbnail_index(n: int, limit: int = MAX_THUMBNAILS, seed: int = 0) -> np.ndarray:
    """The sorted items of a dataset of ``n`` that get thumbnails: all of them up to
    ``limit``, above it a fixed random sample, the same for every run."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


#: the colours of a row's bars, feature after feature (matplotlib's tab10, less bright)
PROFILE_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
                   (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
                   (188, 189, 34), (23, 190, 207))
#: what lies behind the bars
PROFILE_BACKGROUND = (24, 24, 24)


def profile_scale(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's 1st and 99th percentiles over ``rows`` ``(n, d)`` (finite values
    only; 0 and 1 for a column with none): the range ``profiles`` draws."""
    rows = np.asarray(rows, dtype=np.float64)
    low, high = np.zeros(rows.shape[1]), np.ones(rows.shape[1])
    for column in range(rows.shape[1]):
        values = rows[:, column][np.isfinite(rows[:, column])]
        if len(values):
            low[column], high[column] = np.percentile(values, (1, 99))
    return low, high


def profiles(rows: np.ndarray, low: np.ndarray, high: np.ndarray,
             size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 pictures of the rows of a table ``(n, d)``, where there
    is no image to show: a bar per column, left to right in ``PROFILE_COLOURS``, its
    height the value between the column's ``low`` and ``high`` (``profile_scale``), at
    least a pixel high; a NaN draws no bar. A pixel is left free on each side, and between
    bars when they are wide enough; columns beyond ``size - 2`` share pixels."""
    rows = np.asarray(rows, dtype=np.float64)
    n, d = rows.shape
    with np.errstate(invalid="ignore"):
        scaled = np.clip((rows - low) / np.maximum(high - low, 1e-12), 0, 1)
    heights = np.where(np.isfinite(scaled), np.rint(scaled * (size - 2)) + 1, 0)
    inner = np.arange(size - 2)
    feature = np.minimum(inner * d // (size - 2), d - 1)  # of each inner pixel column
    bar = np.ones(size - 2, dtype=bool)
    if (size - 2) // d >= 3:  # a free pixel column where a bar begins, but the first
        bar = ~((inner * d % (size - 2) < d) & (inner > 0))
    tall = np.arange(size)[::-1][None, :, None] < heights[:, feature][:, None, :]
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    out[:] = PROFILE_BACKGROUND
    palette = np.asarray(PROFILE_COLOURS, dtype=np.uint8)[feature % len(PROFILE_COLOURS)]
    drawn = np.broadcast_to(palette, (n, size, size - 2, 3))
    filled = (tall & bar[None, None, :])[..., None]
    out[:, :, 1:-1] = np.where(filled, drawn, out[:, :, 1:-1])
    return out

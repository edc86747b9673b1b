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

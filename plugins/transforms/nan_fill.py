from __future__ import annotations

from typing import Literal

import numpy as np

from clustergrid import Transform
from clustergrid.plugins.support.imageops import as_float32


class NanFill(Transform):
    """Replace NaN and inf pixels by a value or by the image's median of finite pixels.

    ``method: median`` takes the median over all finite pixels of the image (all
    channels); an image with no finite pixel falls back to ``value``.
    """

    name = "nan_fill"

    def __init__(self, value: float = 0.0, method: Literal["value", "median"] = "value"):
        self.value = value
        self.method = method

    def transform(self, images: np.ndarray) -> np.ndarray:
        if self.method not in ("value", "median"):
            raise ValueError(f"nan_fill: method must be 'value' or 'median', got {self.method!r}")
        if not np.isfinite(self.value):
            raise ValueError(f"nan_fill: value must be a finite number, got {self.value}")
        images = as_float32(images)
        bad = ~np.isfinite(images)
        if not bad.any():
            return images
        out = images.copy()
        for i, image in enumerate(images):
            if not bad[i].any():
                continue
            fill = self.value
            if self.method == "median" and not bad[i].all():
                fill = np.median(image[~bad[i]])
            out[i][bad[i]] = fill
        return out

from __future__ import annotations

from typing import Literal

import numpy as np

from clustergrid import Transform


class Normalize(Transform):
    """Rescale each image (or each channel): min-max to [0, 1], or z-score."""

    name = "normalize"

    def __init__(
        self, method: Literal["minmax", "zscore"] = "minmax", per_channel: bool = False
    ):
        self.method = method
        self.per_channel = per_channel

    def transform(self, images: np.ndarray) -> np.ndarray:
        axes = (2, 3) if self.per_channel else (1, 2, 3)
        images = images.astype(np.float32, copy=False)
        if self.method == "minmax":
            low = images.min(axis=axes, keepdims=True)
            span = images.max(axis=axes, keepdims=True) - low
            # A constant image has no contrast to stretch: map it to zeros, not NaN.
            return (images - low) / np.where(span > 0, span, 1)
        mean = images.mean(axis=axes, keepdims=True)
        std = images.std(axis=axes, keepdims=True)
        return (images - mean) / np.where(std > 0, std, 1)

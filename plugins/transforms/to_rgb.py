from __future__ import annotations

import numpy as np

from clustergrid import Transform
from clustergrid.plugins.support.imageops import as_float32


class ToRGB(Transform):
    """Make 3-channel images, as RGB encoders expect: 1 channel is repeated, 3 kept.

    Other channel counts raise a ValueError: put a ``channels`` transform first to pick
    three channels (``select: [...]``) or average them to one (``mode: mean``).
    """

    name = "to_rgb"

    def transform(self, images: np.ndarray) -> np.ndarray:
        images = as_float32(images)
        n_channels = images.shape[1]
        if n_channels == 3:
            return images
        if n_channels == 1:
            return np.repeat(images, 3, axis=1)
        raise ValueError(
            f"to_rgb: images have {n_channels} channels, need 1 or 3; put a channels "
            "transform first (select: [i, j, k], or mode: mean)"
        )

from __future__ import annotations

import numpy as np

from clustergrid import Transform
from clustergrid.plugins.support.imageops import map_planes, pair


class Resize(Transform):
    """Resize each channel to size (an int for a square, or [h, w]), bilinearly.

    Uses ``skimage.transform.resize`` with ``order=1`` and ``preserve_range=True`` (values
    keep their units rather than being rescaled to [0, 1]); when an axis shrinks a Gaussian
    anti-aliasing filter is applied first, as skimage recommends, so small sources are
    averaged rather than dropped. NaN spreads to the output pixels that interpolate it.
    """

    name = "resize"

    def __init__(self, size: int | list[int] = 64):
        self.size = size

    def transform(self, images: np.ndarray) -> np.ndarray:
        from skimage.transform import resize

        shape = pair(self.size, "size", "resize")
        shrinking = any(new < old for new, old in zip(shape, np.shape(images)[2:], strict=True))
        return map_planes(
            images,
            lambda plane: resize(
                plane, shape, order=1, anti_aliasing=shrinking, preserve_range=True
            ),
        )

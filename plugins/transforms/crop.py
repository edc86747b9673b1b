from __future__ import annotations

import numpy as np

from clustergrid import Transform
from clustergrid.plugins.support.imageops import as_float32, pair


class Crop(Transform):
    """Cut the central stamp of size pixels (an int for a square, or [h, w]).

    When the margin is odd, the extra row/column is dropped from the bottom/right (the
    stamp starts at ``(H - h) // 2``). A stamp larger than the image raises a ValueError.
    """

    name = "crop"

    def __init__(self, size: int | list[int] = 64):
        self.size = size

    def transform(self, images: np.ndarray) -> np.ndarray:
        images = as_float32(images)
        h, w = pair(self.size, "size", "crop")
        height, width = images.shape[2:]
        if h > height or w > width:
            raise ValueError(
                f"crop: size {h}x{w} is larger than the images ({height}x{width}); "
                "use resize to enlarge them"
            )
        top, left = (height - h) // 2, (width - w) // 2
        return np.ascontiguousarray(images[:, :, top : top + h, left : left + w])

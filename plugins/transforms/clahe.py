from __future__ import annotations

import numpy as np

from clustergrid import Transform
from clustergrid.plugins.support.imageops import as_float32, rescale_unit


class Clahe(Transform):
    """Contrast-limited adaptive histogram equalisation (skimage) of each channel.

    Each image is first min-max rescaled to [0, 1] as a whole, because
    ``skimage.exposure.equalize_adapthist`` only accepts floats in [-1, 1]; skimage then
    stretches each channel to its own full range before equalising and returns values in
    [0, 1]. ``kernel_size`` (an int, ``[h, w]``, or None for 1/8 of the image sides) and
    ``clip_limit`` (0-1, higher gives more contrast) and ``nbins`` are skimage's.

    NaN or inf in an image raises a ValueError (put ``nan_fill`` before ``clahe``):
    equalisation mixes each pixel's neighbourhood, so a silent fill would change pixels
    far from the missing ones.
    """

    name = "clahe"

    def __init__(
        self,
        clip_limit: float = 0.01,
        kernel_size: int | list[int] | None = None,
        nbins: int = 256,
    ):
        self.clip_limit = clip_limit
        self.kernel_size = kernel_size
        self.nbins = nbins

    def _check(self) -> None:
        if not 0 < self.clip_limit <= 1:
            raise ValueError(f"clahe: clip_limit must be in (0, 1], got {self.clip_limit}")
        if self.nbins < 2:
            raise ValueError(f"clahe: nbins must be >= 2, got {self.nbins}")
        sizes = [] if self.kernel_size is None else np.atleast_1d(self.kernel_size).tolist()
        if len(sizes) > 2 or any(s < 1 for s in sizes):
            raise ValueError(
                "clahe: kernel_size must be a positive int, [height, width] or null, "
                f"got {self.kernel_size!r}"
            )

    def transform(self, images: np.ndarray) -> np.ndarray:
        from skimage.exposure import equalize_adapthist

        self._check()
        images = as_float32(images)
        if not np.isfinite(images).all():
            raise ValueError("clahe: images contain NaN or inf; put a nan_fill transform first")
        out = np.empty_like(images)
        for i, image in enumerate(images):
            unit = rescale_unit(image)
            for j, plane in enumerate(unit):
                out[i, j] = equalize_adapthist(
                    plane,
                    kernel_size=self.kernel_size,
                    clip_limit=self.clip_limit,
                    nbins=self.nbins,
                )
        return out

from __future__ import annotations

import numpy as np

from clustergrid import Transform
from clustergrid.plugins.support.imageops import as_float32

#: 8-connectivity: diagonal pixels of a source belong to it (and dilation grows squares).
_EIGHT = np.ones((3, 3), dtype=bool)


class Mask(Transform):
    """Zero the background: keep the largest bright connected region of each image.

    The foreground is the channel-mean image above ``threshold``, or above Otsu's
    threshold (``skimage.filters.threshold_otsu`` of the finite pixels) when
    ``threshold`` is null. Only its largest 8-connected component is kept (the first in
    raster order on ties), optionally grown by ``dilate`` pixels (binary dilation with a
    3x3 square, so ``dilate`` is a chessboard distance); every channel is multiplied by
    that mask. Pixels whose channel mean is NaN/inf are background. With Otsu, a constant
    image (no contrast to split) gets an empty mask, i.e. becomes all zeros.
    """

    name = "mask"

    def __init__(self, threshold: float | None = None, dilate: int = 0):
        self.threshold = threshold
        self.dilate = dilate

    def mask(self, image: np.ndarray) -> np.ndarray:
        """The boolean ``(h, w)`` foreground mask of one ``(c, h, w)`` image."""
        from scipy import ndimage
        from skimage.filters import threshold_otsu

        mean = image.mean(axis=0, dtype=np.float64)
        finite = np.isfinite(mean)
        threshold = self.threshold
        if threshold is None:
            values = mean[finite]
            if values.size == 0 or values.min() == values.max():
                return np.zeros(mean.shape, dtype=bool)
            threshold = threshold_otsu(values)
        foreground = finite & (mean > threshold)
        labels, n_regions = ndimage.label(foreground, structure=_EIGHT)
        if n_regions == 0:
            return foreground
        sizes = np.bincount(labels.ravel())[1:]
        keep = labels == 1 + int(np.argmax(sizes))
        if self.dilate:
            # iterations=0 would mean "until nothing changes" in scipy, hence the guard.
            keep = ndimage.binary_dilation(keep, structure=_EIGHT, iterations=self.dilate)
        return keep

    def transform(self, images: np.ndarray) -> np.ndarray:
        if isinstance(self.dilate, bool) or not isinstance(self.dilate, int) or self.dilate < 0:
            raise ValueError(f"mask: dilate must be an int >= 0, got {self.dilate!r}")
        if self.threshold is not None and not np.isfinite(self.threshold):
            raise ValueError(f"mask: threshold must be a finite number or null: {self.threshold}")
        images = as_float32(images)
        out = np.zeros_like(images)
        for i, image in enumerate(images):
            keep = self.mask(image)
            # where, not multiplication, so NaN in the background becomes 0 too.
            out[i] = np.where(keep, image, 0.0)
        return out

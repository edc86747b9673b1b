from __future__ import annotations

import numpy as np

from clustergrid import Transform
from clustergrid.plugins.support.imageops import as_float32

#: The 8 neighbours of a pixel on the square grid (the pixel itself excluded).
_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.int32)


def tailcuts_mask(
    plane: np.ndarray,
    picture: float,
    boundary: float,
    min_neighbours: int = 0,
    keep_isolated: bool = False,
) -> np.ndarray:
    """ctapipe's ``tailcuts_clean`` on a square pixel grid with 8-connectivity."""
    from scipy import ndimage

    def count(selected: np.ndarray) -> np.ndarray:
        """How many of each pixel's 8 neighbours are selected (outside the image: none)."""
        return ndimage.correlate(selected.astype(np.int32), _NEIGHBOURS, mode="constant")

    # Comparisons with NaN are False: NaN pixels are never kept.
    above_picture = plane >= picture
    above_boundary = plane >= boundary
    if keep_isolated or min_neighbours == 0:
        in_picture = above_picture
    else:
        in_picture = above_picture & (count(above_picture) >= min_neighbours)
    boundary_kept = above_boundary & (count(in_picture) > 0)
    if keep_isolated:
        return boundary_kept | in_picture
    # As in ctapipe, a picture pixel with no neighbour above the boundary is noise.
    return boundary_kept | (in_picture & (count(above_boundary) > 0))


class Tailcuts(Transform):
    """Cherenkov tail-cuts cleaning: zero all but picture pixels and their boundary.

    The semantics of ctapipe's ``tailcuts_clean`` on the image grid, where each pixel's
    neighbours are its 8 surrounding pixels (8-connectivity): picture pixels are those
    ``>= picture`` with at least ``min_neighbours`` picture neighbours (0: no
    condition); boundary pixels ``>= boundary`` are kept when next to a picture pixel;
    unless ``keep_isolated``, a picture pixel is kept only when a neighbour is
    ``>= boundary``. Each channel is cleaned on its own; other pixels (and NaN) become 0.
    """

    name = "tailcuts"

    def __init__(
        self,
        picture: float = 7.0,
        boundary: float = 5.0,
        min_neighbours: int = 0,
        keep_isolated: bool = False,
    ):
        self.picture = picture
        self.boundary = boundary
        self.min_neighbours = min_neighbours
        self.keep_isolated = keep_isolated

    def transform(self, images: np.ndarray) -> np.ndarray:
        if self.boundary > self.picture:
            raise ValueError(
                f"tailcuts: boundary ({self.boundary}) must not exceed picture ({self.picture})"
            )
        if not 0 <= self.min_neighbours <= 8:
            raise ValueError(
                f"tailcuts: min_neighbours must be in 0..8 (8-connectivity), "
                f"got {self.min_neighbours}"
            )
        images = as_float32(images)
        out = np.zeros_like(images)
        for i, image in enumerate(images):
            for j, plane in enumerate(image):
                keep = tailcuts_mask(
                    plane, self.picture, self.boundary, self.min_neighbours, self.keep_isolated
                )
                out[i, j] = np.where(keep, plane, 0.0)
        return out

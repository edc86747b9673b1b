"""Which axis of an image array holds the channels: the ``layout`` rule of the array loaders.

``npy`` and ``hdf5`` both take a ``layout`` parameter with these values:

- ``nhwc``: channels last, ``(n, h, w, c)`` (Galaxy10, most RGB cutouts)
- ``nchw``: channels first, ``(n, c, h, w)`` (PyTorch tensors)
- ``nhw``: one channel, ``(n, h, w)``
- ``auto``: decided from the shape. Images are larger than 4 pixels and RGB(A) cutouts
  store their 1 to 4 channels last, so a trailing axis of 1 to 4 entries after two
  larger ones is channels-last; otherwise a leading axis shorter than the two after it
  (``(n, 5, 64, 64)``: five bands) is channels-first; a 3-d stack is ``nhw``. Any other
  shape, e.g. ``(n, 3, 3, 3)``, ``(n, 4, 64, 2)`` or ``(n, 64, 64, 6)``, is an error
  asking for ``layout`` to be set.

For one image per array (a ``.npy`` per image, an HDF5 group per object) the same values
apply with ``n`` left out: ``nhwc`` means each array is ``(h, w, c)``, ``nchw``
``(c, h, w)``, ``nhw`` ``(h, w)``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Layout = Literal["auto", "nhwc", "nchw", "nhw"]
LAYOUTS: tuple[str, ...] = ("auto", "nhwc", "nchw", "nhw")

#: The most channels ``auto`` expects (grey 1, RGB 3, RGBA 4).
MAX_CHANNELS = 4


def _short(size: int) -> bool:
    return 1 <= size <= MAX_CHANNELS


def resolve_layout(shape: tuple[int, ...], layout: str, where: str,
                   stacked: bool = True) -> str:
    """The layout (``nhwc``, ``nchw`` or ``nhw``) of an array of ``shape``: ``layout`` when
    it is explicit and fits the rank, else decided by the ``auto`` rule. ``stacked``:
    ``shape`` starts with the number of images; otherwise it is one image. ``where``
    names the array in the ValueError raised for a wrong rank or an undecidable shape."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be auto, nhwc, nchw or nhw, not {layout!r}")
    shape = tuple(int(size) for size in shape)
    image = shape[1:] if stacked else shape
    n = "n, " if stacked else ""
    if layout == "auto" and len(image) == 3:
        first, middle, last = image
        if _short(last) and not _short(first) and not _short(middle):
            return "nhwc"
        # Bands first: fewer of them than pixels on either side (multi-band cubes may
        # have more than 4), with a trailing axis too long to be channels.
        if first < middle and first < last and not _short(last):
            return "nchw"
        raise ValueError(
            f"{where} has shape {shape}: cannot tell which axis holds the channels; set "
            f"layout: nhwc ({n}h, w, c), nchw ({n}c, h, w) or nhw ({n}h, w)"
        )
    chosen = "nhw" if layout == "auto" else layout
    if len(image) != (2 if chosen == "nhw" else 3):
        raise ValueError(
            f"{where} has shape {shape}; expected ({n}h, w), ({n}h, w, c) or ({n}c, h, w) "
            f"(layout: {layout})"
        )
    return chosen


def as_nchw(block: np.ndarray, layout: str) -> np.ndarray:
    """A stack in ``layout`` (``nhwc``, ``nchw`` or ``nhw``) as ``(n, c, h, w)`` float32."""
    block = np.asarray(block)
    if layout == "nhw":
        block = block[:, None]
    elif layout == "nhwc":
        block = block.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(block, dtype=np.float32)


def as_chw(image: np.ndarray, layout: str) -> np.ndarray:
    """One image in ``layout`` (without ``n``) as ``(c, h, w)`` float32."""
    return as_nchw(np.asarray(image)[None], layout)[0]

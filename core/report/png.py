"""Images embedded in the report, as PNG data URIs."""

from __future__ import annotations

import base64
import io

import numpy as np


def png_data_uri(pixels: np.ndarray) -> str:
    """An RGB ``uint8`` array (height, width, 3) as a ``data:image/png`` URI."""
    from PIL import Image

    out = io.BytesIO()
    # zlib level 3, not Pillow's optimize: a report is written after every run, and for
    # the digits' sprite (1,797 thumbnails) this is 7 times faster (0.19 s against
    # 1.34 s) for an 8% larger file.
    Image.fromarray(pixels).save(out, format="PNG", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()

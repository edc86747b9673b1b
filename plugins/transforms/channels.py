from __future__ import annotations

from typing import Literal

import numpy as np

from clustergrid import Transform
from clustergrid.plugins.support.imageops import as_float32


class Channels(Transform):
    """Select or reorder channels (select), or average them into one (mode: mean).

    ``select`` lists channel indices (0-based, repeats allowed) in the output order. With
    ``mode: mean`` the selected channels (all of them when ``select`` is null) are
    averaged into a single channel; NaN in any of them gives NaN.
    """

    name = "channels"

    def __init__(self, select: list[int] | None = None, mode: Literal["select", "mean"] = "select"):
        self.select = select
        self.mode = mode

    def transform(self, images: np.ndarray) -> np.ndarray:
        images = as_float32(images)
        n_channels = images.shape[1]
        if self.mode not in ("select", "mean"):
            raise ValueError(f"channels: mode must be 'select' or 'mean', got {self.mode!r}")
        if self.select is None:
            if self.mode == "select":
                raise ValueError("channels: mode 'select' needs channel indices in select")
            index = list(range(n_channels))
        else:
            index = list(self.select)
            if not index:
                raise ValueError("channels: select must list at least one channel index")
            bad = [i for i in index if not 0 <= i < n_channels]
            if bad:
                raise ValueError(
                    f"channels: select index {bad[0]} is out of range for images with "
                    f"{n_channels} channel(s) (valid: 0 to {n_channels - 1})"
                )
        picked = images[:, index]
        if self.mode == "mean":
            return picked.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
        return np.ascontiguousarray(picked)

    def channel_names(self, names: list[str]) -> list[str] | None:
        if self.mode == "mean":
            return None  # an average of bands is none of them
        if self.select is None or not all(0 <= i < len(names) for i in self.select):
            return None
        return [names[i] for i in self.select]

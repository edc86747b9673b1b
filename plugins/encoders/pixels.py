from __future__ import annotations

import numpy as np

from clustergrid import Encoder


class Pixels(Encoder):
    """Raw pixel values, flattened; ``downsample: k`` first averages k x k blocks."""

    name = "pixels"

    def __init__(self, downsample: int = 1, batch_size: int = 1024):
        self.downsample = downsample
        self.batch_size = batch_size

    def memory_estimate(self, n: int, d: int) -> int:
        """The embeddings of the images it is given, which the runner passes in slices
        of at most 4,096 (``stages.ENCODE_BATCH_SIZE``), and a float32 batch of images,
        twice (its copy and the averaged blocks), for ``d`` values per image."""
        rows = min(n, 4096) * d // max(1, int(self.downsample)) ** 2
        return 4 * (rows + 2 * min(n, max(1, int(self.batch_size))) * d)

    def transform(self, images: np.ndarray) -> np.ndarray:
        if self.downsample < 1:
            raise ValueError(f"downsample must be >= 1, got {self.downsample}")
        n, c, h, w = images.shape
        k = self.downsample
        hk, wk = h // k, w // k
        if hk == 0 or wk == 0:
            raise ValueError(f"downsample={k} is larger than the {h}x{w} images")
        out = np.empty((n, c * hk * wk), dtype=np.float32)
        # Slice by batch so a memory-mapped image stack is never read whole.
        for start in range(0, n, self.batch_size):
            batch = np.asarray(images[start : start + self.batch_size], dtype=np.float32)
            batch = batch[:, :, : hk * k, : wk * k]
            blocks = batch.reshape(len(batch), c, hk, k, wk, k).mean(axis=(3, 5))
            out[start : start + len(batch)] = blocks.reshape(len(batch), -1)
        return out

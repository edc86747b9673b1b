"""Datasets whose structure is known exactly, to check a grid before trusting it on real
images: Gaussian blobs of a chosen k (``centers: 1`` has no clusters at all) and images
of pure noise. Both are generated in memory from their ``seed``; nothing is downloaded.
"""

from __future__ import annotations

import numpy as np

from clustergrid import Dataset
from clustergrid.plugins.datasets.simulation import item_rng


class Blobs(Dataset):
    """Isotropic Gaussian blobs (scikit-learn's make_blobs), each item a 1 x 1 x d image.

    ``centers`` blobs of ``cluster_std`` with centres drawn uniformly in
    ``center_box``; labelled by blob. With ``centers: 1`` it is one Gaussian: nothing
    for a clustering to find."""

    name = "blobs"

    def __init__(self, n_samples: int = 600, n_features: int = 10, centers: int = 4,
                 cluster_std: float = 1.0, center_box: tuple[float, float] = (-10.0, 10.0),
                 seed: int = 0):
        self.n_samples = n_samples
        self.n_features = n_features
        self.centers = centers
        self.cluster_std = cluster_std
        self.center_box = center_box
        self.seed = seed

    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_blobs"):
            from sklearn.datasets import make_blobs

            if self.n_samples < 1 or self.n_features < 1 or self.centers < 1:
                raise ValueError("n_samples, n_features and centers must be >= 1")
            X, y = make_blobs(self.n_samples, self.n_features, centers=self.centers,
                              cluster_std=self.cluster_std, center_box=tuple(self.center_box),
                              random_state=self.seed)
            self._blobs = X.astype(np.float32), y.astype(np.int64)
        return self._blobs

    def __len__(self) -> int:
        return self.n_samples

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 1, self.n_features)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self._data()[0][start:stop, None, None, :]

    def labels(self) -> np.ndarray:
        return self._data()[1]

    def class_names(self) -> list[str]:
        return [f"blob {k}" for k in range(self.centers)]

    def fingerprint(self) -> str:
        return (f"blobs:{self.n_samples}:{self.n_features}:{self.centers}:{self.cluster_std}:"
                f"{list(self.center_box)}:{self.seed}")


class Noise(Dataset):
    """Images of independent Gaussian pixel noise, unlabelled: no structure to find."""

    name = "noise"

    def __init__(self, n_samples: int = 500, size: int = 16, channels: int = 1, seed: int = 0):
        self.n_samples = n_samples
        self.size = size
        self.channels = channels
        self.seed = seed

    def __len__(self) -> int:
        return self.n_samples

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def read(self, start: int, stop: int) -> np.ndarray:
        # One stream per item: any slice equals the same rows of a full read.
        return np.stack([item_rng(self.seed, i).standard_normal(self.image_shape)
                         for i in range(start, stop)]).astype(np.float32)

    def fingerprint(self) -> str:
        return f"noise:{self.n_samples}:{self.size}:{self.channels}:{self.seed}"

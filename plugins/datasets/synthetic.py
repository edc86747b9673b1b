"""Datasets whose structure is known exactly, to check a grid before trusting it on real
images: Gaussian blobs of a chosen k (``centers: 1`` has no clusters at all), groups of
shapes that are not round blobs (moons, rings, stretched, unequal and unbalanced groups,
groups in background noise), and images of pure noise. All are generated in memory from
their ``seed``; nothing is downloaded.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from clustergrid import Dataset
from clustergrid.plugins.support.simulation import item_rng


class _Points(Dataset):
    """Labelled points made in memory, each item a 1 x 1 x ``n_features`` image: a
    subclass makes them in ``_data`` as ``(X, y)``."""

    n_samples: int
    n_features: int

    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.n_samples

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 1, self.n_features)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self._data()[0][start:stop, None, None, :]

    def labels(self) -> np.ndarray:
        return self._data()[1]


class Blobs(_Points):
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

    def class_names(self) -> list[str]:
        return [f"blob {k}" for k in range(self.centers)]

    def fingerprint(self) -> str:
        return (f"blobs:{self.n_samples}:{self.n_features}:{self.centers}:{self.cluster_std}:"
                f"{list(self.center_box)}:{self.seed}")


class Shapes(_Points):
    """Groups of known shape, each item a 1 x 1 x d image, labelled by group: the cases
    where choosing a clustering by how compact it is goes wrong.

    ``kind`` (scikit-learn's generators, 2-D before embedding):

    - ``moons``: two interleaving half circles (``make_moons``, noise 0.06);
    - ``circles``: a ring inside a ring (``make_circles``, factor 0.45, noise 0.05);
    - ``anisotropic``: three blobs stretched and sheared by one linear map;
    - ``varied``: three blobs of standard deviations 1, 2.5 and 0.5;
    - ``unbalanced``: a group of 80 % of the items beside two of 12 % and 8 %;
    - ``background``: four blobs with 20 % of the items spread uniformly around them,
      labelled -1 (unknown: no class to recover, so label-based scores leave them out).

    With ``n_features`` above 2 the 2-D points get that many dimensions: the extra ones
    are Gaussian noise of 5 % of the data's spread, and all are rotated at random, so the
    groups lie in a plane of a larger space as in a learned embedding."""

    name = "shapes"
    KINDS = ("moons", "circles", "anisotropic", "varied", "unbalanced", "background")

    def __init__(self, kind: Literal["moons", "circles", "anisotropic", "varied",
                                     "unbalanced", "background"] = "moons",
                 n_samples: int = 500, n_features: int = 2, seed: int = 0):
        self.kind = kind
        self.n_samples = n_samples
        self.n_features = n_features
        self.seed = seed

    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_points"):
            if self.kind not in self.KINDS:
                raise ValueError(f"kind must be one of {', '.join(self.KINDS)}, got "
                                 f"{self.kind!r}")
            if self.n_samples < 10 or self.n_features < 2:
                raise ValueError("n_samples must be >= 10 and n_features >= 2")
            X, y = _shape(self.kind, self.n_samples, self.seed)
            rng = np.random.default_rng(self.seed)
            if self.n_features > 2:
                extra = rng.normal(0.0, 0.05 * X.std(), (len(X), self.n_features - 2))
                rotation, _ = np.linalg.qr(rng.normal(size=(self.n_features,) * 2))
                X = np.hstack([X, extra]) @ rotation
            order = rng.permutation(len(X))
            self._points = X[order].astype(np.float32), y[order].astype(np.int64)
        return self._points

    def fingerprint(self) -> str:
        return f"shapes:{self.kind}:{self.n_samples}:{self.n_features}:{self.seed}"


def _shape(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``kind``'s 2-D points and groups (``Shapes``)."""
    from sklearn import datasets

    if kind == "moons":
        return datasets.make_moons(n, noise=0.06, random_state=seed)
    if kind == "circles":
        return datasets.make_circles(n, factor=0.45, noise=0.05, random_state=seed)
    if kind == "anisotropic":
        X, y = datasets.make_blobs(n, centers=3, random_state=170 + seed)
        return X @ np.array([[0.6, -0.64], [-0.41, 0.85]]), y
    if kind == "varied":
        return datasets.make_blobs(n, centers=3, cluster_std=[1.0, 2.5, 0.5],
                                   random_state=170 + seed)
    if kind == "unbalanced":
        sizes = [n - 2 * round(0.1 * n), round(0.12 * n), round(0.08 * n)]
        sizes[0] = n - sizes[1] - sizes[2]
        return datasets.make_blobs(sizes, centers=[[0, 0], [6, 6], [-6, 5]],
                                   cluster_std=[1.5, 0.6, 0.6], random_state=seed)
    grouped = n - n // 5
    X, y = datasets.make_blobs(grouped, centers=4, cluster_std=0.7, center_box=(-8, 8),
                               random_state=seed)
    rng = np.random.default_rng(seed)
    spread = rng.uniform(X.min(axis=0) - 2, X.max(axis=0) + 2, (n - grouped, 2))
    return np.vstack([X, spread]), np.r_[y, np.full(n - grouped, -1)]


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

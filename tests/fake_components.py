"""Components for tests, registered in-process with ``Registry.load(extra=[module])``."""

from __future__ import annotations

import numpy as np

from clustergrid import Clusterer, Dataset, Encoder, Metric, Reducer, Transform, hookimpl

#: (encoder tag, seed) of every Counting/Seeded encoder call, in this process
CALLS: list[tuple[str, int | None]] = []


class Counting(Encoder):
    """Deterministic: pixels plus a constant, recording each call."""

    name = "counting"

    def __init__(self, tag: str = "a"):
        self.tag = tag

    def transform(self, images):
        CALLS.append((self.tag, None))
        return np.asarray(images).reshape(len(images), -1) + 1.0


class Seeded(Encoder):
    """Stochastic: a random projection, recording each call with its seed."""

    name = "seeded"

    def __init__(self, dim: int = 8, random_state: int | None = None):
        self.dim = dim
        self.random_state = random_state

    def transform(self, images):
        CALLS.append(("seeded", self.random_state))
        flat = np.asarray(images).reshape(len(images), -1)
        rng = np.random.default_rng(self.random_state)
        return flat @ rng.normal(size=(flat.shape[1], self.dim))


class NotANumber(Encoder):
    """Returns NaN in some rows."""

    name = "nan"

    def transform(self, images):
        out = np.ones((len(images), 3))
        out[:5] = np.nan
        return out


class Fragile(Clusterer):
    """k-means that raises for one value of k."""

    name = "fragile"

    def __init__(self, n_clusters: int = 2, fail_at: int = 3, random_state: int | None = None):
        self.n_clusters = n_clusters
        self.fail_at = fail_at
        self.random_state = random_state

    def fit_predict(self, X):
        if self.n_clusters == self.fail_at:
            raise ValueError(f"cannot make {self.fail_at} clusters")
        from sklearn.cluster import KMeans

        return KMeans(self.n_clusters, n_init=2, random_state=self.random_state).fit_predict(X)


class Named(Dataset):
    """Two blobs of 6x6 images whose class names and ids are user-supplied strings."""

    name = "named"

    def __init__(self, class_name: str = "a", n_samples: int = 40):
        self.class_name = class_name
        self.n_samples = n_samples

    def __len__(self):
        return self.n_samples

    @property
    def image_shape(self):
        return (1, 6, 6)

    def read(self, start, stop):
        rng = np.random.default_rng(0)
        images = rng.normal(size=(self.n_samples, 1, 6, 6)).astype(np.float32)
        images[self.n_samples // 2 :] += 4
        return images[start:stop]

    def labels(self):
        return (np.arange(self.n_samples) >= self.n_samples // 2).astype(np.int64)

    def class_names(self):
        return [self.class_name, "other"]

    def ids(self):
        return np.array([f"obj-{i}" for i in range(self.n_samples)])


class Negate(Transform):
    """Multiplies every pixel by -1."""

    name = "negate"

    def transform(self, images):
        return -images


class FirstColumns(Reducer):
    """Keeps the first ``k`` features."""

    name = "first"

    def __init__(self, k: int = 2):
        self.k = k

    def fit_transform(self, X):
        return X[:, : self.k]


class LargestCluster(Metric):
    """Fraction of points in the largest cluster, and the number of clusters."""

    name = "largest"

    def compute(self, X, labels, true_labels=None):
        sizes = np.bincount(labels[labels >= 0])
        return {"largest": sizes.max() / len(labels), "clusters": float(len(sizes))}


@hookimpl
def register_transforms(register):
    register(Negate)


@hookimpl
def register_reducers(register):
    register(FirstColumns)


@hookimpl
def register_metrics(register):
    register(LargestCluster)


@hookimpl
def register_encoders(register):
    for encoder in (Counting, Seeded, NotANumber):
        register(encoder)


@hookimpl
def register_clusterers(register):
    register(Fragile)


@hookimpl
def register_datasets(register):
    register(Named)


# Metrics that declare their direction. They are registered by their own plugin object,
# ``DirectedMetrics``, so the metric lists of tests that use this module stay as they were.


class MeanSpread(Metric):
    """Mean distance of clustered points to their cluster's centre: lower is better."""

    name = "spread"
    direction = "lower"

    def compute(self, X, labels, true_labels=None):
        kept = labels >= 0
        centres = {k: X[labels == k].mean(axis=0) for k in np.unique(labels[kept])}
        return float(np.mean([np.linalg.norm(x - centres[k]) for x, k in
                              zip(X[kept], labels[kept], strict=True)]))


class ClusteredShare(Metric):
    """Share of points in a cluster (not noise): describes, neither better nor worse."""

    name = "clustered_share"
    direction = "descriptive"

    def compute(self, X, labels, true_labels=None):
        return float(np.mean(labels >= 0))


class DirectedMetrics:
    """A plugin registering ``MeanSpread`` and ``ClusteredShare``."""

    @hookimpl
    def register_metrics(self, register):
        register(MeanSpread)
        register(ClusteredShare)

from __future__ import annotations

import numpy as np

from clustergrid import Reducer


class Standardize(Reducer):
    """Zero mean and unit variance per feature (scikit-learn StandardScaler).

    A constant feature has no scale to divide by; it becomes all zeros rather than NaN.
    Statistics are accumulated in float64 even for float32 embeddings; the output is
    float32.
    """

    name = "standardize"

    def __init__(self, with_mean: bool = True, with_std: bool = True):
        self.with_mean = with_mean
        self.with_std = with_std

    def memory_estimate(self, n: int, d: int) -> int:
        """The scaled copy of the data, and its float32 result."""
        from clustergrid.memory import FLOAT32

        return 2 * n * d * FLOAT32

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler(with_mean=self.with_mean, with_std=self.with_std)
        return scaler.fit_transform(np.asarray(X)).astype(np.float32)

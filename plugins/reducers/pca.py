from __future__ import annotations

import numpy as np

from clustergrid import Reducer


class PCA(Reducer):
    """Principal components (scikit-learn); an int keeps that many, a float in (0, 1)
    keeps enough to explain that fraction of the variance."""

    name = "pca"

    def __init__(self, n_components: int | float = 10, whiten: bool = False):
        self.n_components = n_components
        self.whiten = whiten

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA as SklearnPCA

        n_components = self.n_components
        if isinstance(n_components, int) and n_components > min(X.shape):
            raise ValueError(
                f"n_components={n_components} exceeds min(n_samples, n_features)={min(X.shape)}"
            )
        # A fixed random_state keeps the randomized solver (chosen for large inputs)
        # deterministic, so PCA is computed once for all seeds.
        pca = SklearnPCA(n_components=n_components, whiten=self.whiten, random_state=0)
        out = pca.fit_transform(X).astype(np.float32)
        self.metrics_ = {"explained_variance": float(pca.explained_variance_ratio_.sum())}
        return out

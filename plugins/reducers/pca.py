from __future__ import annotations

import numbers
from typing import Annotated

import numpy as np
from annotated_types import Ge, Gt, Lt

from clustergrid import Reducer

#: a number of components, or a fraction of the variance (checked before anything runs)
Count = Annotated[int, Ge(1)]
Fraction = Annotated[float, Gt(0), Lt(1)]


class PCA(Reducer):
    """Principal components (scikit-learn): an int count, or a variance fraction.

    ``n_components`` as an int keeps that many components; as a float in (0, 1) it keeps
    the fewest components whose explained variance ratio sums to at least that fraction.
    ``whiten`` rescales each component to unit variance. Logged: ``explained_variance``
    (the fraction kept) and ``n_components`` (the count kept).
    """

    name = "pca"

    def __init__(self, n_components: Count | Fraction = 10, whiten: bool = False):
        self.n_components = n_components
        self.whiten = whiten

    def memory_estimate(self, n: int, d: int) -> int:
        """scikit-learn's centred copy of the data and, with its exact solver, the SVD's
        ``n x m`` and ``m x d`` factors (``m = min(n, d)``) and LAPACK's workspace of about
        as much, in the data's float32."""
        from clustergrid.memory import FLOAT32

        m = min(n, d)
        return (n * d + 2 * (n * m + m * d)) * FLOAT32

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA as SklearnPCA

        n_components = self.n_components
        # bool is an int subclass: `n_components: true` in YAML is a mistake, not 1.
        if isinstance(n_components, bool) or not isinstance(n_components, numbers.Real):
            raise ValueError(f"n_components must be an int or a float, got {n_components!r}")
        if isinstance(n_components, numbers.Integral):
            n_components = int(n_components)
            if not 1 <= n_components <= min(X.shape):
                raise ValueError(
                    f"n_components={n_components} must be between 1 and "
                    f"min(n_samples, n_features)={min(X.shape)}"
                )
        else:
            n_components = float(n_components)
            if not 0.0 < n_components < 1.0:
                raise ValueError(
                    f"a float n_components is a variance fraction in (0, 1), got "
                    f"{n_components}; use an int for a number of components"
                )
        # A fixed random_state keeps the randomized solver (chosen for large inputs)
        # deterministic, so PCA is computed once for all seeds. A variance fraction
        # makes scikit-learn use a full (exact) solver.
        pca = SklearnPCA(n_components=n_components, whiten=self.whiten, random_state=0)
        out = pca.fit_transform(X).astype(np.float32)
        self.metrics_ = {
            "explained_variance": float(pca.explained_variance_ratio_.sum()),
            "n_components": float(pca.n_components_),
        }
        return out

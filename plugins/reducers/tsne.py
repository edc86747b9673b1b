from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Ge

from clustergrid import Reducer


class TSNE(Reducer):
    """t-SNE embedding (scikit-learn), a visualisation method; see the caveat below.

    t-SNE preserves who is near whom, not distances: cluster sizes, gaps between
    clusters and their relative positions in the embedding are not meaningful, and it
    can split or merge clusters depending on ``perplexity``. Clustering a t-SNE
    embedding is therefore a visual aid, not a measurement; prefer ``umap`` or ``pca``
    before a clusterer. ``method: barnes_hut`` (O(n log n)) allows at most 3
    components; ``exact`` is O(n^2). ``perplexity`` must be below the number of points.
    The final KL divergence is logged.
    """

    name = "tsne"

    def __init__(
        self,
        n_components: Annotated[int, Ge(1)] = 2,
        perplexity: float = 30.0,
        metric: str = "euclidean",
        max_iter: int = 1000,
        method: str = "barnes_hut",
        random_state: int | None = None,
    ):
        self.n_components = n_components
        self.perplexity = perplexity
        self.metric = metric
        self.max_iter = max_iter
        self.method = method
        self.random_state = random_state

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.manifold import TSNE as SklearnTSNE

        if self.perplexity >= len(X):
            raise ValueError(
                f"perplexity={self.perplexity} must be less than the number of points "
                f"({len(X)}); perplexity is roughly the number of neighbours each point keeps"
            )
        if len(X) and np.ptp(X, axis=0).max() == 0:
            # scikit-learn's Barnes-Hut then crashes the whole process (a segmentation
            # fault): no neighbours can be told apart, so there is nothing to embed.
            raise ValueError(f"all {len(X)} points are identical: t-SNE has nothing to embed")
        model = SklearnTSNE(
            n_components=self.n_components,
            perplexity=self.perplexity,
            metric=self.metric,
            max_iter=self.max_iter,
            method=self.method,
            init="pca",
            learning_rate="auto",
            random_state=self.random_state,
        )
        out = model.fit_transform(X).astype(np.float32)
        self.metrics_ = {"kl_divergence": float(model.kl_divergence_)}
        return out

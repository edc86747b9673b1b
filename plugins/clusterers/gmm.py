from __future__ import annotations

from typing import Any, Literal

import numpy as np

from clustergrid.plugins.support.choose_k import (
    KClusterer,
    KRange,
    NClusters,
    reference_clusters,
)


class GaussianMixture(KClusterer):
    """Gaussian mixture (scikit-learn, EM); each point goes to its most probable component.

    ``n_clusters`` is the number of components. ``covariance_type`` is "full", "tied",
    "diag" or "spherical". ``n_clusters: auto`` picks it from ``k_range`` by
    ``criterion``: "bic" (lower is better; the usual choice for mixtures) or
    "silhouette". Logged for the kept model: ``bic``, ``aic`` and ``converged`` (1/0);
    each point's posterior probability of its component is kept as ``probabilities_``,
    and its negative log-likelihood under the mixture (``-score_samples``; the higher, the
    more unusual) as ``outlier_scores_``, leaving out components too small to be a
    reference (``choose_k.reference_clusters``), which a few outliers may have to
    themselves. Fitted in float64, whatever the precision the embeddings are stored in.
    """

    name = "gmm"
    # 2: fitted in float64 (``dtype``); float32 covariances were singular where float64's
    # are not ("ill-defined empirical covariance" on standardised digits).
    version = "2"
    dtype = np.float64
    criteria = ("silhouette", "bic")

    def __init__(
        self,
        n_clusters: NClusters = 8,
        covariance_type: Literal["full", "tied", "diag", "spherical"] = "full",
        n_init: int = 1,
        max_iter: int = 100,
        reg_covar: float = 1e-6,
        random_state: int | None = None,
        k_range: KRange = (2, 10),
        criterion: Literal["silhouette", "bic"] = "silhouette",
    ):
        self.n_clusters = n_clusters
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.max_iter = max_iter
        self.reg_covar = reg_covar
        self.random_state = random_state
        self.k_range = k_range
        self.criterion = criterion

    def memory_estimate(self, n: int, d: int) -> int:
        """The mixture at the largest k (``memory.gaussian_mixture_bytes``): ``d x d``
        matrices per component with full covariances; with ``auto``, the best model so far
        is kept beside the one being fitted."""
        from clustergrid.memory import covariance_bytes, gaussian_mixture_bytes

        k = self.largest_k(n)
        kept = covariance_bytes(d, k - 1, self.covariance_type) if self.n_clusters == "auto" \
            else 0
        return gaussian_mixture_bytes(n, d, k, self.covariance_type) + kept + \
            self.criterion_bytes(n)

    def _fit(self, X: np.ndarray, k: int) -> tuple[np.ndarray, Any]:
        from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

        model = SklearnGaussianMixture(
            n_components=k,
            covariance_type=self.covariance_type,
            n_init=self.n_init,
            max_iter=self.max_iter,
            reg_covar=self.reg_covar,
            random_state=self.random_state,
        )
        return model.fit_predict(X), model

    def _score(self, X: np.ndarray, labels: np.ndarray, model: Any, criterion: str) -> float:
        if criterion == "bic":
            return float(model.bic(X))
        return super()._score(X, labels, model, criterion)

    def _model_metrics(self, X: np.ndarray, model: Any) -> dict[str, float]:
        return {
            "bic": float(model.bic(X)),
            "aic": float(model.aic(X)),
            "converged": float(model.converged_),
        }

    def _memberships(self, X: np.ndarray, model: Any) -> np.ndarray:
        return model.predict_proba(X).max(axis=1)

    def _outlier_scores(self, X: np.ndarray, model: Any) -> np.ndarray:
        from scipy.special import logsumexp

        # log(w_c p_c(x)) per component: what score_samples sums (a private method of
        # scikit-learn, the only way to leave components out without refitting).
        weighted = model._estimate_weighted_log_prob(X)
        reference = reference_clusters(model.weights_)
        return -(logsumexp(weighted[:, reference], axis=1)
                 - np.log(model.weights_[reference].sum()))

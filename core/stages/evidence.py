"""The verdict's evidence (``clustergrid.evidence`` computes the numbers,
``clustergrid.verdict`` reads them): a Gaussian null reference of each encoder output, the
pipeline's reducer and clusterer refitted on draws from it and on subsamples of the data,
and each combination's scores against those.

Every stage here is part of a combination's hash and never of its success, and its steps
are keyed by ``evidence.VERSION``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clustergrid import evidence
from clustergrid.cache import Cache
from clustergrid.registry import Registry
from clustergrid.spec import Component
from clustergrid.stages.stage import Stage, build, checked_matrix, clusterer_input, save

#: the smallest difference of silhouettes, or of density-based validities (both on [-1, 1]),
#: read as real
SCORE_RESOLUTION = evidence.CRITERION_RESOLUTION["silhouette"]


def _reference(step, cache: Cache, registry: Registry, folder: Path):
    """The Gaussian null model of an encoder output (``evidence.gaussian_model``)."""
    (encode,) = step.parents
    model = evidence.gaussian_model(cache.load(encode, "X", mmap=True),
                                    dict(step.options)["max_points"])
    for name, array in model.items():
        save(folder, name, array)
    return {"metrics": {"reference_rank": float(len(model["axes"]))}}


def _null_reduce(step, cache: Cache, registry: Registry, folder: Path):
    """The pipeline's reducer on ``draws`` structureless datasets of the encoder output's
    size (at most ``max_points``) and covariance, once for every clusterer after it.
    Draw ``d`` uses seed ``d`` for the data and the reducer alike. A reducer that hands
    its input back (``none``) stores nothing: its draws are drawn again where needed."""
    (reference,) = step.parents
    options = dict(step.options)
    (reducer,) = step.components
    spaces = []
    for draw in range(options["draws"]):
        data = _null_draw(cache, reference, options, draw)
        space = checked_matrix(build(reducer, registry, draw).fit_transform(data), reducer,
                                len(data))
        if np.shares_memory(space, data):
            return {"passthrough": True}
        spaces.append(space)
    save(folder, "spaces", np.stack(spaces))
    return {"passthrough": False}


def _null_draw(cache: Cache, reference: str, options: dict, draw: int) -> np.ndarray:
    """Draw ``draw`` of the null reference: the same for every pipeline of an encoding."""
    size = min(int(cache.load(reference, "n")), options["max_points"])
    return evidence.draw_reference(cache.load(reference, "mean"),
                                   cache.load(reference, "axes"), size, seed=draw)


def _null(step, cache: Cache, registry: Registry, folder: Path):
    """The pipeline's clusterer on the reducer's null draws (``_null_reduce``): its
    internal scores when there is nothing to find. Draw ``d`` uses seed ``d``, so every
    pipeline meets the same null datasets."""
    reference, reduced = step.parents
    options = dict(step.options)
    (clusterer,) = step.components
    passthrough = cache.meta(reduced)["passthrough"]
    scores, dispersions, validities, found = [], [], [], []
    for draw in range(options["draws"]):
        space = _null_draw(cache, reference, options, draw) if passthrough else \
            cache.load(reduced, "spaces", mmap=True)[draw]
        labels = _fit_clusterer(clusterer, np.asarray(space), registry, draw)
        measured = evidence.internal_scores(space, labels, options["max_points"])
        scores.append(measured.silhouette)
        dispersions.append(measured.log_dispersion)
        validities.append(measured.validity)
        found.append(float(len(np.unique(labels[labels != -1]))))
    return {"metrics": {"null_scores": scores, "null_log_dispersions": dispersions,
                        "null_validities": validities, "null_clusters": found}}


def _fit_clusterer(clusterer: Component, space: np.ndarray, registry: Registry,
                   seed: int | None) -> np.ndarray:
    """A clusterer's labels, fitted afresh on ``space``."""
    fitted = build(clusterer, registry, seed)
    return np.asarray(fitted.fit_predict(clusterer_input(fitted, space)), dtype=np.int64)


def _subsample_reduce(step, cache: Cache, registry: Registry, folder: Path):
    """The pipeline's reducer refitted on ``resamples`` subsamples of ``fraction`` of the
    items (at most ``max_points``), once for every clusterer after it: subsample ``b``
    and its fit use seed ``b``. Saves the subsamples' ``index`` and, unless the reducer
    hands its input back, their reduced ``spaces``."""
    (encode,) = step.parents
    options = dict(step.options)
    (reducer,) = step.components
    X = cache.load(encode, "X", mmap=True)
    size = min(round(options["fraction"] * len(X)), options["max_points"])
    indices, spaces, passthrough = [], [], False
    for draw in range(options["resamples"]):
        index = evidence.sample_index(len(X), size, seed=draw)
        indices.append(index)
        data = np.asarray(X[index])
        space = checked_matrix(build(reducer, registry, draw).fit_transform(data), reducer,
                                len(data))
        passthrough = passthrough or np.shares_memory(space, data)
        if not passthrough:
            spaces.append(space)
    save(folder, "index", np.stack(indices))
    if not passthrough:
        save(folder, "spaces", np.stack(spaces))
    return {"passthrough": passthrough}


def _subsample(step, cache: Cache, registry: Registry, folder: Path):
    """The pipeline's clusterer refitted on the reducer's subsamples
    (``_subsample_reduce``): their ``index`` and ``labels``, shared by every seed of
    the pipeline. Refit ``b`` uses seed ``b``, so the refits vary with the data and the
    seed alike."""
    encode, reduced = step.parents
    (clusterer,) = step.components
    indices = cache.load(reduced, "index")
    passthrough = cache.meta(reduced)["passthrough"]
    X = cache.load(encode, "X", mmap=True)
    fits = []
    for draw, index in enumerate(indices):
        space = np.asarray(X[index]) if passthrough else \
            np.asarray(cache.load(reduced, "spaces", mmap=True)[draw])
        fits.append(_fit_clusterer(clusterer, space, registry, draw))
    save(folder, "index", indices)
    save(folder, "labels", np.stack(fits))
    return {}


def _resampling(step, cache: Cache, registry: Registry, folder: Path):
    """Clusterwise stability (Hennig 2007): each cluster of the full fit against the
    refits on subsamples, on the items they share."""
    from sklearn.metrics import adjusted_rand_score

    cluster, subsample = step.parents
    full = cache.load(cluster, "labels")
    agreement, jaccard = [], {}
    for index, labels in zip(cache.load(subsample, "index"), cache.load(subsample, "labels"),
                             strict=True):
        agreement.append(adjusted_rand_score(full[index], labels))
        for cluster_id, value in evidence.clusterwise_jaccard(full[index], labels).items():
            jaccard.setdefault(cluster_id, []).append(value)
    per_cluster = [float(np.mean(values)) for values in jaccard.values()]
    return {"metrics": {
        "resampling_ari": float(np.mean(agreement)),
        "resampling_jaccard": float(np.mean(per_cluster)) if per_cluster else float("nan"),
    }, "diagnostics": {
        # The least stable cluster: Hennig reads below 0.5 as dissolved.
        "jaccard_min": float(np.min(per_cluster)) if per_cluster else float("nan"),
    }}


def _calibration(step, cache: Cache, registry: Registry, folder: Path):
    """The combination's density-based validity and noise-honest silhouette against its
    pipeline's null, and the shape of its solution (coverage, largest cluster, the
    k-selection curve)."""
    cluster, reduce, null = step.parents
    options = dict(step.options)
    labels = cache.load(cluster, "labels")
    X = cache.load(reduce, "X", mmap=True)
    measured = evidence.internal_scores(X, labels, options["max_points"])
    observed, validity, per_cluster = measured.silhouette, measured.validity, \
        measured.per_cluster
    null_metrics = cache.meta(null)["metrics"]
    null_scores = np.asarray(null_metrics["null_scores"], dtype=float)
    null_dispersions = np.asarray(null_metrics["null_log_dispersions"], dtype=float)
    null_mean, spread = float(null_scores.mean()), float(np.std(null_scores, ddof=1))
    null_validities = np.asarray(null_metrics["null_validities"], dtype=float)
    validity_mean = float(null_validities.mean())
    validity_spread = float(np.std(null_validities, ddof=1))
    clustered = labels[labels != -1]
    sizes = np.bincount(clustered - clustered.min()) if len(clustered) else np.zeros(1)
    scores = {
        "validity": validity,
        # As the silhouette's excess below: a null on which the pipeline always finds
        # nothing (validity 0 every time) must not turn a small validity into certainty.
        "validity_excess": (validity - validity_mean)
        / max(validity_spread, SCORE_RESOLUTION),
        "honest_silhouette": observed,
        # Chance-corrected like the ARI: the share of the way from what the pipeline
        # scores on structureless data to a perfect score.
        "adjusted_silhouette": (observed - null_mean) / (1.0 - null_mean),
        # In null standard deviations, never finer than the silhouette's resolution: a
        # null that always scores the same (a clusterer finding nothing in it) would
        # otherwise turn any difference into an infinite excess.
        "excess": (observed - null_mean) / max(spread, SCORE_RESOLUTION),
        "coverage": float(len(clustered) / len(labels)),
        # How much tighter than on null data, as a log-ratio of dispersions.
        "gap": float(null_dispersions.mean() - measured.log_dispersion),
    }
    diagnostics = {
        "gap_sd": float(np.std(null_dispersions, ddof=1) * np.sqrt(1 + 1 / len(null_scores))),
        # Clusters whose density separation from the others exceeds their own sparseness.
        "separated_clusters": float(np.count_nonzero(per_cluster > 0)),
        "validity_min": float(per_cluster.min()) if len(per_cluster) else float("nan"),
        "null_validity": validity_mean,
        "null_validity_std": validity_spread,
        "null_silhouette": null_mean,
        "null_silhouette_std": spread,
        "null_draws": float(len(null_scores)),
        "clusters": float(np.count_nonzero(sizes)),
        "largest_cluster": float(sizes.max() / len(labels)),
    }
    chosen = cache.meta(cluster).get("metrics", {})
    if "chosen_k" in chosen:
        ks = chosen["k_curve_k"]
        criterion = getattr(build(step.components[0], registry), "criterion", "silhouette")
        diagnostics["k_at_edge"] = float(chosen["chosen_k"] in (ks[0], ks[-1]))
        diagnostics["k_prominence"] = evidence.k_curve_prominence(
            ks, chosen["k_curve_score"], chosen["chosen_k"], criterion)
    return {"metrics": scores, "diagnostics": diagnostics}


REFERENCE = Stage("reference", _reference, role="evidence", optional=True,
                  version=evidence.VERSION)
NULL_REDUCE = Stage("null_reduce", _null_reduce, role="evidence", optional=True,
                    input=(0, "mean"), refit="reducer", version=evidence.VERSION)
NULL = Stage("null", _null, role="evidence", optional=True, input=(0, "mean"),
             refit="clusterer", version=evidence.VERSION)
SUBSAMPLE_REDUCE = Stage("subsample_reduce", _subsample_reduce, role="evidence",
                         optional=True, input=(0, "X"), refit="reducer",
                         version=evidence.VERSION)
SUBSAMPLE = Stage("subsample", _subsample, role="evidence", optional=True, input=(0, "X"),
                  refit="clusterer", version=evidence.VERSION)
RESAMPLING = Stage("resampling", _resampling, role="evidence", optional=True,
                   scope="combination", scoring=True, version=evidence.VERSION, metrics={
                       "resampling_ari": "higher",
                       "resampling_jaccard": "higher",
                   })
CALIBRATION = Stage("calibration", _calibration, role="evidence", optional=True,
                    scope="combination", scoring=True, version=evidence.VERSION, metrics={
                        "validity": "higher",
                        "validity_excess": "higher",
                        "honest_silhouette": "higher",
                        "adjusted_silhouette": "higher",
                        "excess": "higher",
                        "coverage": "descriptive",
                        "gap": "higher",
                    })
#: in the plan's order
STAGES = (REFERENCE, NULL_REDUCE, NULL, SUBSAMPLE_REDUCE, SUBSAMPLE, RESAMPLING, CALIBRATION)

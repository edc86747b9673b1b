"""What each stage of the plan computes: pure functions of a step and its parents' outputs.

They run in worker processes, read their inputs from the cache by key and write their
outputs back; they never talk to MLflow. Each returns the metadata stored with its
entry: wall time, and whatever its component put in ``metrics_``.
"""

from __future__ import annotations

import csv
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from clustergrid import evidence, memory
from clustergrid.cache import Cache, write_meta
from clustergrid.components import Component as ComponentBase
from clustergrid.outliers import knn_outlier_scores, most_unusual
from clustergrid.registry import Registry, unqualified
from clustergrid.spec import Component
from clustergrid.symmetry import BATCH_SIZE as SYMMETRY_BATCH_SIZE
from clustergrid.symmetry import Symmetry
from clustergrid.thumbnails import thumbnail_index, thumbnails

#: images read, transformed and written at a time by the data stage
DATA_BATCH_SIZE = 256
#: images encoded at a time; each slice's embeddings go straight to the memory-mapped file
ENCODE_BATCH_SIZE = 4096
#: members of each cluster shown in the report's gallery
GALLERY_SIZE = 8
#: the most unusual items (highest outlier scores) of a combination, shown in the report
UNUSUAL_SIZE = 16
#: the smallest difference of silhouettes, or of density-based validities (both on [-1, 1]),
#: read as real
SCORE_RESOLUTION = evidence.CRITERION_RESOLUTION["silhouette"]
#: sub-folder of a cache entry holding what its component saved (``Component.save``)
ARTIFACTS = "artifacts"
#: the map stage's 2-D coordinates of every item, as a step file
MAP = "map.npy"
#: the data stage's thumbnails: ``index`` (items shown), their ``ids``, ``images`` (uint8
#: RGB) and, for labelled data, ``labels``
THUMBNAILS = "thumbnails.npz"
#: the score stage's thumbnails of a combination's most unusual items: ``index`` (items,
#: the most unusual first) and ``images`` (uint8 RGB)
UNUSUAL = "unusual.npz"
#: the data stage's table of every item: ``id``, ``source`` (when the dataset knows where
#: each item comes from) and ``class`` (its true class name, empty when unknown)
ITEMS = "items.csv"


class StepError(Exception):
    """A component failed; the message names the component."""


def build(component: Component, registry: Registry, seed: int | None = None) -> ComponentBase:
    """Instantiate ``component``, passing ``seed`` as ``random_state`` when it takes one."""
    cls = registry.get(component.kind, component.plugin).cls
    kwargs = component.kwargs
    if seed is not None and cls.is_stochastic() and "random_state" not in kwargs:
        kwargs["random_state"] = seed
    return cls(**kwargs)


def run_step(step, cache: Cache, registry: Registry) -> dict[str, Any]:
    """Compute ``step`` into its cache entry; returns the entry's metadata. A step that
    cannot fit in its worker's memory raises ``memory.MemoryRefused`` before it starts."""
    memory.refuse_unless_fits(step, cache, registry)
    started = time.perf_counter()
    culprit = (f"{step.components[0].kind} '{step.components[0].label()}'"
               if step.components else f"the {step.stage} step")
    with cache.writer(step.key) as folder:
        try:
            meta = STAGES[step.stage](step, cache, registry, folder)
        except StepError:
            raise
        except Exception as exc:
            raise StepError(f"{culprit} failed: {type(exc).__name__}: {exc}") from exc
        meta["wall_time"] = time.perf_counter() - started
        write_meta(folder, meta)
    return meta


def _save(folder: Path, name: str, array: np.ndarray) -> None:
    np.save(folder / f"{name}.npy", array, allow_pickle=False)


def _prepare_data(step, cache: Cache, registry: Registry, folder: Path):
    """Read the dataset in batches through the transform chain into a memory-mapped stack,
    so memory stays bounded by one batch whatever the dataset's size."""
    dataset = build(step.components[0], registry)
    n = len(dataset)
    if n == 0:
        raise StepError(f"dataset '{step.components[0].label()}' has no items")
    images = None
    # Thumbnails of a fixed sample of items, for the report's maps and galleries.
    shown = thumbnail_index(n)
    pictures = []
    for start, batch in transformed_batches(dataset, step.components[1:], registry):
        if images is None:
            images = np.lib.format.open_memmap(
                folder / "images.npy", mode="w+", dtype=np.float32, shape=(n, *batch.shape[1:])
            )
        images[start : start + len(batch)] = batch
        here = shown[(shown >= start) & (shown < start + len(batch))]
        pictures.append(thumbnails(batch[here - start]))
    images.flush()
    del images
    labels = dataset.labels()
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        _save(folder, "labels", labels)
    ids = np.asarray(dataset.ids(), dtype=str)
    _save(folder, "ids", ids)
    (folder / ARTIFACTS).mkdir()
    np.savez_compressed(folder / ARTIFACTS / THUMBNAILS, index=shown, ids=ids[shown],
                        images=np.concatenate(pictures),
                        **({"labels": labels[shown]} if labels is not None else {}))
    class_names = dataset.class_names()
    _write_items(folder / ARTIFACTS / ITEMS, ids, dataset.sources(), labels, class_names)
    # Loaders that drop bad files (on_error: skip) say which, so the run records them.
    skipped = [list(item) for item in getattr(dataset, "skipped", list)()]
    return {"n": n, "class_names": class_names, "labelled": labels is not None,
            "skipped": skipped, "metrics": {"skipped": float(len(skipped))},
            "artifacts": [THUMBNAILS, ITEMS]}


def _write_items(path: Path, ids: np.ndarray, sources, labels: np.ndarray | None,
                 class_names: list[str] | None) -> None:
    """``ITEMS``: what an exported catalogue says of each item besides its cluster."""
    columns = {"id": ids.tolist()}
    if sources is not None:
        sources = np.asarray(sources, dtype=str)
        if sources.shape != ids.shape:
            raise StepError(f"the dataset gave {len(sources)} sources for {len(ids)} items")
        columns["source"] = sources.tolist()
    if labels is not None:
        names = class_names or []
        columns["class"] = [names[code] if 0 <= code < len(names) else
                            (str(code) if code >= 0 else "") for code in labels.tolist()]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))


def transformed_batches(dataset: ComponentBase, transforms: tuple[Component, ...],
                        registry: Registry, batch_size: int = DATA_BATCH_SIZE):
    """``(start, images)`` for each batch of ``dataset`` after the transform chain."""
    built = [(build(component, registry), component) for component in transforms]
    n = len(dataset)
    for start in range(0, n, batch_size):
        batch = np.asarray(dataset.read(start, min(start + batch_size, n)), dtype=np.float32)
        for transform, component in built:
            batch = _checked_images(transform.transform(batch), component, len(batch))
        yield start, batch


def load_thumbnails(cache: Cache, data: str, *names: str) -> dict[str, np.ndarray]:
    """A data step's thumbnails (``THUMBNAILS``): the arrays named, or all of them."""
    with np.load(cache.path(data) / ARTIFACTS / THUMBNAILS, allow_pickle=False) as stored:
        return {name: stored[name] for name in names or stored.files}


def _encode(step, cache: Cache, registry: Registry, folder: Path):
    (data,) = step.parents
    component = step.components[0]
    group = Symmetry.from_options(dict(step.options))
    encoder = build(component, registry, step.seed)
    images = cache.load(data, "images", mmap=True)
    if group is not None:
        try:
            group.check(images.shape)
        except ValueError as exc:
            raise StepError(f"encoder '{component.label()}': {exc}") from None
    labels = None
    if encoder.needs_labels:
        if not cache.contains(data, "labels"):
            raise StepError(f"encoder '{component.label()}' needs labels; the dataset has none")
        labels = cache.load(data, "labels")
    # With a symmetry too, the encoder learns from the images as they are: only its
    # outputs are pooled over the group.
    encoder.fit(images, labels)

    def embed(batch: np.ndarray) -> np.ndarray:
        return _checked_matrix(encoder.transform(batch), component, len(batch))

    # Encoded slice by slice into a memory-mapped file: peak memory grows with one slice
    # of images plus the embedding, never with the whole image stack. A symmetry copies
    # each slice once per element in turn, so its slices are smaller.
    n = len(images)
    size = n if not encoder.row_wise else (
        ENCODE_BATCH_SIZE if group is None else SYMMETRY_BATCH_SIZE)
    X = None
    for start in range(0, n, size):
        stop = min(start + size, n)
        chunk = (embed(images[start:stop]) if group is None
                 else _checked_matrix(group.embed(embed, images[start:stop]), component,
                                      stop - start))
        if X is None:
            X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32,
                                          shape=(n, chunk.shape[1]))
        elif chunk.shape[1] != X.shape[1]:
            raise StepError(f"encoder '{component.label()}' returned {chunk.shape[1]} features "
                            f"for images {start}-{stop}, {X.shape[1]} before")
        X[start:stop] = chunk
    X.flush()
    del X
    return _component_metrics(encoder, folder)


def _reduce(step, cache: Cache, registry: Registry, folder: Path):
    (encode,) = step.parents
    reducer = build(step.components[0], registry, step.seed)
    X = cache.load(encode, "X")
    out = _checked_matrix(reducer.fit_transform(X), step.components[0], len(X))
    _save(folder, "X", out)
    meta = _component_metrics(reducer, folder)
    if out is not X:  # how faithfully the reduced space keeps each point's neighbours
        meta["metrics"]["trustworthiness"] = trustworthiness(X, out)
    return meta


def _map(step, cache: Cache, registry: Registry, folder: Path):
    (encode,) = step.parents
    component = step.components[0]
    X = cache.load(encode, "X")
    out = _checked_matrix(build(component, registry).fit_transform(X), component, len(X))
    if out.shape[1] < 2:
        raise StepError(f"map '{component.label()}' drew {out.shape[1]} dimension(s), "
                        "expected 2")
    _save(folder, "X", out[:, :2])
    # Also a file of the step, so it is logged (once per invocation) for reports.
    (folder / ARTIFACTS).mkdir()
    np.save(folder / ARTIFACTS / MAP, out[:, :2], allow_pickle=False)
    return {"artifacts": [MAP]}


def _cluster(step, cache: Cache, registry: Registry, folder: Path):
    (reduce,) = step.parents
    clusterer = build(step.components[0], registry, step.seed)
    X = cache.load(reduce, "X")
    labels = np.asarray(clusterer.fit_predict(clusterer_input(clusterer, X)))
    if labels.shape != (len(X),) or not np.issubdtype(labels.dtype, np.integer):
        raise StepError(
            f"clusterer '{step.components[0].label()}' returned labels of shape {labels.shape} "
            f"and dtype {labels.dtype}, expected ({len(X)},) integers"
        )
    _save(folder, "labels", labels.astype(np.int64))
    for name in clusterer.per_item:  # membership probabilities, outlier scores
        values = getattr(clusterer, name, None)
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.shape != labels.shape:
            raise StepError(f"clusterer '{step.components[0].label()}' set {name} of shape "
                            f"{values.shape}, expected ({len(X)},)")
        _save(folder, name.rstrip("_"), values)
    if getattr(clusterer, "outlier_scores_", None) is None:
        # Every combination has an outlier score: density, where the clusterer gives none.
        _save(folder, "outlier_scores", knn_outlier_scores(X))
    return _component_metrics(clusterer, folder)


def _probe(step, cache: Cache, registry: Registry, folder: Path):
    encode, data = step.parents
    X = cache.load(encode, "X")
    truth = cache.load(data, "labels") if cache.contains(data, "labels") else None
    return _compute_metrics(step.components, registry, X, None, truth)


def _score(step, cache: Cache, registry: Registry, folder: Path):
    cluster, reduce, data = step.parents
    X = cache.load(reduce, "X")
    labels = cache.load(cluster, "labels")
    truth = cache.load(data, "labels") if cache.contains(data, "labels") else None
    if truth is not None:
        _save(folder, "confusion", contingency(truth, labels))
    _save(folder, "gallery", gallery(X, labels, load_thumbnails(cache, data, "index")["index"]))
    meta = _compute_metrics(step.components, registry, X, labels, truth)
    if cache.contains(cluster, "outlier_scores"):
        # The most unusual items of all, not only of the thumbnailed sample: their
        # thumbnails are made here, from the data step's images.
        unusual = most_unusual(cache.load(cluster, "outlier_scores"), size=UNUSUAL_SIZE)
        _save(folder, "unusual", unusual)
        images = cache.load(data, "images", mmap=True)
        (folder / ARTIFACTS).mkdir(exist_ok=True)
        np.savez_compressed(folder / ARTIFACTS / UNUSUAL, index=unusual,
                            images=thumbnails(images[unusual]))
        meta["artifacts"] = [*meta.get("artifacts", []), UNUSUAL]
    return meta


def _stability(step, cache: Cache, registry: Registry, folder: Path):
    """Mean and spread of the ARI between the clusterings of every pair of seeds."""
    from sklearn.metrics import adjusted_rand_score

    labelings = [cache.load(key, "labels") for key in step.parents]
    scores = [adjusted_rand_score(a, b) for a, b in itertools.combinations(labelings, 2)]
    return {"metrics": {"stability_ari": float(np.mean(scores)),
                        "stability_ari_std": float(np.std(scores)),
                        "stability_seeds": float(len(labelings))}}


def _compute_metrics(components, registry: Registry, X, labels, truth) -> dict[str, Any]:
    """Step metadata: ``metrics``, each metric's values by logged name, and, when any
    failed, ``metric_errors``: by metric name, what it raised or returned that is not a
    float or a dict of floats (or curves of them). A failed metric's value is NaN; the
    others keep theirs, and the step still succeeds."""
    scores: dict[str, float | list[float]] = {}
    errors: dict[str, str] = {}
    logged_by: dict[str, str] = {}  # logged name -> the metric that logged it
    for component in components:
        name = unqualified(component.plugin)  # ``builtin:ari`` logs ``ari``
        try:
            metric = build(component, registry)
            if metric.needs_labels and truth is None:
                continue  # metrics against labels do not apply to unlabelled data
            # Checked here, while it is known which metric returned what.
            values = _metric_values(name, metric.compute(X, labels, truth))
            clashes = [key for key in values if key in logged_by]
            if clashes:
                raise ValueError(f"it logs {clashes[0]!r}, which metric "
                                 f"'{logged_by[clashes[0]]}' logs too")
        except Exception as exc:
            message = f"metric '{component.label()}' failed: {type(exc).__name__}: {exc}"
            errors[name] = f"{errors[name]}; {message}" if name in errors else message
            if name not in logged_by:
                scores[name] = float("nan")
                logged_by[name] = component.label()
            continue
        scores.update(values)
        logged_by.update(dict.fromkeys(values, component.label()))
    return {"metrics": scores, **({"metric_errors": errors} if errors else {})}


def _metric_values(name: str, value) -> dict[str, float | list[float]]:
    """What ``Metric.compute`` returned, by logged name: a TypeError says what in it is
    not a float (a list value in a dict is a curve)."""
    if not isinstance(value, dict):
        return {name: _metric_number(value, "")}
    values: dict[str, float | list[float]] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"returned a dict with the key {key!r}, which is not a string")
        if isinstance(item, list | tuple) or (isinstance(item, np.ndarray) and item.ndim == 1):
            values[key] = [_metric_number(x, f" in the curve {key!r}") for x in item]
        else:
            values[key] = _metric_number(item, f" for {key!r}")
    return values


def _metric_number(value, where: str) -> float:
    if np.ndim(value) == 0 and np.asarray(value).dtype.kind in "biuf":
        return float(value)
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise TypeError(f"returned {shown}{where}, not a float or a dict of floats")


def gallery(X: np.ndarray, labels: np.ndarray, shown: np.ndarray,
            per_cluster: int = GALLERY_SIZE, seed: int = 0) -> np.ndarray:
    """``(m, 2)`` rows of (cluster, item): for each cluster, the members with thumbnails
    (``shown``) nearest its centroid in the space it was found in, nearest first; for
    noise (-1), a fixed random sample of them."""
    rows = []
    for cluster in np.unique(labels):
        members = shown[labels[shown] == cluster]
        if cluster == -1:
            picked = np.random.default_rng(seed).permutation(members)[:per_cluster]
        else:
            centre = X[labels == cluster].mean(axis=0)
            distance = ((X[members] - centre) ** 2).sum(axis=1)
            picked = members[np.argsort(distance, kind="stable")[:per_cluster]]
        rows.extend((int(cluster), int(item)) for item in picked)
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def contingency(truth: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Counts of (true class, cluster) pairs: rows are classes ``0..max``, columns the
    clusters in sorted order, noise (-1) first when present."""
    clusters = np.unique(labels)
    known = truth >= 0
    table = np.zeros((int(truth.max(initial=-1)) + 1, len(clusters)), dtype=np.int64)
    np.add.at(table, (truth[known], np.searchsorted(clusters, labels[known])), 1)
    return table


def trustworthiness(X: np.ndarray, embedded: np.ndarray, n_neighbors: int = 5,
                    max_points: int = 2000, seed: int = 0) -> float:
    """scikit-learn's trustworthiness of ``embedded`` as a view of ``X``, on a fixed random
    sample of ``max_points`` when larger (its cost is quadratic in the points)."""
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    if len(X) > max_points:
        index = np.random.default_rng(seed).choice(len(X), max_points, replace=False)
        X, embedded = X[index], embedded[index]
    if len(X) <= 2 * n_neighbors + 1:
        return float("nan")  # scikit-learn requires n_neighbors < n_samples / 2
    return float(sklearn_trustworthiness(X, embedded, n_neighbors=n_neighbors))


def _reference(step, cache: Cache, registry: Registry, folder: Path):
    """The Gaussian null model of an encoder output (``evidence.gaussian_model``)."""
    (encode,) = step.parents
    model = evidence.gaussian_model(cache.load(encode, "X", mmap=True),
                                    dict(step.options)["max_points"])
    for name, array in model.items():
        _save(folder, name, array)
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
        space = _checked_matrix(build(reducer, registry, draw).fit_transform(data), reducer,
                                len(data))
        if np.shares_memory(space, data):
            return {"passthrough": True}
        spaces.append(space)
    _save(folder, "spaces", np.stack(spaces))
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
        space = _checked_matrix(build(reducer, registry, draw).fit_transform(data), reducer,
                                len(data))
        passthrough = passthrough or np.shares_memory(space, data)
        if not passthrough:
            spaces.append(space)
    _save(folder, "index", np.stack(indices))
    if not passthrough:
        _save(folder, "spaces", np.stack(spaces))
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
    _save(folder, "index", indices)
    _save(folder, "labels", np.stack(fits))
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


#: the cards step's files: a row per cluster and descriptor, and every card as JSON
CARDS_CSV = "cards.csv"
CARDS_JSON = "cards.json"


def _describe(step, cache: Cache, registry: Registry, folder: Path):
    """Raw interpretable descriptors (``cards.describe_images``) of the data step's items,
    or of a fixed sample of ``max_items`` of them: ``descriptors`` (m, d), ``index`` (the
    items described) and their ``names`` in the metadata. Once per data step, whatever the
    encoders, for every combination's cards."""
    from clustergrid import cards

    (data,) = step.parents
    images = cache.load(data, "images", mmap=True)
    index = cards.sample_index(len(images), dict(step.options)["max_items"])
    values = cards.describe_images(images, index)
    _save(folder, "index", index)
    _save(folder, "descriptors", values)
    return {"names": cards.descriptor_names(images.shape[1]), "described": len(index),
            "undefined": int(np.isnan(values).sum())}


def _cards(step, cache: Cache, registry: Registry, folder: Path):
    """Each cluster's card (``cards.cluster_cards``: what sets it apart, its typical and
    atypical members in the reduced space, its class mix) and the nuisance check
    (``cards.nuisance_check``), logged as ``nuisance.*`` metrics."""
    import json

    from clustergrid import cards

    cluster, reduce, describe, data = step.parents
    labels = cache.load(cluster, "labels")
    index = cache.load(describe, "index")
    descriptors = cache.load(describe, "descriptors")
    names = list(cache.meta(describe)["names"])
    truth = cache.load(data, "labels") if cache.contains(data, "labels") else None
    found = cards.cluster_cards(
        descriptors, names, labels, index, X=cache.load(reduce, "X", mmap=True), truth=truth,
        class_names=cache.meta(data).get("class_names"), ids=cache.load(data, "ids"))
    nuisances = tuple(dict(step.options).get("nuisances", cards.NUISANCES))
    if min(cache.load(data, "images", mmap=True).shape[2:]) < cards.MIN_IMAGE_SIDE:
        # Rows of a table or an embedding stored as 1 x d "images": no brightness, size
        # or orientation to speak of.
        nuisances = ()
    check = cards.nuisance_check(labels[index], descriptors, names,
                                 truth[index] if truth is not None else None, nuisances)
    (folder / ARTIFACTS).mkdir()
    (folder / ARTIFACTS / CARDS_JSON).write_text(json.dumps(cards.finite({
        "descriptors": names, "described": len(index), "test": "mann-whitney-u, holm",
        "effect": "cliffs-delta", "effect_threshold": cards.EFFECT_THRESHOLD,
        "alpha": cards.ALPHA, "nuisance": check, "clusters": found}), indent=1))
    with (folder / ARTIFACTS / CARDS_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(cards.CSV_COLUMNS)
        writer.writerows(cards.csv_rows(found))
    metrics = {f"nuisance.{key}": value for key, value in check.items()
               if key not in ("follows", "physics_name")}
    # Which nuisance it follows, as numbers the verdict averages over seeds.
    metrics.update({f"nuisance.follows.{name}": float(check["follows"] == name)
                    for name in nuisances})
    return {"metrics": metrics, "artifacts": [CARDS_CSV, CARDS_JSON]}


STAGES = {
    "data": _prepare_data,
    "encode": _encode,
    "probe": _probe,
    "reduce": _reduce,
    "cluster": _cluster,
    "score": _score,
    "stability": _stability,
    "map": _map,
    "reference": _reference,
    "null_reduce": _null_reduce,
    "null": _null,
    "subsample_reduce": _subsample_reduce,
    "subsample": _subsample,
    "resampling": _resampling,
    "calibration": _calibration,
    "describe": _describe,
    "cards": _cards,
}


def _component_metrics(component: ComponentBase, folder: Path) -> dict[str, Any]:
    """What a fitted component reports: its ``metrics_``, and the files it saves."""
    saved = folder / ARTIFACTS
    saved.mkdir()
    component.save(saved)
    files = sorted(path.name for path in saved.iterdir())
    if not files:
        saved.rmdir()
    return {"metrics": dict(getattr(component, "metrics_", {}) or {}), "artifacts": files}


def clusterer_input(clusterer: ComponentBase, X: np.ndarray) -> np.ndarray:
    """``X`` in the precision the clusterer declares (``Clusterer.dtype``), as stored when
    it declares none. Cast once, here: a clusterer fitted at every k of a range shares
    the one copy."""
    dtype = getattr(type(clusterer), "dtype", None)
    return X if dtype is None else np.asarray(X, dtype=dtype)


def _checked_matrix(X, component: Component, n: int) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or len(X) != n:
        raise StepError(
            f"{component.kind} '{component.label()}' returned shape {X.shape}, "
            f"expected ({n}, d)"
        )
    X = X.astype(np.float32, copy=False)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise StepError(
            f"{component.kind} '{component.label()}' returned NaN or infinite values "
            f"in {int(bad.sum())} of {n} rows"
        )
    return X


def _checked_images(batch, component: Component, n: int) -> np.ndarray:
    batch = np.asarray(batch, dtype=np.float32)
    if batch.ndim != 4 or len(batch) != n:
        raise StepError(
            f"transform '{component.label()}' returned shape {batch.shape}, "
            f"expected ({n}, channels, height, width)"
        )
    return batch

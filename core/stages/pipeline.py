"""The pipeline's stages: the data through its transforms, the encoder, the embedding
metrics, the reducer, the clusterer, the clustering metrics and the stability across seeds.

Each stage's function is a pure function of a step and its parents' outputs: it runs in a
worker process, reads its inputs from the cache by key and writes its outputs back, never
talking to MLflow, and returns the metadata stored with its entry: what its component put
in ``metrics_``, and the files it wrote for the store.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import numpy as np

from clustergrid.cache import Cache
from clustergrid.components import Component as ComponentBase
from clustergrid.errors import listing
from clustergrid.outliers import knn_outlier_scores, most_unusual
from clustergrid.record import ARTIFACTS, ITEMS, THUMBNAILS, UNUSUAL
from clustergrid.registry import Registry, unqualified
from clustergrid.spec import Component
from clustergrid.stages.stage import (
    Stage,
    StepError,
    build,
    checked_matrix,
    clusterer_input,
    component_metrics,
    save,
)
from clustergrid.symmetry import BATCH_SIZE as SYMMETRY_BATCH_SIZE
from clustergrid.symmetry import Symmetry
from clustergrid.thumbnails import profile_scale, profiles, thumbnail_index, thumbnails

#: images read, transformed and written at a time by the data stage
DATA_BATCH_SIZE = 256
#: images encoded at a time; each slice's embeddings go straight to the memory-mapped file
ENCODE_BATCH_SIZE = 4096
#: members of each cluster shown in the report's gallery
GALLERY_SIZE = 8
#: the most unusual items (highest outlier scores) of a combination, shown in the report
UNUSUAL_SIZE = 16
#: items named in a message before "and N more"
NAMED_ITEMS = 5

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
    features = dataset.feature_names()
    for start, batch in transformed_batches(dataset, step.components[1:], registry):
        if images is None:
            images = np.lib.format.open_memmap(
                folder / "images.npy", mode="w+", dtype=np.float32, shape=(n, *batch.shape[1:])
            )
            # A table's rows stay rows unless a transform reshaped them into images.
            if features is not None and batch.shape[1:] != (1, 1, len(features)):
                features = None
        images[start : start + len(batch)] = batch
        here = shown[(shown >= start) & (shown < start + len(batch))]
        # A table's rows are drawn once the sample is in, on one scale per column.
        pictures.append(batch[here - start, 0, 0] if features is not None
                        else thumbnails(batch[here - start]))
    images.flush()
    del images
    table = {}
    if features is not None:
        low, high = profile_scale(np.concatenate(pictures))
        pictures = [profiles(np.concatenate(pictures), low, high)]
        table = {"profile_low": low, "profile_high": high}
    labels = dataset.labels()
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        save(folder, "labels", labels)
    ids = np.asarray(dataset.ids(), dtype=str)
    save(folder, "ids", ids)
    (folder / ARTIFACTS).mkdir()
    np.savez_compressed(folder / ARTIFACTS / THUMBNAILS, index=shown, ids=ids[shown],
                        images=np.concatenate(pictures), **table,
                        **({"labels": labels[shown]} if labels is not None else {}))
    class_names = dataset.class_names()
    channels = channel_names_after(dataset, step.components[1:], registry, batch.shape[1])
    _write_items(folder / ARTIFACTS / ITEMS, ids, dataset.sources(), labels, class_names,
                 dataset.sky_positions())
    # Loaders that drop bad files (on_error: skip) say which, so the run records them.
    skipped = [list(item) for item in getattr(dataset, "skipped", list)()]
    meta = {"n": n, "class_names": class_names, "labelled": labels is not None,
            "skipped": skipped, "metrics": {"skipped": float(len(skipped))},
            "artifacts": [THUMBNAILS, ITEMS],
            **({"channels": channels} if channels is not None else {})}
    if features is not None:
        units = dataset.feature_units()
        meta.update(features=list(features),
                    units=list(units) if units is not None else [""] * len(features),
                    thumbnails="a table has no images: each row's values are drawn as bars, "
                               "one per feature, scaled from its 1st to 99th percentile")
    return meta


def _write_items(path: Path, ids: np.ndarray, sources, labels: np.ndarray | None,
                 class_names: list[str] | None, positions=None) -> None:
    """``ITEMS``: what an exported catalogue says of each item besides its cluster."""
    columns = {"id": ids.tolist()}
    if sources is not None:
        sources = np.asarray(sources, dtype=str)
        if sources.shape != ids.shape:
            raise StepError(f"the dataset gave {len(sources)} sources for {len(ids)} items")
        columns["source"] = sources.tolist()
    if positions is not None:
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (len(ids), 2):
            raise StepError(f"the dataset gave sky positions of shape {positions.shape} "
                            f"for {len(ids)} items, not ({len(ids)}, 2)")
        # Full precision; an empty cell where an item has no position.
        for name, values in zip(("ra", "dec"), positions.T, strict=True):
            columns[name] = [repr(v) if np.isfinite(v) else "" for v in values.tolist()]
    if labels is not None:
        names = class_names or []
        columns["class"] = [names[code] if 0 <= code < len(names) else
                            (str(code) if code >= 0 else "") for code in labels.tolist()]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))


def channel_names_after(dataset: ComponentBase, transforms: tuple[Component, ...],
                        registry: Registry, n_channels: int) -> list[str] | None:
    """The dataset's channel names (its bands) mapped through ``transforms`` (each with
    ``Transform.channel_names``), or None when unnamed or when they no longer name the
    ``n_channels`` channels the chain gives: the cards phrase colours in them."""
    names = dataset.channel_names()
    for component in transforms:
        if names is None:
            return None
        names = build(component, registry).channel_names([str(name) for name in names])
    if names is None or len(names) != n_channels:
        return None
    return [str(name) for name in names]


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
    """A data step's thumbnails (``THUMBNAILS``): the arrays named that it holds (a
    table's ``profile_low`` and ``profile_high``, the scale of its rows' pictures, only a
    table's), or all of them."""
    with np.load(cache.path(data) / ARTIFACTS / THUMBNAILS, allow_pickle=False) as stored:
        return {name: stored[name] for name in names or stored.files if name in stored.files}


def _checked_images(batch, component: Component, n: int) -> np.ndarray:
    batch = np.asarray(batch, dtype=np.float32)
    if batch.ndim != 4 or len(batch) != n:
        raise StepError(
            f"transform '{component.label()}' returned shape {batch.shape}, "
            f"expected ({n}, channels, height, width)"
        )
    return batch


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
        return checked_matrix(encoder.transform(batch), component, len(batch), name_rows)

    def name_rows(rows: np.ndarray) -> str:
        # ``start``: the first item of the slice being encoded (the loop below).
        return _nonfinite_items(cache, data, images, rows + start)

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
                 else checked_matrix(group.embed(embed, images[start:stop]), component,
                                      stop - start, name_rows))
        if X is None:
            X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32,
                                          shape=(n, chunk.shape[1]))
        elif chunk.shape[1] != X.shape[1]:
            raise StepError(f"encoder '{component.label()}' returned {chunk.shape[1]} features "
                            f"for images {start}-{stop}, {X.shape[1]} before")
        X[start:stop] = chunk
    X.flush()
    del X
    return component_metrics(encoder, folder)


def _nonfinite_items(cache: Cache, data: str, images: np.ndarray, rows: np.ndarray) -> str:
    """The items whose embeddings (``rows`` of the stack) are NaN or infinite: when their
    images hold NaN or infinite values, every item that does, by id and file, and the
    transform that replaces them; else the rows' items."""
    ids = cache.load(data, "ids")
    with (cache.path(data) / ARTIFACTS / ITEMS).open(newline="") as handle:
        sources = [row.get("source") or "" for row in csv.DictReader(handle)]

    def named(i: int) -> str:
        source = sources[i] if i < len(sources) else ""
        return f"{ids[i]} ({source})" if source and source != ids[i] else str(ids[i])

    # Scanned only once an encoder has failed: finite images cost a run nothing.
    held = np.zeros(len(images), dtype=bool)
    for start in range(0, len(images), DATA_BATCH_SIZE):
        batch = images[start : start + DATA_BATCH_SIZE].reshape(-1, images[0].size)
        held[start : start + len(batch)] = ~np.isfinite(batch).all(axis=1)
    if held[rows].any():
        bad = np.flatnonzero(held)
        return (f"the images of {len(bad)} of {len(images)} items hold NaN or infinite values: "
                f"{listing((named(i) for i in bad), NAMED_ITEMS)}; add the transform "
                "nan_fill to the dataset (transforms: [{plugin: nan_fill}]) to replace them")
    return (f"items {listing((named(i) for i in rows), NAMED_ITEMS)}, whose images are "
            "finite")


def _probe(step, cache: Cache, registry: Registry, folder: Path):
    encode, data = step.parents
    X = cache.load(encode, "X")
    truth = cache.load(data, "labels") if cache.contains(data, "labels") else None
    return _compute_metrics(step.components, registry, X, None, truth,
                            cache.meta(data).get("class_names"))


def _reduce(step, cache: Cache, registry: Registry, folder: Path):
    (encode,) = step.parents
    reducer = build(step.components[0], registry, step.seed)
    X = cache.load(encode, "X")
    out = checked_matrix(reducer.fit_transform(X), step.components[0], len(X))
    save(folder, "X", out)
    meta = component_metrics(reducer, folder)
    if out is not X:  # how faithfully the reduced space keeps each point's neighbours
        meta["metrics"]["trustworthiness"] = trustworthiness(X, out)
    return meta


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
    save(folder, "labels", labels.astype(np.int64))
    for name in clusterer.per_item:  # membership probabilities, outlier scores
        values = getattr(clusterer, name, None)
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.shape != labels.shape:
            raise StepError(f"clusterer '{step.components[0].label()}' set {name} of shape "
                            f"{values.shape}, expected ({len(X)},)")
        save(folder, name.rstrip("_"), values)
    if getattr(clusterer, "outlier_scores_", None) is None:
        # Every combination has an outlier score: density, where the clusterer gives none.
        save(folder, "outlier_scores", knn_outlier_scores(X))
    return component_metrics(clusterer, folder)


def _score(step, cache: Cache, registry: Registry, folder: Path):
    cluster, reduce, data = step.parents
    X = cache.load(reduce, "X")
    labels = cache.load(cluster, "labels")
    truth = cache.load(data, "labels") if cache.contains(data, "labels") else None
    if truth is not None:
        save(folder, "confusion", contingency(truth, labels))
    save(folder, "gallery", gallery(X, labels, load_thumbnails(cache, data, "index")["index"]))
    meta = _compute_metrics(step.components, registry, X, labels, truth,
                            cache.meta(data).get("class_names"))
    if cache.contains(cluster, "outlier_scores"):
        # The most unusual items of all, not only of the thumbnailed sample: their
        # thumbnails are made here, from the data step's images.
        unusual = most_unusual(cache.load(cluster, "outlier_scores"), size=UNUSUAL_SIZE)
        save(folder, "unusual", unusual)
        images = cache.load(data, "images", mmap=True)[unusual]
        scale = load_thumbnails(cache, data, "profile_low", "profile_high")
        pictures = (profiles(images[:, 0, 0], scale["profile_low"], scale["profile_high"])
                    if "profile_low" in scale else thumbnails(images))
        (folder / ARTIFACTS).mkdir(exist_ok=True)
        np.savez_compressed(folder / ARTIFACTS / UNUSUAL, index=unusual, images=pictures)
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


def _compute_metrics(components, registry: Registry, X, labels, truth,
                     class_names: list[str] | None = None) -> dict[str, Any]:
    """Step metadata: ``metrics``, each metric's values by logged name, and, when any
    failed, ``metric_errors``: by metric name, what it raised or returned that is not a
    float or a dict of floats (or curves of them). A failed metric's value is NaN; the
    others keep theirs, and the step still succeeds. ``class_names`` go to the metrics
    whose ``compute`` takes them."""
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
            values = _metric_values(name, metric.compute(
                X, labels, truth, **_names_for(metric, truth, class_names)))
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


def _names_for(metric, truth, class_names: list[str] | None) -> dict[str, list[str]]:
    """``class_names`` as a keyword for a metric whose ``compute`` takes it: the
    contract grew, and metrics written before take three arguments."""
    import inspect

    if truth is None or class_names is None:
        return {}
    taken = inspect.signature(metric.compute).parameters
    return {"class_names": list(class_names)} if "class_names" in taken else {}


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


DATA = Stage("data", _prepare_data, files=(THUMBNAILS, ITEMS))
ENCODE = Stage("encode", _encode, input=(0, "images"))
#: embedding metrics, once per encoder output, when the experiment has some
PROBE = Stage("probe", _probe, optional=True, scoring=True, input=(0, "X"))
REDUCE = Stage("reduce", _reduce, input=(0, "X"))
CLUSTER = Stage("cluster", _cluster, scope="combination", input=(0, "X"))
SCORE = Stage("score", _score, scope="combination", scoring=True, input=(1, "X"),
              files=(UNUSUAL,))
#: how much the clustering changes with the seed alone, when there are several seeds
STABILITY = Stage("stability", _stability, optional=True, scoring=True, metrics={
    "stability_ari": "higher",
    "stability_ari_std": "descriptive",
    "stability_seeds": "descriptive",
})
#: in the plan's order
STAGES = (DATA, ENCODE, PROBE, REDUCE, CLUSTER, SCORE, STABILITY)

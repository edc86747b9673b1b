"""The stages computed for reports only: the 2-D map of each encoder output, the images'
interpretable descriptors and each clustering's cards (``clustergrid.cards``). They are
outside a combination's hash, and one that fails does not fail the combinations it
describes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from clustergrid import cards, record
from clustergrid.cache import Cache
from clustergrid.registry import Registry
from clustergrid.stages.stage import Stage, StepError, build, checked_matrix, save


def _map(step, cache: Cache, registry: Registry, folder: Path):
    (encode,) = step.parents
    component = step.components[0]
    X = cache.load(encode, "X")
    out = checked_matrix(build(component, registry).fit_transform(X), component, len(X))
    if out.shape[1] < 2:
        raise StepError(f"map '{component.label()}' drew {out.shape[1]} dimension(s), "
                        "expected 2")
    save(folder, "X", out[:, :2])
    # Also a file of the step, so it is logged (once per invocation) for reports.
    (folder / record.ARTIFACTS).mkdir()
    np.save(folder / record.ARTIFACTS / record.MAP, out[:, :2], allow_pickle=False)
    return {"artifacts": [record.MAP]}


def _describe(step, cache: Cache, registry: Registry, folder: Path):
    """Raw interpretable descriptors (``cards.describe_images``) of the data step's items,
    or of a fixed sample of ``max_items`` of them: ``descriptors`` (m, d), ``index`` (the
    items described) and their ``names`` in the metadata. Once per data step, whatever the
    encoders, for every combination's cards.

    A table's rows have no morphology: its descriptors are its features themselves, so
    its cards say which features set each cluster apart."""
    (data,) = step.parents
    images = cache.load(data, "images", mmap=True)
    index = cards.sample_index(len(images), dict(step.options)["max_items"])
    features = cache.meta(data).get("features")
    if features is not None:
        values = np.asarray(images[index][:, 0, 0], dtype=np.float64)
        names = list(features)
    else:
        values = cards.describe_images(images, index)
        names = cards.descriptor_names(images.shape[1])
    save(folder, "index", index)
    save(folder, "descriptors", values)
    return {"names": names, "described": len(index),
            "undefined": int(np.isnan(values).sum()),
            **({"descriptors": "the table's features"} if features is not None else {})}


def _cards(step, cache: Cache, registry: Registry, folder: Path):
    """Each cluster's card (``cards.cluster_cards``: what sets it apart, its typical and
    atypical members in the reduced space, its class mix) and the nuisance check
    (``cards.nuisance_check``), logged as ``nuisance.*`` metrics."""
    cluster, reduce, describe, data = step.parents
    labels = cache.load(cluster, "labels")
    index = cache.load(describe, "index")
    descriptors = cache.load(describe, "descriptors")
    names = list(cache.meta(describe)["names"])
    truth = cache.load(data, "labels") if cache.contains(data, "labels") else None
    found = cards.cluster_cards(
        descriptors, names, labels, index, X=cache.load(reduce, "X", mmap=True), truth=truth,
        class_names=cache.meta(data).get("class_names"), ids=cache.load(data, "ids"),
        band_names=cache.meta(data).get("channels"))
    nuisances = tuple(dict(step.options).get("nuisances", cards.NUISANCES))
    skipped = None
    if cache.meta(data).get("features") is not None:
        skipped = "a table's rows have no brightness, size or orientation"
    elif min(cache.load(data, "images", mmap=True).shape[2:]) < cards.MIN_IMAGE_SIDE:
        # An embedding or rows stored as 1 x d "images".
        skipped = f"images narrower than {cards.MIN_IMAGE_SIDE} pixels"
    if skipped:
        nuisances = ()
    check = cards.nuisance_check(labels[index], descriptors, names,
                                 truth[index] if truth is not None else None, nuisances)
    (folder / record.ARTIFACTS).mkdir()
    (folder / record.ARTIFACTS / record.CARDS_JSON).write_text(json.dumps(cards.finite({
        "descriptors": names, "described": len(index), "test": "mann-whitney-u, holm",
        "effect": "cliffs-delta", "effect_threshold": cards.EFFECT_THRESHOLD,
        "alpha": cards.ALPHA, "nuisance": check, "clusters": found,
        **({"nuisance_skipped": f"no nuisance check: {skipped}"} if skipped else {})}),
        indent=1))
    with (folder / record.ARTIFACTS / record.CARDS_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(cards.CSV_COLUMNS)
        writer.writerows(cards.csv_rows(found))
    metrics = {f"nuisance.{key}": value for key, value in check.items()
               if key not in ("follows", "physics_name")}
    # Which nuisance it follows, as numbers the verdict averages over seeds.
    metrics.update({f"nuisance.follows.{name}": float(check["follows"] == name)
                    for name in nuisances})
    return {"metrics": metrics, "artifacts": [record.CARDS_CSV, record.CARDS_JSON]}


#: the map of every item, once per encoder output, when the experiment draws one
MAP = Stage("map", _map, role="report", optional=True, input=(0, "X"), files=(record.MAP,))
#: what the images show, once per data step whatever the encoders
DESCRIBE = Stage("describe", _describe, role="report", version=cards.VERSION)
#: each cluster's card and the nuisance check, logged as ``nuisance.*``
CARDS = Stage("cards", _cards, role="report", scope="combination", scoring=True,
              files=(record.CARDS_CSV, record.CARDS_JSON), version=cards.VERSION,
              metrics={"nuisance.*": "descriptive"})
#: in the plan's order
STAGES = (MAP, DESCRIBE, CARDS)

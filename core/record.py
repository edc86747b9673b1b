"""A run's record in the store, written and read in this one module: its tags, its
params, the prefixes of its metrics and the names of its files.

- An **invocation** of ``clustergrid run`` is a parent run (``TAG_KIND`` ``invocation``)
  with ``INVOCATION_SUMMARY`` and the files of the steps its combinations share, each in
  ``step_folder(stage, key)``, and ``SKIPPED`` when its datasets dropped items
  (``invocation_skipped``: dataset, file and reason of each).
- A **combination** is a child run (``TAG_KIND`` ``combination``) named by its pipeline
  (``clustergrid.names``), tagged with its config hash (``TAG_HASH``) and the cache key
  of each of its steps (``TAG_STEP`` + stage). Its params are each component's plugin and
  parameters by role (``encoder``, ``encoder.latent_dim``, ...). Its metrics are the
  scores by name, what a stage reports beside them prefixed by the stage
  (``calibration.null_draws``), curves logged as steps, and each stage's wall time
  (``time.`` + stage). Its files are ``LABELS`` (each item's cluster), ``GALLERY``,
  ``OUTLIERS``, ``CONFUSION``, ``CURVES``, ``SKIPPED`` and the files each stage lists
  (``Stage.files``) under the stage's name; a failed one has ``TRACEBACK`` and the
  error's type and message as tags.

``combination_record`` writes a combination's record (``clustergrid.tracking`` stores
it); ``read_combination`` reads one back for ``clustergrid.results``. Nothing here
imports the runner or the planner: reports, ``results`` and ``labels`` read the store
through this module.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clustergrid import names

if TYPE_CHECKING:
    from clustergrid.cache import Cache
    from clustergrid.executor import StepOutcome
    from clustergrid.plan import Combination, Plan

# Tags.
TAG_KIND = "clustergrid.kind"  # "invocation" (parent) or "combination" (child)
TAG_HASH = "clustergrid.hash"
TAG_STEP = "clustergrid.step."  # + stage: the key of the combination's step of that stage
TAG_HOST = "clustergrid.host"
TAG_PID = "clustergrid.pid"
TAG_FINGERPRINT = "clustergrid.fingerprint"
TAG_SEED = "clustergrid.seed"
TAG_ERROR_TYPE = "error.type"
TAG_ERROR_MESSAGE = "error.message"
PARENT_TAG = "mlflow.parentRunId"

#: each stage's wall time is logged as a metric named this + the stage
TIME_PREFIX = "time."

# A combination's files.
LABELS = "labels.csv"
GALLERY = "gallery.csv"
OUTLIERS = "outliers.csv"
CONFUSION = "confusion.csv"
CURVES = "curves.json"
SKIPPED = "skipped.csv"
TRACEBACK = "traceback.txt"
#: the invocation's file: what the report's summary shows of it (datasets, steps per
#: stage and their wall time, the directions of the scores)
INVOCATION_SUMMARY = "summary.json"

# Files the stages write that the store keeps and readers read back; each stage lists
# those it writes in its declaration (``Stage.files``).
#: sub-folder of a cache entry holding what its component saved (``Component.save``) and
#: the files its stage writes for the store
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
#: each item comes from), ``ra`` and ``dec`` (ICRS degrees, when the dataset knows the
#: items' sky positions; empty for an item without one; absent from older stores) and
#: ``class`` (its true class name, empty when unknown)
ITEMS = "items.csv"
#: the cards stage's files: a row per cluster and descriptor, and every card as JSON
CARDS_CSV = "cards.csv"
CARDS_JSON = "cards.json"


def step_folder(stage: str, key: str) -> str:
    """Where the invocation's run keeps a shared step's files."""
    return f"steps/{stage}-{key}"


@dataclass(frozen=True)
class Record:
    """One combination's run as ``Tracker.log_combination`` stores it: ``texts`` and
    ``files`` are its files, keyed by their path in the run."""

    name: str
    params: dict[str, str]
    metrics: dict[str, float | list[float]]
    tags: dict[str, str]
    texts: dict[str, str]
    files: dict[str, Path]
    status: str


def combination_record(plan: Plan, combination: Combination, steps: dict[str, StepOutcome],
                       failure: StepOutcome | None, cache: Cache) -> Record:
    """What one combination's run holds, FINISHED or FAILED (``failure``, its failed
    step), from its steps' outcomes and cached outputs."""
    from clustergrid import stages

    params = combination_params(combination)
    versions = {f"version.{kind}.{name}": version for (kind, name), version in plan.versions.items()
                if (kind, name) in _plugins_of(combination)}
    tags = {
        TAG_HASH: combination.key,
        TAG_FINGERPRINT: plan.fingerprints[combination.dataset.dataset],
        TAG_SEED: "none" if combination.seed is None else str(combination.seed),
        **versions,
        **{TAG_STEP + stage: key for stage, key in combination.steps.items()},
    }
    metrics: dict[str, float | list[float]] = {}
    texts: dict[str, str] = {}
    files: dict[str, Path] = {}
    if failure is not None:
        tags[TAG_ERROR_TYPE] = failure.error_type or "Error"
        tags[TAG_ERROR_MESSAGE] = (failure.error or "unknown error")[:5000]
        texts[TRACEBACK] = failure.traceback or failure.error or ""
        status = "FAILED"
    else:
        curves: dict[str, list[float]] = {}
        for stage, outcome in steps.items():
            if outcome.status not in ("computed", "cached"):
                tags[f"clustergrid.{stage}.error"] = (outcome.error or "")[:5000]
                continue  # a map or evidence, which does not fail the combination
            metrics[TIME_PREFIX + stage] = float(outcome.meta.get("wall_time", 0.0))
            declared = stages.get(stage)
            for key, value in outcome.meta.get("metrics", {}).items():
                # Scores keep their names; what a component reports and curves (lists,
                # logged as steps) are prefixed by their stage.
                if isinstance(value, list):
                    curves[f"{stage}.{key}"] = metrics[f"{stage}.{key}"] = value
                else:
                    metrics[key if declared.scoring else f"{stage}.{key}"] = value
            # Evidence behind a score, such as the verdict's null: prefixed, never ranked.
            for key, value in outcome.meta.get("diagnostics", {}).items():
                metrics[f"{stage}.{key}"] = value
            # A metric that failed is NaN above; why is told under its own name.
            for name, message in outcome.meta.get("metric_errors", {}).items():
                tags[f"clustergrid.metric.{name}.error"] = message[:5000]
            tags[f"clustergrid.cached.{stage}"] = str(outcome.status == "cached").lower()
        texts[LABELS] = _labels_csv(cache, combination)
        if curves:
            texts[CURVES] = json.dumps(curves)
        for stage, outcome in steps.items():  # a failed card logs no files
            if stages.get(stage).scope != "combination":
                continue
            for name in outcome.meta.get("artifacts", []):
                files[f"{stage}/{name}"] = cache.path(outcome.key) / ARTIFACTS / name
        if cache.contains(combination.steps["score"], "gallery"):
            texts[GALLERY] = _gallery_csv(cache, combination)
        if cache.contains(combination.steps["score"], "unusual"):
            texts[OUTLIERS] = _outliers_csv(cache, combination)
        skipped = steps["data"].meta.get("skipped")
        if skipped:
            texts[SKIPPED] = _csv(["file", "reason"], skipped)
        if cache.contains(combination.steps["score"], "confusion"):
            texts[CONFUSION] = _confusion_csv(cache, combination)
        status = "FINISHED"
    return Record(combination.label(), params, metrics, tags, texts, files, status)


def invocation_skipped(skipped: list[tuple[str, str, str]]) -> str:
    """The invocation's ``SKIPPED``: each item its datasets dropped (``on_error: skip``),
    as ``(dataset, file, reason)``."""
    return _csv(["dataset", "file", "reason"], skipped)


def combination_params(combination: Combination) -> dict[str, str]:
    """MLflow params: each component's plugin and parameters, prefixed by its role."""
    params: dict[str, str] = {"dataset": combination.dataset.dataset.plugin}
    params.update({f"dataset.{k}": _value(v) for k, v in combination.dataset.dataset.params})
    params["transforms"] = " > ".join(t.label() for t in combination.dataset.transforms) or "none"
    for role in ("encoder", "reducer", "clusterer"):
        component = getattr(combination, role)
        params[role] = component.plugin
        # Options the runner applies around a component (an encoder's symmetry) are part
        # of what tells two pipelines apart, as parameters are.
        params.update({f"{role}.{k}": _value(v)
                       for k, v in (*component.params, *component.options)})
    params["seed"] = "none" if combination.seed is None else str(combination.seed)
    return params


def _value(value) -> str:
    return json.dumps(value) if isinstance(value, tuple | list | dict) else str(value)


def _plugins_of(combination: Combination) -> set[tuple[str, str]]:
    components = [combination.dataset.dataset, *combination.dataset.transforms,
                  combination.encoder, combination.reducer, combination.clusterer]
    return {(c.kind, c.plugin) for c in components}


def _confusion_csv(cache: Cache, combination: Combination) -> str:
    """The contingency table: a row per class (by name when known), a column per cluster."""
    table = cache.load(combination.steps["score"], "confusion")
    clusters = np.unique(cache.load(combination.steps["cluster"], "labels"))
    classes = cache.meta(combination.steps["data"]).get("class_names") or []
    header = ["class", *(f"cluster {c}" if c >= 0 else "noise" for c in clusters)]
    return _csv(header, ([classes[index] if index < len(classes) else index, *row.tolist()]
                         for index, row in enumerate(table)))


def _gallery_csv(cache: Cache, combination: Combination) -> str:
    """For each cluster, the items its gallery shows (see ``stages.gallery``)."""
    ids = cache.load(combination.steps["data"], "ids")
    rows = cache.load(combination.steps["score"], "gallery")
    return _csv(["cluster", "index", "id"],
                ([cluster, index, ids[index]] for cluster, index in rows.tolist()))


def _outliers_csv(cache: Cache, combination: Combination) -> str:
    """The most unusual items, the highest outlier score first (``stages.UNUSUAL_SIZE``)."""
    ids = cache.load(combination.steps["data"], "ids")
    scores = cache.load(combination.steps["cluster"], "outlier_scores")
    items = cache.load(combination.steps["score"], "unusual")
    return _csv(["rank", "index", "id", "score"],
                ([rank, index, ids[index], repr(float(scores[index]))]
                 for rank, index in enumerate(items.tolist(), start=1)))


#: per-item arrays a cluster step may hold -> their column in ``labels.csv``; every
#: combination has outlier scores (the higher, the more unusual): the clusterer's own, or
#: ``outliers.knn_outlier_scores``
PER_ITEM_COLUMNS = {"probabilities": "probability", "outlier_scores": "outlier_score"}


def _labels_csv(cache: Cache, combination: Combination) -> str:
    """Each item's id and cluster, with the clusterer's per-item scores when it has them."""
    cluster = combination.steps["cluster"]
    columns = {"id": cache.load(combination.steps["data"], "ids").tolist(),
               "cluster": cache.load(cluster, "labels").tolist()}
    for name, column in PER_ITEM_COLUMNS.items():
        if cache.contains(cluster, name):
            columns[column] = [repr(v) for v in cache.load(cluster, name).tolist()]
    return _csv(list(columns), zip(*columns.values(), strict=True))


def _csv(header: list[str], rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def read_combination(run: Any) -> dict[str, Any]:
    """One combination's run (an MLflow ``Run``) as a row of ``clustergrid.results``:
    ``run_id``, ``status``, ``hash``, ``start_time``, ``pipeline`` (its name, in the one
    spelling), ``param.`` + each param, every metric, ``step.`` + stage (its step's cache
    key) and, for a failed one, ``error``."""
    row = {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "hash": run.data.tags.get(TAG_HASH),
        "start_time": run.info.start_time,
        # Stores written before names had one spelling read back in it (``names``).
        "pipeline": names.canonical(run.info.run_name or ""),
        **{f"param.{k}": v for k, v in run.data.params.items()},
        **run.data.metrics,
        **{f"step.{k.removeprefix(TAG_STEP)}": v for k, v in run.data.tags.items()
           if k.startswith(TAG_STEP)},
    }
    if run.info.status == "FAILED":
        row["error"] = run.data.tags.get(TAG_ERROR_MESSAGE, "")
    return row

"""The stages of the plan, each declared once (``Stage``): the function that computes its
steps and what the rest of clustergrid needs to know of it. The planner, the runner, the
memory check, the dry run's costs, the results and the report read these declarations;
adding a stage is declaring it in the module of its feature and planning its steps.

``STAGES`` lists them in the plan's order, each with what it writes to the cache:

    the pipeline (``pipeline``):
    data        dataset + transform chain   -> images, labels, ids
    encode      encoder(images)             -> X (n, d)
    probe       embedding metrics(X, truth) -> metrics, once per encoder output
    reduce      reducer(X)                  -> X (n, k), and its trustworthiness
    cluster     clusterer(X)                -> labels
    score       clustering metrics          -> metrics, confusion matrix, gallery
    stability   labels of every seed        -> mean pairwise ARI between seeds

    for reports only (``report``):
    map         map reducer(X)              -> X (n, 2), once per encoder output
    describe    images                      -> raw interpretable descriptors, once per
                data step whatever the encoder (``clustergrid.cards``)
    cards       labels, reduced X, descriptors -> each cluster's card and the nuisance
                check

    the verdict's evidence (``evidence``; ``clustergrid.evidence`` computes its numbers):
    reference   X                           -> a Gaussian model of X, once per encoder output
    null_reduce reducer on draws from the reference -> the draws reduced, once per encoder
                output and reducer, for every clusterer after it
    null        clusterer on the reduced draws -> its internal scores, once per pipeline
                whatever its seed
    subsample_reduce reducer refitted on subsamples -> the subsamples reduced, once per
                encoder output and reducer
    subsample   clusterer refitted on the reduced subsamples -> their labels, once per
                pipeline
    resampling  the combination's clusters against the subsample fits -> their stability
    calibration the combination's internal score against its null -> excess, flags' evidence
"""

from __future__ import annotations

import time
from typing import Any

from clustergrid import memory
from clustergrid.cache import Cache, write_meta
from clustergrid.record import (
    ARTIFACTS,
    CARDS_CSV,
    CARDS_JSON,
    ITEMS,
    MAP,
    THUMBNAILS,
    UNUSUAL,
)
from clustergrid.registry import Registry
from clustergrid.stages import evidence, pipeline, report
from clustergrid.stages.pipeline import (
    DATA_BATCH_SIZE,
    ENCODE_BATCH_SIZE,
    GALLERY_SIZE,
    UNUSUAL_SIZE,
    contingency,
    gallery,
    load_thumbnails,
    transformed_batches,
    trustworthiness,
)
from clustergrid.stages.stage import Stage, StepError, build, clusterer_input

__all__ = [
    "ARTIFACTS", "CARDS_CSV", "CARDS_JSON", "DATA_BATCH_SIZE", "ENCODE_BATCH_SIZE",
    "GALLERY_SIZE", "ITEMS", "MAP", "STAGES", "THUMBNAILS", "UNUSUAL", "UNUSUAL_SIZE",
    "Stage", "StepError", "build", "clusterer_input", "contingency", "gallery", "get",
    "load_thumbnails", "logged_directions", "named", "run_step", "transformed_batches",
    "trustworthiness",
]

#: every stage, in the plan's order: the pipeline's, the report's, the verdict's evidence
STAGES: tuple[Stage, ...] = (*pipeline.STAGES, *report.STAGES, *evidence.STAGES)
#: name -> declaration
_DECLARED: dict[str, Stage] = {stage.name: stage for stage in STAGES}


def get(name: str) -> Stage:
    """The declaration of the stage ``name``; a KeyError names the stages there are."""
    try:
        return _DECLARED[name]
    except KeyError:
        raise KeyError(f"no stage is named {name!r}; the stages are "
                       f"{', '.join(_DECLARED)}") from None


def named(**wanted: Any) -> tuple[str, ...]:
    """The names of the stages whose fields (or properties) have the values given, in the
    plan's order: ``named(role="report")``, ``named(scoring=True)``."""
    return tuple(stage.name for stage in STAGES
                 if all(getattr(stage, key) == value for key, value in wanted.items()))


def logged_directions(**wanted: Any) -> dict[str, str]:
    """Logged name (or glob pattern) -> direction of every score the stages compute
    themselves (``Stage.metrics``), as ``Metric.logged_directions`` gives a metric's;
    only those of the stages ``named(**wanted)``, when given."""
    chosen = named(**wanted)
    return {metric: direction for stage in STAGES if stage.name in chosen
            for metric, direction in stage.metrics.items()}


def run_step(step, cache: Cache, registry: Registry) -> dict[str, Any]:
    """Compute ``step`` into its cache entry; returns the entry's metadata. A step that
    cannot fit in its worker's memory raises ``memory.MemoryRefused`` before it starts."""
    memory.refuse_unless_fits(step, cache, registry)
    started = time.perf_counter()
    culprit = (f"{step.components[0].kind} '{step.components[0].label()}'"
               if step.components else f"the {step.stage} step")
    with cache.writer(step.key) as folder:
        try:
            meta = get(step.stage).run(step, cache, registry, folder)
        except StepError:
            raise
        except Exception as exc:
            raise StepError(f"{culprit} failed: {type(exc).__name__}: {exc}") from exc
        meta["wall_time"] = time.perf_counter() - started
        write_meta(folder, meta)
    return meta

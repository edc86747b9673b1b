"""Checks of a metric: numbers the runner can log and rank pipelines by, under names no
other metric logs, and NaN rather than an error where the score is undefined."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from clustergrid.stages import logged_directions
from clustergrid.testing.case import (
    Case,
    blobs,
    installed_registry,
    is_number,
    readonly,
    same,
    true_labels,
)


def _metric_inputs(case: Case) -> list[tuple[str, np.ndarray, Any, Any]]:
    """(description, X, labels, true labels) as the runner passes them, labelled data
    or not (it passes the true labels whenever the dataset has them)."""
    n = case.n
    clusters = None
    if case.cls.scope == "clustering":
        clusters = np.arange(n, dtype=np.int64) % 3
        clusters[:2] = -1
        clusters = readonly(clusters)
    truths = [true_labels(n)] if case.cls.needs_labels else [None, true_labels(n)]
    return [(f"{n} points in 3 clusters", blobs(n), clusters, truth) for truth in truths]


def _check_score(case: Case, value: Any, what: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            curve = isinstance(item, list | tuple | np.ndarray)
            if not isinstance(key, str) or not (
                    all(map(is_number, item)) if curve else is_number(item)):
                raise case.fail(f"compute on {what} returned {{{key!r}: {item!r}}}; a dict "
                                "maps names to numbers (NaN when undefined) or lists of "
                                "numbers (curves)")
    elif not is_number(value):
        raise case.fail(f"compute on {what} returned {value!r} ({type(value).__name__}); "
                        "it must return a number (NaN when undefined) or a dict of numbers")


def metric_returns_numbers(case: Case) -> None:
    """``compute`` returns a number, or a dict of names to numbers or lists of numbers,
    NaN where undefined, and the same on the same input: the runner logs them as floats
    and ranks pipelines by them; anything else is logged as NaN and a failed metric."""
    for what, X, labels, truth in _metric_inputs(case):
        metric = case.build()
        value = case.call(f"compute on {what}", metric.compute, X, labels, truth)
        _check_score(case, value, what)
        if not same(value, case.call("compute", case.build().compute, X, labels, truth)):
            raise case.fail("two computes on the same input differ; derive any sampling "
                            "from a seed parameter")


def metric_names_are_free(case: Case) -> None:
    """What a metric logs (its ``name``, or a dict's keys) is not another metric's name nor
    one the runner logs itself: two values under one name would overwrite each other."""
    registry = installed_registry()
    taken = set(logged_directions())
    for info in registry.all("metric"):
        if info.cls.__qualname__ != case.cls.__qualname__ or info.cls.__module__ != \
                case.cls.__module__:
            taken |= set(info.cls.logged_directions())
    what, X, labels, truth = _metric_inputs(case)[-1]
    value = case.call(f"compute on {what}", case.build().compute, X, labels, truth)
    logged = set(value) if isinstance(value, Mapping) else {case.cls.name}
    if logged & taken:
        raise case.fail(f"logs {sorted(logged & taken)}, already logged by another metric or "
                        "by the runner; prefix the keys with the metric's name")


def metric_undefined_is_nan(case: Case) -> None:
    """On identical points, or a clustering it cannot score (one cluster, all noise), a
    metric returns NaN rather than raising: the runner reports a raising metric as failed,
    when the score is merely undefined."""
    n = case.n
    truth = true_labels(n) if case.cls.needs_labels else None
    inputs = [(f"{n} identical points", blobs(n, constant=True),
               None if case.cls.scope == "embedding" else np.arange(n) % 3)]
    if case.cls.scope == "clustering":
        inputs += [("a single cluster", blobs(n), np.zeros(n, dtype=np.int64)),
                   ("all noise", blobs(n), np.full(n, -1, dtype=np.int64))]
    for what, X, labels in inputs:
        try:
            value = case.build().compute(X, labels, truth)
        except Exception as exc:
            raise case.fail(f"compute on {what} raised {type(exc).__name__}: {exc}; return "
                            "NaN where the metric is undefined") from exc
        _check_score(case, value, what)

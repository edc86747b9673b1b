"""Checks of what transforms, encoders, reducers and clusterers return: the shapes and
types the next stage expects, rows that do not depend on the batching, the same output
on every run, and a clear ``ValueError`` on input they cannot handle."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from clustergrid.components import Clusterer
from clustergrid.testing.case import (
    FEW,
    Case,
    input_for,
    is_number,
    same,
    same_value,
    true_labels,
)


def _apply(case: Case, component: Any, data: np.ndarray) -> Any:
    """What the runner calls on a freshly built component of ``case.kind``."""
    if case.kind == "transform":
        return component.transform(data)
    if case.kind == "encoder":
        labels = true_labels(len(data)) if component.needs_labels else None
        component.fit(data, labels)
        return component.transform(data)
    if case.kind == "reducer":
        return component.fit_transform(data)
    from clustergrid.stages import clusterer_input  # in the precision the runner gives

    return component.fit_predict(clusterer_input(component, data))


def _run(case: Case, data: np.ndarray, what: str) -> tuple[Any, np.ndarray]:
    """A new component applied to ``data``, and its checked output."""
    component = case.build()
    out = case.call(f"{_method(case)} on {what}", _apply, case, component, data)
    return component, _valid_output(case, component, out, len(data), what)


def _method(case: Case) -> str:
    return {"transform": "transform", "encoder": "fit + transform",
            "reducer": "fit_transform", "clusterer": "fit_predict"}[case.kind]


def _valid_output(case: Case, component: Any, out: Any, n: int, what: str) -> np.ndarray:
    if case.kind == "clusterer":
        return _valid_labels(case, component, out, n, what)
    out = np.asarray(out)
    wanted = 4 if case.kind == "transform" else 2
    if out.ndim != wanted or len(out) != n:
        expected = "(n, channels, height, width)" if wanted == 4 else "(n, d)"
        raise case.fail(f"{_method(case)} on {what} returned shape {out.shape}, expected "
                        f"{expected} with n = {n}")
    if not (np.issubdtype(out.dtype, np.floating) or np.issubdtype(out.dtype, np.integer)):
        raise case.fail(f"{_method(case)} returned dtype {out.dtype}: output must be numbers "
                        "the runner can store as float32")
    if not np.isfinite(out.astype(np.float32)).all():
        raise case.fail(f"{_method(case)} on {what} returned NaN or infinite values (as "
                        "float32): the runner rejects them")
    return out


def _valid_labels(case: Case, component: Any, labels: Any, n: int, what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise case.fail(f"fit_predict on {what} returned labels of shape {labels.shape}, "
                        f"expected ({n},)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise case.fail(f"fit_predict returned labels of dtype {labels.dtype}; labels must be "
                        "an integer array (-1 = noise, clusters 0..k-1), even when the "
                        "values are whole numbers")
    clusters = np.unique(labels[labels != -1])
    if labels.min(initial=0) < -1 or not np.array_equal(clusters, np.arange(len(clusters))):
        raise case.fail(f"fit_predict on {what} returned labels {clusters.tolist()[:12]}; "
                        "clusters must be numbered 0..k-1 without gaps, -1 only for noise")
    for name in Clusterer.per_item:
        values = getattr(component, name, None)
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (n,):
            raise case.fail(f"sets {name} of shape {values.shape}, expected ({n},): one "
                            "value per item")
        if name == "probabilities_" and ((values < 0) | (values > 1)).any():
            raise case.fail("sets probabilities_ outside [0, 1]")
    return labels


# ---------------------------------------------------------------------- checks


def output_contract(case: Case) -> None:
    """Output has the shape the next stage expects, as finite numbers: images
    ``(n, c, h, w)``, embeddings ``(n, d)``, labels ``(n,)`` integers numbered 0..k-1 with
    -1 for noise. Inputs are read-only (the runner's are memory-mapped), ``fit`` leaves
    the parameters as they were (they were hashed into the step's key before it ran),
    and ``metrics_`` and ``save`` give what the runner logs."""
    component, _ = _run(case, input_for(case, case.n), f"{case.n} random items")
    if case.kind == "transform":
        return
    before = case.build().get_params()
    if not all(same_value(component.get_params()[k], v) for k, v in before.items()):
        raise case.fail(f"fitting changed its parameters from {before!r} to "
                        f"{component.get_params()!r}; keep fitted state in attributes "
                        "ending in _")
    metrics = getattr(component, "metrics_", None) or {}
    if not isinstance(metrics, Mapping):
        raise case.fail(f"metrics_ is a {type(metrics).__name__}, expected a dict")
    for key, value in metrics.items():
        curve = isinstance(value, list | tuple | np.ndarray)
        if not isinstance(key, str) or not (
                all(map(is_number, value)) if curve else is_number(value)):
            raise case.fail(f"metrics_[{key!r}] = {value!r}; metrics_ maps names to numbers "
                            "or lists of numbers")
    with tempfile.TemporaryDirectory() as folder:
        case.call("save(folder)", component.save, Path(folder))


def slices_agree(case: Case) -> None:
    """Each output row depends only on its own image: the runner transforms images in
    batches of 256 and encodes them in slices of 4,096, so ``f(images[a:b])`` must equal
    ``f(images)[a:b]`` (encoders that declare ``row_wise = False`` are called once)."""
    if case.kind == "encoder" and not case.cls.row_wise:
        return
    images = input_for(case, case.n)
    component = case.build()
    whole = case.call(_method(case), _apply, case, component, images)
    half = case.n // 2
    for part in (slice(0, half), slice(half, case.n)):
        alone = case.call("transform on a slice", component.transform, images[part])
        if not np.allclose(np.asarray(alone), np.asarray(whole)[part], rtol=1e-4, atol=1e-5,
                           equal_nan=True):
            raise case.fail(f"transform(images[{part.start}:{part.stop}]) differs from "
                            f"transform(images)[{part.start}:{part.stop}]; rows must depend "
                            "only on their own image (or declare row_wise = False)")


def deterministic(case: Case) -> None:
    """Two components built with the same parameters give the same output on the same
    input: a stochastic one (``random_state``) is computed once per seed and cached, any
    other once for all seeds, so its result must not vary from run to run."""
    data = input_for(case, case.n)
    first, second = (_run(case, data, f"{case.n} random items")[1] for _ in range(2))
    if not same(first, second):
        seeded = (f"with random_state={case.params['random_state']!r}"
                  if case.cls.is_stochastic() else "(it takes no random_state)")
        raise case.fail(f"two runs {seeded} gave different output; seed every random "
                        "generator from random_state, or take a random_state parameter")


def degenerate_input(case: Case) -> None:
    """On input it cannot handle (every item the same, three items) a component raises a
    ValueError saying why, or returns valid output; never an obscure error or NaN, which
    would leave the user guessing which component and what input."""
    for data, what in ((input_for(case, case.n, constant=True), f"{case.n} identical items"),
                       (input_for(case, FEW), f"{FEW} items")):
        component = case.build()
        try:
            # Libraries warn on such input (one distinct cluster, zero variance): expected
            # here, and not what the check judges.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = _apply(case, component, data)
        except ValueError as exc:
            if not str(exc).strip():
                raise case.fail(f"{_method(case)} on {what} raised ValueError with no "
                                "message; say what is wrong with the input") from exc
            continue
        except Exception as exc:
            raise case.fail(f"{_method(case)} on {what} raised {type(exc).__name__}: {exc}; "
                            "raise ValueError saying why the input cannot be handled, or "
                            "handle it") from exc
        _valid_output(case, component, out, len(data), what)

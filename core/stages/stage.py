"""What a stage declares (``Stage``), and what every stage's function is built from: the
component it instantiates (``build``), the error that names the component at fault
(``StepError``) and the checks of what a component returned."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clustergrid.components import Component as ComponentBase
from clustergrid.directions import check_direction
from clustergrid.record import ARTIFACTS
from clustergrid.registry import Registry
from clustergrid.spec import Component

#: what a stage's steps are to a combination: ``pipeline``, its result (inside its hash;
#: a failure fails it); ``evidence``, the verdict's (inside its hash, outside its success:
#: evidence that fails is recorded and the combination still finishes); ``report``, for
#: reports only (outside both)
ROLES = ("pipeline", "evidence", "report")
#: whose files a step's are: ``combination``, a step of one combination, whose run logs
#: them; ``shared``, a step shared by many (thumbnails, trained weights, maps), whose
#: files are logged once, to the invocation's run
SCOPES = ("combination", "shared")
#: which component the verdict's refits fit afresh on at most ``max_points`` items
REFITS = ("reducer", "clusterer")


@dataclass(frozen=True)
class Stage:
    """One stage of the plan, declared once: the function that computes its steps, and
    what the planner, the runner, the memory check, the results and the report need to
    know of it. ``clustergrid.stages.STAGES`` lists every stage in the plan's order."""

    #: the stage's name: in step keys, tags (``clustergrid.step.<name>``) and the prefix of
    #: what its components report (``<name>.<metric>``); never renamed, or caches go stale
    name: str
    #: ``run(step, cache, registry, folder) -> metadata``: computes a step into its cache
    #: folder from its parents' outputs
    run: Callable[[Any, Any, Registry, Path], dict[str, Any]] = field(compare=False)
    #: one of ``ROLES``
    role: str = "pipeline"
    #: whether a plan may lack it: only experiments that ask for it have its steps
    #: (embedding metrics, several seeds, a map, a verdict)
    optional: bool = False
    #: one of ``SCOPES``
    scope: str = "shared"
    #: whether its metrics are scores, logged under their own names; else what its
    #: components report, prefixed by the stage (``reduce.trustworthiness``)
    scoring: bool = False
    #: logged name (or glob pattern) -> direction (``clustergrid.directions``) of the
    #: scores it computes itself, as a metric plugin declares its own
    metrics: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: where the memory check (``clustergrid.memory``) finds the input of a step: which
    #: parent, by position, and which of its arrays (``mean``: a reference model, whose
    #: ``n`` gives the size); None: its steps are not checked
    input: tuple[int, str] | None = None
    #: one of ``REFITS`` for the verdict's refits, None for any other stage
    refit: str | None = None
    #: the files its steps write for the store besides what their components save
    #: (``clustergrid.record``)
    files: tuple[str, ...] = ()
    #: part of every step's key (its option ``version``) when set: bumped when what the
    #: stage computes changes, so cached steps are computed again rather than read stale
    version: str | None = None

    def __post_init__(self) -> None:
        for value, allowed, what in ((self.role, ROLES, "role"), (self.scope, SCOPES, "scope"),
                                     (self.refit, (None, *REFITS), "refit")):
            if value not in allowed:
                raise ValueError(f"stage '{self.name}' declares {what} {value!r}; "
                                 f"expected one of {allowed}")
        for name, direction in self.metrics.items():
            check_direction(direction, f"stage '{self.name}' for {name!r}")

    @property
    def in_hash(self) -> bool:
        """Whether its steps are part of a combination's config hash (``Combination.key``)."""
        return self.role != "report"

    @property
    def decides_success(self) -> bool:
        """Whether a failure of its step fails the combination."""
        return self.role == "pipeline"


class StepError(Exception):
    """A component failed; the message names the component."""


def build(component: Component, registry: Registry, seed: int | None = None) -> ComponentBase:
    """Instantiate ``component``, passing ``seed`` as ``random_state`` when it takes one."""
    cls = registry.get(component.kind, component.plugin).cls
    kwargs = component.kwargs
    if seed is not None and cls.is_stochastic() and "random_state" not in kwargs:
        kwargs["random_state"] = seed
    return cls(**kwargs)


def save(folder: Path, name: str, array: np.ndarray) -> None:
    """``array`` as the step's output ``name`` (``<name>.npy``, never pickled)."""
    np.save(folder / f"{name}.npy", array, allow_pickle=False)


def component_metrics(component: ComponentBase, folder: Path) -> dict[str, Any]:
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


def checked_matrix(X, component: Component, n: int,
                   name_rows: Callable[[np.ndarray], str] | None = None) -> np.ndarray:
    """A component's ``(n, d)`` output as float32; a StepError names it when the shape is
    not that or a row holds NaN or infinite values. ``name_rows``, given the indices of
    those rows, says what they are (the encoder names the items), after a colon."""
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
            + (f": {name_rows(np.flatnonzero(bad))}" if name_rows is not None else "")
        )
    return X

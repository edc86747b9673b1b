"""Every extension point of clustergrid.

A plugin is a module (or object) with functions named after these hooks and decorated
with ``clustergrid.hookimpl``. Each hook receives a ``register`` callback; call it once per
component class. Hooks only ever grow: none is renamed or removed.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("clustergrid")

#: ``register(ComponentClass)``: adds one component under its ``name``.
Register = Callable[[type], None]


@hookspec
def register_datasets(register: Register) -> None:
    """Register Dataset classes: images read in batches, with optional labels."""


@hookspec
def register_transforms(register: Register) -> None:
    """Register Transform classes: image batch -> image batch."""


@hookspec
def register_encoders(register: Register) -> None:
    """Register Encoder classes: images -> (n, d) embeddings, optionally trained."""


@hookspec
def register_reducers(register: Register) -> None:
    """Register Reducer classes: (n, d) -> (n, k) with fit_transform."""


@hookspec
def register_clusterers(register: Register) -> None:
    """Register Clusterer classes: (n, k) -> labels, -1 meaning noise."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register Metric classes: (X, labels, true labels or None) -> float or dict."""

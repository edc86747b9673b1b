"""Which way each logged metric is better: the one place a logged name gets its direction.

Every metric declares a direction: ``"higher"`` or ``"lower"`` (which values are better)
or ``"descriptive"`` (neither: it describes a result, such as the number of clusters, and
is never marked best nor used to rank). Metric plugins declare theirs on the class
(``Metric.direction`` and, for dict results, ``Metric.directions``); the scores the plan's
own stages log are declared with their stage (``Stage.metrics``, read by
``clustergrid.stages.logged_directions``). The runner records the directions of an
invocation in its summary, so a report reads them from the store, not from whichever
plugins happen to be installed where it is built.

A declared key may be a glob pattern (``"recall.*"``) for keys only known at run time,
such as one per class. A name nobody declared is descriptive: what components report
(``cluster.bic``, ``reduce.trustworthiness``, prefixed by their stage), timings
(``time.cluster``), curves and any undeclared key; an unknown number is never ranked.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clustergrid.components import Metric

DIRECTIONS = ("higher", "lower", "descriptive")

_GLOB = frozenset("*?[")


def check_direction(value: object, owner: str) -> str:
    """``value`` if it is one of ``DIRECTIONS``, else a ValueError naming ``owner``."""
    if value not in DIRECTIONS:
        allowed = ", ".join(repr(d) for d in DIRECTIONS)
        raise ValueError(f"{owner} declares direction {value!r}; expected one of {allowed}")
    return str(value)


def metric_directions(metric_classes: Iterable[type[Metric]]) -> dict[str, str]:
    """Logged name (or glob pattern) -> direction, for every key the given Metric classes
    declare: each one's ``name`` (its ``direction`` unless ``directions`` lists it) and
    the keys of its ``directions``. A ValueError names a class with a bad value."""
    known: dict[str, str] = {}
    for cls in metric_classes:
        known.update(cls.logged_directions())
    return known


def direction(name: str, known: dict[str, str]) -> str:
    """The direction of the logged column ``name``: its declaration in ``known`` (an exact
    name first, then the first glob pattern matching it), else ``"descriptive"``."""
    if name in known:
        return known[name]
    for pattern, value in known.items():
        if _GLOB.intersection(pattern) and fnmatchcase(name, pattern):
            return value
    return "descriptive"

"""How the report writes numbers and which value of a metric is best.

Directions come from ``clustergrid.directions`` (through ``ReportData.directions``):
the report itself knows no metric by name.
"""

from __future__ import annotations

import math

import pandas as pd


def comparable(directions: dict[str, str]) -> list[str]:
    """The metrics by which pipelines can be compared: those that are not descriptive, in
    the order of ``directions`` (metric -> direction)."""
    return [m for m, d in directions.items() if d != "descriptive"]


def best(values: pd.Series, direction: str) -> float:
    """The best of ``values`` for a metric of this direction; NaN when none is best."""
    values = values.dropna()
    if values.empty or direction == "descriptive":
        return math.nan
    return values.max() if direction == "higher" else values.min()


def is_number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def mean_spread(mean, std, plus_minus: str) -> str:
    if not is_number(mean):
        return "n/a"
    # One seed, or a value shared by all seeds (stability): no spread to show.
    if not is_number(std) or std == 0:
        return f"{mean:.3f}"
    return f"{mean:.3f} {plus_minus} {std:.3f}"

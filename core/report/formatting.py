"""How the report writes numbers and which value of a metric is best."""

from __future__ import annotations

import math

import pandas as pd

#: metrics where a lower value is better
LOWER_IS_BETTER = {"davies_bouldin"}
#: metrics that describe a clustering without being better or worse: no best is marked
#: and pipelines are not ranked by them
DESCRIPTIVE = {"n_clusters", "noise_fraction", "cluster_size_entropy"}


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def scores(metrics: list[str]) -> list[str]:
    """The metrics by which pipelines can be compared."""
    return [m for m in metrics if m not in DESCRIPTIVE]


def best(values: pd.Series, metric: str) -> float:
    values = values.dropna()
    if values.empty or metric in DESCRIPTIVE:
        return math.nan
    return values.max() if higher_is_better(metric) else values.min()


def is_number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def mean_spread(mean, std, plus_minus: str) -> str:
    if not is_number(mean):
        return "n/a"
    # One seed, or a value shared by all seeds (stability): no spread to show.
    if not is_number(std) or std == 0:
        return f"{mean:.3f}"
    return f"{mean:.3f} {plus_minus} {std:.3f}"

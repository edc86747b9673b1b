"""Clusterers that kill their worker process, for the Dask executor's tests; registered
in-process with ``Registry.load(extra=[dask_components])`` and imported by name in each
Dask worker (tests/ is on the worker's sys.path, inherited from pytest)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from clustergrid import Clusterer, hookimpl


class DiesOnce(Clusterer):
    """Kills its process the first time it runs (``marker`` records that), then puts
    every point in one of two clusters: above or below the median row sum."""

    name = "dies-once"

    def __init__(self, marker: str = ""):
        self.marker = marker

    def fit_predict(self, X):
        marker = Path(self.marker)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        totals = np.asarray(X).sum(axis=1)
        return (totals > np.median(totals)).astype(np.int64)


class AlwaysDies(Clusterer):
    """Kills its process every time it runs."""

    name = "always-dies"

    def fit_predict(self, X):
        os._exit(1)


@hookimpl
def register_clusterers(register):
    register(DiesOnce)
    register(AlwaysDies)

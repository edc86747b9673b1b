"""A small grid that several test files run, and what they read back from its store."""

from __future__ import annotations

from clustergrid.record import TAG_HASH
from clustergrid.tracking import Tracker

#: 300 digits, two reducers, two k and two seeds: 8 combinations in seconds; its executor
#: line, ``executor: {workers: 1}``, is the one to replace for another
SMALL = """\
name: small
seeds: [0, 1]
datasets:
  - plugin: digits
    n_samples: 300
transforms:
  - plugin: normalize
encoders:
  - plugin: pixels
reducers:
  - plugin: none
  - plugin: pca
    n_components: 5
clusterers:
  - plugin: kmeans
    n_clusters: [5, 10]
    n_init: 2
metrics: [silhouette, davies_bouldin, calinski_harabasz, ari, ami, nmi]
executor: {workers: 1}
"""


def combination_runs(name: str, store: str | None = None) -> list:
    """The experiment's combination runs in ``store`` (None: ./clustergrid-runs)."""
    return Tracker(store, name, create=False).combination_runs()


def scores(name: str, store: str | None = None) -> dict[str, dict[str, float]]:
    """Each combination's metrics but timings, keyed by its config hash: what two runs of
    the same grid under different executors must agree on."""
    return {run.data.tags[TAG_HASH]: {key: value for key, value in run.data.metrics.items()
                                      if not key.startswith("time.")}
            for run in combination_runs(name, store)}

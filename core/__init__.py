"""clustergrid: run every combination of image datasets, encoders, reducers and
clusterers once, log each to MLflow, and compare them.

Plugin authors need only what this module exports.
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

from clustergrid.components import (
    Clusterer,
    Component,
    Dataset,
    Encoder,
    Metric,
    Reducer,
    Transform,
)

try:
    __version__ = version("clustergrid")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

#: Decorates a plugin's hook implementations.
hookimpl = pluggy.HookimplMarker("clustergrid")

__all__ = [
    "Clusterer",
    "Component",
    "Dataset",
    "Encoder",
    "Metric",
    "Reducer",
    "Transform",
    "__version__",
    "hookimpl",
]

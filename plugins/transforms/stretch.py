from __future__ import annotations

from typing import Literal

import numpy as np

from clustergrid import Transform
from clustergrid.plugins.support.imageops import map_units

#: astropy's own defaults for the stretch parameter ``a`` (used when ``a`` is None).
_DEFAULT_A = {"asinh": 0.1, "log": 1000.0}


class Stretch(Transform):
    """Scale each image (or channel) to [0, 1] by an interval, then asinh/log/sqrt stretch.

    Follows ``astropy.visualization``: the interval (``minmax``, ``percentile`` keeping
    the central ``percentile`` % of pixels, or ``zscale``) gives the limits that map to
    0 and 1, values outside are clipped, and the stretch (``AsinhStretch(a)``,
    ``LogStretch(a)``, ``SqrtStretch()`` or ``LinearStretch()``) is applied; ``a`` of
    None means astropy's default (0.1 for asinh, 1000 for log).

    NaN and inf: the limits come from the finite pixels only; NaN pixels stay NaN and
    +inf/-inf clip to 1/0 (put ``nan_fill`` first to choose their value instead). A
    constant image (or channel) maps to zeros.
    """

    name = "stretch"

    def __init__(
        self,
        stretch: Literal["asinh", "log", "sqrt", "linear"] = "asinh",
        interval: Literal["minmax", "percentile", "zscale"] = "minmax",
        percentile: float = 99.5,
        a: float | None = None,
        per_channel: bool = False,
    ):
        self.stretch = stretch
        self.interval = interval
        self.percentile = percentile
        self.a = a
        self.per_channel = per_channel

    def _astropy(self):
        """The astropy interval and stretch objects, after checking the parameters."""
        from astropy import visualization as vis

        if not 0 < self.percentile <= 100:
            raise ValueError(f"stretch: percentile must be in (0, 100], got {self.percentile}")
        if self.a is not None and self.stretch not in _DEFAULT_A:
            raise ValueError(f"stretch: a is only used by asinh and log, not {self.stretch!r}")
        if self.a is not None and not self.a > 0:
            raise ValueError(f"stretch: a must be > 0, got {self.a}")
        intervals = {
            "minmax": vis.MinMaxInterval,
            "percentile": lambda: vis.PercentileInterval(self.percentile),
            "zscale": vis.ZScaleInterval,
        }
        if self.interval not in intervals:
            raise ValueError(
                f"stretch: interval must be one of {sorted(intervals)}, got {self.interval!r}"
            )
        a = _DEFAULT_A.get(self.stretch) if self.a is None else self.a
        stretches = {
            "asinh": lambda: vis.AsinhStretch(a),
            "log": lambda: vis.LogStretch(a),
            "sqrt": vis.SqrtStretch,
            "linear": vis.LinearStretch,
        }
        if self.stretch not in stretches:
            raise ValueError(
                f"stretch: stretch must be one of {sorted(stretches)}, got {self.stretch!r}"
            )
        return intervals[self.interval](), stretches[self.stretch]()

    def transform(self, images: np.ndarray) -> np.ndarray:
        interval, stretch = self._astropy()

        def apply(unit: np.ndarray) -> np.ndarray:
            # astropy's intervals fail on an array without a finite value: leave it as it is.
            if not np.isfinite(unit).any():
                return unit
            # float64 like astropy's own arithmetic, so results match it to float32 precision.
            return stretch(interval(unit.astype(np.float64)), clip=True)

        return map_units(images, apply, self.per_channel)

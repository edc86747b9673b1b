"""The ``morphology`` encoder: handcrafted shape features (Hillas parameters, CAS, Gini and
M20) of every image, standardised over the dataset.

The measurements themselves are the functions of ``clustergrid.morphology``, which the
cluster cards use too; this module applies them to a stack of images.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from clustergrid import Encoder
from clustergrid.memory import FLOAT32, FLOAT64, image_shape
from clustergrid.morphology import FEATURES, IMAGE_COPIES, image_features

#: arrays of the whole feature table finishing holds: the table, where it is undefined,
#: the values with NaN, the medians filled in, the standardised table, and its float32
#: copy (half of one)
TABLE_COPIES = 6


class Morphology(Encoder):
    """Handcrafted shape features: Hillas parameters, CAS, Gini and M20 per image.

    Parameters:

    - ``channels``: ``"sum"`` computes the features on the sum of the channels,
      ``"each"`` on every channel, the names suffixed ``_c<k>``.
    - ``threshold``: cleaning; pixels ``<= threshold`` are set to 0 before any feature,
      so only pixels above it carry light (0 keeps the positive pixels).
    - ``brightest_island``: also keep only the 8-connected group of pixels above
      ``threshold`` with the most flux, dropping isolated noise pixels (which otherwise
      dominate the second moments of faint sources) and secondary islands.
    - ``smoothing``: width of the smoothness boxcar as a fraction of the smaller image
      side (rounded to an odd number of pixels, at least 3). A fixed width rather than
      a quarter of each image's Petrosian radius: the same physical scale for every
      image of a survey or camera, and no Petrosian radius to fail on faint images.
    - ``standardize``: each feature shifted and scaled to zero mean and unit variance
      over the images given to ``transform`` (the whole dataset in a run); a constant
      feature becomes 0.
    - ``batch_size``: images read at a time (the stack may be memory-mapped).

    Features (``feature_names()``): ``hillas_size``, ``hillas_distance`` (from the
    image centre), ``hillas_length``, ``hillas_width`` (px), ``hillas_width_length``,
    ``hillas_ellipticity``, ``hillas_orientation``, ``hillas_skewness``,
    ``hillas_kurtosis``, ``concentration``, ``asymmetry``, ``smoothness``, ``gini``,
    ``m20``; see the functions of the same names in ``clustergrid.morphology`` for the
    definitions.

    Conventions: ``x`` is the column and ``y`` the row index; ``hillas_orientation``
    is in (-pi/2, pi/2], counter-clockwise from ``+x`` when the image is displayed with
    row 0 at the bottom. A feature that is undefined for an image (e.g. every feature
    but the size of an empty image) is replaced by that feature's median over the
    dataset (0 if it is never defined) before standardising; ``metrics_`` counts the
    replaced values in ``nan_features`` and holds ``feature_mean.<name>`` and
    ``feature_std.<name>``, the statistics of each feature before standardising.
    The encoder is stateless: ``fit`` does nothing.
    """

    name = "morphology"
    version = "1"
    # Undefined features are filled with the dataset's medians and standardised over the
    # whole dataset; the output is a few floats per image, so one call is cheap.
    row_wise = False

    def __init__(
        self,
        channels: Literal["sum", "each"] = "sum",
        threshold: float = 0.0,
        brightest_island: bool = False,
        smoothing: float = 0.05,
        standardize: bool = True,
        batch_size: int = 256,
    ):
        self.channels = channels
        self.threshold = threshold
        self.brightest_island = brightest_island
        self.smoothing = smoothing
        self.standardize = standardize
        self.batch_size = batch_size

    def feature_names(self, n_channels: int | None = None) -> list[str]:
        """Names of the output columns; ``channels: each`` needs the channel count
        (given, or remembered from the last ``transform``)."""
        if self.channels == "sum":
            return list(FEATURES)
        n_channels = n_channels if n_channels is not None else getattr(self, "n_channels_", None)
        if n_channels is None:
            raise ValueError("channels='each' needs n_channels (or a transform first)")
        return [f"{name}_c{k}" for k in range(n_channels) for name in FEATURES]

    def memory_estimate(self, n: int, d: int) -> int:
        """Bytes of measuring ``n`` images of ``d`` values (channels and sides as
        ``memory.image_shape`` guesses): a float64 copy of a batch of ``batch_size``
        images (and their sum over channels), ``IMAGE_COPIES`` float64 images while one
        is measured, and ``TABLE_COPIES`` float64 tables of the features of all ``n``
        images (14 per image, or per channel with ``channels: each``), which are
        standardised over the whole dataset."""
        c, h, w = image_shape(d)
        batch = max(1, min(int(n), int(self.batch_size)))
        summed = batch * h * w if self.channels == "sum" else 0
        features = len(FEATURES) * (c if self.channels == "each" else 1)
        return ((batch * d + summed + IMAGE_COPIES * h * w) * FLOAT64
                + TABLE_COPIES * n * features * FLOAT64 + n * features * FLOAT32)

    def transform(self, images: np.ndarray) -> np.ndarray:
        if self.channels not in ("sum", "each"):
            raise ValueError(f"channels must be 'sum' or 'each', got {self.channels!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.smoothing < 0:
            raise ValueError(f"smoothing must be >= 0, got {self.smoothing}")
        n, c = images.shape[:2]
        self.n_channels_ = c
        names = self.feature_names(c)
        features = np.empty((n, len(names)), dtype=np.float64)
        # Features are tiny (n x ~14 floats), so all are computed before standardising;
        # only the images themselves are read in slices.
        for start in range(0, n, self.batch_size):
            batch = np.asarray(images[start : start + self.batch_size], dtype=np.float64)
            if self.channels == "sum":
                batch = batch.sum(axis=1, keepdims=True)
            for i, item in enumerate(batch):
                features[start + i] = np.concatenate(
                    [image_features(channel, self.threshold, self.smoothing,
                                    self.brightest_island)
                     for channel in item]
                )
        return self._finish(features, names)

    def _finish(self, features: np.ndarray, names: list[str]) -> np.ndarray:
        """Fill undefined values with medians, log statistics, standardise."""
        missing = ~np.isfinite(features)
        self.metrics_ = {"nan_features": float(missing.sum())}
        if missing.any():
            with np.errstate(all="ignore"):
                valid = np.where(missing, np.nan, features)
                counts = (~missing).sum(axis=0)
                # Features never defined get 0: a constant, hence 0 after standardising.
                medians = np.zeros(features.shape[1])
                has = counts > 0
                if has.any():
                    medians[has] = np.nanmedian(valid[:, has], axis=0)
            features = np.where(missing, medians[None, :], features)
        mean = features.mean(axis=0) if len(features) else np.zeros(features.shape[1])
        std = features.std(axis=0) if len(features) else np.zeros(features.shape[1])
        for name, m, s in zip(names, mean, std, strict=True):
            self.metrics_[f"feature_mean.{name}"] = float(m)
            self.metrics_[f"feature_std.{name}"] = float(s)
        if self.standardize:
            # Relative tolerance: a feature constant up to rounding stays 0, not noise.
            scale = np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, np.inf)
            features = (features - mean) / scale
        return features.astype(np.float32)

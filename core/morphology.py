"""Handcrafted morphology measurements of one 2-D image: Hillas parameters, CAS, Gini and M20.

A library of plain numpy functions, each testable on its own. The core needs them: the
cluster cards' descriptors (``cards.describe_image``) are these measurements; the
``morphology`` encoder (``clustergrid.plugins.encoders.morphology``) is a thin wrapper that
applies :func:`image_features` to every image (or channel) of a stack and standardises the
result.

Pixel coordinates: ``x`` is the column index and ``y`` the row index, so ``y`` grows
upward when an image is displayed with its origin at the bottom left (FITS convention,
``imshow(origin="lower")``, the convention of the simulators' ``pixel_grid``). Angles
are measured counter-clockwise from ``+x`` towards ``+y`` in that display; with the
origin at the top left (``imshow``'s default) the same angle appears clockwise.
"""

from __future__ import annotations

import numpy as np

#: The features computed on one 2-D image, in output order.
FEATURES = (
    "hillas_size",
    "hillas_distance",
    "hillas_length",
    "hillas_width",
    "hillas_width_length",
    "hillas_ellipticity",
    "hillas_orientation",
    "hillas_skewness",
    "hillas_kurtosis",
    "concentration",
    "asymmetry",
    "smoothness",
    "gini",
    "m20",
)

#: Second moment of a uniformly lit unit square about its own centre (1/12 per axis).
_PIXEL_MOMENT = 1.0 / 6.0
#: float64 arrays of one image's size the features of one image hold at once: the
#: cleaned image, the pixel coordinates, the offsets from the centroid and the products
#: the moments sum (``hillas``), or the radii, their order and the curve of growth
#: (``concentration``)
IMAGE_COPIES = 12


def clean(image: np.ndarray, threshold: float = 0.0, brightest_island: bool = False
          ) -> np.ndarray:
    """``image`` as float64 with every pixel ``<= threshold`` set to 0.

    With the default threshold only the positive pixels keep their value: the moments
    below are flux-weighted and a negative weight (noise around a subtracted pedestal)
    has no meaning for them. ``brightest_island`` also zeroes everything outside the
    8-connected group of surviving pixels with the most flux: isolated noise pixels
    above the threshold, far from the source, would otherwise dominate the second
    moments (as in the islands cleaning of Cherenkov-telescope analyses).
    """
    image = np.asarray(image, dtype=np.float64)
    kept = image > threshold
    if brightest_island and kept.any():
        from scipy import ndimage

        islands, count = ndimage.label(kept, structure=np.ones((3, 3)))
        flux = ndimage.sum_labels(image, islands, index=np.arange(1, count + 1))
        kept = islands == 1 + int(np.argmax(flux))
    return np.where(kept, image, 0.0)


def _coordinates(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` = (column, row) index of every pixel."""
    rows, cols = np.indices(shape, dtype=np.float64)
    return cols, rows


def centroid(image: np.ndarray) -> tuple[float, float]:
    """Flux-weighted centroid ``(x, y)`` of the positive pixels; NaN when there are none."""
    weights = np.clip(np.asarray(image, dtype=np.float64), 0.0, None)
    total = weights.sum()
    if total <= 0:
        return np.nan, np.nan
    x, y = _coordinates(weights.shape)
    return float((weights * x).sum() / total), float((weights * y).sum() / total)


def hillas(image: np.ndarray) -> dict[str, float]:
    """Hillas parameters from the flux-weighted second moments of the positive pixels.

    - ``size``: total positive flux.
    - ``distance``: centroid distance from the image centre ``((w-1)/2, (h-1)/2)``, px.
    - ``length``, ``width``: square roots of the larger and smaller eigenvalue of the
      flux-weighted covariance (the rms extent along and across the major axis), px.
    - ``width_length`` = width / length, ``ellipticity`` = 1 - width / length.
    - ``orientation``: angle of the major axis in radians, in (-pi/2, pi/2],
      counter-clockwise from ``+x`` (column) towards ``+y`` (row): an ellipse along
      the diagonal of increasing row and column has +pi/4. 0 for a round image.
    - ``skewness``, ``kurtosis``: third and fourth standardised moments of the light
      along the major axis, whose direction is the one of ``orientation`` (so a
      positive skewness means a longer tail towards ``+x`` for orientation 0); the
      kurtosis is not the excess (3 for a Gaussian).

    All are NaN for an image without positive pixels, except ``size`` (0); ``length``
    0 (a single pixel) makes the ratios and the standardised moments NaN.
    """
    weights = np.clip(np.asarray(image, dtype=np.float64), 0.0, None)
    total = float(weights.sum())
    nan = float("nan")
    out = {name: nan for name in ("distance", "length", "width", "width_length",
                                  "ellipticity", "orientation", "skewness", "kurtosis")}
    out["size"] = total
    if total <= 0:
        return out
    h, w = weights.shape
    x, y = _coordinates(weights.shape)
    cx, cy = (weights * x).sum() / total, (weights * y).sum() / total
    dx, dy = x - cx, y - cy
    sxx = (weights * dx * dx).sum() / total
    syy = (weights * dy * dy).sum() / total
    sxy = (weights * dx * dy).sum() / total
    half_trace, half_diff = (sxx + syy) / 2, (sxx - syy) / 2
    root = np.hypot(half_diff, sxy)
    major, minor = half_trace + root, max(half_trace - root, 0.0)
    # The major axis of a symmetric 2x2 covariance is at half the angle of
    # (sxx - syy, 2 sxy); atan2 lies in (-pi, pi], so this lies in [-pi/2, pi/2].
    angle = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    if angle <= -np.pi / 2:
        angle += np.pi
    out["distance"] = float(np.hypot(cx - (w - 1) / 2, cy - (h - 1) / 2))
    out["length"] = float(np.sqrt(major))
    out["width"] = float(np.sqrt(minor))
    out["orientation"] = float(angle)
    if major > 0:
        ratio = np.sqrt(minor / major)
        out["width_length"] = float(ratio)
        out["ellipticity"] = float(1.0 - ratio)
        u = dx * np.cos(angle) + dy * np.sin(angle)
        out["skewness"] = float((weights * u**3).sum() / total / major**1.5)
        out["kurtosis"] = float((weights * u**4).sum() / total / major**2)
    return out


def concentration(image: np.ndarray) -> float:
    """CAS concentration ``5 log10(r80 / r20)`` of the positive pixels.

    ``r20`` and ``r80`` enclose 20% and 80% of the total positive flux on the curve of
    growth around the flux-weighted centroid: pixels sorted by the distance of their
    centre, the radius interpolated linearly in cumulative flux. The total is the flux
    of the whole image rather than within 1.5 Petrosian radii (Conselice 2003), which
    is only a difference for images with a lot of sky. Radii are floored at half a
    pixel (the resolution limit), so an unresolved source gives 0, not infinity.
    Analytically a Gaussian gives 2.14, an exponential disk 2.7 and a de Vaucouleurs
    profile 5.2; counting each pixel's whole flux at its centre's distance reads a
    Gaussian of sigma 6 px as 2.24 and a truncated de Vaucouleurs (r_e 10 px) as 5.0.
    """
    weights = np.clip(np.asarray(image, dtype=np.float64), 0.0, None)
    positive = weights > 0
    if not positive.any():
        return float("nan")
    cx, cy = centroid(weights)
    x, y = _coordinates(weights.shape)
    radius = np.hypot(x[positive] - cx, y[positive] - cy)
    order = np.argsort(radius, kind="stable")
    radius, flux = radius[order], weights[positive][order]
    growth = np.cumsum(flux) / flux.sum()
    # (0, 0) starts the curve: no flux within radius 0.
    r20, r80 = np.interp([0.2, 0.8], np.r_[0.0, growth], np.r_[0.0, radius])
    return float(5.0 * np.log10(max(r80, 0.5) / max(r20, 0.5)))


def asymmetry(image: np.ndarray) -> float:
    """CAS asymmetry ``sum |I - I_180| / sum |I|`` (0 symmetric, up to 2).

    ``I_180`` is the image rotated by 180 degrees about the flux-weighted centroid of
    its positive pixels (bilinear interpolation, zero outside the image); the image
    should be cleaned first. Unlike Conselice (2000) there is no search for the centre
    minimising the asymmetry and no subtraction of a background asymmetry, so noise
    left in the image raises the value.
    """
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float64)
    norm = np.abs(image).sum()
    cx, cy = centroid(image)
    if norm <= 0 or not np.isfinite(cx):
        return float("nan")
    x, y = _coordinates(image.shape)
    rotated = ndimage.map_coordinates(image, [2 * cy - y, 2 * cx - x], order=1, cval=0.0)
    return float(np.abs(image - rotated).sum() / norm)


def smoothness(image: np.ndarray, width: int) -> float:
    """CAS smoothness (clumpiness) ``sum max(I - I_s, 0) / sum I``.

    ``I_s`` is ``image`` smoothed by a ``width`` x ``width`` boxcar (zero beyond the
    edges). Conselice (2003) scales the boxcar to a quarter of the Petrosian radius and
    masks the centre; here the caller picks a fixed width (the ``morphology`` encoder's
    ``smoothing``) and the whole image counts, so the value measures structure at that
    one pixel scale.
    """
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float64)
    total = image.sum()
    if total <= 0:
        return float("nan")
    smoothed = ndimage.uniform_filter(image, size=width, mode="constant", cval=0.0)
    return float(np.clip(image - smoothed, 0.0, None).sum() / total)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of ``|values|`` (Lotz, Primack & Madau 2004, eq. 3).

    ``G = sum_i (2i - n - 1) |X_i| / (mean|X| n (n - 1))`` with ``|X_i|`` sorted
    ascending, ``i = 1..n``: 0 when every value is equal, exactly 1 when a single value
    holds everything. NaN for fewer than two values or an all-zero input.
    """
    values = np.sort(np.abs(np.asarray(values, dtype=np.float64)).ravel())
    n = values.size
    mean = values.mean() if n else 0.0
    if n < 2 or mean <= 0:
        return float("nan")
    rank = np.arange(1, n + 1)
    return float(((2 * rank - n - 1) * values).sum() / (mean * n * (n - 1)))


def m20(image: np.ndarray) -> float:
    """M20 (Lotz et al. 2004): ``log10(sum_20 M_i / M_tot)`` of the positive pixels.

    ``M_i = f_i r_i^2`` about the flux-weighted centroid (Lotz take the centre that
    minimises ``M_tot``, which for these flux-weighted moments is the centroid);
    ``sum_20`` runs over the brightest pixels down to the one at which their cumulative
    flux reaches 20% of the total (that pixel and any pixel as bright included, as in
    statmorph). Each pixel counts as a uniformly lit unit square, adding 1/6 px^2 to
    its ``r_i^2``: otherwise a source whose brightest pixel holds 20% of the flux at
    the centroid would give log10(0). The term is negligible for sources a few pixels
    wide: a Gaussian gives -1.67 whatever its width (-1.64 measured at sigma 6 px), an
    exponential disk -2.0 (-1.9 at scale length 5 px).
    """
    weights = np.clip(np.asarray(image, dtype=np.float64), 0.0, None)
    total = weights.sum()
    if total <= 0:
        return float("nan")
    cx, cy = centroid(weights)
    x, y = _coordinates(weights.shape)
    moment = weights * ((x - cx) ** 2 + (y - cy) ** 2 + _PIXEL_MOMENT)
    flux = weights.ravel()
    order = np.argsort(flux, kind="stable")[::-1]
    reached = np.cumsum(flux[order]) >= 0.2 * total
    cutoff = flux[order][np.argmax(reached)]
    bright = weights >= cutoff
    return float(np.log10(moment[bright].sum() / moment.sum()))


def image_features(image: np.ndarray, threshold: float = 0.0, smoothing: float = 0.05,
                   brightest_island: bool = False) -> np.ndarray:
    """All of ``FEATURES`` for one 2-D image, first cleaned by :func:`clean`.

    The smoothness boxcar is ``smoothing`` times the smaller image side, rounded to an
    odd number of pixels, at least 3.
    """
    cleaned = clean(image, threshold, brightest_island)
    width = max(3, round(smoothing * min(cleaned.shape)) | 1)
    out = {f"hillas_{key}": value for key, value in hillas(cleaned).items()}
    out["concentration"] = concentration(cleaned)
    out["asymmetry"] = asymmetry(cleaned)
    out["smoothness"] = smoothness(cleaned, width)
    # Gini over every pixel of the cleaned image: the pixels cleaned to 0 count as
    # empty sky, so a lone bright pixel gives 1 and a flat image 0.
    out["gini"] = gini(cleaned)
    out["m20"] = m20(cleaned)
    return np.array([out[name] for name in FEATURES], dtype=np.float64)

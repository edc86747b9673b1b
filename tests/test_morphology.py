"""The morphology measurements (``clustergrid.morphology``): each feature on images of
known shape; then the ``morphology`` encoder that wraps them."""

from __future__ import annotations

import numpy as np
import pytest

from clustergrid import morphology as m
from clustergrid.morphology import FEATURES
from clustergrid.plugins.datasets.sim_cherenkov import SimCherenkov
from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies
from clustergrid.plugins.encoders.morphology import Morphology


def grid(size: int, cx: float | None = None, cy: float | None = None):
    """(dx, dy) of every pixel from (cx, cy): x the column, y the row index."""
    y, x = np.indices((size, size), dtype=np.float64)
    cx = (size - 1) / 2 if cx is None else cx
    cy = (size - 1) / 2 if cy is None else cy
    return x - cx, y - cy


def gaussian(size: int, sigma_major: float, sigma_minor: float, angle: float = 0.0,
             cx: float | None = None, cy: float | None = None) -> np.ndarray:
    """An elliptical Gaussian with its major axis at ``angle`` (from +x towards +y)."""
    dx, dy = grid(size, cx, cy)
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    return np.exp(-0.5 * ((u / sigma_major) ** 2 + (v / sigma_minor) ** 2))


@pytest.mark.parametrize("degrees", [0.0, 30.0, -60.0, 90.0])
def test_hillas_axis_ratio_and_orientation_of_an_elliptical_gaussian(degrees):
    angle = np.radians(degrees)
    h = m.hillas(gaussian(96, 6.0, 2.0, angle))
    assert h["width_length"] == pytest.approx(1 / 3, rel=0.02)
    assert h["ellipticity"] == pytest.approx(2 / 3, rel=0.02)
    assert h["length"] == pytest.approx(6.0, rel=0.02)
    assert h["width"] == pytest.approx(2.0, rel=0.02)
    assert abs(h["orientation"] - angle) < 0.02
    assert h["distance"] == pytest.approx(0.0, abs=1e-6)
    assert h["skewness"] == pytest.approx(0.0, abs=1e-3)
    assert h["kurtosis"] == pytest.approx(3.0, rel=0.02)


def test_orientation_convention_and_range():
    # A line of pixels along increasing row and column is +45 degrees...
    diagonal = np.eye(32)
    assert m.hillas(diagonal)["orientation"] == pytest.approx(np.pi / 4)
    # ...increasing column with decreasing row is -45 degrees...
    assert m.hillas(np.fliplr(diagonal))["orientation"] == pytest.approx(-np.pi / 4)
    # ...and a vertical line is +pi/2, never -pi/2: the range is (-pi/2, pi/2].
    vertical = np.zeros((32, 32))
    vertical[:, 10] = 1.0
    assert m.hillas(vertical)["orientation"] == pytest.approx(np.pi / 2)


def test_skewness_sign_follows_the_major_axis_direction():
    dx, dy = grid(64)
    # Longer tail towards +x: sigma 8 on the right, 3 on the left, 2 across.
    tail_right = np.exp(-0.5 * ((dx / np.where(dx > 0, 8.0, 3.0)) ** 2 + (dy / 2.0) ** 2))
    assert m.hillas(tail_right)["skewness"] > 0.3
    assert m.hillas(tail_right[:, ::-1])["skewness"] < -0.3


def test_distance_from_the_image_centre():
    h = m.hillas(gaussian(64, 3.0, 3.0, cx=31.5 + 6.0, cy=31.5 - 8.0))
    assert h["distance"] == pytest.approx(10.0, rel=1e-3)


def test_gini_extremes():
    assert m.gini(np.full((32, 32), 3.0)) == pytest.approx(0.0, abs=0.01)
    point = np.zeros((32, 32))
    point[5, 7] = 10.0
    assert m.gini(point) == pytest.approx(1.0, abs=0.01)
    # Between the two for a smooth source, and the sign of values does not matter.
    g = m.gini(gaussian(32, 4.0, 4.0))
    assert 0.3 < g < 0.9
    assert m.gini(-gaussian(32, 4.0, 4.0)) == pytest.approx(g)
    assert np.isnan(m.gini(np.zeros((4, 4))))


def exponential_disk(size: int, scale: float) -> np.ndarray:
    dx, dy = grid(size)
    return np.exp(-np.hypot(dx, dy) / scale)


def de_vaucouleurs(size: int, r_e: float) -> np.ndarray:
    dx, dy = grid(size)
    return np.exp(-7.669 * ((np.hypot(dx, dy) / r_e) ** 0.25 - 1))


def test_m20_of_a_nucleus_is_far_more_negative_than_of_an_extended_disk():
    disk = exponential_disk(64, 8.0)
    nucleated = 0.02 * disk + gaussian(64, 1.0, 1.0)
    assert m.m20(nucleated) < m.m20(disk) - 1.0
    # Scale-free values: -1.67 for any Gaussian, about -2 for an exponential disk.
    assert m.m20(gaussian(96, 6.0, 6.0)) == pytest.approx(-1.67, abs=0.06)
    assert m.m20(exponential_disk(128, 5.0)) == pytest.approx(-2.0, abs=0.15)
    # Bright off-centre clumps (a merger) push M20 up towards 0.
    clumps = gaussian(64, 2.0, 2.0, cx=16, cy=20) + gaussian(64, 2.0, 2.0, cx=44, cy=40)
    assert m.m20(clumps) > -1.0 > m.m20(disk)


def test_concentration_gaussian_versus_de_vaucouleurs():
    c_gauss = m.concentration(gaussian(96, 6.0, 6.0))
    c_dev = m.concentration(de_vaucouleurs(128, 10.0))
    assert c_gauss == pytest.approx(2.14, abs=0.15)
    assert c_dev > c_gauss + 2.0
    assert c_gauss < m.concentration(exponential_disk(128, 5.0)) < c_dev


def test_asymmetry_of_symmetric_and_lopsided_images():
    assert m.asymmetry(gaussian(64, 6.0, 3.0, np.radians(20))) == pytest.approx(0.0, abs=0.01)
    # Off-grid centroid: bilinear interpolation of the rotated image stays close to 0.
    assert m.asymmetry(gaussian(64, 5.0, 5.0, cx=30.3, cy=33.7)) < 0.02
    lopsided = (gaussian(64, 3.0, 3.0, cx=20, cy=30)
                + 0.4 * gaussian(64, 2.0, 2.0, cx=42, cy=38))
    assert m.asymmetry(lopsided) > 0.2


def test_smoothness_of_smooth_and_clumpy_images():
    smooth = gaussian(64, 10.0, 10.0)
    rng = np.random.default_rng(0)
    clumpy = smooth.copy()
    for _ in range(20):
        cx, cy = rng.uniform(15, 48, size=2)
        clumpy += 0.5 * gaussian(64, 0.7, 0.7, cx=cx, cy=cy)
    assert m.smoothness(smooth, 3) < 0.01
    assert m.smoothness(clumpy, 3) > 5 * m.smoothness(smooth, 3)


def test_clean_threshold_and_brightest_island():
    image = np.zeros((16, 16))
    image[2:5, 2:5] = 10.0  # the source
    image[12, 12] = 8.0  # an isolated noise pixel
    image[8, 8] = 3.0  # below threshold
    cleaned = m.clean(image, 5.0)
    assert cleaned[8, 8] == 0 and cleaned[12, 12] == 8.0
    island = m.clean(image, 5.0, brightest_island=True)
    assert island[12, 12] == 0 and island[3, 3] == 10.0


def cherenkov(n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    data = SimCherenkov(n_samples=n, size=64, seed=0)
    return data.read(0, n), data.labels()


def test_gammas_are_narrower_than_hadrons():
    images, labels = cherenkov()
    gamma, hadron = SimCherenkov.CLASSES.index("gamma"), SimCherenkov.CLASSES.index("hadron")
    column = FEATURES.index("hillas_width_length")
    plain = Morphology(threshold=5.0, standardize=False).transform(images)[:, column]
    assert plain[labels == gamma].mean() < plain[labels == hadron].mean()
    # Dropping isolated noise pixels makes the difference large.
    encoder = Morphology(threshold=5.0, brightest_island=True, standardize=False)
    islands = encoder.transform(images)[:, column]
    assert islands[labels == gamma].mean() < islands[labels == hadron].mean() - 0.1


def test_transform_shape_standardisation_and_metrics():
    images, _ = cherenkov(60)
    encoder = Morphology(threshold=5.0)
    X = encoder.fit(images).transform(images)
    names = encoder.feature_names()
    assert names == list(FEATURES) and "gini" in names and "hillas_length" in names
    assert X.shape == (60, len(names)) and X.dtype == np.float32
    assert np.isfinite(X).all()
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(X.std(axis=0), 1.0, rtol=1e-3)
    raw = Morphology(threshold=5.0, standardize=False).transform(images)
    for i, name in enumerate(names):
        assert encoder.metrics_[f"feature_mean.{name}"] == pytest.approx(raw[:, i].mean(),
                                                                        rel=1e-4)
        assert encoder.metrics_[f"feature_std.{name}"] == pytest.approx(raw[:, i].std(),
                                                                       rel=1e-4)
    assert encoder.metrics_["nan_features"] == 0


def test_streaming_gives_the_same_output():
    images, _ = cherenkov(30)
    small = Morphology(threshold=5.0, batch_size=7).transform(images)
    large = Morphology(threshold=5.0, batch_size=1000).transform(images)
    np.testing.assert_array_equal(small, large)


def test_each_channel_and_undefined_features():
    images = SimGalaxies(n_samples=12, seed=0).read(0, 12)
    encoder = Morphology(channels="each")
    X = encoder.transform(images)
    c = images.shape[1]
    names = encoder.feature_names()
    assert len(names) == c * len(FEATURES) and X.shape == (12, len(names))
    assert names[0] == "hillas_size_c0" and names[-1] == f"m20_c{c - 1}"
    assert Morphology(channels="each").feature_names(2)[len(FEATURES)] == "hillas_size_c1"
    with pytest.raises(ValueError):
        Morphology(channels="each").feature_names()

    # An empty image: every feature but the size is undefined and gets the median.
    images = np.stack([gaussian(32, 4.0, 2.0, a)[None] for a in (0.0, 0.5, 1.0)]
                      + [np.zeros((1, 32, 32))]).astype(np.float32)
    encoder = Morphology(standardize=False)
    X = encoder.transform(images)
    assert np.isfinite(X).all()
    assert encoder.metrics_["nan_features"] == len(FEATURES) - 1
    gini = FEATURES.index("gini")
    assert X[3, gini] == pytest.approx(np.median(X[:3, gini]))
    # Constant features (the Gaussians are all centred: distance 0) stay 0 standardised.
    Z = Morphology().transform(images[:3])
    assert np.isfinite(Z).all()
    assert (Z[:, FEATURES.index("hillas_distance")] == 0).all()

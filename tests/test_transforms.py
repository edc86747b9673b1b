"""Image transforms against direct astropy / scikit-image / scipy computations.

Every transform works image by image, so each is also checked for batch independence.
"""

from __future__ import annotations

import typing

import numpy as np
import pytest
from astropy import visualization as vis
from pydantic import TypeAdapter
from skimage.exposure import equalize_adapthist
from skimage.filters import threshold_otsu
from skimage.transform import resize as sk_resize

from clustergrid.plugins.support.imageops import rescale_unit
from clustergrid.plugins.transforms.channels import Channels
from clustergrid.plugins.transforms.clahe import Clahe
from clustergrid.plugins.transforms.crop import Crop
from clustergrid.plugins.transforms.mask import Mask
from clustergrid.plugins.transforms.nan_fill import NanFill
from clustergrid.plugins.transforms.resize import Resize
from clustergrid.plugins.transforms.stretch import Stretch
from clustergrid.plugins.transforms.tailcuts import Tailcuts
from clustergrid.plugins.transforms.to_rgb import ToRGB

TRANSFORMS = (Stretch, Clahe, Channels, Resize, Crop, ToRGB, NanFill, Mask, Tailcuts)

#: One working configuration per transform, used by the shape and batch tests.
CONFIGS = [
    Stretch(stretch="asinh", interval="percentile", per_channel=True),
    Stretch(stretch="log", interval="zscale"),
    Clahe(kernel_size=8),
    Channels(select=[2, 0]),
    Channels(mode="mean"),
    Resize(size=[20, 12]),
    Crop(size=16),
    NanFill(method="median"),
    Mask(dilate=1),
    Tailcuts(picture=2.0, boundary=1.0),
]


@pytest.fixture
def images():
    """Four 3-channel 32x32 images: a bright blob on a noisy, positive background."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    blob = np.exp(-((yy - 14) ** 2 + (xx - 18) ** 2) / 20.0)
    scale = rng.uniform(1, 50, size=(4, 3, 1, 1))
    noise = rng.normal(0, 0.3, size=(4, 3, 32, 32))
    return (scale * blob + noise + 1.0).astype(np.float32)


def with_nan(images):
    images = images.copy()
    images[1, 0, 3, 5] = np.nan
    return images


@pytest.mark.parametrize("cls", TRANSFORMS, ids=lambda c: c.name)
def test_contract(cls):
    assert cls.summary()
    assert not cls.is_stochastic()
    component = cls()
    assert cls(**component.get_params()).get_params() == component.get_params()
    # Experiment files validate parameters against these hints: they must resolve.
    hints = typing.get_type_hints(cls.__init__)
    assert set(component.get_params()) <= set(hints)


@pytest.mark.parametrize("component", CONFIGS, ids=repr)
def test_batch_independence_and_dtype(component, images):
    out = component.transform(images)
    assert out.dtype == np.float32 and out.ndim == 4 and len(out) == len(images)
    singles = np.concatenate([component.transform(images[i : i + 1]) for i in range(4)])
    np.testing.assert_array_equal(out, singles)


def test_list_parameters_arrive_as_tuples(images):
    """The experiment parser freezes lists into tuples; list parameters accept both."""
    size = TypeAdapter(typing.get_type_hints(Resize.__init__)["size"]).validate_python([20, 12])
    assert Resize(size=tuple(size)).transform(images).shape == (4, 3, 20, 12)
    assert Crop(size=(8, 10)).transform(images).shape == (4, 3, 8, 10)
    assert Channels(select=(1,)).transform(images).shape == (4, 1, 32, 32)
    assert Clahe(kernel_size=(8, 4)).transform(images).shape == images.shape


# --- stretch ---------------------------------------------------------------------------

ASTROPY_STRETCHES = {
    "asinh": vis.AsinhStretch(0.1),
    "log": vis.LogStretch(1000.0),
    "sqrt": vis.SqrtStretch(),
    "linear": vis.LinearStretch(),
}
ASTROPY_INTERVALS = {
    "minmax": vis.MinMaxInterval(),
    "percentile": vis.PercentileInterval(99.5),
    "zscale": vis.ZScaleInterval(),
}


@pytest.mark.parametrize("interval", sorted(ASTROPY_INTERVALS))
@pytest.mark.parametrize("stretch", sorted(ASTROPY_STRETCHES))
@pytest.mark.parametrize("per_channel", [False, True])
def test_stretch_matches_astropy(images, stretch, interval, per_channel):
    out = Stretch(stretch=stretch, interval=interval, per_channel=per_channel).transform(images)
    assert out.shape == images.shape and out.dtype == np.float32
    direct = ASTROPY_STRETCHES[stretch]
    limits = ASTROPY_INTERVALS[interval]
    for i, image in enumerate(images.astype(np.float64)):
        units = (
            [(slice(j, j + 1), image[j : j + 1]) for j in range(3)]
            if per_channel
            else [(slice(None), image)]
        )
        for where, unit in units:
            np.testing.assert_allclose(out[i, where], direct(limits(unit)), atol=1e-6)


def test_stretch_per_channel_differs(images):
    """Channels of very different brightness: per-image scaling keeps their ratio."""
    whole = Stretch(stretch="linear").transform(images)
    per = Stretch(stretch="linear", per_channel=True).transform(images)
    assert np.allclose(per.max(axis=(2, 3)), 1.0)
    assert not np.allclose(whole.max(axis=(2, 3)), 1.0)


def test_stretch_parameters(images):
    out = Stretch(stretch="asinh", a=0.5, interval="percentile", percentile=90).transform(images)
    expected = vis.AsinhStretch(0.5)(vis.PercentileInterval(90)(images[0].astype(np.float64)))
    np.testing.assert_allclose(out[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="stretch: percentile must be in"):
        Stretch(interval="percentile", percentile=0).transform(images)
    with pytest.raises(ValueError, match="stretch: a must be > 0"):
        Stretch(a=-1.0).transform(images)
    with pytest.raises(ValueError, match="stretch: a is only used by asinh and log"):
        Stretch(stretch="sqrt", a=2.0).transform(images)
    with pytest.raises(ValueError, match="stretch: interval must be one of"):
        Stretch(interval="bogus").transform(images)


def test_stretch_nan_stays_nan_and_constant_is_zero(images):
    images = with_nan(images)
    images[2] = 5.0
    images[3] = np.nan
    out = Stretch(stretch="sqrt").transform(images)
    # NaN stays NaN; the limits ignore it, so the rest of the image is as without it.
    assert np.isnan(out[1, 0, 3, 5]) and np.isnan(out[1]).sum() == 1
    np.testing.assert_allclose(
        out[1], vis.SqrtStretch()(vis.MinMaxInterval()(images[1].astype(np.float64))), atol=1e-6
    )
    np.testing.assert_array_equal(out[2], 0.0)
    assert np.isnan(out[3]).all()
    # nan_fill before stretch removes it.
    assert np.isfinite(Stretch().transform(NanFill().transform(images))).all()


# --- clahe -----------------------------------------------------------------------------


@pytest.mark.parametrize(("clip_limit", "kernel_size"), [(0.01, None), (0.05, 8), (0.02, [8, 16])])
def test_clahe_matches_skimage(images, clip_limit, kernel_size):
    out = Clahe(clip_limit=clip_limit, kernel_size=kernel_size).transform(images)
    assert out.shape == images.shape and out.dtype == np.float32
    for i, image in enumerate(images):
        unit = (image - image.min()) / (image.max() - image.min())
        for j in range(3):
            expected = equalize_adapthist(unit[j], kernel_size=kernel_size, clip_limit=clip_limit)
            np.testing.assert_allclose(out[i, j], expected, atol=1e-5)


def test_clahe_nan_raises_and_nan_fill_fixes_it(images):
    images = with_nan(images)
    with pytest.raises(ValueError, match="clahe: images contain NaN or inf; put a nan_fill"):
        Clahe().transform(images)
    assert np.isfinite(Clahe().transform(NanFill().transform(images))).all()


def test_clahe_parameters(images):
    with pytest.raises(ValueError, match="clahe: clip_limit must be in"):
        Clahe(clip_limit=0).transform(images)
    with pytest.raises(ValueError, match="clahe: kernel_size must be"):
        Clahe(kernel_size=[4, 4, 4]).transform(images)


# --- channels / to_rgb -----------------------------------------------------------------


def test_channels(images):
    np.testing.assert_array_equal(Channels(select=[2, 0]).transform(images), images[:, [2, 0]])
    mean = Channels(mode="mean").transform(images)
    assert mean.shape == (4, 1, 32, 32)
    np.testing.assert_allclose(mean[:, 0], images.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(
        Channels(select=[0, 1], mode="mean").transform(images)[:, 0],
        images[:, :2].mean(axis=1),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match=r"index 3 is out of range for images with 3 channel"):
        Channels(select=[0, 3]).transform(images)
    with pytest.raises(ValueError, match="channels: select index -1 is out of range"):
        Channels(select=[-1]).transform(images)
    with pytest.raises(ValueError, match="channels: mode 'select' needs channel indices"):
        Channels().transform(images)


def test_to_rgb(images):
    gray = images[:, :1]
    rgb = ToRGB().transform(gray)
    assert rgb.shape == (4, 3, 32, 32)
    for j in range(3):
        np.testing.assert_array_equal(rgb[:, j], gray[:, 0])
    np.testing.assert_array_equal(ToRGB().transform(images), images)
    with pytest.raises(ValueError, match=r"to_rgb: images have 2 channels.*channels transform"):
        ToRGB().transform(images[:, :2])


# --- resize / crop ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, [48, 20], 32])
def test_resize_matches_skimage(images, size):
    out = Resize(size=size).transform(images)
    shape = (size, size) if isinstance(size, int) else tuple(size)
    assert out.shape == (4, 3, *shape) and out.dtype == np.float32
    shrinking = shape[0] < 32 or shape[1] < 32
    for i in range(4):
        for j in range(3):
            expected = sk_resize(
                images[i, j], shape, order=1, anti_aliasing=shrinking, preserve_range=True
            )
            np.testing.assert_allclose(out[i, j], expected, rtol=1e-6)
    # preserve_range: values keep their units (no rescaling to [0, 1]).
    assert out.max() > 10
    if shape == (32, 32):
        np.testing.assert_allclose(out, images, rtol=1e-6)


def test_resize_and_crop_errors(images):
    with pytest.raises(ValueError, match=r"resize: size must be a positive int or a list"):
        Resize(size=0).transform(images)
    with pytest.raises(ValueError, match=r"crop: size must be a positive int"):
        Crop(size=[1, 2, 3]).transform(images)
    with pytest.raises(ValueError, match=r"crop: size 40x8 is larger than the images \(32x32\)"):
        Crop(size=[40, 8]).transform(images)


def test_crop_is_centred():
    images = np.arange(2 * 1 * 6 * 7, dtype=np.float32).reshape(2, 1, 6, 7)
    out = Crop(size=[2, 3]).transform(images)
    np.testing.assert_array_equal(out, images[:, :, 2:4, 2:5])
    np.testing.assert_array_equal(Crop(size=[6, 7]).transform(images), images)


# --- nan_fill --------------------------------------------------------------------------


def test_nan_fill(images):
    images = with_nan(images)
    images[1, 2, 0, 0] = np.inf
    images[2] = np.nan
    value = NanFill(value=-1.0).transform(images)
    assert value[1, 0, 3, 5] == -1.0 and value[1, 2, 0, 0] == -1.0
    np.testing.assert_array_equal(value[2], -1.0)
    np.testing.assert_array_equal(value[0], images[0])
    median = NanFill(method="median", value=-1.0).transform(images)
    finite = images[1][np.isfinite(images[1])]
    assert median[1, 0, 3, 5] == pytest.approx(np.median(finite))
    assert median[1, 2, 0, 0] == pytest.approx(np.median(finite))
    np.testing.assert_array_equal(median[2], -1.0)  # no finite pixel: falls back to value
    assert np.isfinite(median).all()
    with pytest.raises(ValueError, match="nan_fill: method must be"):
        NanFill(method="mean").transform(images)
    with pytest.raises(ValueError, match="nan_fill: value must be a finite number"):
        NanFill(value=float("nan")).transform(images)


# --- mask ------------------------------------------------------------------------------


def test_mask_otsu_largest_component():
    image = np.zeros((1, 2, 12, 12), dtype=np.float32)
    image[:, :, 2:6, 2:6] = 10.0  # largest region (16 pixels)
    image[:, :, 8:10, 8:10] = 10.0  # smaller region (4 pixels), dropped
    image[:, 1] += 1.0
    mean = image[0].mean(axis=0)
    assert threshold_otsu(mean) < 10.5  # both squares are above Otsu's threshold
    out = Mask().transform(image)
    expected = np.zeros((12, 12), dtype=bool)
    expected[2:6, 2:6] = True
    np.testing.assert_array_equal(out, np.where(expected, image, 0.0))
    grown = Mask(dilate=1).transform(image)
    expected[1:7, 1:7] = True
    np.testing.assert_array_equal(grown, np.where(expected, image, 0.0))


def test_mask_matches_otsu_on_blobs(images):
    out = Mask().transform(images)
    from scipy import ndimage

    for i, image in enumerate(images):
        mean = image.mean(axis=0, dtype=np.float64)
        labels, _ = ndimage.label(mean > threshold_otsu(mean), structure=np.ones((3, 3)))
        largest = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
        np.testing.assert_array_equal(out[i], np.where(largest, image, 0.0))
        assert largest[14, 18] and not largest[0, 0]


def test_mask_threshold_constant_and_nan(images):
    image = np.zeros((1, 1, 8, 8), dtype=np.float32)
    image[0, 0, 1:3, 1:3] = 2.0
    image[0, 0, 5:8, 5:8] = 1.0  # larger, but below the explicit threshold
    out = Mask(threshold=1.5).transform(image)
    np.testing.assert_array_equal(out[0, 0] != 0, image[0, 0] == 2.0)
    constant = np.full((2, 3, 8, 8), 4.0, dtype=np.float32)
    np.testing.assert_array_equal(Mask().transform(constant), 0.0)
    # NaN pixels are background and come out as 0.
    out = Mask().transform(with_nan(images))
    assert np.isfinite(out).all()
    with pytest.raises(ValueError, match="mask: dilate must be an int >= 0"):
        Mask(dilate=-1).transform(images)


# --- tailcuts --------------------------------------------------------------------------

TAILCUTS_IMAGE = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 8, 6, 0, 0, 0, 0, 0],
        [0, 0, 0, 5, 0, 0, 0, 9],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 6, 0, 0, 9, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 10, 8, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
    ],
    dtype=np.float32,
)


def test_tailcuts_handmade_image():
    image = TAILCUTS_IMAGE[None, None]
    # Picture >= 7: (1,1) 8, (2,7) 9, (4,4) 9, (6,5) 10, (6,6) 8. Boundary >= 5.
    # (1,1) keeps its boundary neighbour (1,2)=6; (2,3)=5 touches no picture pixel
    # (only (1,2), a boundary pixel); (4,1)=6 is alone; (2,7) and (4,4) have no neighbour
    # >= 5, so they are isolated picture pixels and dropped; (6,5)-(6,6) keep each other.
    expected = np.zeros((8, 8), dtype=bool)
    expected[1, 1] = expected[1, 2] = expected[6, 5] = expected[6, 6] = True
    out = Tailcuts(picture=7, boundary=5).transform(image)
    np.testing.assert_array_equal(out[0, 0], np.where(expected, TAILCUTS_IMAGE, 0))

    # keep_isolated keeps every picture pixel.
    isolated = expected.copy()
    isolated[2, 7] = isolated[4, 4] = True
    out = Tailcuts(picture=7, boundary=5, keep_isolated=True).transform(image)
    np.testing.assert_array_equal(out[0, 0] != 0, isolated)

    # min_neighbours=1: only the (6,5)-(6,6) pair has a picture neighbour; (1,1) is no
    # longer a picture pixel, so its boundary neighbour goes too.
    pair = np.zeros((8, 8), dtype=bool)
    pair[6, 5] = pair[6, 6] = True
    out = Tailcuts(picture=7, boundary=5, min_neighbours=1).transform(image)
    np.testing.assert_array_equal(out[0, 0] != 0, pair)


def test_tailcuts_diagonal_is_a_neighbour_and_channels_are_separate():
    image = np.zeros((1, 2, 5, 5), dtype=np.float32)
    image[0, 0, 1, 1], image[0, 0, 2, 2] = 10, 6  # diagonal: kept with 8-connectivity
    image[0, 1, 3, 3] = 10  # isolated in its own channel, even though channel 0 is bright
    image[0, 1, 2, 2] = np.nan
    out = Tailcuts().transform(image)
    np.testing.assert_array_equal(out[0, 0], image[0, 0])
    np.testing.assert_array_equal(out[0, 1], 0.0)


def test_tailcuts_errors(images):
    with pytest.raises(ValueError, match=r"tailcuts: boundary \(8.0\) must not exceed picture"):
        Tailcuts(picture=7.0, boundary=8.0).transform(images)
    with pytest.raises(ValueError, match=r"tailcuts: min_neighbours must be in 0\.\.8"):
        Tailcuts(min_neighbours=9).transform(images)


def test_rescale_unit():
    values = np.array([2.0, np.nan, 4.0, 3.0])
    np.testing.assert_array_equal(rescale_unit(values)[[0, 2, 3]], [0.0, 1.0, 0.5])
    assert np.isnan(rescale_unit(values)[1])
    np.testing.assert_array_equal(rescale_unit(np.full(3, 7.0)), 0.0)

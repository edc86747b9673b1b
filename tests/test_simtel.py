"""The simtel dataset on the sim_telarray files of the shared data folder (ctapipe needed),
and its behaviour without ctapipe (always run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from clustergrid.plugins.datasets.simtel import SimtelFiles, primary_name

IACT = Path(__file__).parents[2] / "shared" / "data" / "iact"
MUONS = IACT / "lst_muons.simtel.zst"
GAMMAS = [IACT / "gamma_prod6_tel_event_header_v4.simtel.zst",
          IACT / "history_meta_75.simtel.zst"]

needs_data = [
    pytest.mark.skipif(importlib.util.find_spec("ctapipe") is None,
                       reason="ctapipe is not installed (pip install 'clustergrid[cta]')"),
    pytest.mark.skipif(not MUONS.is_file(),
                       reason=f"shared IACT data folder absent: {IACT}"),
]


@pytest.fixture(scope="module")
def muons() -> SimtelFiles:
    """The LST muon file, read once for the tests that share it."""
    return SimtelFiles(path=str(MUONS), size=64)


def ring_contrast(image: np.ndarray) -> float:
    """Mean flux on the ring minus mean flux near the centre, over the ring's mean flux.

    The centre is the light-weighted centroid; the ring is the cells within
    ``0.15 R`` of the light-weighted median distance ``R`` from it; the centre disk the
    cells closer than ``0.3 R`` (each at least about a cell wide). A ring (or an arc) has
    its light at ``R`` and little at the centroid: positive. A filled blob peaks at its
    centroid: negative.
    """
    light = np.clip(image, 0, None)
    rows, cols = np.indices(light.shape)
    total = light.sum()
    cy, cx = (light * rows).sum() / total, (light * cols).sum() / total
    r = np.hypot(rows - cy, cols - cx).ravel()
    weights = light.ravel()
    order = np.argsort(r)
    cumulative = np.cumsum(weights[order])
    radius = r[order][np.searchsorted(cumulative, cumulative[-1] / 2)]
    # at least a cell's width each, so that small images keep both regions non-empty
    on_ring = np.abs(r - radius) < max(0.15 * radius, 0.75)
    centre = r < max(0.3 * radius, 1.0)
    ring_flux, centre_flux = weights[on_ring].mean(), weights[centre].mean()
    return float((ring_flux - centre_flux) / ring_flux)


def test_ring_contrast_tells_rings_from_blobs():
    rows, cols = np.indices((64, 64))
    r = np.hypot(rows - 30, cols - 34)
    ring = np.exp(-0.5 * ((r - 15) / 1.5) ** 2)
    blob = np.exp(-0.5 * (r / 6) ** 2)
    assert ring_contrast(ring) > 0.5
    assert ring_contrast(blob) < 0


@pytest.mark.parametrize("primary, name", [(0, "gamma"), (1, "electron"), (2, "muon"),
                                           (-2, "muon"), (101, "proton"), (402, "nucleus"),
                                           (5626, "nucleus")])
def test_primary_names(primary, name):
    assert primary_name(primary) == name


class TestWithData:
    """Reads the shared files (skipped without ctapipe or without the data folder)."""

    pytestmark = needs_data

    def test_lst_muons_are_30_finite_muon_images(self, muons):
        assert len(muons) == 30
        assert muons.image_shape == (1, 64, 64)
        images = muons.read(0, len(muons))
        assert images.shape == (30, 1, 64, 64)
        assert images.dtype == np.float32
        assert np.isfinite(images).all()
        assert muons.class_names() == ["muon"]
        np.testing.assert_array_equal(muons.labels(), np.zeros(30, dtype=np.int64))
        ids = muons.ids()
        assert len(set(ids)) == 30
        assert all(i.startswith("lst_muons:") and i.count(":") == 2 for i in ids)
        np.testing.assert_array_equal(muons.read(5, 9), images[5:9])

    def test_pixels_and_geometry(self, muons):
        pix_x, pix_y = muons.pixel_geometry()
        pixels = muons.read_pixels(0, 4)
        assert pix_x.shape == pix_y.shape == (1855,)
        assert pixels.shape == (4, 1855)
        image = muons.read(0, 1)[0, 0]
        # nearest-pixel resampling: every grid value is one of the camera's pixel values
        # (or 0 off the camera), and the corners of the square are off the round camera
        assert np.isin(image[image != 0], pixels[0]).all()
        assert image[0, 0] == image[-1, -1] == 0

    def test_muon_images_have_rings(self, muons):
        # most, not all: a muon far off the mirror leaves a faint, short arc
        contrasts = np.array([ring_contrast(image[0]) for image in muons.read(0, len(muons))])
        assert (contrasts > 0).mean() >= 0.8, contrasts

    @pytest.mark.parametrize("path", GAMMAS, ids=lambda p: p.name.split(".")[0])
    def test_gamma_files_with_lstcam_are_gammas(self, path):
        # the files spell LSTCam and LSTcam: the match ignores case
        dataset = SimtelFiles(path=str(path), telescope_type="LSTCam", size=32)
        assert len(dataset) > 0
        assert dataset.class_names() == ["gamma"]
        assert (dataset.labels() == 0).all()
        images = dataset.read(0, len(dataset))
        assert images.shape == (len(dataset), 1, 32, 32)
        assert np.isfinite(images).all()
        # showers are filled ellipses: the ring check must not take them for rings
        assert np.median([ring_contrast(image[0]) for image in images]) < 0

    def test_label_and_cuts(self):
        dataset = SimtelFiles(path=str(IACT / "*.simtel.zst"), telescope_type="lstcam",
                              label="lst", min_size=50.0, max_events=10)
        assert len(dataset) == 10
        assert dataset.class_names() == ["lst"]
        assert (dataset.read_pixels(0, 10).sum(axis=1) >= 50.0).all()

    def test_square_pixel_camera(self):
        dataset = SimtelFiles(path=str(IACT / "gct_checs_muons.simtel.zst"), size=48)
        assert len(dataset) == 20
        assert dataset.read(0, 2).shape == (2, 1, 48, 48)
        assert dataset.class_names() == ["muon"]

    def test_mixed_camera_types_ask_for_telescope_type(self):
        dataset = SimtelFiles(path=str(GAMMAS[0]))
        with pytest.raises(ValueError, match="mix camera types") as error:
            len(dataset)
        message = str(error.value)
        assert "LST_LST_LSTcam" in message and "MST_MST_NectarCam" in message
        assert "telescope_type" in message

    def test_no_matching_telescope(self):
        with pytest.raises(ValueError, match="no telescope image of telescope type"):
            len(SimtelFiles(path=str(MUONS), telescope_type="NectarCam"))


def test_without_ctapipe_one_clear_error(monkeypatch, tmp_path):
    # None in sys.modules makes ``import ctapipe`` fail as if it were not installed
    monkeypatch.setitem(sys.modules, "ctapipe", None)
    path = tmp_path / "run.simtel.zst"
    path.write_bytes(b"")
    dataset = SimtelFiles(path=str(path))
    for use in (len, lambda d: d.read(0, 1), lambda d: d.labels()):
        with pytest.raises(ImportError) as error:
            use(dataset)
        assert str(error.value) == (
            "the simtel dataset needs ctapipe: pip install 'clustergrid[cta]'"
        )


def test_fingerprint_follows_params_and_files(tmp_path):
    path = tmp_path / "run.simtel.zst"
    path.write_bytes(b"x")
    base = SimtelFiles(path=str(path)).fingerprint()
    assert SimtelFiles(path=str(path)).fingerprint() == base
    for params in ({"size": 32}, {"min_size": 10.0}, {"telescope_type": "LSTCam"},
                   {"label": "muon"}, {"max_events": 5}):
        assert SimtelFiles(path=str(path), **params).fingerprint() != base, params
    path.write_bytes(b"xy")
    assert SimtelFiles(path=str(path)).fingerprint() != base

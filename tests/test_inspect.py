"""``clustergrid inspect``: statistics equal NumPy's on the same pixels; the montage has a
row per class; the real SDSS stamps show how their bands correlate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import cli
from PIL import Image

from clustergrid.inspection import inspect_dataset, montage
from clustergrid.spec import parse_datasets
from clustergrid.stages import build

DATA = Path(__file__).parents[2] / "shared" / "data"


def test_statistics_equal_numpy_on_the_transformed_pixels(registry):
    (choice,) = parse_datasets(
        "plugin: sim-galaxies\nn_samples: 40\nsize: 24\n"
        "transforms:\n  - plugin: normalize\n    per_channel: true\n", registry)
    result = inspect_dataset(choice, registry, per_class=3, batch_size=7)
    images = build(choice.transforms[0], registry).transform(
        build(choice.dataset, registry).read(0, 40))
    pixels = np.moveaxis(images, 1, 0).reshape(3, -1).astype(np.float64)
    assert result.n == 40 and result.shape == (3, 24, 24)
    assert result.label_counts == {"edge-on": 10, "elliptical": 10, "merger": 10, "spiral": 10}
    for channel, stats in enumerate(result.channel_stats):
        assert stats["mean"] == pytest.approx(pixels[channel].mean(), rel=1e-6)
        assert stats["std"] == pytest.approx(pixels[channel].std(), rel=1e-5)
        assert stats["min"] == pytest.approx(pixels[channel].min())
        assert stats["nan_fraction"] == 0
    np.testing.assert_allclose(result.correlation, np.corrcoef(pixels), rtol=1e-5)


def test_nan_pixels_are_counted_and_left_out(registry, tmp_path):
    images = np.random.default_rng(0).normal(size=(10, 2, 8, 8)).astype(np.float32)
    images[0, 1, :4] = np.nan
    np.save(tmp_path / "stack.npy", images)
    (choice,) = parse_datasets(f"plugin: npy\npath: {tmp_path / 'stack.npy'}\n", registry)
    result = inspect_dataset(choice, registry)
    assert result.channel_stats[1]["nan_fraction"] == pytest.approx(32 / 640)
    assert result.channel_stats[1]["mean"] == pytest.approx(np.nanmean(images[:, 1]), rel=1e-5)
    assert result.label_counts == {"unlabelled": 10}


def test_montage_has_one_row_per_class(registry, tmp_path):
    (choice,) = parse_datasets("{plugin: sim-cherenkov, n_samples: 30, size: 32}", registry)
    result = inspect_dataset(choice, registry, per_class=4)
    assert {name: len(images) for name, images in result.examples.items()} == {
        "gamma": 4, "hadron": 4, "muon": 4}
    image = Image.open(montage(result, tmp_path / "m.png", thumb=32))
    assert image.size == (110 + 4 * 36, 3 * 36)


@pytest.mark.skipif(not (DATA / "fits_multiband").is_dir(), reason="../shared/data is absent")
def test_inspect_shows_the_correlation_of_sdss_bands(tmp_path):
    spec = tmp_path / "sdss.yaml"
    spec.write_text(
        "plugin: fits\n"
        f"path: {DATA / 'fits_multiband' / 'reprojected_sdss_*'}\n"
        "bands: [[g, r, i]]\n"
        "pattern: '{id}_{band}.fits'\n"
        "tile: 64\n"
        "stride: 64\n"
        "transforms:\n  - plugin: nan_fill\n")
    result = cli("inspect", str(spec), "--montage", str(tmp_path / "sdss.png"),
                 env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "items of shape (3, 64, 64)" in lines[0]
    start = next(i for i, line in enumerate(lines) if "channel correlation" in line)
    rows = [line.split("│")[1:-1] for line in lines[start:] if line.startswith("│")][:3]
    correlation = np.array([[float(v) for v in row[1:]] for row in rows])
    assert np.allclose(np.diag(correlation), 1.0)
    assert np.allclose(correlation, correlation.T)
    # Neighbouring bands see the same sky: strongly correlated.
    assert correlation[0, 1] > 0.5 and correlation[1, 2] > 0.5
    assert (tmp_path / "sdss.png").is_file()


def test_inspect_rejects_a_snippet_that_is_not_a_dataset():
    result = cli("inspect", "encoders: []")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: <dataset>: expected a dataset entry (plugin: NAME, ...) or an experiment file")

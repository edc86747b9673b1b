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


def _png_folder(folder: Path, good: int, constant: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(good):
        Image.fromarray(rng.integers(0, 255, (12, 12)).astype(np.uint8)).save(
            folder / f"good{i:02}.png")
    for i in range(constant):
        Image.fromarray(np.full((12, 12), 7, np.uint8)).save(folder / f"blank{i:02}.png")
    return folder


def test_inspect_reports_a_bad_file_as_one_line_naming_the_dataset(tmp_path):
    folder = _png_folder(tmp_path / "pngs", good=4, constant=1)
    result = cli("inspect", f"{{plugin: images, path: {folder}}}",
                 "--montage", str(tmp_path / "m.png"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: dataset 'images[")
    assert "blank00.png: constant image" in lines[0] and "on_error: skip" in lines[0]
    assert not (tmp_path / "m.png").exists()


def test_inspect_names_the_items_it_skipped(tmp_path):
    folder = _png_folder(tmp_path / "pngs", good=4, constant=1)
    result = cli("inspect", f"{{plugin: images, path: {folder}, on_error: skip}}",
                 "--montage", str(tmp_path / "m.png"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "4 items of shape (1, 12, 12)" in lines[0]
    assert lines[1] == "1 item(s) skipped (on_error: skip):"
    assert lines[2].startswith(f"  {folder / 'blank00.png'}: constant image")


def test_the_skipped_listing_stops_after_ten(tmp_path, registry):
    folder = _png_folder(tmp_path / "pngs", good=3, constant=15)
    (choice,) = parse_datasets(f"{{plugin: images, path: {folder}, on_error: skip}}",
                               registry)
    inspection = inspect_dataset(choice, registry)
    assert [Path(where).name for where, _ in inspection.skipped] == [
        f"blank{i:02}.png" for i in range(15)]
    result = cli("inspect", f"{{plugin: images, path: {folder}, on_error: skip}}",
                 "--montage", str(tmp_path / "m.png"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "15 item(s) skipped (on_error: skip):"
    listed = [line.split("/")[-1].split(":")[0] for line in lines[2:12]]
    assert listed == [f"blank{i:02}.png" for i in range(10)]
    assert all("constant image" in line for line in lines[2:12])
    assert lines[12] == "  and 5 more"
    assert "blank10.png" not in result.stdout


def test_a_folder_whose_every_file_is_skipped_is_an_error(tmp_path, registry):
    from clustergrid.errors import ClustergridError

    folder = _png_folder(tmp_path / "pngs", good=0, constant=2)
    (choice,) = parse_datasets(f"{{plugin: images, path: {folder}, on_error: skip}}",
                               registry)
    # The loader or inspect itself refuses; either way the message names the dataset.
    with pytest.raises(ClustergridError, match=r"^dataset 'images\[.*\(2 skipped"):
        inspect_dataset(choice, registry)


def _fits_bands(folder: Path, bands: str = "gri") -> Path:
    from astropy.io import fits

    folder.mkdir()
    rng = np.random.default_rng(1)
    for obj in range(3):
        sky = rng.normal(size=(8, 8))
        for scale, band in enumerate(bands, start=1):
            fits.PrimaryHDU((sky * scale + rng.normal(size=(8, 8))).astype(np.float32)
                            ).writeto(folder / f"obj{obj}_{band}.fits")
    return folder


def _table(lines: list[str], title: str) -> tuple[list[str], list[str]]:
    """The header cells and first-column cells of the Rich table titled ``title``."""
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    end = next(i for i, line in enumerate(lines) if i > start and line.startswith("└"))
    table = lines[start + 1:end]
    header = next(line for line in table if line.startswith("┃"))
    rows = [line for line in table if line.startswith("│")]
    return ([cell.strip() for cell in header.split("┃")[1:-1]],
            [row.split("│")[1].strip() for row in rows])


def test_fits_bands_label_the_channels(tmp_path, registry):
    folder = _fits_bands(tmp_path / "bands")
    entry = f"{{plugin: fits, path: {folder}, bands: [[g, r, i]], pattern: '{{id}}_{{band}}.fits'}}"
    (choice,) = parse_datasets(entry, registry)
    assert build(choice.dataset, registry).channel_names() == ["g", "r", "i"]
    result = cli("inspect", entry, "--montage", str(tmp_path / "m.png"),
                 env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header, rows = _table(lines, "pixels")
    assert header[0] == "channel" and rows == ["g", "r", "i"]
    header, rows = _table(lines, "channel correlation")
    assert header == ["", "g", "r", "i"] and rows == ["g", "r", "i"]


@pytest.mark.parametrize("transforms, expected", [
    ("[{plugin: channels, select: [[2, 0]]}]", ["i", "g"]),
    ("[{plugin: channels, mode: mean}, {plugin: to_rgb}]", None),
    ("[{plugin: nan_fill}]", ["g", "r", "i"]),
])
def test_channel_names_follow_the_transforms_or_give_way_to_numbers(
        tmp_path, registry, transforms, expected):
    folder = _fits_bands(tmp_path / "bands")
    (choice,) = parse_datasets(
        f"{{plugin: fits, path: {folder}, bands: [[g, r, i]], "
        f"pattern: '{{id}}_{{band}}.fits', transforms: {transforms}}}", registry)
    inspection = inspect_dataset(choice, registry)
    assert inspection.channel_names == expected
    assert inspection.channel_labels() == (expected or ["0", "1", "2"])


def test_a_bug_in_a_transform_is_not_dressed_up_as_a_data_error(registry, monkeypatch):
    from clustergrid.plugins.transforms.nan_fill import NanFill

    def broken(self, images):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(NanFill, "transform", broken)
    (choice,) = parse_datasets("{plugin: digits, n_samples: 20, "
                               "transforms: [{plugin: nan_fill}]}", registry)
    with pytest.raises(ZeroDivisionError):
        inspect_dataset(choice, registry)

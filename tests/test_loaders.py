"""The file loaders (images, npy, fits): real data when present, generated bad files,
streaming reads, fingerprints and catalogue labels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from clustergrid.plugins.datasets.fits import FitsFiles
from clustergrid.plugins.datasets.images import ImageFolder
from clustergrid.plugins.datasets.npy import NpyFiles

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real data folder {DATA} absent (only on development machines)"
)


def save_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def noise(shape, seed: int, dtype=np.uint8) -> np.ndarray:
    high = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1
    return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def save_fits(path: Path, data, compressed: bool = False) -> Path:
    from astropy.io import fits

    if compressed:
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data)]).writeto(path)
    else:
        fits.PrimaryHDU(data).writeto(path)
    return path


# -- real data ----------------------------------------------------------------------------
@needs_data
def test_frdeep_folder_gives_two_classes_of_150px_gray_images():
    from PIL import Image

    skipping = ImageFolder(path=str(DATA / "frdeep_first"), labels_from="folders",
                           on_error="skip")
    assert skipping.class_names() == ["FRI", "FRII"]
    assert skipping.image_shape == (1, 150, 150)
    # The corpus holds 600 PNGs; FRI/frdeep_0109.png is blank (all zeros), so it is skipped.
    assert [Path(f).name for f, _ in skipping.skipped()] == ["frdeep_0109.png"]
    assert len(skipping) + len(skipping.skipped()) == 600
    assert np.bincount(skipping.labels()).tolist() == [263, 336]
    first = np.asarray(Image.open(DATA / "frdeep_first" / "FRI" / "frdeep_0000.png"))
    np.testing.assert_array_equal(skipping.read(0, 1)[0, 0], first.astype(np.float32))
    with pytest.raises(ValueError, match=r"frdeep_0109\.png: constant image"):
        len(ImageFolder(path=str(DATA / "frdeep_first"), labels_from="folders"))


@needs_data
def test_sdss_band_files_are_tiled_into_three_channel_stamps_in_band_order():
    from astropy.io import fits

    files = {b: DATA / "fits_multiband" / f"reprojected_sdss_{b}.fits.bz2" for b in "gri"}
    data = {b: fits.getdata(f).astype(np.float32) for b, f in files.items()}
    pattern = str(DATA / "fits_multiband" / "reprojected_sdss_*")
    dataset = FitsFiles(path=pattern, bands=["g", "r", "i"], tile=64, stride=64)
    assert data["g"].shape == (496, 682)
    assert dataset.image_shape == (3, 64, 64)
    assert len(dataset) == (496 // 64) * (682 // 64)
    ids = list(dataset.ids())
    row = ids.index("reprojected_sdss:64,128")
    stamp = dataset.read(row, row + 1)[0]
    for channel, band in enumerate("gri"):
        np.testing.assert_array_equal(stamp[channel], data[band][64:128, 128:192])
    reordered = FitsFiles(path=pattern, bands=["i", "g", "r"], tile=64)
    np.testing.assert_array_equal(reordered.read(row, row + 1)[0], stamp[[2, 0, 1]])


@needs_data
def test_deeplense_samples_load_with_class_from_file_name():
    dataset = NpyFiles(path=str(DATA / "deeplense_samples"), labels_from="filenames")
    assert dataset.class_names() == ["axion", "cdm", "nosub"]
    assert dataset.labels().tolist() == [0, 1, 2]
    assert dataset.image_shape == (1, 64, 64)
    images = dataset.read(0, 3)
    for row, name in enumerate(["axion", "cdm", "nosub"]):
        expected = np.load(DATA / "deeplense_samples" / f"{name}.npy").astype(np.float32)
        np.testing.assert_array_equal(images[row, 0], expected)


# -- bad files ------------------------------------------------------------------------------
@pytest.fixture
def good_pngs(tmp_path) -> Path:
    folder = tmp_path / "images"
    for i in range(3):
        save_png(folder / f"good{i}.png", noise((32, 32), i))
    return folder


def add_broken_pngs(folder: Path) -> dict[str, str]:
    """Unreadable or unusable files -> a fragment of the reason each must get."""
    truncated = save_png(folder / "truncated.png", noise((32, 32), 10))
    truncated.write_bytes(truncated.read_bytes()[:200])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image\n")
    save_png(folder / "constant.png", np.full((32, 32), 7, np.uint8))
    return {"truncated.png": "unreadable image", "empty.png": "empty file",
            "text.png": "unreadable image", "constant.png": "constant image"}


def test_unreadable_pngs_fail_with_one_message_naming_each_file(good_pngs):
    reasons = add_broken_pngs(good_pngs)
    with pytest.raises(ValueError) as error:
        len(ImageFolder(path=str(good_pngs)))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"4 bad item(s) in {good_pngs}")
    for name, reason in reasons.items():
        assert f"{good_pngs / name}: {reason}" in message


def test_rgb_among_gray_and_odd_shapes_fail_naming_the_file(good_pngs):
    save_png(good_pngs / "rgb.png", noise((32, 32, 3), 20))
    with pytest.raises(ValueError, match=r"rgb\.png: has 3 channel\(s\), the others have 1"):
        len(ImageFolder(path=str(good_pngs)))
    (good_pngs / "rgb.png").unlink()
    save_png(good_pngs / "big.png", noise((40, 48), 21))
    with pytest.raises(ValueError, match=r"32x32 in 3 item\(s\).*40x48 in 1 item\(s\) \(e\.g\. "
                                         r"\S*big\.png\); set shape_policy"):
        len(ImageFolder(path=str(good_pngs)))


def test_skip_drops_exactly_the_bad_files_and_lists_them(good_pngs):
    reasons = add_broken_pngs(good_pngs)
    save_png(good_pngs / "rgb.png", noise((32, 32, 3), 20))
    save_png(good_pngs / "big.png", noise((40, 48), 21))
    reasons |= {"rgb.png": "3 channel(s)", "big.png": "shape (40, 48) differs from (32, 32)"}
    dataset = ImageFolder(path=str(good_pngs), on_error="skip")
    assert list(dataset.ids()) == ["good0", "good1", "good2"]
    assert dataset.image_shape == (1, 32, 32)
    skipped = {Path(file).name: reason for file, reason in dataset.skipped()}
    assert set(skipped) == set(reasons)
    for name, fragment in reasons.items():
        assert fragment in skipped[name]


def test_shape_policies_resize_and_crop_odd_images(good_pngs):
    big = noise((40, 48), 21)
    save_png(good_pngs / "big.png", big)
    cropped = ImageFolder(path=str(good_pngs), shape_policy="crop")
    assert cropped.image_shape == (1, 32, 32)
    np.testing.assert_array_equal(cropped.read(0, 1)[0, 0], big[4:36, 8:40])
    resized = ImageFolder(path=str(good_pngs), shape_policy="resize", size=16)
    images = resized.read(0, len(resized))
    assert images.shape == (4, 1, 16, 16)
    assert 0 < images[0].mean() < 255


def test_channel_conversion_and_16_bit_values(tmp_path):
    rgb = noise((8, 8, 3), 1)
    save_png(tmp_path / "a.png", rgb)
    deep = noise((8, 8), 2, np.uint16)
    save_png(tmp_path / "b.png", deep)
    from PIL import Image

    assert Image.open(tmp_path / "b.png").mode.startswith("I;16")
    gray = ImageFolder(path=str(tmp_path), channels="gray").read(0, 2)
    expected = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(gray[0, 0], expected, rtol=1e-6)
    np.testing.assert_array_equal(gray[1, 0], deep.astype(np.float32))
    assert deep.max() > 255
    colour = ImageFolder(path=str(tmp_path), channels="rgb").read(0, 2)
    np.testing.assert_array_equal(colour[0], np.moveaxis(rgb, -1, 0))
    np.testing.assert_array_equal(colour[1], np.repeat(deep[None], 3, axis=0))


def test_bad_fits_files_fail_naming_them_and_are_skipped(tmp_path):
    for i in range(2):
        save_fits(tmp_path / f"good{i}.fits", noise((16, 16), i).astype(np.float32))
    save_fits(tmp_path / "nan.fits", np.full((16, 16), np.nan, np.float32))
    save_fits(tmp_path / "flat.fits", np.zeros((16, 16), np.float32))
    (tmp_path / "empty.fits").write_bytes(b"")
    (tmp_path / "text.fits").write_text("SIMPLE? no\n")
    reasons = {"nan.fits": "all values are NaN", "flat.fits": "constant image",
               "empty.fits": "empty file", "text.fits": "unreadable FITS"}
    with pytest.raises(ValueError) as error:
        len(FitsFiles(path=str(tmp_path)))
    for name, reason in reasons.items():
        assert f"{tmp_path / name}: {reason}" in str(error.value)
    dataset = FitsFiles(path=str(tmp_path), on_error="skip")
    assert list(dataset.ids()) == ["good0", "good1"]
    assert {Path(f).name for f, _ in dataset.skipped()} == set(reasons)


def test_fits_cubes_named_hdus_compressed_files_and_band_shape_mismatch(tmp_path):
    from astropy.io import fits

    cube = noise((16, 12, 3), 3).astype(np.float32)  # (h, w, bands): channels last
    save_fits(tmp_path / "cube.fits", cube)
    dataset = FitsFiles(path=str(tmp_path / "cube.fits"), channel_axis=2)
    np.testing.assert_array_equal(dataset.read(0, 1)[0], np.moveaxis(cube, 2, 0))

    image = noise((10, 10), 4).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image, name="SCI")]).writeto(
        tmp_path / "ext.fits")
    np.testing.assert_array_equal(FitsFiles(path=str(tmp_path / "ext.fits"), hdu="SCI")
                                  .read(0, 1)[0, 0], image)
    with pytest.raises(ValueError, match=r"ext\.fits: unreadable FITS \(no HDU 'ERR'"):
        len(FitsFiles(path=str(tmp_path / "ext.fits"), hdu="ERR"))

    # integers, because tile compression quantises floats
    save_fits(tmp_path / "packed.fits.fz", image.astype(np.int32), compressed=True)
    packed = FitsFiles(path=str(tmp_path / "packed.fits.fz"))
    np.testing.assert_array_equal(packed.read(0, 1)[0, 0], image)

    bands = tmp_path / "bands"
    bands.mkdir()
    save_fits(bands / "m1_g.fits", image)
    save_fits(bands / "m1_r.fits", noise((12, 10), 5).astype(np.float32))
    with pytest.raises(ValueError, match=r"m1_g\.fits, \S*m1_r\.fits: unreadable FITS "
                                         r"\(band files differ in shape \(g 10x10, r 12x10\)\)"):
        len(FitsFiles(path=str(bands), bands=["g", "r"], tile=4))


def test_bad_npy_files_fail_naming_them(tmp_path):
    np.save(tmp_path / "good.npy", noise((8, 8), 1).astype(np.float64))
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object))
    np.save(tmp_path / "flat.npy", np.ones((8, 8)))
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(ValueError) as error:
        len(NpyFiles(path=str(tmp_path)))
    for name, reason in {"pickled.npy": "unreadable .npy", "flat.npy": "constant image",
                         "empty.npy": "empty file"}.items():
        assert f"{tmp_path / name}: {reason}" in str(error.value)


# -- streaming and fingerprints ---------------------------------------------------------
def test_read_streams_only_the_batch_and_matches_the_full_read(good_pngs, monkeypatch):
    for i in range(3, 8):
        save_png(good_pngs / f"good{i}.png", noise((32, 32), i))
    dataset = ImageFolder(path=str(good_pngs))
    everything = dataset.read(0, len(dataset))
    assert everything.shape == (8, 1, 32, 32)
    loaded = []
    original = ImageFolder._load
    monkeypatch.setattr(ImageFolder, "_load",
                        lambda self, item: loaded.append(item.id) or original(self, item))
    np.testing.assert_array_equal(dataset.read(2, 5), everything[2:5])
    assert loaded == ["good2", "good3", "good4"]


def test_stacked_npy_is_memory_mapped_and_sliced(tmp_path):
    stack = noise((10, 2, 6, 6), 7).astype(np.float32)
    np.save(tmp_path / "stack.npy", stack)
    np.save(tmp_path / "labels.npy", np.array([0, 1, 1, 2, 0, -1, 2, 2, 1, 0]))
    dataset = NpyFiles(path=str(tmp_path / "stack.npy"),
                       labels_array=str(tmp_path / "labels.npy"))
    assert isinstance(dataset._stack(), np.memmap)
    np.testing.assert_array_equal(dataset.read(3, 7), stack[3:7])
    assert dataset.labels().tolist() == [0, 1, 1, 2, 0, -1, 2, 2, 1, 0]
    assert dataset.class_names() == ["0", "1", "2"]
    np.savez(tmp_path / "both.npz", x=stack[:, 0], y=np.arange(10))
    packed = NpyFiles(path=str(tmp_path / "both.npz"), array="x", labels_array="y")
    np.testing.assert_array_equal(packed.read(0, 10)[:, 0], stack[:, 0])
    # The only array that can be a stack of images is taken without naming it...
    assert NpyFiles(path=str(tmp_path / "both.npz")).image_shape == (1, 6, 6)
    # ...but of two candidates, neither is guessed.
    np.savez(tmp_path / "two.npz", x=stack[:, 0], z=stack[:, 0], y=np.arange(10))
    with pytest.raises(ValueError, match=r"two\.npz: holds x \(10, 6, 6\), z \(10, 6, 6\), "
                                         r"y \(10,\); name the images with array"):
        len(NpyFiles(path=str(tmp_path / "two.npz")))


def test_fingerprint_changes_when_a_file_is_touched_or_rewritten(good_pngs):
    dataset = ImageFolder(path=str(good_pngs))
    before = dataset.fingerprint()
    assert ImageFolder(path=str(good_pngs)).fingerprint() == before
    target = good_pngs / "good1.png"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched = dataset.fingerprint()
    assert touched != before
    save_png(target, noise((32, 32), 99))
    assert dataset.fingerprint() not in (before, touched)
    assert ImageFolder(path=str(good_pngs), on_error="skip").fingerprint() != dataset.fingerprint()


# -- labels ------------------------------------------------------------------------------------
def test_catalogue_labels_join_on_id_and_name_missing_ids(good_pngs, tmp_path):
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("name,morphology\ngood2,spiral\ngood0,elliptical\ngood1,\n"
                         "unused,irregular\n")
    spec = {"catalogue": str(catalogue), "id_column": "name", "label_column": "morphology"}
    dataset = ImageFolder(path=str(good_pngs), **spec)
    assert dataset.class_names() == ["elliptical", "irregular", "spiral"]
    assert dataset.labels().tolist() == [0, -1, 2]
    before = dataset.fingerprint()
    catalogue.write_text(catalogue.read_text() + "more,spiral\n")
    assert dataset.fingerprint() != before

    save_png(good_pngs / "stray.png", noise((32, 32), 50))
    with pytest.raises(ValueError, match=r"catalogue\.csv: 1 item id\(s\) missing from "
                                         r"column 'name': stray$"):
        ImageFolder(path=str(good_pngs), **spec).labels()
    with pytest.raises(ValueError, match=r"catalogue\.csv: no column 'kind'"):
        ImageFolder(path=str(good_pngs), **{**spec, "label_column": "kind"}).labels()


def test_folder_labels_from_a_glob(tmp_path):
    for name, seed in [("b/x", 1), ("a/y", 2), ("a/z", 3)]:
        save_png(tmp_path / f"{name}.png", noise((8, 8), seed))
    dataset = ImageFolder(path=str(tmp_path / "*" / "*.png"), labels_from="folders")
    assert list(dataset.ids()) == ["y", "z", "x"]
    assert dataset.class_names() == ["a", "b"]
    assert dataset.labels().tolist() == [0, 0, 1]


def test_experiment_files_validate_and_hash_loader_parameters(tmp_path, registry):
    from clustergrid.plan import config_hash
    from clustergrid.spec import SpecError, parse_experiment

    assert registry.get("dataset", "fits").cls is FitsFiles
    text = f"""
name: loaders
datasets:
  - plugin: fits
    path: {tmp_path}/*.fits
    bands: [[g, r, i]]
    tile: [32, 64]
    catalogue: {tmp_path}/catalogue.csv
  - plugin: images
    path: {tmp_path}
    channels: gray
encoders:
  - plugin: pixels
reducers:
  - plugin: none
clusterers:
  - plugin: kmeans
    n_clusters: 2
"""
    experiment = parse_experiment(text, registry)
    datasets = [choice.dataset for choice in experiment.datasets]
    assert [dict(d.params).get("tile") for d in datasets] == [32, 64, None]
    assert dict(datasets[0].params)["bands"] == ("g", "r", "i")
    assert len({hash(d) for d in datasets}) == 3 and config_hash(datasets)
    with pytest.raises(SpecError, match="channels"):
        parse_experiment(text.replace("channels: gray", "channels: cmyk"), registry)


def test_a_missing_path_is_named_with_the_folder_it_was_read_from(workdir):
    from clustergrid.plugins.support.files import resolve_files

    with pytest.raises(ValueError, match=r"^data/none: no such file or folder \(from "):
        resolve_files("data/none", (".png",))
    (workdir / "empty").mkdir()
    with pytest.raises(ValueError, match=r"^empty: no files ending with \.png found"):
        resolve_files("empty", (".png",))
    with pytest.raises(ValueError, match=r"^data/\*\.png: no files ending with \.png found"):
        resolve_files("data/*.png", (".png",))  # a pattern that matches nothing

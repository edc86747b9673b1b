"""The HDF5 loader on small generated files: layouts, labels, bad items, fingerprints."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from clustergrid.plugins.datasets.hdf5 import Hdf5File  # noqa: E402


def write_h5(path: Path, **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as handle:
        for name, data in datasets.items():
            handle.create_dataset(name, data=data)
    return path


def noise(shape, seed: int, dtype=np.float32) -> np.ndarray:
    values = np.random.default_rng(seed).random(shape)
    return (values * 255).astype(dtype) if dtype == np.uint8 else values.astype(dtype)


def test_galaxy10_like_nhwc_uint8_with_labels_and_class_names(tmp_path):
    images = noise((12, 8, 8, 3), seed=0, dtype=np.uint8)
    ans = np.arange(12, dtype=np.uint8) % 3
    path = write_h5(tmp_path / "g10.h5", images=images, ans=ans,
                    ra=np.zeros(12))  # extra columns, as Galaxy10 has, are ignored
    dataset = Hdf5File(path=str(path), labels_dataset="ans",
                       class_labels=["round", "edge-on", "spiral"])
    assert len(dataset) == 12
    assert dataset.image_shape == (3, 8, 8)
    expected = images.transpose(0, 3, 1, 2).astype(np.float32)
    np.testing.assert_array_equal(dataset.read(0, 12), expected)
    np.testing.assert_array_equal(dataset.read(4, 9), expected[4:9])
    assert dataset.read(4, 9).dtype == np.float32
    np.testing.assert_array_equal(dataset.labels(), ans.astype(np.int64))
    assert dataset.class_names() == ["round", "edge-on", "spiral"]
    assert list(dataset.ids()[:3]) == ["0", "1", "2"]
    batches = list(dataset.batches(5))
    assert [len(b) for b in batches] == [5, 5, 2]


def test_nchw_float32_and_default_class_names_are_the_codes(tmp_path):
    images = noise((6, 2, 5, 7), seed=1)
    path = write_h5(tmp_path / "a.hdf5", cube=images, y=np.array([0, 2, 2, -1, 0, 2]))
    dataset = Hdf5File(path=str(path), images="cube", labels_dataset="y")
    assert dataset.image_shape == (2, 5, 7)
    np.testing.assert_array_equal(dataset.read(1, 4), images[1:4])
    # Codes are kept (2 stays 2 although class 1 is absent); negative means unknown.
    assert dataset.labels().tolist() == [0, 2, 2, -1, 0, 2]
    assert dataset.class_names() == ["0", "1", "2"]


def test_nhw_stack_gets_one_channel_and_unlabelled(tmp_path):
    images = noise((5, 6, 6), seed=2)
    path = write_h5(tmp_path / "gray.h5", images=images)
    dataset = Hdf5File(path=str(path))
    assert dataset.image_shape == (1, 6, 6)
    np.testing.assert_array_equal(dataset.read(2, 5)[:, 0], images[2:5])
    assert dataset.labels() is None and dataset.class_names() is None


@pytest.mark.parametrize(
    ("shape", "layout"),
    [((4, 8, 8), "nhw"), ((4, 8, 8, 3), "nhwc"), ((4, 8, 8, 1), "nhwc"),
     ((4, 3, 8, 8), "nchw"), ((4, 3, 8, 3), "nchw"), ((4, 5, 8, 8), "nchw")],
)
def test_auto_layout(shape, layout):
    assert Hdf5File(path="x.h5")._layout(shape) == layout


def test_explicit_layout_overrides_the_guess(tmp_path):
    images = noise((3, 4, 6, 2), seed=3)  # auto would take it as nhwc (2 channels)
    path = write_h5(tmp_path / "c.h5", images=images)
    dataset = Hdf5File(path=str(path), layout="nchw")
    assert dataset.image_shape == (4, 6, 2)
    np.testing.assert_array_equal(dataset.read(0, 3), images)


def test_missing_dataset_error_lists_what_the_file_holds(tmp_path):
    path = tmp_path / "g.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("ans", data=np.zeros(3, dtype=np.uint8))
        handle.create_dataset("group/pixels", data=noise((3, 4, 4), seed=0))
    with pytest.raises(ValueError, match=r"g\.h5: no dataset 'images'.*ans.*group/pixels"):
        len(Hdf5File(path=str(path)))
    with pytest.raises(ValueError, match=r"no dataset 'labels' \(labels_dataset\)"):
        len(Hdf5File(path=str(path), images="group/pixels", labels_dataset="labels"))
    assert len(Hdf5File(path=str(path), images="group/pixels")) == 3


def test_labels_length_mismatch_names_both_lengths(tmp_path):
    path = write_h5(tmp_path / "m.h5", images=noise((4, 4, 4), seed=0),
                    ans=np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"4 images in 'images' but 3 labels in 'ans'"):
        len(Hdf5File(path=str(path), labels_dataset="ans"))


def test_too_few_class_labels_is_an_error(tmp_path):
    path = write_h5(tmp_path / "m.h5", images=noise((3, 4, 4), seed=0), ans=np.arange(3))
    with pytest.raises(ValueError, match="class_labels names 2 classes"):
        Hdf5File(path=str(path), labels_dataset="ans", class_labels=["a", "b"]).labels()


def test_constant_and_nan_images_are_skipped_and_listed_or_fail(tmp_path):
    images = noise((6, 5, 5), seed=4)
    images[1] = 7.0
    images[4] = np.nan
    path = write_h5(tmp_path / "bad.h5", images=images, ans=np.arange(6))
    skipping = Hdf5File(path=str(path), labels_dataset="ans", on_error="skip")
    assert len(skipping) == 4
    assert list(skipping.ids()) == ["0", "2", "3", "5"]
    assert skipping.labels().tolist() == [0, 2, 3, 5]
    reasons = dict(skipping.skipped())
    assert reasons.keys() == {f"{path}[1]", f"{path}[4]"}
    assert reasons[f"{path}[1]"].startswith("constant image")
    assert "NaN" in reasons[f"{path}[4]"]
    # A read spanning skipped rows returns only the kept ones, in order.
    np.testing.assert_array_equal(skipping.read(0, 4)[:, 0], images[[0, 2, 3, 5]])
    np.testing.assert_array_equal(skipping.read(1, 3)[:, 0], images[[2, 3]])
    with pytest.raises(ValueError, match=r"2 bad item\(s\).*bad\.h5\[1\]: constant image"):
        len(Hdf5File(path=str(path)))


def test_scan_is_chunked_and_read_takes_only_its_slice(tmp_path, monkeypatch):
    import clustergrid.plugins.datasets.hdf5 as module

    images = noise((10, 4, 4), seed=5)
    path = write_h5(tmp_path / "s.h5", images=images)
    requested = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        requested.append(key)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    monkeypatch.setattr(module, "CHUNK_BYTES", 3 * 4 * 4 * 4)  # three images per chunk
    dataset = Hdf5File(path=str(path))
    assert len(dataset) == 10
    assert requested == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12)]
    requested.clear()
    np.testing.assert_array_equal(dataset.read(6, 8)[:, 0], images[6:8])
    assert requested == [slice(6, 8)]


def test_fingerprint_changes_when_the_file_is_rewritten(tmp_path):
    path = write_h5(tmp_path / "f.h5", images=noise((3, 4, 4), seed=0))
    before = Hdf5File(path=str(path)).fingerprint()
    assert Hdf5File(path=str(path)).fingerprint() == before
    assert Hdf5File(path=str(path), layout="nhw").fingerprint() != before
    stat = path.stat()
    write_h5(path, images=noise((3, 4, 4), seed=1))  # same size: only mtime tells
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert Hdf5File(path=str(path)).fingerprint() != before


def test_unreadable_file_and_wrong_rank_are_clear_errors(tmp_path):
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="unreadable HDF5 file"):
        len(Hdf5File(path=str(broken)))
    with pytest.raises(ValueError, match="no such HDF5 file"):
        len(Hdf5File(path=str(tmp_path / "absent.h5")))
    flat = write_h5(tmp_path / "flat.h5", images=noise((3, 16), seed=0))
    with pytest.raises(ValueError, match=r"has shape \(3, 16\)"):
        len(Hdf5File(path=str(flat)))


def test_experiment_entry_is_validated_and_builds_the_loader(tmp_path, registry):
    from clustergrid.errors import SpecError
    from clustergrid.spec import parse_datasets
    from clustergrid.stages import build

    assert registry.get("dataset", "hdf5").cls is Hdf5File
    images = noise((4, 6, 6, 3), seed=0, dtype=np.uint8)
    path = write_h5(tmp_path / "g.h5", images=images, ans=np.array([0, 1, 1, 0]))
    # A list value is a sweep in experiment files, so one list of names is [[a, b]].
    (choice,) = parse_datasets(
        f"plugin: hdf5\npath: {path}\nlabels_dataset: ans\nclass_labels: [[a, b]]\n"
        "layout: nhwc\n", registry)
    dataset = build(choice.dataset, registry)
    assert dataset.class_names() == ["a", "b"] and len(dataset) == 4
    with pytest.raises(SpecError, match="layout"):
        parse_datasets(f"plugin: hdf5\npath: {path}\nlayout: hwc\n", registry)

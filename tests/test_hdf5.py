"""The HDF5 loader on small generated files: layouts, labels, bad items, fingerprints."""

from __future__ import annotations

import os
import re
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
     ((4, 3, 8, 8), "nchw"), ((4, 1, 64, 64), "nchw"), ((4, 5, 8, 8), "nchw")],
)
def test_auto_layout(shape, layout):
    from clustergrid.plugins.support.layout import resolve_layout

    assert resolve_layout(shape, "auto", "x.h5") == layout


@pytest.mark.parametrize("shape", [(4, 3, 8, 3), (4, 8, 8, 5), (4, 3, 3, 3), (4, 4, 64, 2)])
def test_auto_layout_refuses_shapes_it_cannot_decide(shape):
    from clustergrid.plugins.support.layout import resolve_layout

    with pytest.raises(ValueError, match=rf"x\.h5 has shape {re.escape(str(shape))}: .*"
                                         r"layout: nhwc .*, nchw .* or nhw"):
        resolve_layout(shape, "auto", "x.h5")


def test_explicit_layout_overrides_the_guess(tmp_path):
    images = noise((3, 4, 6, 2), seed=3)  # auto cannot tell: 4 or 2 channels
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


# -- one group per object (FIRST Radio Galaxy Dataset style) ----------------------------
def write_objects(path: Path, n: int = 12, lacking_image=(), lacking_label=()) -> dict:
    """Groups ``data_0``..``data_{n-1}`` with ``Img`` 16x16, ``Label_literature`` (int)
    and ``Split_literature`` (bytes); returns the images, labels and splits by group."""
    images, labels, splits = {}, {}, {}
    with h5py.File(path, "w") as handle:
        for i in range(n):
            group = handle.create_group(f"data_{i}")
            images[f"data_{i}"] = noise((16, 16), seed=i)
            labels[f"data_{i}"] = i % 4
            splits[f"data_{i}"] = "test" if i % 3 == 0 else "train"
            if i not in lacking_image:
                group.create_dataset("Img", data=images[f"data_{i}"])
            if i not in lacking_label:
                group.create_dataset("Label_literature", data=np.int64(labels[f"data_{i}"]))
            group.create_dataset("Split_literature", data=np.bytes_(splits[f"data_{i}"]))
        handle.create_dataset("readme", data=np.bytes_("not an object"))
    return {"images": images, "labels": labels, "splits": splits}


NATURAL = [f"data_{i}" for i in range(12)]


def test_per_object_groups_in_natural_order_with_labels(tmp_path):
    path = tmp_path / "first.h5"
    truth = write_objects(path)
    dataset = Hdf5File(path=str(path), images="data_*/Img",
                       labels_dataset="data_*/Label_literature")
    assert list(dataset.ids()) == NATURAL  # data_2 before data_10
    assert dataset.image_shape == (1, 16, 16)
    expected = np.stack([truth["images"][g] for g in NATURAL])[:, None]
    np.testing.assert_array_equal(dataset.read(0, 12), expected)
    assert dataset.labels().tolist() == [truth["labels"][g] for g in NATURAL]
    assert dataset.class_names() == ["0", "1", "2", "3"]


def test_select_keeps_only_the_objects_with_a_selected_value(tmp_path):
    path = tmp_path / "first.h5"
    truth = write_objects(path)
    train = Hdf5File(path=str(path), images="data_*/Img",
                     labels_dataset="data_*/Label_literature",
                     select="data_*/Split_literature", select_values=["train"])
    kept = [g for g in NATURAL if truth["splits"][g] == "train"]
    assert list(train.ids()) == kept and len(kept) == 8
    np.testing.assert_array_equal(train.read(0, 8)[:, 0],
                                  np.stack([truth["images"][g] for g in kept]))
    assert train.labels().tolist() == [truth["labels"][g] for g in kept]
    both = Hdf5File(path=str(path), images="data_*/Img", select="data_*/Split_literature",
                    select_values=["train", "test"])
    assert len(both) == 12
    assert train.fingerprint() != both.fingerprint()
    with pytest.raises(ValueError, match=r"no object has a 'data_\*/Split_literature' value "
                                         r"in select_values \['valid'\]; the values found "
                                         r"are train \(8\), test \(4\)"):
        len(Hdf5File(path=str(path), images="data_*/Img", select="data_*/Split_literature",
                     select_values=["valid"]))
    with pytest.raises(ValueError, match="select and select_values go together"):
        len(Hdf5File(path=str(path), images="data_*/Img", select="data_*/Split_literature"))


def test_read_of_a_batch_of_groups_opens_the_file_once_and_reads_only_them(
        tmp_path, monkeypatch):
    path = tmp_path / "first.h5"
    write_objects(path)
    dataset = Hdf5File(path=str(path), images="data_*/Img")
    everything = dataset.read(0, len(dataset))
    opened, read = [], []
    original_open, original_image = Hdf5File._open, Hdf5File._object_image
    monkeypatch.setattr(Hdf5File, "_open",
                        lambda self: opened.append(1) or original_open(self))
    monkeypatch.setattr(Hdf5File, "_object_image",
                        lambda self, node: read.append(node.name) or original_image(self, node))
    np.testing.assert_array_equal(dataset.read(9, 11), everything[9:11])
    assert opened == [1]
    assert read == ["/data_9/Img", "/data_10/Img"]


def test_missing_image_is_a_bad_item_and_missing_label_is_unknown(tmp_path):
    path = tmp_path / "holes.h5"
    write_objects(path, lacking_image=(4,), lacking_label=(7,))
    spec = {"images": "data_*/Img", "labels_dataset": "data_*/Label_literature"}
    with pytest.raises(ValueError, match=r"1 bad item\(s\).*holes\.h5:data_4/Img: no dataset "
                                         r"'Img' in group 'data_4'"):
        len(Hdf5File(path=str(path), **spec))
    skipping = Hdf5File(path=str(path), on_error="skip", **spec)
    assert "data_4" not in list(skipping.ids()) and len(skipping) == 11
    assert skipping.labels()[list(skipping.ids()).index("data_7")] == -1


def test_text_labels_per_object_become_class_names(tmp_path):
    path = tmp_path / "text.h5"
    kinds = ["FRII", "FRI", "bent", "FRI"]
    with h5py.File(path, "w") as handle:
        for i, kind in enumerate(kinds):
            handle.create_dataset(f"obj{i}/image", data=noise((8, 8, 3), seed=i))
            handle.create_dataset(f"obj{i}/kind", data=np.bytes_(kind))
    dataset = Hdf5File(path=str(path), images="obj*/image", labels_dataset="obj*/kind")
    assert dataset.image_shape == (3, 8, 8)
    assert dataset.class_names() == ["FRI", "FRII", "bent"]
    assert dataset.labels().tolist() == [1, 0, 2, 0]
    ordered = Hdf5File(path=str(path), images="obj*/image", labels_dataset="obj*/kind",
                       class_labels=["bent", "FRI", "FRII"])
    assert ordered.labels().tolist() == [2, 1, 0, 1]
    with pytest.raises(ValueError, match=r"labels bent are not in class_labels"):
        Hdf5File(path=str(path), images="obj*/image", labels_dataset="obj*/kind",
                 class_labels=["FRI", "FRII"]).labels()


def test_a_pattern_matching_no_group_names_it_and_lists_a_few_top_level_names(tmp_path):
    path = tmp_path / "first.h5"
    write_objects(path)
    with pytest.raises(ValueError) as error:
        len(Hdf5File(path=str(path), images="galaxy_*/Img"))
    message = str(error.value)
    assert "no group matches 'galaxy_*' (images 'galaxy_*/Img')" in message
    assert message.endswith("the file holds data_0/, data_1/, data_2/, data_3/, data_4/, "
                            "data_5/, data_6/, data_7/, data_8/, data_9/, and 3 more")
    with pytest.raises(ValueError, match=r"labels_dataset 'Label' is not a per-object "
                                         r"pattern .*use one such as 'data_\*/Label'"):
        len(Hdf5File(path=str(path), images="data_*/Img", labels_dataset="Label"))
    with pytest.raises(ValueError, match=r"select 'x_\*/Split' must run over the groups of "
                                         r"images 'data_\*/Img': 'data_\*/Split'"):
        len(Hdf5File(path=str(path), images="data_*/Img", select="x_*/Split",
                     select_values=["train"]))


def test_one_object_as_images_is_refused_with_the_pattern_to_use(tmp_path):
    path = tmp_path / "first.h5"
    write_objects(path)
    with pytest.raises(ValueError, match=r"'data_0/Img' has shape \(16, 16\).*use a pattern "
                                         r"such as images: 'data_\*/Img'"):
        len(Hdf5File(path=str(path), images="data_0/Img"))
    with pytest.raises(ValueError, match=r"no dataset 'images' \(images\) \(one group per "
                                         r"object\? use a pattern such as 'data_\*/Img'\)"):
        len(Hdf5File(path=str(path)))


def test_a_wrong_name_in_a_big_file_gives_a_short_message(tmp_path):
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as handle:
        for i in range(500):
            handle.create_dataset(f"column_{i:03d}", data=np.zeros(3))
    with pytest.raises(ValueError) as error:
        len(Hdf5File(path=str(path), images="imgs"))
    message = str(error.value)
    assert len(message) < 1000
    assert message.startswith(f"{path}: no dataset 'imgs' (images); the file holds column_000")
    assert message.endswith("and 490 more")


# -- class names stored in the file ---------------------------------------------------------
@pytest.mark.parametrize("where", ["labels attribute", "root attribute", "root dataset"])
def test_class_names_from_the_file_and_class_labels_overrides_them(tmp_path, where):
    path = tmp_path / "named.h5"
    names = ["round", "edge-on", "spiral"]
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=noise((4, 8, 8), seed=0))
        ans = handle.create_dataset("ans", data=np.array([0, 2, 2, 0]))
        if where == "labels attribute":
            ans.attrs["class_names"] = names
        elif where == "root attribute":
            handle.attrs["class_names"] = np.array([n.encode() for n in names])
        else:
            handle.create_dataset("class_names", data=np.array([n.encode() for n in names]))
    dataset = Hdf5File(path=str(path), labels_dataset="ans")
    assert dataset.class_names() == names
    assert dataset.labels().tolist() == [0, 2, 2, 0]
    given = Hdf5File(path=str(path), labels_dataset="ans", class_labels=["a", "b", "c"])
    assert given.class_names() == ["a", "b", "c"]


def test_per_object_class_names_from_the_label_attribute(tmp_path):
    path = tmp_path / "first.h5"
    write_objects(path)
    with h5py.File(path, "a") as handle:
        handle["data_0/Label_literature"].attrs["class_names"] = ["FRI", "FRII", "compact",
                                                                  "bent"]
    dataset = Hdf5File(path=str(path), images="data_*/Img",
                       labels_dataset="data_*/Label_literature")
    assert dataset.class_names() == ["FRI", "FRII", "compact", "bent"]


def test_experiment_entry_with_per_object_groups_and_select(tmp_path, registry):
    from clustergrid.spec import parse_datasets
    from clustergrid.stages import build

    path = tmp_path / "first.h5"
    write_objects(path)
    (choice,) = parse_datasets(
        f"plugin: hdf5\npath: {path}\nimages: 'data_*/Img'\n"
        "labels_dataset: 'data_*/Label_literature'\nselect: 'data_*/Split_literature'\n"
        "select_values: [[train]]\nclass_labels: [[FRI, FRII, compact, bent]]\n", registry)
    dataset = build(choice.dataset, registry)
    assert len(dataset) == 8 and dataset.class_names() == ["FRI", "FRII", "compact", "bent"]

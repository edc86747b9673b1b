"""The ``layout`` rule shared by the ``npy`` and ``hdf5`` loaders, and the ``npy`` stack's
choice of array and class names."""

from __future__ import annotations

import re

import numpy as np
import pytest

from clustergrid.plugins.datasets.npy import NpyFiles
from clustergrid.plugins.support.layout import resolve_layout

h5py = pytest.importorskip("h5py")

from clustergrid.plugins.datasets.hdf5 import Hdf5File  # noqa: E402


def noise(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


#: layout -> (stored stack, the same images as (n, c, h, w)). The explicit layouts use
#: shapes that ``auto`` cannot decide, so that only the parameter can get them right.
def stored(layout: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    if layout == "nhwc":
        stack = noise((5, 4, 6, 2), seed)
        return stack, stack.transpose(0, 3, 1, 2)
    if layout == "nchw":
        stack = noise((5, 3, 4, 6), seed)
        return stack, stack
    if layout == "nhw":
        stack = noise((5, 4, 6), seed)
        return stack, stack[:, None]
    raise AssertionError(layout)


AUTO_CASES = {  # auto: stored shape -> its (n, c, h, w) version
    "nhwc": lambda s: (noise((5, 8, 6, 3), s), lambda a: a.transpose(0, 3, 1, 2)),
    "nchw": lambda s: (noise((5, 2, 8, 6), s), lambda a: a),
    "nhw": lambda s: (noise((5, 8, 6), s), lambda a: a[:, None]),
}


def cases():
    for layout in ("nhwc", "nchw", "nhw"):
        yield pytest.param(layout, *stored(layout), id=layout)
    for shape_of, make in AUTO_CASES.items():
        stack, to_nchw = make(1)
        yield pytest.param("auto", stack, to_nchw(stack), id=f"auto-{shape_of}")


def save_stack(kind: str, folder, stack: np.ndarray) -> str:
    """The stack as a ``.npy``, a ``.npz``, a folder of one ``.npy`` per image or an
    HDF5 file; returns the path to give the loader."""
    if kind == "npy":
        np.save(folder / "stack.npy", stack)
        return str(folder / "stack.npy")
    if kind == "npz":
        np.savez(folder / "stack.npz", images=stack, labels=np.arange(len(stack)))
        return str(folder / "stack.npz")
    if kind == "files":
        for i, image in enumerate(stack):
            np.save(folder / f"img_{i:02d}.npy", image)
        return str(folder)
    with h5py.File(folder / "stack.h5", "w") as handle:
        handle.create_dataset("images", data=stack)
        for i, image in enumerate(stack):
            handle.create_dataset(f"obj_{i}/Img", data=image)
    return str(folder / "stack.h5")


@pytest.mark.parametrize(("layout", "stack", "expected"), list(cases()))
@pytest.mark.parametrize("kind", ["npy", "npz", "files", "hdf5", "hdf5-groups"])
def test_every_layout_on_every_array_loader(kind, layout, stack, expected, tmp_path):
    path = save_stack(kind.split("-")[0], tmp_path, stack)
    if kind == "hdf5":
        dataset = Hdf5File(path=path, layout=layout)
    elif kind == "hdf5-groups":
        dataset = Hdf5File(path=path, images="obj_*/Img", layout=layout)
    else:
        dataset = NpyFiles(path=path, layout=layout)
    assert dataset.image_shape == expected.shape[1:]
    np.testing.assert_array_equal(dataset.read(0, len(dataset)), expected)
    np.testing.assert_array_equal(dataset.read(2, 4), expected[2:4])


def test_rgb_cutouts_in_an_npz_are_channels_last(tmp_path):
    stack = (noise((6, 64, 64, 3), 2) * 255).astype(np.uint8)
    np.savez(tmp_path / "cutouts.npz", images=stack)
    dataset = NpyFiles(path=str(tmp_path / "cutouts.npz"))
    assert dataset.image_shape == (3, 64, 64)
    np.testing.assert_array_equal(dataset.read(0, 6), stack.transpose(0, 3, 1, 2))


def test_five_bands_first_are_channels_first(tmp_path):
    # ugriz cutouts: more than 4 bands, fewer than the pixels on either side.
    stack = noise((6, 5, 32, 32), 0)
    np.save(tmp_path / "ugriz.npy", stack)
    dataset = NpyFiles(path=str(tmp_path / "ugriz.npy"))
    assert dataset.image_shape == (5, 32, 32)
    np.testing.assert_array_equal(dataset.read(0, 6), stack)


@pytest.mark.parametrize("shape", [(6, 3, 3, 3), (6, 4, 64, 2), (6, 32, 32, 6)])
def test_an_undecidable_stack_names_the_file_the_shape_and_the_layouts(tmp_path, shape):
    np.save(tmp_path / "cube.npy", noise(shape, 0))
    with pytest.raises(ValueError) as error:
        len(NpyFiles(path=str(tmp_path / "cube.npy")))
    message = str(error.value)
    assert "cube.npy" in message and str(shape) in message
    assert "set layout: nhwc (n, h, w, c), nchw (n, c, h, w) or nhw (n, h, w)" in message


def test_an_explicit_layout_that_does_not_fit_the_rank_is_an_error(tmp_path):
    np.save(tmp_path / "rgb.npy", noise((4, 8, 8, 3), 0))
    with pytest.raises(ValueError, match=r"rgb\.npy has shape \(4, 8, 8, 3\); expected "
                                         r"\(n, h, w\).*\(layout: nhw\)"):
        len(NpyFiles(path=str(tmp_path / "rgb.npy"), layout="nhw"))


def test_an_undecidable_image_file_is_a_bad_item_naming_its_shape(tmp_path):
    np.save(tmp_path / "good.npy", noise((8, 8, 3), 0))
    np.save(tmp_path / "cube.npy", noise((3, 3, 3), 1))
    with pytest.raises(ValueError, match=r"cube\.npy: image has shape \(3, 3, 3\): cannot "
                                         r"tell .*set layout: nhwc \(h, w, c\)"):
        len(NpyFiles(path=str(tmp_path)))
    skipping = NpyFiles(path=str(tmp_path), on_error="skip")
    assert list(skipping.ids()) == ["good"] and skipping.image_shape == (3, 8, 8)


@pytest.mark.parametrize(
    ("shape", "layout"),
    [((8, 8), "nhw"), ((8, 8, 3), "nhwc"), ((3, 8, 8), "nchw"), ((1, 64, 64), "nchw")],
)
def test_auto_layout_of_one_image(shape, layout):
    assert resolve_layout(shape, "auto", "a.npy", stacked=False) == layout


def test_unknown_layout_value_is_refused():
    with pytest.raises(ValueError, match="layout must be auto, nhwc, nchw or nhw, not 'hwc'"):
        resolve_layout((4, 8, 8), "hwc", "a.npy")


# -- npz arrays and class names ----------------------------------------------------------
def test_npz_class_names_name_the_stored_codes(tmp_path):
    stack = noise((6, 8, 8, 3), 3)
    codes = np.array([0, 2, 2, -1, 3, 0])  # class 1 has no item: codes are kept
    np.savez(tmp_path / "s.npz", images=stack, y=codes,
             class_names=np.array(["FRI", "FRII", "compact", "bent"]))
    dataset = NpyFiles(path=str(tmp_path / "s.npz"), labels_array="y")
    assert dataset.class_names() == ["FRI", "FRII", "compact", "bent"]
    assert dataset.labels().tolist() == [0, 2, 2, -1, 3, 0]
    assert dataset.image_shape == (3, 8, 8)  # the only array with 3 or more axes

    given = NpyFiles(path=str(tmp_path / "s.npz"), labels_array="y",
                     class_labels=["a", "b", "c", "d"])
    assert given.class_names() == ["a", "b", "c", "d"]
    assert given.labels().tolist() == [0, 2, 2, -1, 3, 0]
    assert given.fingerprint() != dataset.fingerprint()
    with pytest.raises(ValueError, match=r"class_labels names 2 classes but the labels go "
                                         r"up to code 3"):
        NpyFiles(path=str(tmp_path / "s.npz"), labels_array="y",
                 class_labels=["a", "b"]).labels()


def test_npz_without_class_names_names_classes_by_code_and_bytes_names_decode(tmp_path):
    np.savez(tmp_path / "plain.npz", images=noise((4, 8, 8), 4), y=np.array([0, 2, 2, 0]))
    plain = NpyFiles(path=str(tmp_path / "plain.npz"), labels_array="y")
    assert plain.class_names() == ["0", "1", "2"] and plain.labels().tolist() == [0, 2, 2, 0]
    np.savez(tmp_path / "b.npz", images=noise((4, 8, 8), 4), y=np.array([0, 1, 1, 0]),
             class_names=np.array([b"lens", b"no lens"]))
    named = NpyFiles(path=str(tmp_path / "b.npz"), labels_array="y")
    assert named.class_names() == ["lens", "no lens"]
    np.savez(tmp_path / "short.npz", images=noise((4, 8, 8), 4), y=np.array([0, 1, 2, 0]),
             class_names=np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"the class_names array names 2 classes"):
        NpyFiles(path=str(tmp_path / "short.npz"), labels_array="y").labels()


def test_npz_with_several_stacks_asks_for_array_with_a_short_list(tmp_path):
    arrays = {f"cube{i}": noise((2, 8, 8), i) for i in range(15)}
    np.savez(tmp_path / "many.npz", **arrays)
    with pytest.raises(ValueError, match=r"many\.npz: holds cube0 \(2, 8, 8\), cube1 .*cube9 "
                                         r"\(2, 8, 8\), and 5 more; name the images with "
                                         r"array$"):
        len(NpyFiles(path=str(tmp_path / "many.npz")))
    picked = NpyFiles(path=str(tmp_path / "many.npz"), array="cube3")
    np.testing.assert_array_equal(picked.read(0, 2)[:, 0], arrays["cube3"])


def test_class_labels_need_label_codes(tmp_path):
    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "x.npy", noise((8, 8), 0))
    dataset = NpyFiles(path=str(tmp_path), labels_from="folders", class_labels=["z"])
    with pytest.raises(ValueError, match="class_labels names integer label codes"):
        dataset.labels()


def test_layout_and_class_labels_are_parameters_in_the_fingerprint(tmp_path):
    np.save(tmp_path / "s.npy", noise((4, 8, 8), 0))
    base = NpyFiles(path=str(tmp_path / "s.npy"))
    assert {"layout", "class_labels"} <= base.get_params().keys()
    assert NpyFiles(path=str(tmp_path / "s.npy"), layout="nhw").fingerprint() != \
        base.fingerprint()


def test_experiment_entry_takes_layout_and_class_labels(tmp_path, registry):
    from clustergrid.errors import SpecError
    from clustergrid.spec import parse_datasets
    from clustergrid.stages import build

    np.savez(tmp_path / "s.npz", images=noise((4, 8, 8, 3), 0), y=np.array([0, 1, 1, 0]))
    (choice,) = parse_datasets(
        f"plugin: npy\npath: {tmp_path / 's.npz'}\nlabels_array: y\n"
        "class_labels: [[cat, dog]]\nlayout: nhwc\n", registry)
    dataset = build(choice.dataset, registry)
    assert dataset.class_names() == ["cat", "dog"] and dataset.image_shape == (3, 8, 8)
    with pytest.raises(SpecError, match=re.escape("layout")):
        parse_datasets(f"plugin: npy\npath: {tmp_path / 's.npz'}\nlayout: chw\n", registry)

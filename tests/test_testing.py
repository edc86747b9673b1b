"""clustergrid.testing, the conformance kit for plugin authors: every built-in component
passes it, and components broken in each way it checks are caught with a message naming
the component and the rule."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from clustergrid import Clusterer, Dataset, Encoder, Metric, Reducer, Transform
from clustergrid.registry import Registry
from clustergrid.testing import (
    HEAVY_MODULES,
    ContractError,
    check_clusterer,
    check_component,
    check_dataset,
    check_encoder,
    check_imports,
    check_metric,
    check_names,
    check_reducer,
    check_transform,
)

# ------------------------------------------------------------------ built-in components

#: small parameters, so the whole file runs in well under a minute on two cores
BUILTIN_PARAMS = {
    ("dataset", "blobs"): {"n_samples": 30, "n_features": 4},
    ("dataset", "digits"): {"n_samples": 30},
    ("dataset", "noise"): {"n_samples": 20, "size": 8},
    ("dataset", "sim-cherenkov"): {"n_samples": 12, "size": 16},
    ("dataset", "sim-galaxies"): {"n_samples": 12, "size": 16},
    ("dataset", "sim-lenses"): {"n_samples": 12, "size": 16},
    ("transform", "channels"): {"select": (0, 2)},
    ("transform", "crop"): {"size": 8},
    ("transform", "resize"): {"size": 8},
    ("encoder", "autoencoder"): {"epochs": 1, "depth": 2, "channels": 4, "latent_dim": 4},
    ("encoder", "denoising-contrastive"): {"epochs": 1, "depth": 2, "channels": 4,
                                           "latent_dim": 8},
    ("encoder", "simclr"): {"epochs": 1, "channels": (4, 8), "batch_size": 16},
    ("encoder", "classifier"): {"epochs": 1, "width": 4, "embedding_dim": 8},
    ("reducer", "umap"): {"n_components": 2, "n_epochs": 20},
    ("reducer", "tsne"): {"max_iter": 250, "perplexity": 5.0},
    ("clusterer", "kmeans"): {"n_clusters": 3, "n_init": 1},
    ("clusterer", "gmm"): {"n_clusters": 3},
}

#: built-ins the kit cannot run here, and why
NOT_CHECKED = {
    ("dataset", "fits"): "reads FITS files: needs a path (tests/test_loaders.py)",
    ("dataset", "hdf5"): "reads an HDF5 file: needs a path (checked on a file below)",
    ("dataset", "images"): "reads image files: needs a path (tests/test_loaders.py)",
    ("dataset", "npy"): "reads .npy files: needs a path (checked on a file below)",
    ("dataset", "simtel"): "reads sim_telarray files with ctapipe (tests/test_simtel.py)",
    ("dataset", "table"): "reads a table file: needs a path (tests/test_table.py)",
    ("encoder", "pretrained"): "needs a model's weights (tests/test_pretrained.py)",
}


def builtin_components() -> list:
    params = []
    for info in Registry.load().all():
        key = (info.kind, info.name)
        marks = [pytest.mark.skip(reason=NOT_CHECKED[key])] if key in NOT_CHECKED else []
        if key == ("reducer", "umap"):
            marks.append(pytest.mark.slow)  # numba compiles UMAP for ~15 s
        params.append(pytest.param(info, id=f"{info.kind}-{info.name}", marks=marks))
    return params


def test_clustergrid_itself_imports_nothing_heavy():
    """The heavy-import rule charges a plugin with what importing it adds to what
    ``import clustergrid`` already did: that must be nothing heavy."""
    code = ("import sys, clustergrid, clustergrid.testing\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY_MODULES!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_builtin_modules_import_nothing_heavy():
    # One interpreter for every module; the per-component checks below reuse the result.
    check_imports(*(info.cls for info in Registry.load().all()))


@pytest.mark.parametrize("info", builtin_components())
def test_builtin_component_follows_the_contract(info):
    key = (info.kind, info.name)
    check_component(info.cls, BUILTIN_PARAMS.get(key))


def test_file_datasets_follow_the_contract(tmp_path):
    import h5py

    from clustergrid.plugins.datasets.hdf5 import Hdf5File
    from clustergrid.plugins.datasets.npy import NpyFiles

    images = np.random.default_rng(0).random((10, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "images.npy", images)
    check_dataset(NpyFiles, {"path": str(tmp_path / "images.npy")})
    with h5py.File(tmp_path / "images.h5", "w") as handle:
        handle["images"] = images
        handle["labels"] = np.arange(10) % 2
    check_dataset(Hdf5File, {"path": str(tmp_path / "images.h5"), "labels_dataset": "labels"})


# ------------------------------------------------------------------ well-behaved examples


class Tiny(Dataset):
    """Twelve 1 x 4 x 4 images, item i filled with i; two classes."""

    name = "test-tiny"
    image_shape = (1, 4, 4)

    def __init__(self, n_samples: int = 12):
        self.n_samples = n_samples

    def __len__(self):
        return self.n_samples

    def read(self, start, stop):
        return np.arange(start, stop, dtype=np.float32)[:, None, None, None] * np.ones(
            (1, 1, 4, 4), dtype=np.float32)

    def labels(self):
        return np.arange(self.n_samples) % 2

    def class_names(self):
        return ["even", "odd"]


class Negate(Transform):
    """Negated images."""

    name = "test-negate"

    def transform(self, images):
        return -np.asarray(images)


class ChannelMeans(Encoder):
    """Mean of each channel."""

    name = "test-channel-means"

    def transform(self, images):
        return np.asarray(images).mean(axis=(2, 3), dtype=np.float32)


class FirstColumns(Reducer):
    """The first ``k`` columns."""

    name = "test-first-columns"

    def __init__(self, k: int = 2):
        self.k = k

    def fit_transform(self, X):
        return np.asarray(X)[:, : self.k]


class Halves(Clusterer):
    """Cluster 0 below the first column's median, 1 above."""

    name = "test-halves"

    def fit_predict(self, X):
        X = np.asarray(X)
        return (X[:, 0] > np.median(X[:, 0])).astype(np.int64)


class ShareOfFirst(Metric):
    """Share of items in cluster 0."""

    name = "test-share-of-first"
    direction = "descriptive"

    def compute(self, X, labels, true_labels=None):
        return float(np.mean(labels == 0))


@pytest.mark.parametrize("cls", [Tiny, Negate, ChannelMeans, FirstColumns, Halves,
                                 ShareOfFirst])
def test_well_behaved_components_pass(cls):
    check_component(cls)


def test_check_kind_refuses_another_kind_and_missing_parameters():
    with pytest.raises(TypeError, match=r"is not a clustergrid\.Encoder"):
        check_encoder(Halves)
    from clustergrid.plugins.datasets.npy import NpyFiles

    with pytest.raises(TypeError, match=r"needs parameters \['path'\]"):
        check_dataset(NpyFiles)
    with pytest.raises(ValueError, match="no check named"):
        check_reducer(FirstColumns, skip=["typo"])
    assert "degenerate_input" in check_names("reducer")


# ------------------------------------------------------------------ broken components


def broken(check, cls, *fragments, params=None):
    """``check(cls)`` raises a ContractError naming the component and every fragment."""
    with pytest.raises(ContractError) as error:
        check(cls, params)
    message = str(error.value)
    assert f"'{cls.name}' ({cls.__module__}.{cls.__qualname__})" in message
    for fragment in fragments:
        assert fragment in message, message
    return message


class FlatEncoder(ChannelMeans):
    """One number per image, as a 1-d array."""

    name = "test-flat"

    def transform(self, images):
        return np.asarray(images).mean(axis=(1, 2, 3))


def test_wrong_output_shape():
    broken(check_encoder, FlatEncoder, "returned shape (40,)", "expected (n, d)")


class FloatLabels(Halves):
    """Whole-number labels as float64."""

    name = "test-float-labels"

    def fit_predict(self, X):
        return super().fit_predict(X).astype(np.float64)


class GappedLabels(Halves):
    """Clusters 0 and 2."""

    name = "test-gapped"

    def fit_predict(self, X):
        return super().fit_predict(X) * 2


def test_clusterer_labels_must_be_integers_numbered_without_gaps():
    broken(check_clusterer, FloatLabels, "dtype float64", "integer")
    broken(check_clusterer, GappedLabels, "[0, 2]", "0..k-1 without gaps")


class StatefulInit(FirstColumns):
    """Prepares its model in __init__."""

    name = "test-stateful"

    def __init__(self, k: int = 2):
        self.k = k
        self.model_ = None


class ConvertingInit(FirstColumns):
    """Converts its parameter in __init__."""

    name = "test-converting"

    def __init__(self, k: int = 2):
        self.k = float(k)


class KwargsInit(FirstColumns):
    """Takes **kwargs."""

    name = "test-kwargs"

    def __init__(self, k: int = 2, **options):
        self.k = k


class ListDefault(FirstColumns):
    """A list default."""

    name = "test-list-default"

    def __init__(self, k: list = [2]):  # noqa: B006 - the mistake under test
        self.k = k


class ChangesParams(FirstColumns):
    """Overwrites its parameter while fitting."""

    name = "test-changes-params"

    def fit_transform(self, X):
        self.k = 1
        return super().fit_transform(X)


def test_parameter_rules():
    broken(check_reducer, StatefulInit, "__init__ sets ['model_']", "only store its parameters")
    broken(check_reducer, ConvertingInit, "stores parameter 'k' as 2.0, given 2", "unchanged")
    broken(check_reducer, KwargsInit, "**options", "named keyword argument")
    broken(check_reducer, ListDefault, "defaults to [2]", "tuples")
    broken(check_reducer, ChangesParams, "fitting changed its parameters")


def test_heavy_import_at_module_level(tmp_path, monkeypatch):
    (tmp_path / "cg_heavy_plugin.py").write_text(textwrap.dedent('''
        import sklearn  # the mistake: at import time, for every command and worker
        import numpy as np
        from clustergrid import Reducer

        class Heavy(Reducer):
            """Imports scikit-learn when its module is imported."""

            name = "test-heavy"

            def fit_transform(self, X):
                return np.asarray(X)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("cg_heavy_plugin")
    monkeypatch.delitem(sys.modules, "cg_heavy_plugin")
    broken(check_reducer, module.Heavy, "importing its module cg_heavy_plugin imports",
           "sklearn", "inside the methods")


def test_module_that_does_not_import_again():
    lost = type("Lost", (FirstColumns,), {"__doc__": "Made up.", "name": "test-lost",
                                          "__module__": "cg_no_such_module"})
    broken(check_reducer, lost, "does not import in a fresh process", "ModuleNotFoundError")


class Forgetful(Reducer):
    """Adds noise from an unseeded generator."""

    name = "test-forgetful"

    def __init__(self, random_state: int | None = None):
        self.random_state = random_state

    def fit_transform(self, X):
        return X + np.random.default_rng().normal(size=X.shape)


def test_stochastic_component_must_follow_its_seed():
    broken(check_reducer, Forgetful, "two runs with random_state=0 gave different output")


class PerBatch(Negate):
    """Scales each batch by its maximum."""

    name = "test-per-batch"

    def transform(self, images):
        return np.asarray(images) / np.max(images)


class InPlace(ChannelMeans):
    """Centres the images in place."""

    name = "test-in-place"

    def transform(self, images):
        images -= 0.5
        return super().transform(images)


def test_images_are_processed_row_by_row_and_left_alone():
    broken(check_transform, PerBatch, "transform(images[0:20]) differs from transform(images)")
    broken(check_encoder, InPlace, "raised ValueError", "read-only")


class DividesBySpread(FirstColumns):
    """Standardises with no guard against zero spread."""

    name = "test-divides"

    def fit_transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (X - X.mean(0)) / X.std(0)


class Obscure(FirstColumns):
    """Fails on identical points with an IndexError."""

    name = "test-obscure"

    def fit_transform(self, X):
        if np.ptp(X) == 0:
            return np.asarray(X)[:, [99]]
        return super().fit_transform(X)


def test_degenerate_input_needs_a_value_error_or_finite_output():
    broken(check_reducer, DividesBySpread, "40 identical items", "NaN or infinite")
    broken(check_reducer, Obscure, "40 identical items raised IndexError", "raise ValueError")


class Chatty(ShareOfFirst):
    """Returns its score as text."""

    name = "test-chatty"

    def compute(self, X, labels, true_labels=None):
        return f"{np.mean(labels == 0):.2f}"


class Silent(ShareOfFirst):
    """Returns nothing."""

    name = "test-silent"

    def compute(self, X, labels, true_labels=None):
        return None


class BadKey(ShareOfFirst):
    """A dict with a text value."""

    name = "test-bad-key"

    def compute(self, X, labels, true_labels=None):
        return {"test-bad-key": 1.0, "test-bad-key.note": "fine"}


class Clashing(ShareOfFirst):
    """Logs a key another metric logs."""

    name = "test-clashing"

    def compute(self, X, labels, true_labels=None):
        return {"test-clashing": 1.0, "ari": 0.5}


class Raising(ShareOfFirst):
    """Raises when there is a single cluster."""

    name = "test-raising"

    def compute(self, X, labels, true_labels=None):
        if len(np.unique(labels)) < 2:
            raise ZeroDivisionError("one cluster")
        return 1.0


class BadDirection(ShareOfFirst):
    """Declares an unknown direction."""

    name = "test-bad-direction"
    direction = "up"


def test_metric_rules():
    broken(check_metric, Chatty, "returned '0.", "(str)", "must return a number")
    broken(check_metric, Silent, "returned None")
    broken(check_metric, BadKey, "{'test-bad-key.note': 'fine'}", "a dict maps names to numbers")
    broken(check_metric, Clashing, "logs ['ari']", "already logged")
    broken(check_metric, Raising, "a single cluster raised ZeroDivisionError", "return NaN")
    broken(check_metric, BadDirection, "declares direction 'up'")


class FloatRead(Tiny):
    """Reads float64."""

    name = "test-float-read"

    def read(self, start, stop):
        return super().read(start, stop).astype(np.float64)


class FloatCodes(Tiny):
    """Labels as floats."""

    name = "test-float-codes"

    def labels(self):
        return super().labels().astype(float)


class Unnamed(Tiny):
    """Names one class of two."""

    name = "test-unnamed"

    def class_names(self):
        return ["even"]


class SameIds(Tiny):
    """Gives every item the same id."""

    name = "test-same-ids"

    def ids(self):
        return np.array(["x"] * len(self))


def test_dataset_rules():
    broken(check_dataset, FloatRead, "dtype float64, expected float32")
    broken(check_dataset, FloatCodes, "dtype float64", "integers")
    broken(check_dataset, Unnamed, "holds class 1 but class_names() names 1 classes")
    broken(check_dataset, SameIds, "duplicates")


class Impostor(ChannelMeans):
    """Takes the name of a built-in."""

    name = "pixels"


class Undocumented(ChannelMeans):
    name = "test-undocumented"


def test_name_must_be_free_and_documented():
    broken(check_encoder, Impostor, "already taken by clustergrid.plugins.encoders.pixels.Pixels")
    broken(check_encoder, Undocumented, "has no docstring")


def test_manual_example_runs(tmp_path, monkeypatch):
    """The manual's "Testing a plugin" file (docs/plugins.md), run as written against its
    brightness plugin."""
    from manual import python_block

    for first_line, module in (("# brightness_plugin.py", "brightness_plugin"),
                               ("# tests/test_brightness.py", "cg_readme_test_brightness")):
        (tmp_path / f"{module}.py").write_text(python_block(first_line))
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("brightness_plugin", "cg_readme_test_brightness"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    tests = importlib.import_module("cg_readme_test_brightness")
    try:
        tests.test_brightness_follows_the_contract()
        tests.test_on_large_images()
    finally:
        for module in ("brightness_plugin", "cg_readme_test_brightness"):
            sys.modules.pop(module, None)

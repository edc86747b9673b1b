"""The manual's plugin examples, run as written: the module of one component of each
kind is taken from docs/plugins.md, registered, and used in a grid with the built-ins."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from conftest import write_experiment
from manual import python_block
from mlflow.tracking import MlflowClient

from clustergrid import runner
from clustergrid.registry import Registry
from clustergrid.results import load_results
from clustergrid.spec import load_experiment


@pytest.fixture
def lab_plugin(tmp_path, monkeypatch):
    (tmp_path / "lab_plugin.py").write_text(python_block("# lab_plugin.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("lab_plugin", None)
    yield importlib.import_module("lab_plugin")
    sys.modules.pop("lab_plugin", None)


LAB = """\
name: lab
seeds: [0, 1]
datasets:
  - plugin: rings
    n_samples: 150
transforms:
  - plugin: normalize
    method: minmax
  - plugin: log_stretch
    a: 100
encoders:
  - plugin: pixels
reducers:
  - plugin: random_projection
    n_components: 32
  - plugin: pca
    n_components: 5
clusterers:
  - plugin: optics
  - plugin: kmeans
    n_clusters: 3
metrics: [ari, noise_share]
executor: {workers: 1}
"""


def test_one_component_of_each_kind_runs_in_a_grid_with_the_builtins(lab_plugin, workdir):
    registry = Registry.load(extra=[lab_plugin])
    owners = {(info.kind, info.name) for info in registry.all() if info.plugin != "builtin"}
    assert owners == {("dataset", "rings"), ("transform", "log_stretch"),
                      ("reducer", "random_projection"), ("clusterer", "optics"),
                      ("metric", "noise_share")}
    experiment = load_experiment(write_experiment(workdir, LAB), registry)
    summary = runner.run(experiment, registry)
    # The random projection takes a seed (two runs each); PCA and OPTICS do not.
    assert summary.failed == [] and summary.finished == 2 * 2 + 1 + 2
    frame = load_results(None, "lab")
    # Three rings of different radii: k-means on PCA of the pixels recovers them.
    kmeans_pca = frame[frame["pipeline"].str.contains(r"pca.*kmeans", regex=True)]
    assert (kmeans_pca["ari"] > 0.9).all()
    # The descriptive metric is what it says: the share of items labelled -1.
    client = MlflowClient(summary.tracking_uri)
    for _, row in frame[frame["param.clusterer"] == "optics"].iterrows():
        path = client.download_artifacts(row["run_id"], "labels.csv", str(workdir))
        labels = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1)
        assert row["noise_share"] == pytest.approx(np.mean(labels == -1))


def test_the_example_dataset_reads_the_same_items_in_any_slices(lab_plugin):
    rings = lab_plugin.Rings(n_samples=10, size=16)
    whole = rings.read(0, 10)
    assert whole.shape == (10, *rings.image_shape) and whole.dtype == np.float32
    np.testing.assert_array_equal(np.concatenate([rings.read(0, 4), rings.read(4, 10)]), whole)
    stretched = lab_plugin.LogStretch(a=100).transform(np.clip(whole, 0, 1))
    assert stretched.shape == whole.shape and 0 <= stretched.min() <= stretched.max() <= 1


def test_the_example_components_pass_the_conformance_kit(lab_plugin):
    from clustergrid.testing import check_component

    for cls in (lab_plugin.Rings, lab_plugin.LogStretch, lab_plugin.RandomProjection,
                lab_plugin.Optics, lab_plugin.NoiseShare):
        check_component(cls)

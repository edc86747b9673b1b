"""Memory known before a step runs: components' declarations, the conformance kit's check
of them, the dry run's column, and the refusal of a step that cannot fit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cli, write_experiment

from clustergrid import memory
from clustergrid.components import Clusterer, Component
from clustergrid.memory import (
    FLOAT32,
    FLOAT64,
    MemoryRefused,
    Need,
    WorkerMemory,
    gaussian_mixture_bytes,
    human_bytes,
    parse_size,
    refusal,
    stage_needs,
    worker_memory,
)
from clustergrid.registry import Registry
from clustergrid.testing import ContractError, check_clusterer
from clustergrid.testing.case import Case
from clustergrid.testing.declarations import memory_estimate_valid


@pytest.fixture(scope="module")
def registry():
    return Registry.load()


def built(registry, kind: str, name: str, **params):
    return registry.get(kind, name).cls(**params)


# -- the declarations' arithmetic ------------------------------------------------------


def test_gmm_declares_its_covariance_matrices(registry):
    n, d = 600, 22_500
    full = built(registry, "clusterer", "gmm", n_clusters=4).memory_estimate(n, d)
    # four d x d float64 matrices per component, two n x d and three n x k temporaries
    assert full == 4 * 4 * d * d * 8 + (2 * n * d + 3 * n * 4) * 8
    assert human_bytes(full) == "61 GiB"
    diag = built(registry, "clusterer", "gmm", n_clusters=4, covariance_type="diag")
    assert diag.memory_estimate(n, d) == (2 * n * d + 3 * n * 4) * 8
    tied = built(registry, "clusterer", "gmm", n_clusters=4, covariance_type="tied")
    assert tied.memory_estimate(n, d) == 4 * d * d * 8 + (2 * n * d + 3 * n * 4) * 8


def test_gmm_auto_counts_the_largest_k_the_kept_model_and_the_silhouette(registry):
    gmm = built(registry, "clusterer", "gmm", n_clusters="auto", k_range=(2, 6))
    n, d = 500, 100
    assert gmm.memory_estimate(n, d) == (
        gaussian_mixture_bytes(n, d, 6, "full") + 4 * 5 * d * d * 8  # the best so far
        + n * n * 8 + 4 * n * 8)  # silhouettes of every k: exact below 10,000 points


def test_the_dry_run_costs_and_gmm_share_one_formula(registry):
    from clustergrid.costs import MixtureCost

    cost = MixtureCost(n=200, d=1000, ks=(2, 3, 4), covariance_type="full")
    gmm = built(registry, "clusterer", "gmm", n_clusters=4)
    assert cost.memory_bytes == gmm.memory_estimate(200, 1000)


def test_quadratic_clusterers_declare_n_squared(registry):
    n, d = 4000, 20
    ward = built(registry, "clusterer", "agglomerative", n_clusters=4)
    # the condensed distances and the copy SciPy merges in: n^2 float64, and the data
    assert ward.memory_estimate(n, d) == n * n * 8 + n * d * 8
    rbf = built(registry, "clusterer", "spectral", n_clusters=4, affinity="rbf")
    assert rbf.memory_estimate(n, d) == 4 * n * n * 8 + n * d * 8
    graph = built(registry, "clusterer", "spectral", n_clusters=4, n_neighbors=10)
    assert graph.memory_estimate(n, d) == n * 10 * 16 * 6 + n * n * 2 + n * d * 8
    generic = built(registry, "clusterer", "hdbscan", metric="cosine")
    assert generic.memory_estimate(n, d) == 2 * n * n * 8 + n * d * 8
    boruvka = built(registry, "clusterer", "hdbscan", min_cluster_size=5)
    assert boruvka.memory_estimate(n, d) < n * n  # linear: core distances and a tree
    assert boruvka.memory_estimate(2 * n, d) == 2 * boruvka.memory_estimate(n, d)


def test_linear_components_declare_copies_of_the_data(registry):
    n, d = 10_000, 300
    kmeans = built(registry, "clusterer", "kmeans", n_clusters=8)
    assert kmeans.memory_estimate(n, d) == (n * d + 3 * 8 * d + 2 * n * 8 + 4 * n) * FLOAT32
    pca = built(registry, "reducer", "pca")
    assert pca.memory_estimate(n, d) == (n * d + 2 * (n * d + d * d)) * FLOAT32
    assert built(registry, "reducer", "none").memory_estimate(n, d) == 0


def test_silhouette_declares_the_distances_of_what_it_scores(registry):
    silhouette = built(registry, "metric", "silhouette")
    assert silhouette.memory_estimate(5000, 10) == 5000 * 5000 * 8 + 4 * 5000 * 8
    # above max_exact it scores samples of sample_size points
    assert silhouette.memory_estimate(50_000, 10) == 2000 * 2000 * 8 + 4 * 2000 * 8


def test_undeclared_is_none():
    class Quiet(Clusterer):
        """Declares nothing."""

        name = "quiet"

    assert Quiet().memory_estimate(10, 2) is None
    assert memory.estimate(Quiet(), 10, 2) is None


# -- the conformance kit -----------------------------------------------------------------


def _clusterer(estimate):
    class Declared(Clusterer):
        """A clusterer with a given memory declaration."""

        name = "declared"

        def memory_estimate(self, n, d):
            return estimate(n, d)

        def fit_predict(self, X):
            return np.zeros(len(X), dtype=np.int64)

    return Declared


@pytest.mark.parametrize("estimate, rule", [
    (lambda n, d: -1, "non-negative number of bytes"),
    (lambda n, d: "1 GB", "non-negative number of bytes"),
    (lambda n, d: float("inf"), "non-negative number of bytes"),
    (lambda n, d: 10**9 // n, "must not shrink as n grows"),
    (lambda n, d: 1 / 0, "memory_estimate(10, 4) raised ZeroDivisionError"),
])
def test_the_kit_refuses_a_broken_declaration(estimate, rule):
    with pytest.raises(ContractError, match="declared") as error:
        memory_estimate_valid(Case(_clusterer(estimate), None, (1, 8, 8), 30))
    assert rule in str(error.value)


def test_the_kit_accepts_none_a_constant_and_the_built_ins(registry):
    for estimate in (lambda n, d: None, lambda n, d: 0, lambda n, d: n * d * 8.0):
        memory_estimate_valid(Case(_clusterer(estimate), None, (1, 8, 8), 30))
    for kind in ("encoder", "reducer", "clusterer", "metric"):
        for info in registry.components[kind].values():
            if all(p.default is not p.empty for p in info.cls.parameters().values()):
                memory_estimate_valid(Case(info.cls, None, (1, 8, 8), 30))
    check_clusterer(_clusterer(lambda n, d: n * n * 8))  # the whole kit, this check in it


# -- what a worker has --------------------------------------------------------------------


def test_sizes_read_as_the_executor_reads_them():
    assert parse_size("500MB") == 500 * 2**20
    assert parse_size("1.5G") == int(1.5 * 2**30)
    assert parse_size("2GiB") == 2 * 2**30
    assert parse_size("123456") == 123456
    assert parse_size("none") is None
    with pytest.raises(Exception, match="CLUSTERGRID_WORKER_MEMORY='lots' is not a size"):
        parse_size("lots")


def test_the_executor_limits_workers_to_what_the_refusal_compares_with(monkeypatch):
    """The refusal and the executor's ``RLIMIT_DATA`` read one limit: the same variable,
    the same units, the same share and floor."""
    from clustergrid import executor

    monkeypatch.setenv("CLUSTERGRID_WORKER_MEMORY", "3GB")
    assert worker_memory(2).limit == executor.worker_memory_limit(2)
    monkeypatch.delenv("CLUSTERGRID_WORKER_MEMORY")
    monkeypatch.setattr(memory, "available", lambda: 16 * 2**30)
    for workers in (1, 3, 64):
        assert worker_memory(workers).limit == executor.worker_memory_limit(workers)


def test_a_worker_has_the_variable_else_its_share(monkeypatch):
    monkeypatch.setenv("CLUSTERGRID_WORKER_MEMORY", "3GB")
    assert worker_memory(4) == WorkerMemory(3 * 2**30, 3 * 2**30, "CLUSTERGRID_WORKER_MEMORY")
    monkeypatch.delenv("CLUSTERGRID_WORKER_MEMORY")
    monkeypatch.setattr(memory, "available", lambda: 16 * 2**30)
    share = worker_memory(4)
    assert (share.limit, share.source) == (4 * 2**30, "16 GiB available over 4 workers")
    assert worker_memory(64).limit == memory.MIN_WORKER_MEMORY  # never below


# -- what a step needs, and the refusal -----------------------------------------------------


def test_a_cluster_step_counts_its_input_and_the_cast(registry):
    gmm = built(registry, "clusterer", "gmm", n_clusters=4, covariance_type="diag")
    (need,) = stage_needs("cluster", [("gmm", gmm)], (1000, 50))
    # the float32 embeddings loaded, their float64 copy (gmm's dtype), the fit
    assert need.bytes == 1000 * 50 * (FLOAT32 + FLOAT64) + gmm.memory_estimate(1000, 50)


def test_the_verdicts_refits_are_sized_as_the_stages_size_them(registry):
    pca = built(registry, "reducer", "pca", n_components=10)
    ward = built(registry, "clusterer", "agglomerative", n_clusters=3)
    needs = stage_needs("subsample", [("pca", pca), ("ward", ward)], (10_000, 64),
                        {"max_points": 1000, "fraction": 0.8})
    assert [(need.component, need.n, need.d) for need in needs] == [
        ("pca", 1000, 64), ("ward", 1000, 10)]
    # the reducer and the clusterer in steps of their own: the clusterer's input shape is
    # the reduced one its second parent saved
    options = {"max_points": 1000, "fraction": 0.8}
    (reducer,) = stage_needs("subsample_reduce", [("pca", pca)], (10_000, 64), options)
    (clusterer,) = stage_needs("subsample", [("ward", ward)], (10_000, 10), options)
    assert reducer == needs[0]
    assert (clusterer.n, clusterer.d) == (1000, 10)
    assert clusterer.bytes == 1000 * 10 * FLOAT32 + ward.memory_estimate(1000, 10)
    (null,) = stage_needs("null", [("ward", ward)], (300, 10), {"max_points": 1000})
    assert null.n == 300  # the reference's size, at most max_points


def test_the_refusal_is_one_line_naming_what_to_do(registry):
    gmm = built(registry, "clusterer", "gmm", n_clusters=4)
    need = stage_needs("cluster", [("gmm[n_clusters=4]", gmm)], (600, 22_500))[0]
    line = refusal(need, WorkerMemory(11 * 2**30, 11 * 2**30, "the memory available"), gmm)
    assert line == (
        "gmm[n_clusters=4] needs about 61 GiB for 600 items x 22,500 features, and a "
        "worker has 11 GiB: use covariance_type: diag, reduce first (pca with "
        "n_components: 50), or give workers more (CLUSTERGRID_WORKER_MEMORY, fewer "
        "--workers)")
    assert "\n" not in line
    ward = built(registry, "clusterer", "agglomerative")
    need = Need("agglomerative", 100_000, 10, ward.memory_estimate(100_000, 10), ward)
    assert "use fewer items (about 38,418 fit)" in refusal(
        need, WorkerMemory(11 * 2**30, 11 * 2**30, "x"), ward)
    assert issubclass(MemoryRefused, memory.ClustergridError)


def test_refuse_unless_fits_reads_the_parents_shape(tmp_path, registry, monkeypatch):
    from clustergrid.cache import Cache
    from clustergrid.plan import Step
    from clustergrid.spec import Component as Choice

    cache = Cache(tmp_path)
    with cache.writer("parent") as folder:
        np.save(folder / "X.npy", np.zeros((600, 2000), dtype=np.float32))
    step = Step("cluster", "child", (Choice("clusterer", "gmm", (("n_clusters", 4),)),),
                ("parent",))
    monkeypatch.setenv("CLUSTERGRID_WORKER_MEMORY", "200MB")
    with pytest.raises(MemoryRefused, match=r"^gmm\[n_clusters=4\] needs about 520 MiB for "
                       r"600 items x 2,000 features, and a worker has 200 MiB: "):
        memory.refuse_unless_fits(step, cache, registry)
    monkeypatch.setenv("CLUSTERGRID_WORKER_MEMORY", "1GB")
    memory.refuse_unless_fits(step, cache, registry)  # fits: nothing said
    missing = Step("cluster", "other", step.components, ("absent",))
    monkeypatch.setenv("CLUSTERGRID_WORKER_MEMORY", "1MB")
    memory.refuse_unless_fits(missing, cache, registry)  # no input known: it runs
    odd = Step("null", "odd", step.components, ("parent",))  # no reference model there
    memory.refuse_unless_fits(odd, cache, registry)  # a layout it does not know: it runs


# -- the grid of the issue, at a reduced size ---------------------------------------------------

GRID = """\
name: pixels-grid
seeds: [0]
datasets:
  - plugin: images
    path: {folder}
encoders:
  - plugin: pixels
reducers:
  - plugin: none
  - plugin: pca
clusterers:
  - plugin: kmeans
    n_clusters: 3
    n_init: 1
  - plugin: gmm
    n_clusters: 3
metrics: [silhouette]
executor: {{workers: 1}}
map: null
"""


@pytest.fixture(scope="module")
def pixels_grid(tmp_path_factory):
    """30 random 150 x 150 PNGs (22,500 features each) and the issue's grid over them."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("pixels")
    rng = np.random.default_rng(0)
    (folder / "pngs").mkdir()
    for index in range(30):
        pixels = (rng.random((150, 150)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "pngs" / f"item{index:02d}.png")
    return folder, write_experiment(folder, GRID.format(folder=folder / "pngs"))


def test_the_dry_run_shows_each_stages_largest_memory(pixels_grid):
    folder, path = pixels_grid
    result = cli("run", str(path), "--dry-run", cwd=folder,
                 env={"CLUSTERGRID_WORKER_MEMORY": "2GB"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "largest memory" in lines[1]
    cluster = next(line for line in lines if line.split()[:1] == ["cluster"])
    assert cluster.split()[4:] == ["45", "GiB,", "refused"]
    assert "Memory: a worker has 2.0 GiB (CLUSTERGRID_WORKER_MEMORY); a step that needs " \
        "more is refused." in lines
    assert ("Refused: cluster step: gmm[n_clusters=3] needs about 45 GiB for 30 items x "
            "22,500 features, and a worker has 2.0 GiB: use covariance_type: diag") in \
        result.stdout


@pytest.mark.slow
def test_a_mixture_that_cannot_fit_fails_alone(pixels_grid):
    """The issue's grid: the full-covariance mixture on raw pixels is refused before it
    starts, with one line; every other combination finishes, the report is written and
    the run exits 1."""
    import mlflow

    folder, path = pixels_grid
    result = cli("run", str(path), cwd=folder, env={"CLUSTERGRID_WORKER_MEMORY": "2GB"})
    assert result.returncode == 1, result.stderr
    assert "Combinations: 3 finished, 1 failed" in result.stdout
    (failed,) = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert "/ pixels / none / gmm[n_clusters=3] / seed=0: gmm[n_clusters=3] needs about " \
        "45 GiB for 30 items x 22,500 features, and a worker has " in failed
    assert "use covariance_type: diag, reduce first (pca with n_components: 50)" in failed
    assert (folder / "clustergrid-runs" / "reports" / "pixels-grid.html").is_file()

    mlflow.set_tracking_uri(f"sqlite:///{folder}/clustergrid-runs/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["pixels-grid"],
                              filter_string="tags.`clustergrid.seed` = '0'")
    by_status = {(row["params.reducer"], row["params.clusterer"]): row
                 for _, row in runs.iterrows()}
    refused = by_status.pop(("none", "gmm"))
    assert refused["status"] == "FAILED"
    assert refused["tags.error.type"] == "MemoryRefused"
    assert refused["tags.error.message"] == failed.split(": ", 1)[1]
    assert {row["status"] for row in by_status.values()} == {"FINISHED"}
    assert len(by_status) == 3


def test_a_plugin_declares_through_the_contract():
    assert Component.memory_estimate.__doc__ and "None" in Component.memory_estimate.__doc__

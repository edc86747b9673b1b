"""The ``table`` dataset: catalogues in every format read the same rows, columns chosen by
name or pattern, the NaN policies, and a Gaia-like table clustered end to end, its
groups found by the label-free verdict."""

from __future__ import annotations

import importlib.util
import io
import math
import mmap
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table as AstropyTable
from conftest import cli
from votlint import assert_valid_votable

from clustergrid import runner
from clustergrid.cache import Cache
from clustergrid.locations import locate
from clustergrid.plugins.datasets.npy import NpyFiles
from clustergrid.plugins.datasets.table import Table
from clustergrid.registry import Registry
from clustergrid.results import load_results
from clustergrid.spec import load_experiment, parse_experiment
from clustergrid.testing import check_component
from clustergrid.verdict import recommend

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def _script():
    spec = importlib.util.spec_from_file_location("make_gaia_table",
                                                  EXPERIMENTS / "make_gaia_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gaia = _script()


@pytest.fixture(scope="module")
def stars():
    """80 simulated stars, some without astrometry (NaN)."""
    table = gaia.make_stars(80, seed=3)
    assert np.isnan(table["parallax"]).any()
    return table


#: suffix -> how astropy or pandas writes it
WRITERS = {
    ".fits": lambda t, p: t.write(p),
    ".vot": lambda t, p: t.write(p, format="votable"),
    ".ecsv": lambda t, p: t.write(p),
    ".csv": lambda t, p: t.to_pandas().to_csv(p, index=False),
    ".parquet": lambda t, p: t.write(p),
    ".h5": lambda t, p: t.write(p, path="stars", serialize_meta=True),
}


def _written(table, folder: Path, suffix: str) -> str:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow", reason="Parquet tables are read through pyarrow")
    if suffix == ".h5":
        pytest.importorskip("h5py", reason="HDF5 tables are read through h5py")
    path = folder / f"stars{suffix}"
    WRITERS[suffix](table, path)
    return str(path)


STAR_PARAMETERS = {"columns": ("pm*", "parallax"), "id_column": "source_id",
                   "label_column": "population", "ra_column": "ra", "dec_column": "dec",
                   "nan_policy": "drop"}


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_every_format_reads_the_same_rows(stars, tmp_path, suffix):
    dataset = Table(_written(stars, tmp_path, suffix), **STAR_PARAMETERS)
    kept = np.isfinite(np.stack([stars[c] for c in ("pmra", "pmdec", "parallax")], 1)).all(1)
    assert len(dataset) == kept.sum() and dataset.image_shape == (1, 1, 3)
    rows = dataset.read(0, len(dataset))
    assert rows.dtype == np.float32 and rows.shape == (kept.sum(), 1, 1, 3)
    expected = np.stack([stars["pmra"], stars["pmdec"], stars["parallax"]], 1)[kept]
    np.testing.assert_allclose(rows[:, 0, 0], expected.astype(np.float32))
    assert dataset.ids().tolist() == [str(i) for i in stars["source_id"][kept]]
    assert dataset.feature_names() == ["pmra", "pmdec", "parallax"]
    # A CSV file has no units; the others keep those of the table.
    assert dataset.feature_units() == (["", "", ""] if suffix == ".csv" else
                                       ["mas / yr", "mas / yr", "mas"])
    names = dataset.class_names()
    assert [names[code] for code in dataset.labels()] == list(stars["population"][kept])
    np.testing.assert_allclose(dataset.sky_positions(),
                               np.stack([stars["ra"], stars["dec"]], 1)[kept])
    assert len(dataset.skipped()) == (~kept).sum()
    # Any batching gives the same rows: the data step reads 256 at a time.
    np.testing.assert_array_equal(np.concatenate([dataset.read(0, 7), dataset.read(7, 30)]),
                                  rows[:30])


def test_the_table_follows_the_dataset_contract(stars, tmp_path):
    path = _written(stars, tmp_path, ".fits")
    check_component(Table, {**STAR_PARAMETERS, "path": path})
    check_component(Table, {"path": path, "columns": "pm*", "nan_policy": "impute"})


def test_a_fits_table_is_memory_mapped(stars, tmp_path):
    dataset = Table(_written(stars, tmp_path, ".fits"), **STAR_PARAMETERS)
    len(dataset)
    # The column's values are a view of the file's pages, not a copy of them.
    base = dataset._open().column("pmra")
    while getattr(base, "base", None) is not None:
        base = base.base
    assert isinstance(base, mmap.mmap)


def test_columns_by_name_or_pattern(stars, tmp_path):
    path = _written(stars, tmp_path, ".fits")
    assert Table(path, columns="pm*", nan_policy="drop").feature_names() == ["pmra", "pmdec"]
    assert Table(path, columns=("parallax", "pm*"), nan_policy="drop").feature_names() == [
        "parallax", "pmra", "pmdec"]
    # By default every numeric column but those given another role.
    assert Table(path, id_column="source_id", ra_column="ra", dec_column="dec",
                 nan_policy="drop").feature_names() == [
        "pmra", "pmdec", "parallax", "phot_g_mean_mag"]
    with pytest.raises(ValueError, match=r"no column matches 'bp_rp\*'; the columns are "
                                         r"source_id, ra, dec, pmra"):
        len(Table(path, columns="bp_rp*"))
    with pytest.raises(ValueError, match=r"columns population \(.*\) are not numbers"):
        len(Table(path, columns=("pmra", "population")))
    with pytest.raises(ValueError, match="label_column 'class' is not a column"):
        len(Table(path, columns="pm*", label_column="class", nan_policy="drop"))
    with pytest.raises(ValueError, match="ra_column and dec_column go together"):
        len(Table(path, columns="pm*", ra_column="ra"))


def test_nan_policy_fail_names_the_file_rows_and_columns(stars, tmp_path):
    path = _written(stars, tmp_path, ".csv")
    bad = np.flatnonzero(np.isnan(stars["parallax"]))
    with pytest.raises(ValueError) as caught:
        len(Table(path, columns=("pm*", "parallax"), id_column="source_id"))
    message = str(caught.value)
    assert message.startswith(f"{path}: {len(bad)} of 80 rows hold NaN or infinite values")
    first = stars["source_id"][bad[0]]
    assert f"source_id {first} (pmra, pmdec, parallax)" in message
    assert "nan_policy: drop" in message and "nan_policy: impute" in message
    # Without an id column, rows are named by their number in the file.
    with pytest.raises(ValueError, match=rf"row {bad[0]} \(pmra, pmdec, parallax\)"):
        len(Table(path, columns=("pm*", "parallax")))
    # Only the feature columns count: these have no NaN.
    assert len(Table(path, columns="phot_g_mean_mag")) == 80


def test_nan_policy_drop_counts_and_names_the_rows_and_impute_fills_medians(stars, tmp_path):
    path = _written(stars, tmp_path, ".fits")
    bad = np.flatnonzero(np.isnan(stars["parallax"]))
    dropped = Table(path, columns=("parallax",), nan_policy="drop")
    assert len(dropped) == 80 - len(bad)
    assert dropped.skipped()[0] == (f"{path}[{bad[0]}]", "NaN or infinite in parallax")
    imputed = Table(path, columns=("parallax",), nan_policy="impute")
    values = imputed.read(0, 80)[:, 0, 0, 0]
    median = np.median(np.asarray(stars["parallax"])[~np.isnan(stars["parallax"])])
    np.testing.assert_allclose(values[bad], median, rtol=1e-6)
    assert imputed.skipped() == [] and np.isfinite(values).all()


def test_rows_whose_values_are_equal_are_items_like_any_other(tmp_path):
    """Two groups on the diagonal: every row's two values are equal, which the image
    loaders' check for a constant image would refuse."""
    path = tmp_path / "diagonal.csv"
    x = np.r_[np.linspace(0, 1, 30), np.linspace(9, 10, 30)]
    pd.DataFrame({"x": x, "y": x, "group": ["low"] * 30 + ["high"] * 30}).to_csv(path,
                                                                                 index=False)
    assert len(Table(str(path), label_column="group")) == 60
    # Nor do the image loaders refuse such rows stacked as (n, 1, d) "images".
    np.save(tmp_path / "rows.npy", np.stack([x, x], 1)[:, None, :].astype(np.float32))
    assert len(NpyFiles(str(tmp_path / "rows.npy"))) == 60
    text = f"""
name: diagonal
datasets:
  - plugin: table
    path: {path}
    label_column: group
encoders: [{{plugin: pixels}}]
reducers: [{{plugin: none}}]
clusterers: [{{plugin: kmeans, n_clusters: 2}}]
metrics: [ari]
map: {{plugin: pca}}
executor: {{workers: 1}}
tracking: {{uri: "{tmp_path / 'store'}"}}
cache: "{tmp_path / 'cache'}"
"""
    registry = Registry.load()
    summary = runner.run(parse_experiment(text, registry), registry)
    assert (summary.finished, summary.failed) == (1, [])
    assert load_results(str(tmp_path / "store"), "diagonal")["ari"].iloc[0] == 1.0


# The Gaia-like example (experiments/gaia.yaml), at a reduced size ---------------------------

#: what the test changes of the experiment file: fewer stars are written, one seed, fewer
#: null draws and resamples, a narrower k range
REDUCED = ["seeds=[0]", "verdict={null_draws: 3, resamples: 2}", "executor.workers=1",
           "clusterers.0.k_range=[[2, 5]]", "clusterers.1.k_range=[[2, 5]]"]
GAIA_STARS = 600


@pytest.fixture(scope="module")
def gaia_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gaia")
    table = folder / "data" / "gaia_like.fits"
    gaia.main([str(table), "--n", str(GAIA_STARS)])
    registry = Registry.load()
    experiment = load_experiment(EXPERIMENTS / "gaia.yaml", registry, overrides=[
        *REDUCED, f"datasets.0.path={table}"])
    summary = runner.run(experiment, registry, tracking_uri=str(folder / "store"))
    return folder, experiment, summary, gaia.make_stars(GAIA_STARS)


@pytest.mark.slow
def test_the_gaia_like_grid_finishes_every_combination(gaia_run):
    _, _, summary, _ = gaia_run
    assert summary.failed == []
    # (standardize, pca) x (kmeans, gmm, hdbscan), one seed
    assert summary.finished == 6


@pytest.mark.slow
def test_the_verdict_chooses_a_pipeline_that_recovers_the_groups(gaia_run):
    folder, experiment, _, stars = gaia_run
    results = load_results(str(folder / "store"), "gaia")
    (verdict,) = recommend(results)
    choice = verdict.choice
    assert choice.structure
    row = results[results["pipeline"].str.startswith(choice.name)].iloc[0]
    # Each simulated cluster is one found cluster, nearly all of it and nearly only it.
    labels = Cache(locate(experiment, str(folder / "store")).cache).load(
        row["step.cluster"], "labels")
    kept = np.isfinite(np.stack([stars[c] for c in ("pmra", "pmdec", "parallax")], 1)).all(1)
    truth = np.asarray(stars["population"])[kept]
    for name, *_ in gaia.CLUSTERS:
        members = truth == name
        found, count = np.unique(labels[members], return_counts=True)
        best = found[np.argmax(count)]
        jaccard = np.sum(members & (labels == best)) / np.sum(members | (labels == best))
        assert best != -1 and jaccard >= 0.9, (name, jaccard)
    # Against every star, the field a class of its own, the ARI counts the field's split
    # between noise and a cluster of its own as mistakes too: what it is is reported.
    assert verdict.grade["choice"] == pytest.approx(row["ari"])
    assert row["ari"] >= 0.75 and math.isfinite(verdict.grade["best"])



@pytest.mark.slow
def test_the_choice_exports_with_sky_positions_astropy_and_stilts_read_back(gaia_run):
    folder, _, _, stars = gaia_run
    store = str(folder / "store")
    (verdict,) = recommend(load_results(store, "gaia"))
    sky = {str(i): (ra, dec) for i, ra, dec in zip(stars["source_id"], stars["ra"],
                                                   stars["dec"], strict=True)}
    for name in ("clusters.vot", "clusters.fits"):
        done = cli("labels", "gaia", "-p", verdict.choice.pipeline, "-o", name,
                   "--tracking-uri", store, cwd=folder)
        assert done.returncode == 0, done.stderr
        table = AstropyTable.read(folder / name)
        assert str(table["ra"].unit) == "deg" and len(table) == len(set(table["id"]))
        expected = np.array([sky[str(i)] for i in table["id"]])
        read = np.stack([np.ma.filled(table[c], np.nan) for c in ("ra", "dec")], 1)
        np.testing.assert_allclose(read, expected, rtol=0, atol=1e-9)
        assert set(table["class"]) == {"field", "cluster_a", "cluster_b", "cluster_c"}
    assert_valid_votable(folder / "clusters.vot")
    # STILTS reads the same positions (what TOPCAT shows on the sky).
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.skip("stilts is not installed (make system-packages)")
    done = subprocess.run([stilts, "tpipe", f"in={folder / 'clusters.vot'}", "ifmt=votable",
                           "cmd=keepcols 'id ra dec'", "ofmt=csv", "out=-"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    read = pd.read_csv(io.StringIO(done.stdout), dtype={"id": str})
    np.testing.assert_allclose(read[["ra", "dec"]].to_numpy(),
                               np.array([sky[i] for i in read["id"]]), rtol=0, atol=1e-9)


@pytest.mark.slow
def test_the_report_of_a_table_shows_its_features_and_draws_its_rows(gaia_run):
    from clustergrid.report import write_report

    folder, _, _, _ = gaia_run
    page = write_report(str(folder / "store"), "gaia", folder / "report.html").read_text()
    assert "features: pmra (mas / yr), pmdec (mas / yr), parallax (mas)" in page
    # The cards describe the clusters by the features; no nuisance is checked.
    assert "higher parallax" in page or "lower parallax" in page
    assert "brighter" not in page and "follows_" not in page

"""``clustergrid labels``: a combination's clusters exported as a catalogue, read back
with astropy, and joined onto a user's own catalogue."""

from __future__ import annotations

import re

import numpy as np
import pytest
from astropy.table import Table
from conftest import cli, write_experiment
from votlint import assert_valid_votable

from clustergrid import runner
from clustergrid.cache import Cache
from clustergrid.errors import ClustergridError
from clustergrid.export import cluster_table, join_catalogue
from clustergrid.plugins.datasets.digits import Digits
from clustergrid.spec import load_experiment
from clustergrid.tracking import Tracker

GRID = """\
name: export
seeds: [0, 1]
datasets:
  - plugin: npy
    path: {stack}
    array: images
    labels_array: labels
encoders:
  - plugin: pixels
reducers:
  - plugin: pca
    n_components: 5
clusterers:
  - plugin: kmeans
    n_clusters: 4
  - plugin: gmm
    n_clusters: 4
    covariance_type: diag
  - plugin: hdbscan
    min_cluster_size: 10
metrics: [silhouette, ari]
executor: {{workers: 1}}
"""


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The grid run once on 120 digits saved as an ``.npz`` stack, with a map; returns
    its folder, the cache and each combination's cluster step key by pipeline name."""
    folder = tmp_path_factory.mktemp("export")
    digits = Digits(120)
    np.savez(folder / "digits.npz", images=digits.read(0, 120)[:, 0],
             labels=digits.labels())
    path = write_experiment(folder, GRID.format(stack=folder / "digits.npz"))
    monkey = pytest.MonkeyPatch()
    monkey.chdir(folder)
    from clustergrid import spec
    from clustergrid.registry import Registry

    monkey.setattr(spec, "DEFAULT_MAP", {"plugin": "pca"})
    monkey.setattr(spec, "DEFAULT_VERDICT", None)
    registry = Registry.load()
    experiment = load_experiment(path, registry)
    summary = runner.run(experiment, registry)
    assert summary.finished == 5 and not summary.failed  # hdbscan has no seed
    runs = Tracker(None, "export", create=False).combination_runs()
    clusters = {run.info.run_name: run.data.tags["clustergrid.step.cluster"] for run in runs}
    yield folder, Cache(summary.cache_root), clusters
    monkey.undo()


def test_labels_written_as_fits_read_back_with_astropy(grid):
    folder, cache, clusters = grid
    done = cli("labels", "export", "--pipeline", "kmeans", "--seed", "1", "-o",
               "out/clusters.fits", cwd=folder)
    assert done.returncode == 0, done.stderr
    table = Table.read(folder / "out" / "clusters.fits")
    assert len(table) == 120
    assert list(table["id"]) == [str(i) for i in range(120)]
    assert list(table["source"][:2]) == [f"{folder / 'digits.npz'}[0]",
                                         f"{folder / 'digits.npz'}[1]"]
    name = next(n for n in clusters if "kmeans" in n and n.endswith("seed=1"))
    np.testing.assert_array_equal(table["cluster"], cache.load(clusters[name], "labels"))
    # The true class of each item, by name, and the map's coordinates of every item.
    np.testing.assert_array_equal(np.asarray(table["class"], dtype=int), Digits(120).labels())
    assert np.isfinite(table["map_x"]).all() and np.ptp(table["map_y"]) > 0
    assert "probability" not in table.colnames  # k-means has no membership probability


def test_probabilities_and_outlier_scores_of_the_clusterers_that_have_them(grid):
    folder, cache, clusters = grid
    store = str(folder / "clustergrid-runs")
    gmm = cluster_table(store, "export", "gmm", seed=0)
    name = next(n for n in clusters if "gmm" in n and n.endswith("seed=0"))
    np.testing.assert_array_equal(gmm["cluster"], cache.load(clusters[name], "labels"))
    assert ((gmm["probability"] > 0.25) & (gmm["probability"] <= 1)).all()
    hdbscan = cluster_table(store, "export", "hdbscan", seed=1)  # deterministic: any seed
    noise = np.asarray(hdbscan["cluster"]) == -1
    # Noise has no membership; GLOSH scores noise as more unusual than cluster members.
    assert (hdbscan["probability"][noise] == 0).all()
    if noise.any() and (~noise).any():
        scores = np.asarray(hdbscan["outlier_score"])
        assert np.nanmean(scores[noise]) > np.nanmean(scores[~noise])


def test_votable_and_csv_and_parquet_hold_the_same_rows(grid, tmp_path):
    folder, _, _ = grid
    tables = []
    for suffix in (".vot", ".csv", ".parquet"):
        target = tmp_path / f"clusters{suffix}"
        done = cli("labels", "export", "-p", "gmm", "--seed", "0", "-o", str(target),
                   cwd=folder)
        assert done.returncode == 0, done.stderr
        tables.append(Table.read(target))
    assert_valid_votable(tmp_path / "clusters.vot")
    for table in tables[1:]:
        np.testing.assert_array_equal(table["cluster"], tables[0]["cluster"])
        np.testing.assert_allclose(table["probability"], tables[0]["probability"])
        assert [str(v) for v in table["id"]] == [str(v) for v in tables[0]["id"]]


def test_a_catalogue_gets_the_clusters_in_its_own_order(grid, tmp_path):
    folder, _, _ = grid
    catalogue = tmp_path / "sources.csv"
    # Numeric ids in a shuffled order, and a source that is not in the dataset.
    rows = ["objid,ra"] + [f"{i},{10 + i / 100}" for i in (7, 3, 119, 500)]
    catalogue.write_text("\n".join(rows) + "\n")
    done = cli("labels", "export", "-p", "kmeans", "--seed", "0", "-o", "joined.fits",
               "--catalogue", str(catalogue), "--id-column", "objid", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "3 of 4 catalogue rows matched" in done.stdout
    joined = Table.read(folder / "joined.fits")
    clusters = cluster_table(str(folder / "clustergrid-runs"), "export", "kmeans", seed=0)
    assert list(joined["objid"]) == [7, 3, 119, 500]
    assert list(joined["cluster"][:3]) == [clusters["cluster"][i] for i in (7, 3, 119)]
    assert joined["cluster"].mask[3]  # no item 500: an empty cell, not a made-up cluster


def test_a_catalogue_whose_ids_match_nothing_is_refused(grid, tmp_path):
    catalogue = tmp_path / "other.csv"
    catalogue.write_text("name\nM31\nM33\n")
    table = cluster_table(str(grid[0] / "clustergrid-runs"), "export", "kmeans", seed=0)
    with pytest.raises(ClustergridError, match=r"no value of column 'name' is an item id"):
        join_catalogue(table, catalogue, "name")
    with pytest.raises(ClustergridError, match=r"no column 'objid'.*columns: name"):
        join_catalogue(table, catalogue, "objid")


def test_an_ambiguous_or_unknown_pipeline_names_the_candidates(grid):
    folder, _, _ = grid
    done = cli("labels", "export", "-p", "kmeans", "-o", "x.fits", cwd=folder)
    assert done.returncode != 0
    line = done.stderr.strip()
    assert line.count("\n") == 0 and "matches 2 combinations" in line
    assert "add --seed (one of 0, 1)" in line
    done = cli("labels", "export", "-p", "spectral", "-o", "x.fits", cwd=folder)
    assert "no finished combination of 'export' matches --pipeline 'spectral'" in done.stderr
    assert "hdbscan" in done.stderr  # the combinations it has are listed
    done = cli("labels", "export", "-p", "gmm", "--seed", "0", "-o", "x.txt", cwd=folder)
    assert done.returncode != 0 and ".fits, .fit, .vot" in done.stderr
    assert not (folder / "x.txt").exists()


def test_cluster_cards_are_written_a_row_per_cluster(grid, tmp_path):
    folder, cache, clusters = grid
    done = cli("labels", "export", "-p", "kmeans", "--seed", "0", "-o", str(tmp_path / "a.csv"),
               "--cards", str(tmp_path / "cards.fits"), cwd=folder)
    assert done.returncode == 0, done.stderr
    cards = Table.read(tmp_path / "cards.fits")
    name = next(n for n in clusters if "kmeans" in n and n.endswith("seed=0"))
    labels = cache.load(clusters[name], "labels")
    found, sizes = np.unique(labels, return_counts=True)
    assert list(cards["cluster"]) == found.tolist() and list(cards["size"]) == sizes.tolist()
    # Each descriptor's effect size of each cluster against the rest, in [-1, 1].
    deltas = [c for c in cards.colnames if c.startswith("delta_")]
    assert "delta_brightness" in deltas
    assert all(np.nanmax(np.abs(cards[c])) <= 1 for c in deltas)
    assert all(cards["classes"])  # the digits' classes in each cluster


def test_cluster_cards_are_written_as_a_votable_too(grid, tmp_path):
    folder, _, _ = grid
    done = cli("labels", "export", "-p", "gmm", "--seed", "0", "-o", str(tmp_path / "a.vot"),
               "--cards", str(tmp_path / "cards.vot"), cwd=folder)
    assert done.returncode == 0, done.stderr
    assert sum(Table.read(tmp_path / "cards.vot")["size"]) == 120
    for name in ("a.vot", "cards.vot"):
        assert_valid_votable(tmp_path / name)


def test_a_catalogue_joined_to_the_clusters_is_a_valid_votable(grid, tmp_path):
    folder, _, _ = grid
    catalogue = tmp_path / "sources.vot"
    Table({"objid": ["7", "3", "x"], "flux": [1.0, 2.0, 3.0]}).write(catalogue,
                                                                    format="votable")
    done = cli("labels", "export", "-p", "kmeans", "--seed", "0", "-o", "joined.vot",
               "--catalogue", str(catalogue), "--id-column", "objid", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert list(Table.read(folder / "joined.vot")["cluster"].mask) == [False, False, True]
    assert_valid_votable(folder / "joined.vot")


def test_fits_provenance_is_whole_cards_not_words_cut_across_comments(grid, tmp_path):
    from astropy.io import fits

    folder, _, _ = grid
    done = cli("labels", "export", "-p", "gmm", "--seed", "0", "-o", str(tmp_path / "a.fits"),
               "--cards", str(tmp_path / "cards.fits"), cwd=folder)
    assert done.returncode == 0, done.stderr
    header = fits.getheader(tmp_path / "a.fits", 1)
    pipeline = header["PIPELINE"]  # one value, however long: CONTINUE cards carry it
    assert pipeline.startswith("npy[") and "gmm[" in pipeline and header["SEED"] == "0"
    assert header["EXPERIM"] == "export" and len(header["RUN_ID"]) == 32
    cards = fits.getheader(tmp_path / "cards.fits", 1)
    assert cards["PIPELINE"] == pipeline
    # A note is a COMMENT of whole words, and the cards' provenance is no comment.
    note = " ".join(str(line) for line in cards["COMMENT"])
    assert re.fullmatch(r"comparison: descriptors compared by .+, effect [\w-]+", note), note
    assert "gmm" not in note

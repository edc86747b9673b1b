"""Cluster cards and the nuisance check (``clustergrid.cards``), on simulated blobs where
the answer is known, against scipy, and through a small grid end to end."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from clustergrid import cards, runner
from clustergrid.registry import Registry
from clustergrid.report import collect, html_report
from clustergrid.results import load_results
from clustergrid.spec import parse_experiment
from clustergrid.tracking import Tracker

SIDE = 24


def blobs(n: int, flux: float, elongation: float, seed: int) -> np.ndarray:
    """``(n, 1, SIDE, SIDE)`` Gaussian blobs of total ``flux`` (within 10%), an area that
    varies alike for every elongation, axis ratio ``elongation`` and random angles."""
    rng = np.random.default_rng(seed)
    rows, cols = np.indices((SIDE, SIDE), dtype=np.float64) - (SIDE - 1) / 2
    images = np.empty((n, 1, SIDE, SIDE))
    for i in range(n):
        sigma, angle = rng.uniform(2.0, 3.0), rng.uniform(0, np.pi)
        major, minor = sigma * np.sqrt(elongation), sigma / np.sqrt(elongation)
        u = cols * np.cos(angle) + rows * np.sin(angle)
        v = -cols * np.sin(angle) + rows * np.cos(angle)
        image = np.exp(-0.5 * ((u / major) ** 2 + (v / minor) ** 2))
        images[i, 0] = image / image.sum() * flux * rng.uniform(0.9, 1.1)
    return images


@pytest.fixture(scope="module")
def bright_and_faint():
    """The same kinds of blob at flux 1 and 3; each half round, half elongated."""
    images = np.concatenate([blobs(20, 1.0, 1.0, 0), blobs(20, 1.0, 3.0, 1),
                             blobs(20, 3.0, 1.0, 2), blobs(20, 3.0, 3.0, 3)])
    shape = np.tile(np.repeat([0, 1], 20), 2)
    names = cards.descriptor_names(1)
    return images, cards.describe_images(images, np.arange(len(images))), names, shape


def brightness_clusters(descriptors, names):
    """A trivial clusterer on brightness: 2-means on its logarithm."""
    from sklearn.cluster import KMeans

    brightness = np.log(descriptors[:, names.index("brightness")])[:, None]
    return KMeans(2, n_init=4, random_state=0).fit_predict(brightness)


def test_descriptors_are_raw_and_named(bright_and_faint):
    images, descriptors, names, _ = bright_and_faint
    assert names[:2] == ["brightness", "size"] and "orientation" in names
    assert descriptors.shape == (80, len(names))
    # Raw: the brightness is the flux itself, not a standardised value.
    assert np.allclose(descriptors[:, 0], images.sum(axis=(1, 2, 3)))
    assert cards.descriptor_names(3)[-2:] == ["colour_c0_c1", "colour_c1_c2"]


def test_clusters_that_differ_in_brightness_are_called_brighter_and_fainter(bright_and_faint):
    _, descriptors, names, shape = bright_and_faint
    labels = brightness_clusters(descriptors, names)
    bright = int(labels[-1])
    found = {card["cluster"]: card for card in cards.cluster_cards(
        descriptors, names, labels, X=descriptors[:, :1], truth=shape,
        class_names=["round", "elongated"])}
    for cluster, word, sign in ((bright, "brighter", 1), (1 - bright, "fainter", -1)):
        card = found[cluster]
        assert card["size"] == 40
        row = next(r for r in card["descriptors"] if r["name"] == "brightness")
        assert sign * row["delta"] == 1.0 and row["p_holm"] < 1e-8 and row["apart"]
        assert card["apart"][0].startswith(word)
        # Only brightness sets them apart: both hold the same shapes.
        assert [r["name"] for r in card["descriptors"] if r["apart"]] == ["brightness"]
        assert card["classes"] == {"round": 20, "elongated": 20}
        assert len(card["typical"]) == len(card["atypical"]) == cards.TYPICAL


def test_a_clustering_that_follows_brightness_is_flagged(bright_and_faint):
    _, descriptors, names, shape = bright_and_faint
    labels = brightness_clusters(descriptors, names)
    check = cards.nuisance_check(labels, descriptors, names, truth=shape)
    assert check["brightness"] == pytest.approx(1.0)
    assert check["labels"] == pytest.approx(0.0, abs=1e-9)
    assert check["flag"] == 1.0 and check["follows"] == "brightness"
    assert "follow brightness" in cards.nuisance_sentence(check)
    # Without labels too.
    assert cards.nuisance_check(labels, descriptors, names)["flag"] == 1.0


def test_a_clustering_that_follows_shape_at_equal_brightness_is_not_flagged():
    images = np.concatenate([blobs(40, 2.0, 1.0, 4), blobs(40, 2.0, 4.0, 5)])
    names = cards.descriptor_names(1)
    descriptors = cards.describe_images(images, np.arange(80))
    labels = (descriptors[:, names.index("ellipticity")] > 0.25).astype(np.int64)
    assert (labels == np.repeat([0, 1], 40)).all()
    check = cards.nuisance_check(labels, descriptors, names)
    assert max(check[name] for name in ("brightness", "size", "orientation")) < 0.2
    # The border of noiseless blobs differs a little between shapes; the shape explains
    # the clusters better than that nuisance, so they do not follow it.
    assert check["physics"] > max(check[name] for name in cards.NUISANCES)
    assert check["flag"] == 0.0 and check["follows"] == ""
    card = cards.cluster_cards(descriptors, names, labels)[1]
    assert any(p.startswith("more elongated (delta +1.00)") for p in card["apart"])
    assert not any(p.startswith(("brighter", "fainter")) for p in card["apart"])


@pytest.mark.parametrize("nan", [True, False], ids=["a NaN", "all finite"])
def test_effect_sizes_and_p_values_are_scipys(nan):
    """Column by column as scipy computes them, whether the columns are tested together
    (all finite, both sides above 8) or one by one (a NaN to drop; the 6-member cluster,
    where scipy chooses an exact test unless that column has ties)."""
    rng = np.random.default_rng(0)
    descriptors = np.column_stack([rng.normal(size=60), rng.integers(0, 4, 60),
                                   rng.normal(size=60)]).astype(float)
    if nan:
        descriptors[3, 2] = np.nan  # dropped, as scipy would need it to be
    labels = np.repeat([0, 1, 2], [30, 24, 6])
    names = ["brightness", "size", "gini"]
    for card in cards.cluster_cards(descriptors, names, labels):
        inside = labels == card["cluster"]
        for column, row in enumerate(card["descriptors"]):
            x, y = descriptors[inside, column], descriptors[~inside, column]
            x, y = x[np.isfinite(x)], y[np.isfinite(y)]
            expected = mannwhitneyu(x, y, alternative="two-sided")
            assert row["p"] == pytest.approx(expected.pvalue, rel=1e-12)
            assert row["delta"] == pytest.approx(
                2 * expected.statistic / (len(x) * len(y)) - 1, rel=1e-12)
            # Cliff's delta by its definition.
            greater = (x[:, None] > y[None, :]).mean() - (x[:, None] < y[None, :]).mean()
            assert row["delta"] == pytest.approx(greater, abs=1e-12)
            assert row["median"] == pytest.approx(np.median(x))
    assert cards.holm(np.array([0.01, 0.04, np.nan, 0.03])) == pytest.approx(
        [0.03, 0.06, np.nan, 0.06], nan_ok=True)


GRID = """\
name: carded
datasets:
  - plugin: digits
    n_samples: 120
encoders:
  - plugin: pixels
clusterers:
  - plugin: kmeans
    n_clusters: [2, 3]
    random_state: 0
metrics: [ari]
executor: {workers: 1}
"""


def test_cards_are_logged_per_combination_and_read_back_by_the_report(workdir):
    registry = Registry.load()
    summary = runner.run(parse_experiment(GRID, registry), registry)
    assert summary.finished == 2 and summary.failed == []
    frame = load_results(None, "carded")
    for name in ("nuisance.brightness", "nuisance.size", "nuisance.orientation",
                 "nuisance.labels", "nuisance.flag"):
        assert frame[name].notna().all()
    tracker = Tracker(None, "carded", create=False)
    run = next(r for r in tracker.combination_runs() if r.data.params["clusterer.n_clusters"]
               == "3")
    folder = tracker.client.download_artifacts(run.info.run_id, "cards", str(workdir / "a"))
    rows = list(csv.reader(io.StringIO(Path(folder, "cards.csv").read_text())))
    assert rows[0] == list(cards.CSV_COLUMNS)
    assert len(rows) == 1 + 3 * len(cards.descriptor_names(1))
    logged = json.loads(Path(folder, "cards.json").read_text())
    assert [card["cluster"] for card in logged["clusters"]] == [0, 1, 2]
    assert sum(card["size"] for card in logged["clusters"]) == 120
    assert sum(sum(card["classes"].values()) for card in logged["clusters"]) == 120

    data = collect(None, "carded")
    read = data.files[run.info.run_id].cards
    assert read["clusters"][0]["typical"] == logged["clusters"][0]["typical"]
    page = html_report(data)
    assert "<h3>Cluster cards</h3>" in page
    assert page.count("class='cluster-cards'") == 2


def test_failed_cards_leave_the_combination_finished(workdir, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no descriptors today")

    monkeypatch.setattr(cards, "describe_images", broken)
    registry = Registry.load()
    summary = runner.run(parse_experiment(GRID, registry), registry)
    assert summary.finished == 2
    assert summary.step_status["failed"] == 1 and summary.step_status["skipped"] == 2
    run = Tracker(None, "carded", create=False).combination_runs()[0]
    assert run.info.status == "FINISHED"
    assert "no descriptors today" in run.data.tags["clustergrid.describe.error"]
    assert "nuisance.flag" not in run.data.metrics
    data = collect(None, "carded")
    assert all(files.cards is None for files in data.files.values())
    assert "Cluster cards" not in html_report(data)


def test_colours_are_phrased_in_the_band_names():
    assert cards.phrase("colour_c0_c1", 0.6, ["g", "r", "i"]) == "redder in g - r"
    assert cards.phrase("colour_c1_c2", -0.6, ["g", "r", "i"]) == "bluer in r - i"
    assert cards.phrase("colour_c0_c1", 0.6) == "redder in c0-c1"  # bands unnamed


BANDED = """\
name: banded
datasets:
  - plugin: fits
    path: {path}
    bands: [[g, r]]
encoders:
  - plugin: pixels
reducers:
  - plugin: pca
    n_components: 2
clusterers:
  - plugin: kmeans
    n_clusters: 2
executor: {{workers: 1}}
"""


def test_cards_of_a_multiband_fits_dataset_name_its_bands(workdir):
    """Objects of two colours, in g and r files: the cards say which is redder in g - r."""
    from astropy.io import fits

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16]
    blob = np.exp(-((yy - 7.5) ** 2 + (xx - 7.5) ** 2) / 8)
    for k in range(30):
        ratio = 3.0 if k % 2 else 0.5  # r over g: half the objects much redder
        for band, flux in (("g", 10.0), ("r", 10.0 * ratio)):
            image = flux * blob + rng.normal(scale=0.05, size=blob.shape)
            fits.PrimaryHDU(image.astype(np.float32)).writeto(workdir / f"obj{k:02d}_{band}.fits")
    registry = Registry.load()
    summary = runner.run(parse_experiment(BANDED.format(path=workdir), registry), registry)
    assert summary.finished == 1 and not summary.failed
    run = Tracker(None, "banded", create=False).combination_runs()[0]
    found = json.loads(Path(Tracker(None, "banded", create=False).client.download_artifacts(
        run.info.run_id, "cards/cards.json", str(workdir))).read_text())
    phrases = [p for card in found["clusters"] for p in card["apart"]]
    assert any(p.startswith("redder in g - r") for p in phrases), phrases
    assert any(p.startswith("bluer in g - r") for p in phrases), phrases

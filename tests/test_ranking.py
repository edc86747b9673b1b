"""Average ranks, Friedman test, Nemenyi critical difference and the CD diagram."""

from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clustergrid.ranking import (
    Ranking,
    average_ranks,
    cliques,
    compare_pipelines,
    complete_datasets,
    critical_difference,
    critical_difference_svg,
    nemenyi_q,
)

SVG = "{http://www.w3.org/2000/svg}"

# Demšar (2006), table 5a: Nemenyi critical values for k = 2..10 pipelines.
DEMSAR_Q_005 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
DEMSAR_Q_010 = [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]


def random_scores(n_pipelines: int, n_datasets: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        rng.normal(size=(n_pipelines, n_datasets)),
        index=[f"p{i}" for i in range(n_pipelines)],
        columns=[f"d{j}" for j in range(n_datasets)],
    )


def svg_root(ranking: Ranking) -> ET.Element:
    return ET.fromstring(critical_difference_svg(ranking))


def pipeline_texts(root: ET.Element) -> list[ET.Element]:
    return [el for el in root.iter(f"{SVG}text") if el.get("class") == "pipeline"]


# -- average ranks ---------------------------------------------------------------------


def test_average_ranks_match_a_hand_computed_example_with_a_tie():
    scores = pd.DataFrame(
        {"d1": [0.9, 0.8, 0.7], "d2": [0.5, 0.6, 0.5], "d3": [0.3, 0.1, 0.2]},
        index=["a", "b", "c"],
    )
    # d1: a1 b2 c3; d2: b1, a and c tie for 2.5; d3: a1 c2 b3.
    ranks = average_ranks(scores)
    assert list(ranks.index) == ["a", "b", "c"]
    np.testing.assert_allclose(ranks.to_numpy(), [1.5, 2.0, 2.5])


def test_average_ranks_match_scipy_rankdata_column_by_column_with_ties():
    rng = np.random.default_rng(1)
    # Few distinct integer values, so most datasets hold ties.
    scores = pd.DataFrame(rng.integers(0, 3, size=(6, 12)), index=list("uvwxyz"))
    expected = np.mean(
        [stats.rankdata(-scores[column].to_numpy()) for column in scores.columns], axis=0
    )
    ranks = average_ranks(scores)
    np.testing.assert_allclose(ranks.loc[list("uvwxyz")].to_numpy(), expected)
    assert ranks.is_monotonic_increasing
    # Ranks of k pipelines always average to (k + 1) / 2.
    assert ranks.mean() == pytest.approx(3.5)


def test_lower_is_better_flips_ranks():
    scores = random_scores(5, 9, seed=2)
    higher = average_ranks(scores, higher_is_better=True)
    lower = average_ranks(scores, higher_is_better=False)
    np.testing.assert_allclose(lower.loc[higher.index].to_numpy(), 6 - higher.to_numpy())
    assert lower.iloc[0] == pytest.approx(6 - higher.iloc[-1])


def test_dataset_with_a_missing_score_is_dropped():
    scores = random_scores(4, 5, seed=3)
    scores.loc["p2", "d3"] = np.nan
    ranking = compare_pipelines(scores)
    assert ranking.dropped_datasets == ("d3",)
    assert ranking.n_datasets == 4
    assert ranking.n_pipelines == 4
    expected = average_ranks(scores.drop(columns="d3"))
    pd.testing.assert_series_equal(ranking.ranks, expected)
    kept, dropped = complete_datasets(scores)
    assert list(kept.columns) == ["d0", "d1", "d2", "d4"]
    assert dropped == ("d3",)


def test_duplicate_pipeline_labels_are_refused():
    scores = pd.DataFrame({"d1": [1.0, 2.0], "d2": [3.0, 4.0]}, index=["same", "same"])
    with pytest.raises(ValueError, match="duplicate"):
        compare_pipelines(scores)


# -- Friedman test ---------------------------------------------------------------------


@pytest.mark.parametrize(("n_pipelines", "n_datasets", "seed"), [(3, 2, 0), (5, 8, 1), (7, 20, 2)])
def test_friedman_matches_scipy(n_pipelines, n_datasets, seed):
    scores = random_scores(n_pipelines, n_datasets, seed=seed)
    expected = stats.friedmanchisquare(*scores.to_numpy())
    ranking = compare_pipelines(scores)
    assert ranking.friedman_statistic == pytest.approx(expected.statistic)
    assert ranking.friedman_p == pytest.approx(expected.pvalue)
    assert ranking.reason is None


def test_friedman_matches_scipy_with_ties_and_lower_is_better():
    rng = np.random.default_rng(4)
    scores = pd.DataFrame(rng.integers(0, 4, size=(5, 10)), index=list("abcde")).astype(float)
    expected = stats.friedmanchisquare(*scores.to_numpy())
    ranking = compare_pipelines(scores, higher_is_better=False)
    assert ranking.friedman_statistic == pytest.approx(expected.statistic)
    assert ranking.friedman_p == pytest.approx(expected.pvalue)


def test_one_dataset_gives_nan_with_a_reason():
    ranking = compare_pipelines(random_scores(4, 1))
    assert math.isnan(ranking.friedman_statistic)
    assert math.isnan(ranking.friedman_p)
    assert math.isnan(ranking.critical_difference)
    assert "dataset" in ranking.reason
    assert ranking.cliques() == []
    assert ranking.ranks.notna().all()


def test_two_pipelines_give_no_friedman_test_but_a_critical_difference():
    ranking = compare_pipelines(random_scores(2, 6))
    assert math.isnan(ranking.friedman_statistic)
    assert math.isnan(ranking.friedman_p)
    assert "3 pipelines" in ranking.reason
    assert ranking.critical_difference == pytest.approx(1.960 * math.sqrt(2 * 3 / (6 * 6)), 1e-3)


def test_no_complete_dataset_gives_nan_ranks_and_no_diagram():
    scores = random_scores(3, 2)
    scores.iloc[0, 0] = scores.iloc[1, 1] = np.nan
    ranking = compare_pipelines(scores)
    assert ranking.n_datasets == 0
    assert ranking.dropped_datasets == ("d0", "d1")
    assert ranking.ranks.isna().all()
    assert math.isnan(ranking.friedman_p)
    with pytest.raises(ValueError, match="no dataset"):
        critical_difference_svg(ranking)


def test_all_tied_gives_nan_without_a_runtime_warning():
    scores = pd.DataFrame(np.ones((3, 4)), index=["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ranking = compare_pipelines(scores)
    assert math.isnan(ranking.friedman_statistic)
    assert "tie" in ranking.reason
    assert ranking.cliques() == [("a", "b", "c")]


# -- Nemenyi critical difference -------------------------------------------------------


# Demšar divided 3-decimal studentized range tables by sqrt(2), so his last digit can be
# one off from rounding the exact value (k = 3: 3.314 / sqrt(2) = 2.3434, exact 2.3437).
@pytest.mark.parametrize(("k", "q"), list(zip(range(2, 11), DEMSAR_Q_005, strict=True)))
def test_q_at_005_matches_demsar_table(k, q):
    assert nemenyi_q(k, 0.05) == pytest.approx(q, abs=1e-3)


@pytest.mark.parametrize(("k", "q"), list(zip(range(2, 11), DEMSAR_Q_010, strict=True)))
def test_q_at_010_matches_demsar_table(k, q):
    assert nemenyi_q(k, 0.10) == pytest.approx(q, abs=1e-3)


def test_q_grows_with_pipelines_and_confidence():
    qs = [nemenyi_q(k) for k in range(2, 11)]
    assert qs == sorted(qs)
    assert nemenyi_q(2) == pytest.approx(stats.norm.ppf(0.975))  # two means: a z-test
    assert nemenyi_q(4, 0.10) < nemenyi_q(4, 0.05)


def test_critical_difference_matches_demsar_worked_example():
    # Demšar, section 3.2.4: four classifiers on fourteen data sets.
    assert critical_difference(4, 14, 0.05) == pytest.approx(1.25, abs=0.005)
    assert critical_difference(4, 14, 0.10) == pytest.approx(1.12, abs=0.005)
    assert critical_difference(4, 14) == pytest.approx(2.569 * math.sqrt(20 / 84), abs=1e-3)


def test_compare_pipelines_uses_the_critical_difference_formula():
    ranking = compare_pipelines(random_scores(6, 11), alpha=0.10)
    assert ranking.alpha == 0.10
    assert ranking.critical_difference == pytest.approx(2.589 * math.sqrt(42 / 66), abs=1e-3)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 5])
def test_alpha_outside_zero_one_is_refused(alpha):
    with pytest.raises(ValueError, match="alpha"):
        compare_pipelines(random_scores(3, 3), alpha=alpha)


# -- cliques ---------------------------------------------------------------------------


def test_cliques_on_a_constructed_example():
    ranks = pd.Series({"e": 4.5, "c": 2.4, "a": 1.0, "d": 3.0, "b": 1.5})
    # a-b 0.5, b-c 0.9 and c-d 0.6 are within 1.0; a-c 1.4, b-d 1.5 and d-e 1.5 are not.
    assert cliques(ranks, 1.0) == [("a", "b"), ("b", "c"), ("c", "d")]


def test_cliques_drop_groups_contained_in_another():
    ranks = pd.Series({"a": 1.0, "b": 1.2, "c": 1.4, "d": 3.0})
    assert cliques(ranks, 0.5) == [("a", "b", "c")]
    assert cliques(ranks, 0.1) == []
    assert cliques(ranks, 5.0) == [("a", "b", "c", "d")]
    assert cliques(ranks, math.nan) == []


def naive_cliques(ranks: pd.Series, cd: float) -> list[tuple[str, ...]]:
    """Every run of 2+ consecutive pipelines within cd, less those inside another run."""
    ordered = ranks.sort_values(kind="stable")
    names, values = list(ordered.index), ordered.to_numpy()
    runs = [
        (i, j)
        for i in range(len(values))
        for j in range(i + 1, len(values))
        if values[j] - values[i] <= cd
    ]
    maximal = [
        (i, j) for i, j in runs if not any(a <= i and j <= b and (a, b) != (i, j) for a, b in runs)
    ]
    return [tuple(names[i : j + 1]) for i, j in sorted(maximal)]


@pytest.mark.parametrize("seed", range(20))
def test_cliques_match_a_brute_force_search(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 10))
    ranks = pd.Series(rng.uniform(1, k, size=k), index=[f"p{i}" for i in range(k)])
    cd = float(rng.uniform(0.1, k / 2))
    assert cliques(ranks, cd) == naive_cliques(ranks, cd)


# -- the SVG diagram -------------------------------------------------------------------


def constructed_ranking(names: list[str], ranks: list[float], cd: float) -> Ranking:
    return Ranking(
        ranks=pd.Series(ranks, index=names, name="average_rank"),
        n_datasets=10,
        n_pipelines=len(names),
        friedman_statistic=math.nan,
        friedman_p=math.nan,
        critical_difference=cd,
        alpha=0.05,
        dropped_datasets=(),
    )


def test_svg_parses_and_has_one_label_per_pipeline_and_one_bar_per_clique():
    ranking = compare_pipelines(random_scores(7, 12, seed=5))
    root = svg_root(ranking)
    assert root.tag == f"{SVG}svg"
    texts = pipeline_texts(root)
    assert sorted(el.text for el in texts) == sorted(ranking.ranks.index)
    bars = [el for el in root.iter(f"{SVG}line") if el.get("class") == "clique"]
    assert len(bars) == len(ranking.cliques()) > 0


def test_svg_bars_span_their_cliques_on_a_constructed_example():
    ranking = constructed_ranking(["a", "b", "c", "d", "e"], [1.0, 1.5, 2.4, 3.0, 4.5], 1.0)
    root = svg_root(ranking)
    bars = [el for el in root.iter(f"{SVG}line") if el.get("class") == "clique"]
    assert len(bars) == 3
    # Each pipeline's connector starts on the axis at its rank, so ranks map to x in order.
    starts = {
        group.find(f"{SVG}text").text: float(
            group.find(f"{SVG}polyline").get("points").split()[0].split(",")[0]
        )
        for group in root.iter(f"{SVG}g")
        if group.get("class") == "pipeline-label"
    }
    assert starts["a"] < starts["b"] < starts["c"] < starts["d"] < starts["e"]
    first_bar = bars[0]
    assert float(first_bar.get("x1")) < starts["a"] < starts["b"] < float(first_bar.get("x2"))
    assert float(first_bar.get("x2")) < starts["c"]
    assert any(el.text and el.text.startswith("CD = 1.00") for el in root.iter(f"{SVG}text"))


def test_svg_escapes_pipeline_names():
    evil = "<script>alert(1)</script>"
    scores = random_scores(3, 4, seed=6)
    scores.index = [evil, 'say "hi" & bye', "plain"]
    svg = critical_difference_svg(compare_pipelines(scores))
    assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    # Parsed back, the escaped text is the user's name, character for character.
    names = {el.text for el in pipeline_texts(ET.fromstring(svg))}
    assert names == {evil, 'say "hi" & bye', "plain"}


def test_svg_is_self_contained():
    svg = critical_difference_svg(compare_pipelines(random_scores(4, 5)))
    assert "href" not in svg
    assert "<script" not in svg
    assert "url(" not in svg


def test_svg_without_a_critical_difference_still_draws_the_ranks():
    ranking = compare_pipelines(random_scores(4, 1))
    root = svg_root(ranking)
    assert len(pipeline_texts(root)) == 4
    assert not [el for el in root.iter(f"{SVG}line") if el.get("class") == "clique"]
    assert not [el for el in root.iter(f"{SVG}g") if el.get("class") == "cd-scale"]


def test_svg_grows_with_long_names_and_many_pipelines():
    short = svg_root(constructed_ranking(["a", "b", "c"], [1.0, 2.0, 3.0], 0.5))
    long_names = ["a" * 60, "b", "c"]
    wide = svg_root(constructed_ranking(long_names, [1.0, 2.0, 3.0], 0.5))
    assert float(wide.get("width")) >= float(short.get("width")) + 59 * 7
    many = [f"p{i}" for i in range(12)]
    tall = svg_root(constructed_ranking(many, [float(i + 1) for i in range(12)], 0.5))
    assert float(tall.get("height")) > float(short.get("height"))
    assert float(tall.get("width")) > float(short.get("width"))

"""The label-free verdict: which pipelines to trust on each dataset, and whether any
finds structure at all. This module is the one place the rule lives; ``clustergrid
results --recommend`` and the report's Recommendation section both read it.

The evidence is gathered by the plan's own steps (``clustergrid.evidence``): for every
combination, its noise-honest silhouette against the same pipeline fitted on Gaussian
null data of the embedding's covariance, its clusterwise stability under subsampling,
and the shape of its solution. The rule, per dataset:

1. A pipeline's numbers are means over its seeds.
2. **Structure beyond the null.** The excess ``z = (s - mean_null) / sd_null`` over
   ``D`` null draws is compared with Student's t on ``D - 1`` degrees of freedom
   (``z / sqrt(1 + 1/D)`` is t-distributed when the data are as structureless as the
   null), one-sided, Bonferroni-corrected over the dataset's pipelines at ``alpha``. A
   pipeline shows structure when that test passes and no flag bars it (``BARRING``: a
   degenerate solution, or clusters that dissolve under resampling).
3. **Flags** mark what a scientist should distrust (``FLAGS``); those about the choice
   of k warn without barring.
4. **Ranking**: pipelines showing structure first, then those not barred, then the
   larger gap (Tibshirani, Walther & Hastie, 2001): how much tighter the clusters are
   than the same pipeline's on the null, as a log-ratio of within-cluster dispersions.
   Scale-free, it puts pipelines on different encoders and reducers on one scale, and
   unlike the silhouette it does not favour a few well-separated clusters over the
   finer partition the data support. It is not the test of step 2: on a few hundred
   points its null spread is so small that the null's own misfit (a covariance
   estimated from the data) reads as significant, where the silhouette's does not.

Labels never enter the rule; ``grade`` only shows, afterwards, how it did.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from clustergrid.results import component_labels

#: the score the verdict ranks by, a logged metric of every combination with evidence
SCORE = "gap"
#: family-wise error rate of the test for structure beyond the null, per dataset
ALPHA = 0.05
#: Hennig (2007): clusters whose mean Jaccard under resampling is below 0.6 are not stable
STABLE_JACCARD = 0.6
#: flag -> what it says
FLAGS = {
    "no_null": "no null reference could be computed: nothing to calibrate against",
    "single_cluster": "fewer than two clusters",
    "dominant_cluster": "one cluster holds over 90% of the items",
    "mostly_noise": "more than half of the items are noise",
    "k_at_edge": "the chosen k is at an edge of k_range",
    "no_clear_k": "the k-selection curve has no clear optimum",
    "unstable": f"clusters dissolve under resampling (mean Jaccard < {STABLE_JACCARD})",
}
#: flags that bar a claim of structure: a degenerate solution, or clusters that do not
#: survive resampling; the others warn about how k was chosen
BARRING = ("no_null", "single_cluster", "dominant_cluster", "mostly_noise", "unstable")


@dataclass
class Assessment:
    """One pipeline on one dataset, with the evidence the rule used."""

    dataset: str
    pipeline: str
    rank: int
    structure: bool
    score: float
    excess: float
    p_value: float
    #: mean clusterwise Jaccard under subsampling
    stability: float
    coverage: float
    clusters: float
    flags: list[str]
    seeds: int
    #: ARI between seeds, when there are several
    seed_stability: float = math.nan

    @property
    def barred(self) -> bool:
        """Whether a flag bars this pipeline from showing structure (``BARRING``)."""
        return bool(set(self.flags) & set(BARRING))

    def record(self) -> dict[str, Any]:
        """As JSON-ready values: NaN (no evidence) becomes None."""
        return {key: None if isinstance(value, float) and math.isnan(value) else value
                for key, value in asdict(self).items()}


@dataclass
class DatasetVerdict:
    """The ranked pipelines of one dataset, best first."""

    dataset: str
    ranking: list[Assessment]
    #: the labelled grade (``grade``), when the dataset has labels
    grade: dict[str, Any] = field(default_factory=dict)

    @property
    def structure(self) -> bool:
        return any(a.structure for a in self.ranking)

    @property
    def choice(self) -> Assessment:
        return self.ranking[0]


def recommend(finished: pd.DataFrame, alpha: float = ALPHA) -> list[DatasetVerdict]:
    """The verdict on each dataset of ``finished`` (``results.load_results`` rows of
    finished combinations); empty when no combination carries evidence (``verdict:
    null``)."""
    if finished.empty or not {SCORE, "resampling_jaccard"} & set(finished.columns):
        return []
    labels = component_labels(finished)
    frame = finished.assign(
        _dataset=labels["dataset"] + _transforms(labels),
        _pipeline=labels[["encoder", "reducer", "clusterer"]].astype(str).agg(" / ".join,
                                                                              axis=1))
    verdicts = []
    for dataset, rows in frame.groupby("_dataset", sort=False):
        pipelines = [_assess(dataset, pipeline, group)
                     for pipeline, group in rows.groupby("_pipeline", sort=False)]
        tested = sum(math.isfinite(a.excess) for a in pipelines) or 1
        for assessment in pipelines:
            assessment.structure = (assessment.p_value < alpha / tested
                                    and not assessment.barred)
        pipelines.sort(key=lambda a: (not a.structure, a.barred,
                                      -a.score if math.isfinite(a.score) else math.inf))
        for rank, assessment in enumerate(pipelines, start=1):
            assessment.rank = rank
        verdict = DatasetVerdict(dataset, pipelines)
        verdict.grade = grade(verdict, rows)
        verdicts.append(verdict)
    return verdicts


def _transforms(labels: pd.DataFrame) -> pd.Series:
    if "transforms" not in labels:
        return pd.Series("", index=labels.index)
    return labels["transforms"].map(lambda t: "" if t in ("none", None) or pd.isna(t)
                                    else f" > {t}")


def _assess(dataset: str, pipeline: str, rows: pd.DataFrame) -> Assessment:
    def mean(column: str) -> float:
        return float(rows[column].mean()) if column in rows else math.nan

    excess, draws = mean("excess"), mean("calibration.null_draws")
    evidence = {
        "clusters": mean("calibration.clusters"),
        "largest": mean("calibration.largest_cluster"),
        "coverage": mean("coverage"),
        "stability": mean("resampling_jaccard"),
        "k_at_edge": float(rows["calibration.k_at_edge"].max())
        if "calibration.k_at_edge" in rows else math.nan,
        "k_prominence": mean("calibration.k_prominence"),
    }
    return Assessment(
        dataset=dataset, pipeline=pipeline, rank=0, structure=False, score=mean(SCORE),
        excess=excess, p_value=excess_p_value(excess, draws),
        stability=evidence["stability"], coverage=evidence["coverage"],
        clusters=evidence["clusters"], flags=flags(excess, evidence), seeds=len(rows),
        seed_stability=mean("stability_ari"))


def flags(excess: float, evidence: dict[str, float]) -> list[str]:
    """The ``FLAGS`` that ``evidence`` raises (NaN evidence raises none, but a missing
    null raises ``no_null``)."""
    raised = {
        "no_null": not math.isfinite(excess),
        "single_cluster": evidence["clusters"] < 2,
        "dominant_cluster": evidence["largest"] > 0.9,
        "mostly_noise": evidence["coverage"] < 0.5,
        "k_at_edge": evidence["k_at_edge"] >= 1,
        "no_clear_k": evidence["k_prominence"] < 1,
        "unstable": evidence["stability"] < STABLE_JACCARD,
    }
    return [flag for flag in FLAGS if raised[flag]]


def excess_p_value(excess: float, draws: float) -> float:
    """One-sided p-value of an excess ``z`` over ``draws`` null fits: with the null's mean
    and spread estimated from the draws, ``z / sqrt(1 + 1/D)`` follows Student's t on
    ``D - 1`` degrees of freedom when the data hold no more structure than the null."""
    from scipy.stats import t

    if not (math.isfinite(excess) and math.isfinite(draws)) or draws < 2:
        return math.nan
    return float(t.sf(excess / math.sqrt(1 + 1 / draws), draws - 1))


def grade(verdict: DatasetVerdict, rows: pd.DataFrame, metric: str = "ari") -> dict[str, Any]:
    """How the verdict did against labels it never saw: the ``metric`` of its first
    choice and the best of the grid (means over seeds). Empty without labels."""
    if metric not in rows or rows[metric].isna().all():
        return {}
    by_pipeline = rows.groupby("_pipeline", sort=False)[metric].mean()
    return {"metric": metric, "choice": float(by_pipeline[verdict.choice.pipeline]),
            "best": float(by_pipeline.max()), "best_pipeline": str(by_pipeline.idxmax())}

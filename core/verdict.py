"""The label-free verdict: which pipelines to trust on each dataset, and whether any
finds structure at all. This module is the one place the rule lives; ``clustergrid
results --recommend``, the results table, the report and the explorer all read it.

The evidence is gathered by the plan's own steps (``clustergrid.evidence``): for every
combination, its density-based validity (DBCV) and noise-honest silhouette against the
same pipeline fitted on Gaussian null data of the embedding's covariance, its gap (how
much tighter its clusters are than on that null), its clusterwise stability under
subsampling, the agreement of its seeds, the shape of its solution, and how much its
clusters follow each nuisance descriptor of the images
(``clustergrid.cards.nuisance_check``). The rule, per dataset:

1. A pipeline's numbers are means over its seeds.
2. **Structure beyond the null**, seen two ways: as dense groups parted by sparse
   regions, whatever their shape (the density-based validity, Moulavi et al. 2014), or
   as compact groups (the noise-honest silhouette). Each score's excess ``z = (s -
   mean_null) / sd_null`` over ``D`` null draws is compared with Student's t on ``D -
   1`` degrees of freedom (``z / sqrt(1 + 1/D)`` is t-distributed when the data are as
   structureless as the null), one-sided, Bonferroni-corrected over both tests of all
   the dataset's pipelines at ``alpha``. A pipeline shows structure when either test
   passes and no flag bars it.
3. **Flags** mark what a scientist should distrust (``FLAGS``). Those in ``BARRING`` (a
   degenerate solution, clusters that dissolve under resampling, seeds that disagree)
   bar a pipeline; ``follows_<nuisance>`` ranks it below every pipeline that follows
   none; those about the choice of k warn.
4. **Ranking**: pipelines not barred first, then those following no nuisance, then
   those showing structure; then the *density-separated* partitions, those whose
   density test passed and whose every cluster has a positive DBCV validity (its
   density separation from the nearest other cluster exceeds the sparsest link inside
   it), the finest first; then the larger gap (Tibshirani, Walther & Hastie, 2001).
   Density-separated clusters are what the data show whatever their shape: rings,
   moons, chains, unequal sizes and groups in background noise, where a cut through a
   dense region (k-means on a ring) is not separated. Among them the finest is
   preferred because DBCV alone prefers the coarsest level of a hierarchy (two close
   groups merged score higher than apart when a third is far): the finest level whose
   every cluster is separated is the leaves of the cluster tree (Hartigan 1975). Where
   the groups touch (overlapping Gaussians, most learned embeddings) no partition is
   density-separated, and the compactness beyond the null decides, as the gap
   statistic does. ``bench_verdict.py`` measures the rule on a battery of shapes.

Labels never enter the rule; ``grade`` only shows, afterwards, how it did.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from clustergrid.cards import DESCRIPTORS
from clustergrid.results import component_labels, pipeline_names

#: the score the verdict ranks by where no partition is density-separated
SCORE = "gap"
#: family-wise error rate of the test for structure beyond the null, per dataset
ALPHA = 0.05
#: Hennig (2007): clusters whose mean Jaccard under resampling is below 0.6 are not stable
STABLE_JACCARD = 0.6
#: mean ARI between the seeds of a stochastic pipeline below which they found different
#: clusterings: halfway between chance (0) and the same partition (1)
SEED_AGREEMENT = 0.5
#: share of a pipeline's seeds that must follow a nuisance for it to be flagged
FOLLOWING_SEEDS = 0.5
#: flag -> what it says
FLAGS = {
    "no_null": "no null reference could be computed: nothing to calibrate against",
    "single_cluster": "fewer than two clusters",
    "dominant_cluster": "one cluster holds over 90% of the items",
    "mostly_noise": "more than half of the items are noise",
    "unstable": f"clusters dissolve under resampling (mean Jaccard < {STABLE_JACCARD})",
    "seeds_disagree": f"its seeds find different clusterings (mean ARI between seeds < "
                      f"{SEED_AGREEMENT})",
    "k_at_edge": "the chosen k is at an edge of k_range",
    "no_clear_k": "the k-selection curve has no clear optimum",
    **{f"follows_{name}": f"its clusters follow {name}, a nuisance, more than any other "
       "descriptor of the images" for name in DESCRIPTORS},
}
#: flags that bar a claim of structure: a degenerate solution, or clusters that do not
#: survive resampling or a new seed; the others warn
BARRING = ("no_null", "single_cluster", "dominant_cluster", "mostly_noise", "unstable",
           "seeds_disagree")
#: the prefix of the flags naming a nuisance
FOLLOWS = "follows_"


def flag_text(flag: str) -> str:
    """What ``flag`` says, also for a nuisance declared by the experiment (a colour)."""
    if flag in FLAGS:
        return FLAGS[flag]
    if flag.startswith(FOLLOWS):
        return f"its clusters follow {flag.removeprefix(FOLLOWS)}, a nuisance"
    return flag


@dataclass
class Assessment:
    """One pipeline on one dataset, with the evidence the rule used."""

    dataset: str
    pipeline: str
    rank: int
    structure: bool
    #: the gap: how much tighter than on the null (``SCORE``), mean over seeds
    score: float
    #: the noise-honest silhouette's excess over the pipeline's null, in null standard
    #: deviations, and its p-value
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
    #: the full pipeline name, dataset included, exactly as ``results`` prints it (its
    #: ``pipeline`` column without the seed): the key that joins the verdict to any table
    name: str = ""
    #: one plain sentence on why the pipeline is where it is ("barred: seeds disagree")
    reason: str = ""
    #: the corrected level its p-values were tested against (``alpha`` / tests)
    threshold: float = math.nan
    #: density-based validity (DBCV), its excess over the null and its p-value
    validity: float = math.nan
    validity_excess: float = math.nan
    validity_p: float = math.nan
    #: the nuisance its clusters follow ("" when none) and how much (adjusted MI)
    follows: str = ""
    follows_ami: float = math.nan
    #: clusters whose density separation from the others exceeds their own sparseness,
    #: and whether every cluster is (mean over seeds of the least separated one > 0)
    separated: float = math.nan
    all_separated: bool = False
    #: every cluster separated, and the density test passed
    density_separated: bool = False

    @property
    def barred(self) -> bool:
        """Whether a flag bars this pipeline from showing structure (``BARRING``)."""
        return bool(set(self.flags) & set(BARRING))

    def record(self) -> dict[str, Any]:
        """As JSON-ready values: NaN (no evidence) becomes None."""
        return {key: None if isinstance(value, float) and math.isnan(value) else value
                for key, value in {**asdict(self), "barred": self.barred}.items()}


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

    def headline(self) -> str:
        """The verdict on this dataset in one sentence, the same in every view."""
        choice = self.choice
        if choice.structure and not choice.follows:
            return f"Recommended: {choice.name}."
        if choice.structure:
            return (f"Recommended with care: {choice.name}. Its clusters follow "
                    f"{choice.follows}, a nuisance, as do those of every pipeline that "
                    "shows structure.")
        followers = [a for a in self.ranking if a.structure and a.follows]
        if followers:
            return (f"No pipeline shows structure that does not follow a nuisance: the "
                    f"best, {followers[0].name}, follows {followers[0].follows}.")
        return ("No pipeline shows structure beyond its null reference: these clusters are "
                "what any clustering finds in structureless data.")


def assessments(verdicts: list[DatasetVerdict]) -> dict[str, Assessment]:
    """Every pipeline's assessment by its full name (``Assessment.name``), for views that
    order and mark rows of ``results`` by the verdict."""
    return {a.name: a for verdict in verdicts for a in verdict.ranking}


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
                                                                              axis=1),
        _name=pipeline_names(finished))
    verdicts = []
    for dataset, rows in frame.groupby("_dataset", sort=False):
        pipelines = [_assess(dataset, pipeline, group)
                     for pipeline, group in rows.groupby("_pipeline", sort=False)]
        tests = sum(math.isfinite(p) for a in pipelines for p in (a.p_value, a.validity_p))
        for a in pipelines:
            a.threshold = alpha / (tests or 1)
            dense, compact = a.validity_p < a.threshold, a.p_value < a.threshold
            a.structure = (dense or compact) and not a.barred
            a.density_separated = a.structure and dense and a.all_separated
            a.reason = reason(a)
        pipelines.sort(key=_order)
        for rank, assessment in enumerate(pipelines, start=1):
            assessment.rank = rank
        verdict = DatasetVerdict(dataset, pipelines)
        verdict.grade = grade(verdict, rows)
        verdicts.append(verdict)
    return verdicts


def _order(a: Assessment) -> tuple:
    """Not barred, then following no nuisance, then showing structure, then density-
    separated (the finest first), then the larger gap."""
    return (a.barred, bool(a.follows), not a.structure, not a.density_separated,
            -a.separated if a.density_separated else 0.0,
            -a.score if math.isfinite(a.score) else math.inf)


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
        "seed_stability": mean("stability_ari"),
        "k_at_edge": float(rows["calibration.k_at_edge"].max())
        if "calibration.k_at_edge" in rows else math.nan,
        "k_prominence": mean("calibration.k_prominence"),
    }
    follows, amount = following(rows)
    raised = flags(excess, evidence)
    if follows:
        raised.append(FOLLOWS + follows)
    return Assessment(
        dataset=dataset, pipeline=pipeline, rank=0, structure=False, score=mean(SCORE),
        excess=excess, p_value=excess_p_value(excess, draws),
        stability=evidence["stability"], coverage=evidence["coverage"],
        clusters=evidence["clusters"], flags=raised, seeds=len(rows),
        seed_stability=evidence["seed_stability"], name=str(rows["_name"].iloc[0]),
        validity=mean("validity"), validity_excess=mean("validity_excess"),
        validity_p=excess_p_value(mean("validity_excess"), draws),
        follows=follows, follows_ami=amount,
        separated=mean("calibration.separated_clusters"),
        all_separated=mean("calibration.validity_min") > 0)


def following(rows: pd.DataFrame) -> tuple[str, float]:
    """The nuisance most of a pipeline's seeds follow (``nuisance.follows.<name>``, from
    the cards step) and its mean adjusted mutual information with the clusters; ``("",
    nan)`` when none."""
    prefix = "nuisance.follows."
    shares = {column.removeprefix(prefix): float(rows[column].mean())
              for column in rows.columns if column.startswith(prefix)}
    shares = {name: share for name, share in shares.items()
              if math.isfinite(share) and share >= FOLLOWING_SEEDS}
    if not shares:
        return "", math.nan
    name = max(shares, key=shares.get)
    column = f"nuisance.{name}"
    return name, float(rows[column].mean()) if column in rows else math.nan


def flags(excess: float, evidence: dict[str, float]) -> list[str]:
    """The ``FLAGS`` that ``evidence`` raises (NaN evidence raises none, but a missing
    null raises ``no_null``); ``follows_*`` is raised by the caller."""
    raised = {
        "no_null": not math.isfinite(excess),
        "single_cluster": evidence["clusters"] < 2,
        "dominant_cluster": evidence["largest"] > 0.9,
        "mostly_noise": evidence["coverage"] < 0.5,
        "unstable": evidence["stability"] < STABLE_JACCARD,
        "seeds_disagree": evidence.get("seed_stability", math.nan) < SEED_AGREEMENT,
        "k_at_edge": evidence["k_at_edge"] >= 1,
        "no_clear_k": evidence["k_prominence"] < 1,
    }
    return [flag for flag in FLAGS if raised.get(flag)]


def reason(a: Assessment) -> str:
    """One plain sentence on ``a``'s place, with the numbers and thresholds it rests on."""
    barring = [flag for flag in a.flags if flag in BARRING]
    if barring:
        details = {
            "unstable": f"clusters dissolve under resampling (Jaccard {a.stability:.2f} < "
                        f"{STABLE_JACCARD})",
            "seeds_disagree": f"seeds disagree (ARI between seeds {a.seed_stability:.2f} < "
                              f"{SEED_AGREEMENT})",
            "dominant_cluster": "one cluster holds over 90% of the items",
            "mostly_noise": f"most items are noise (coverage {a.coverage:.2f})",
            "single_cluster": "fewer than two clusters",
            "no_null": "no null reference to test it against",
        }
        return "barred: " + "; ".join(details[flag] for flag in barring)
    tests = (f"density p {a.validity_p:.2g} (validity {a.validity:.2f}), silhouette p "
             f"{a.p_value:.2g}, against the corrected {a.threshold:.2g}")
    if a.follows:
        return (f"follows {a.follows} (adjusted MI {a.follows_ami:.2f}), a nuisance: ranked "
                f"below pipelines that follow none; {tests}")
    if a.density_separated:
        return (f"structure, all {a.separated:.0f} clusters density-separated: validity "
                f"{a.validity:.2f}, p {a.validity_p:.2g} below the corrected {a.threshold:.2g}")
    if a.structure:
        return (f"structure, compact beyond the null (gap {a.score:.2f}); {tests}" +
                ("" if a.all_separated else f"; {a.clusters - a.separated:.0f} of "
                 f"{a.clusters:.0f} clusters not density-separated"))
    return f"no structure: neither test passes; {tests}"


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

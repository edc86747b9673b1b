"""Results read back from MLflow: one record per combination, and summaries over seeds.

Everything downstream of a run (``clustergrid results``, reports) reads from here, so it
works the same against the local store and a remote tracking server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from clustergrid import names, stages
from clustergrid.record import TIME_PREFIX, read_combination
from clustergrid.tracking import Tracker

ROLES = ("dataset", "transforms", "encoder", "reducer", "clusterer")


def load_results(tracking_uri: str | None, experiment: str,
                 include_failed: bool = False) -> pd.DataFrame:
    """One row per combination: its params, metrics and status, the latest run winning
    when a combination was run more than once (``--no-resume``, or logged again under a
    new hash)."""
    return results_frame(Tracker(tracking_uri, experiment, create=False).combination_runs(),
                         include_failed)


def results_frame(runs: list, include_failed: bool = False) -> pd.DataFrame:
    """``load_results`` of combination runs already read (``Tracker.combination_runs``)."""
    rows = []
    for run in runs:
        status = run.info.status
        if status == "FINISHED" or (include_failed and status == "FAILED"):
            rows.append(read_combination(run))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # A combination logged again under a new hash (a plugin's new version, new verdict
    # settings) keeps its name: its latest run is the one that counts.
    frame = (frame.sort_values("start_time")
             .drop_duplicates("hash", keep="last")
             .drop_duplicates("pipeline", keep="last")
             .drop(columns=["start_time"]))
    leading = ["pipeline", *[f"param.{r}" for r in ROLES if f"param.{r}" in frame],
               "param.seed", "status"]
    leading = [c for c in leading if c in frame]
    rest = [c for c in frame.columns if c not in leading]
    # Scores first, then timings and identifiers.
    rest.sort(key=lambda c: (c.startswith((TIME_PREFIX, "step.", "run_id", "hash")), c))
    return frame[leading + rest]


def by_status(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The finished and the failed combinations of ``load_results(include_failed=True)``."""
    if frame.empty:
        return frame, frame
    return frame[frame["status"] == "FINISHED"], frame[frame["status"] == "FAILED"]


def component_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Each role's label, e.g. ``pca[n_components=10]``, for tables a person reads: the
    parts of each combination's name (``names.split_pipeline``), or, for a run whose
    name is not a pipeline's, its params; in the one spelling of ``clustergrid.names``.
    Columns: dataset, transforms (``none`` when there are none), encoder, reducer,
    clusterer, seed."""
    columns = ["dataset", "transforms", "encoder", "reducer", "clusterer"]
    runs = frame["pipeline"] if "pipeline" in frame else pd.Series(None, index=frame.index)
    # A grid's names repeat once per seed: each is read once.
    parsed = {name: _labels_of_name(name) for name in set(runs) if isinstance(name, str)}
    params = frame[[c for c in frame.columns if c.startswith("param.")]]
    rows = [parsed.get(name) or _labels_of_params(params.loc[index].to_dict())
            for index, name in runs.items()]
    labels = pd.DataFrame(rows, index=frame.index, columns=columns)
    labels["seed"] = frame.get("param.seed")
    return labels


def _labels_of_name(name: str) -> dict[str, str] | None:
    parts = names.split_pipeline(name)
    if parts is None:
        return None
    return {"dataset": parts.chain[0], "transforms": names.chain_label(parts.chain[1:]) or "none",
            "encoder": parts.encoder, "reducer": parts.reducer, "clusterer": parts.clusterer}


def _labels_of_params(row: dict) -> dict[str, str]:
    labels = {}
    for role in ("dataset", "encoder", "reducer", "clusterer"):
        prefix = f"param.{role}."
        labels[role] = names.label_of_texts(str(row.get(f"param.{role}")), [
            (key.removeprefix(prefix), str(value)) for key, value in row.items()
            if key.startswith(prefix) and pd.notna(value)])
    transforms = row.get("param.transforms")
    labels["transforms"] = "none" if transforms is None or pd.isna(transforms) \
        or transforms == "none" else names.canonical(transforms)
    return labels


#: suffixes of values logged beside a score to qualify it, not scores themselves
QUALIFIERS = ("_sample_size", "_spread", "_std", "_seeds")


def metric_columns(frame: pd.DataFrame, evidence: bool = True) -> list[str]:
    """Scores computed by metric plugins (not timings, step diagnostics or qualifiers),
    and the verdict's evidence unless ``evidence`` is False (for tables a person reads,
    where ``results --recommend`` gives the evidence its own reading)."""
    # What components report and their curves are prefixed by their stage; the cards'
    # nuisance check describes a clustering and is read on its card, not ranked.
    skip_prefixes = ("param.", "time.", "step.", "nuisance.",
                     *(f"{stage.name}." for stage in stages.STAGES))
    fixed = {"pipeline", "status", "run_id", "hash", "error"}
    if not evidence:  # the scores the evidence steps log with every combination
        fixed |= set(stages.logged_directions(role="evidence"))
    return [c for c in frame.columns if c not in fixed and not c.startswith(skip_prefixes)
            and not c.endswith(QUALIFIERS)]


def pipeline_names(frame: pd.DataFrame) -> pd.Series:
    """Each combination's pipeline: its run name without the seed (``Combination.label``
    ends with `` / seed=N`` when a step is stochastic), in the one spelling of
    ``clustergrid.names``; built from its params when the frame has no run names."""
    if "pipeline" not in frame:
        labels = component_labels(frame)
        chains = labels["dataset"] + labels["transforms"].map(
            lambda t: "" if t == "none" else names.CHAIN + t)
        return pd.Series([names.pipeline_label(*parts) for parts in zip(
            chains, labels["encoder"], labels["reducer"], labels["clusterer"], strict=True)],
            index=frame.index, dtype=object)
    return frame["pipeline"].map(names.canonical).str.replace(r" / seed=-?\d+$", "",
                                                              regex=True)


@dataclass(frozen=True)
class PipelineOrder:
    """The pipelines of a results frame in the order ``results`` shows them, numbered
    from 1 as it numbers them (``labels -p 3`` is the third)."""

    #: each pipeline's name (``pipeline_names``), the first numbered 1
    names: list[str]
    #: name -> its ``clustergrid.verdict.Assessment``; empty without the verdict's evidence
    assessments: dict[str, Any] = field(default_factory=dict)
    _numbers: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_numbers", {name: number for number, name
                                              in enumerate(self.names, start=1)})

    def number(self, name: str) -> int:
        """The number of the pipeline ``name``."""
        return self._numbers[name]


def pipeline_order(frame: pd.DataFrame) -> PipelineOrder:
    """The one order of a results frame's pipelines, for every view that numbers them:
    by the verdict when the combinations carry its evidence (each dataset's pipelines
    by their rank, the datasets as the verdict lists them; a pipeline it did not assess
    last), else as they first appear in the frame."""
    # Imported here: the verdict reads its rows through this module.
    from clustergrid.verdict import assessments, recommend

    order = list(dict.fromkeys(pipeline_names(frame))) if not frame.empty else []
    finished = frame[frame["status"] == "FINISHED"] if "status" in frame else frame
    judged = assessments(recommend(finished)) if not finished.empty else {}
    if judged:
        datasets = list(dict.fromkeys(a.dataset for a in judged.values()))
        order.sort(key=lambda name: (datasets.index(judged[name].dataset), judged[name].rank)
                   if name in judged else (len(datasets), 0))
    return PipelineOrder(order, judged)


def varying_parts(pipelines: list[str]) -> tuple[list[str], dict[str, str]]:
    """The roles (``ROLES``) whose labels differ between ``pipelines``, and each
    pipeline's short name: its labels of those roles joined by `` / `` (empty when
    none differ; the whole name for a name that is not a pipeline's)."""
    by_role = {name: labels for name in pipelines
               if (labels := _labels_of_name(name)) is not None}
    varying = [role for role in ROLES
               if len({labels[role] for labels in by_role.values()}) > 1]
    return varying, {name: names.PARTS.join(by_role[name][r] for r in varying)
                     if name in by_role else name for name in pipelines}


def summarize_over_seeds(frame: pd.DataFrame, evidence: bool = True) -> pd.DataFrame:
    """Mean and standard deviation of every metric per pipeline, across its seeds; one row
    per pipeline: its name (``pipeline``), its components' labels, ``seeds`` (how many),
    and ``<metric> mean`` and ``<metric> std`` for each of ``metric_columns(frame,
    evidence)``, in the order the pipelines first appear."""
    roles = component_labels(frame).drop(columns="seed")
    metrics = metric_columns(frame, evidence)
    # The run name identifies a pipeline exactly; the role labels are read off its rows.
    grouped = pd.concat([roles, frame[metrics]], axis=1).groupby(
        pipeline_names(frame).rename("pipeline"), sort=False)
    summary = grouped[metrics].agg(["mean", "std"])
    summary.columns = [f"{metric} {stat}" for metric, stat in summary.columns]
    summary.insert(0, "seeds", grouped.size())
    summary = pd.concat([grouped[list(roles.columns)].first(), summary], axis=1)
    return summary.reset_index()


def split_constant(summary: pd.DataFrame, columns: list[str]) -> tuple[list[str], dict]:
    """The columns that vary between rows, and the value of each one that does not."""
    constant = {c: summary[c].iloc[0] for c in columns if summary[c].nunique(dropna=False) == 1}
    return [c for c in columns if c not in constant], constant

"""Results read back from MLflow: one record per combination, and summaries over seeds.

Everything downstream of a run (``clustergrid results``, reports) reads from here, so it
works the same against the local store and a remote tracking server.
"""

from __future__ import annotations

import pandas as pd

from clustergrid.evidence import SCORES as VERDICT_SCORES
from clustergrid.plan import STAGES
from clustergrid.tracking import TAG_HASH, TAG_STEP, Tracker

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
        if status != "FINISHED" and not (include_failed and status == "FAILED"):
            continue
        row = {
            "run_id": run.info.run_id,
            "status": status,
            "hash": run.data.tags.get(TAG_HASH),
            "start_time": run.info.start_time,
            "pipeline": run.info.run_name,
            **{f"param.{k}": v for k, v in run.data.params.items()},
            **run.data.metrics,
            # Each stage's cache key: where its outputs and shared files are found.
            **{f"step.{k.removeprefix(TAG_STEP)}": v for k, v in run.data.tags.items()
               if k.startswith(TAG_STEP)},
        }
        if status == "FAILED":
            row["error"] = run.data.tags.get("error.message", "")
        rows.append(row)
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
    rest.sort(key=lambda c: (c.startswith(("time.", "step.", "run_id", "hash")), c))
    return frame[leading + rest]


def by_status(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The finished and the failed combinations of ``load_results(include_failed=True)``."""
    if frame.empty:
        return frame, frame
    return frame[frame["status"] == "FINISHED"], frame[frame["status"] == "FAILED"]


def component_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Short ids per role, e.g. ``pca[n_components=10]``, for tables a person reads."""
    labels = {}
    for role in ("dataset", "encoder", "reducer", "clusterer"):
        prefix = f"param.{role}."
        params = [c for c in frame.columns if c.startswith(prefix)]

        def label(row, role=role, params=params, prefix=prefix):
            inner = ",".join(f"{c.removeprefix(prefix)}={row[c]}" for c in params
                             if pd.notna(row[c]))
            return f"{row[f'param.{role}']}[{inner}]" if inner else row[f"param.{role}"]

        labels[role] = frame.apply(label, axis=1)
        if role == "dataset" and "param.transforms" in frame:
            labels["transforms"] = frame["param.transforms"]
    labels["seed"] = frame["param.seed"]
    return pd.DataFrame(labels, index=frame.index)


#: suffixes of values logged beside a score to qualify it, not scores themselves
QUALIFIERS = ("_sample_size", "_spread", "_std", "_seeds")


def metric_columns(frame: pd.DataFrame, evidence: bool = True) -> list[str]:
    """Scores computed by metric plugins (not timings, step diagnostics or qualifiers),
    and the verdict's evidence unless ``evidence`` is False (for tables a person reads,
    where ``results --recommend`` gives the evidence its own reading)."""
    # What components report and their curves are prefixed by their stage; the cards'
    # nuisance check describes a clustering and is read on its card, not ranked.
    skip_prefixes = ("param.", "time.", "step.", "nuisance.",
                     *(f"{stage}." for stage in STAGES))
    fixed = {"pipeline", "status", "run_id", "hash", "error"}
    if not evidence:
        fixed |= set(VERDICT_SCORES)
    return [c for c in frame.columns if c not in fixed and not c.startswith(skip_prefixes)
            and not c.endswith(QUALIFIERS)]


def pipeline_names(frame: pd.DataFrame) -> pd.Series:
    """Each combination's pipeline: its run name without the seed (``Combination.label``
    ends with `` / seed=N`` when a step is stochastic)."""
    return frame["pipeline"].str.replace(r" / seed=-?\d+$", "", regex=True)


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

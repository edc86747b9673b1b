"""Results read back from MLflow: one record per combination, and summaries over seeds.

Everything downstream of a run (``clustergrid results``, reports) reads from here, so it
works the same against the local store and a remote tracking server.
"""

from __future__ import annotations

import pandas as pd

from clustergrid.tracking import TAG_HASH, Tracker

ROLES = ("dataset", "transforms", "encoder", "reducer", "clusterer")


def load_results(tracking_uri: str | None, experiment: str,
                 include_failed: bool = False) -> pd.DataFrame:
    """One row per combination: its params, metrics and status, the latest run winning
    when a combination was run more than once (``--no-resume``)."""
    tracker = Tracker(tracking_uri, experiment, create=False)
    rows = []
    for run in tracker.combination_runs():
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
        }
        if status == "FAILED":
            row["error"] = run.data.tags.get("error.message", "")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = (frame.sort_values("start_time")
             .drop_duplicates("hash", keep="last")
             .drop(columns=["start_time"]))
    leading = ["pipeline", *[f"param.{r}" for r in ROLES if f"param.{r}" in frame],
               "param.seed", "status"]
    leading = [c for c in leading if c in frame]
    rest = [c for c in frame.columns if c not in leading]
    # Scores first, then timings and identifiers.
    rest.sort(key=lambda c: (c.startswith(("time.", "run_id", "hash")), c))
    return frame[leading + rest]


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
    labels["seed"] = frame["param.seed"]
    return pd.DataFrame(labels)


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """Scores computed by metric plugins (not timings or step diagnostics)."""
    skip_prefixes = ("param.", "time.", "encode.", "reduce.", "cluster.", "data.")
    fixed = {"pipeline", "status", "run_id", "hash", "error"}
    return [c for c in frame.columns if c not in fixed and not c.startswith(skip_prefixes)]


def summarize_over_seeds(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of every metric per pipeline, across its seeds."""
    params = [c for c in frame.columns if c.startswith("param.") and c != "param.seed"]
    metrics = metric_columns(frame)
    grouped = frame.groupby(params, dropna=False, sort=False)
    summary = grouped[metrics].agg(["mean", "std"])
    summary.columns = [f"{metric} {stat}" for metric, stat in summary.columns]
    summary.insert(0, "seeds", grouped.size())
    return summary.reset_index()

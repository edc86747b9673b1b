"""Everything a report shows, read back from MLflow: the results table, each invocation's
summary, each combination's files and the shared steps' thumbnails and maps.

Only the tracking store is read (never the cache), so a report can be built anywhere the
store can be reached, a remote tracking server included.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clustergrid import record
from clustergrid.record import INVOCATION_SUMMARY
from clustergrid.results import by_status, results_frame
from clustergrid.stages import logged_directions
from clustergrid.stages.pipeline import DATA, SCORE
from clustergrid.stages.report import CARDS, MAP
from clustergrid.tracking import Tracker, run_files


@dataclass
class CombinationFiles:
    """The files of one finished combination that the report draws."""

    labels: np.ndarray
    #: (cluster, item) rows: the items each cluster's gallery shows
    gallery: np.ndarray
    #: rows are classes, columns clusters, with the header of each
    confusion: pd.DataFrame | None
    #: name -> values, for the curves a combination's steps logged
    curves: dict[str, list[float]]
    #: the most unusual items (``outliers.csv``: rank, index, id, score), the highest
    #: outlier score first, and ``images``, their thumbnails, when the score step made them
    unusual: list[dict[str, Any]] = field(default_factory=list)
    #: the cards step's ``cards.json`` (``clustergrid.cards``), when it was logged
    cards: dict[str, Any] | None = None


@dataclass
class ReportData:
    experiment: str
    #: one row per combination (``results.load_results``), failed ones included
    frame: pd.DataFrame
    #: each invocation's summary, oldest first
    invocations: list[dict[str, Any]]
    #: run id -> its files, for finished combinations
    files: dict[str, CombinationFiles] = field(default_factory=dict)
    #: data step key -> thumbnails (``index``, ``ids``, ``images``, maybe ``labels``)
    thumbnails: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    #: map step key -> (n, 2) coordinates of every item
    maps: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def datasets(self) -> dict[str, dict[str, Any]]:
        """Data step key -> what the invocation summaries say of it (the latest wins)."""
        return {d["key"]: d for summary in self.invocations for d in summary.get("datasets", [])}

    @property
    def directions(self) -> dict[str, str]:
        """Logged metric name (or glob pattern) -> direction, as the invocations recorded
        them (the latest wins). Stores from before directions were recorded fall
        back to the installed plugins' metrics and the stages' own."""
        known: dict[str, str] = {}
        if not self.invocations or any("directions" not in s for s in self.invocations):
            from clustergrid.directions import metric_directions
            from clustergrid.registry import Registry

            classes = [info.cls for info in Registry.load().all("metric")]
            known = {**metric_directions(classes), **logged_directions()}
        for summary in self.invocations:
            known.update(summary.get("directions", {}))
        return known


def collect(tracking_uri: str | None, experiment: str) -> ReportData:
    """Read what the report of ``experiment`` needs from its tracking store."""
    tracker = Tracker(tracking_uri, experiment, create=False)
    runs = {run.info.run_id: run for run in tracker.combination_runs()}
    frame = results_frame(list(runs.values()), include_failed=True)
    client = tracker.client
    invocations = tracker.invocation_runs()
    data = ReportData(experiment, frame, [])
    with tempfile.TemporaryDirectory() as tmp:
        for run in invocations:
            summary = run_files(client, run, tmp) / INVOCATION_SUMMARY
            if summary.is_file():
                data.invocations.append(json.loads(summary.read_text()))
        files = tracker.step_files(_wanted_steps(frame), f"{tmp}/steps", invocations)
        for (stage, key), path in files.items():
            if stage == DATA.name:
                with np.load(path, allow_pickle=False) as stored:
                    data.thumbnails[key] = {k: stored[k] for k in stored.files}
            else:
                data.maps[key] = np.load(path, allow_pickle=False)
        finished, _ = by_status(frame)
        if not finished.empty:
            for run_id in finished["run_id"]:
                data.files[run_id] = _combination_files(run_files(client, runs[run_id], tmp))
    return data


def _wanted_steps(frame: pd.DataFrame) -> dict[tuple[str, str], str]:
    """The thumbnails and maps of the combinations shown: ``(stage, key) -> file``."""
    wanted = ((DATA, record.THUMBNAILS), (MAP, record.MAP))
    return {(stage.name, key): name for stage, name in wanted if f"step.{stage.name}" in frame
            for key in frame[f"step.{stage.name}"].dropna().unique()}


def _combination_files(folder: Path) -> CombinationFiles:
    labels = _read_csv(folder / record.LABELS)
    gallery = _read_csv(folder / record.GALLERY)
    confusion = _read_csv(folder / record.CONFUSION)
    curves = folder / record.CURVES
    return CombinationFiles(
        labels=np.asarray([int(row[1]) for row in labels[1:]], dtype=np.int64),
        gallery=np.asarray([[int(row[0]), int(row[1])] for row in gallery[1:]],
                           dtype=np.int64).reshape(-1, 2),
        confusion=(pd.DataFrame([row[1:] for row in confusion[1:]], columns=confusion[0][1:],
                                index=[row[0] for row in confusion[1:]]).astype(int)
                   if confusion else None),
        curves=json.loads(curves.read_text()) if curves.is_file() else {},
        unusual=_unusual(folder),
        cards=(json.loads((folder / CARDS.name / record.CARDS_JSON).read_text())
               if (folder / CARDS.name / record.CARDS_JSON).is_file() else None),
    )


def _unusual(folder: Path) -> list[dict[str, Any]]:
    """The rows of ``record.OUTLIERS``, each with its thumbnail (``image``, or None)."""
    rows = _read_csv(folder / record.OUTLIERS)
    found = [{"rank": int(r[0]), "index": int(r[1]), "id": r[2], "score": float(r[3]),
              "image": None} for r in rows[1:]]
    path = folder / SCORE.name / record.UNUSUAL
    if found and path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            images = dict(zip(stored["index"].tolist(), stored["images"], strict=True))
        for row in found:
            row["image"] = images.get(row["index"])
    return found


def _read_csv(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    return list(csv.reader(io.StringIO(path.read_text())))

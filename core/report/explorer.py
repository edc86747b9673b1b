"""The data behind the report's per-combination explorer: for each dataset a sprite of
thumbnails, for each encoder output its 2-D map, for each combination its clusters,
gallery, confusion matrix and curves. The page's script draws them; everything here is
plain JSON, so user text reaches the page only as data (set as text, never as markup).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from clustergrid.report.collect import ReportData
from clustergrid.report.png import png_data_uri

#: thumbnails per row of a dataset's sprite
SPRITE_COLUMNS = 50


def explorer_data(data: ReportData, pipelines: pd.Series) -> dict[str, Any]:
    """``datasets`` (by data step key), ``maps`` (by map step key) and ``runs``, one per
    finished combination, in the order of ``pipelines`` (run id -> pipeline label)."""
    datasets = {key: _dataset(key, thumbs, data) for key, thumbs in data.thumbnails.items()}
    # A map covers every item of its dataset; the report shows those with thumbnails.
    frame = data.frame
    # No step.map column at all when the experiment says `map: null`.
    drawn = frame.dropna(subset=["step.map"]) if "step.map" in frame else None
    maps = {} if drawn is None else {
        key: _scaled(data.maps[key][data.thumbnails[data_key]["index"]])
        for key, data_key in zip(drawn["step.map"], drawn["step.data"], strict=True)
        if key in data.maps and data_key in data.thumbnails}
    runs = []
    rows = data.frame.set_index("run_id")
    for run_id, pipeline in pipelines.items():
        files = data.files.get(run_id)
        row = rows.loc[run_id]
        data_key = row.get("step.data")
        if files is None or data_key not in data.thumbnails:
            continue
        shown = data.thumbnails[data_key]["index"]
        map_key = row.get("step.map")
        runs.append({
            "id": run_id,
            "label": str(pipeline),
            "seed": str(row.get("param.seed", "")),
            "data": data_key,
            "map": map_key if map_key in maps else None,
            "clusters": files.labels[shown].tolist() if len(files.labels) else [],
            "gallery": _gallery(files.gallery, shown),
            "confusion": _confusion(files.confusion),
            "charts": charts(files.curves, datasets[data_key]["classes"],
                             criterion=row.get("param.clusterer.criterion"),
                             chosen_k=row.get("cluster.chosen_k")),
        })
    return {"datasets": datasets, "maps": maps, "runs": runs}


def page_json(payload: dict[str, Any]) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``
    can close the element or start markup."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _dataset(key: str, thumbs: dict[str, np.ndarray], data: ReportData) -> dict[str, Any]:
    images = thumbs["images"]
    return {
        "sprite": _sprite(images),
        "size": int(images.shape[1]) if len(images) else 0,
        "columns": SPRITE_COLUMNS,
        "ids": thumbs["ids"].tolist(),
        "truth": thumbs["labels"].tolist() if "labels" in thumbs else None,
        "classes": _class_names(key, thumbs, data),
    }


def _class_names(key: str, thumbs: dict[str, np.ndarray], data: ReportData) -> list[str]:
    """Class names as the dataset gave them (in the invocation summaries), else the
    label values."""
    labels = thumbs.get("labels")
    top = int(labels.max()) + 1 if labels is not None and len(labels) else 0
    names = data.datasets.get(key, {}).get("class_names") or []
    return [str(name) for name in names] if len(names) >= top else [str(k) for k in range(top)]


def _sprite(images: np.ndarray) -> str:
    """All thumbnails in one PNG, ``SPRITE_COLUMNS`` per row, as a data URI."""
    if not len(images):
        return ""
    n, size = len(images), images.shape[1]
    rows = -(-n // SPRITE_COLUMNS)
    sheet = np.zeros((rows * size, SPRITE_COLUMNS * size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, SPRITE_COLUMNS)
        sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = image
    return png_data_uri(sheet)


def _scaled(points: np.ndarray) -> list[list[float]]:
    """Coordinates scaled into the unit square, keeping the aspect ratio and centring the
    shorter side; 4 decimals."""
    points = np.asarray(points, dtype=np.float64)[:, :2]
    low = points.min(axis=0)
    extent = points.max(axis=0) - low
    span = float(extent.max()) or 1.0
    return np.round((points - low) / span + (1 - extent / span) / 2, 4).tolist()


def _gallery(rows: np.ndarray, shown: np.ndarray) -> list[list[int]]:
    """(cluster, position among the shown items) for each gallery item."""
    position = np.searchsorted(shown, rows[:, 1])
    keep = (position < len(shown)) & (shown[np.minimum(position, len(shown) - 1)] == rows[:, 1])
    return [[int(c), int(p)] for c, p in zip(rows[keep, 0], position[keep], strict=True)]


def _confusion(table: pd.DataFrame | None) -> dict[str, Any] | None:
    if table is None:
        return None
    return {"classes": [str(c) for c in table.index], "clusters": list(table.columns),
            "counts": table.to_numpy().tolist()}


def charts(curves: dict[str, list[float]], classes: list[str],
           criterion: str | None = None, chosen_k: float | None = None,
           ) -> list[dict[str, Any]]:
    """Line charts of a combination's curves: the k-selection curve (with the k chosen),
    the probe's ROC curves and the training curves of a trained encoder."""
    found = []
    if "cluster.k_curve_k" in curves and "cluster.k_curve_score" in curves:
        ks, scores = curves["cluster.k_curve_k"], curves["cluster.k_curve_score"]
        name = str(criterion) if isinstance(criterion, str) else "criterion"
        series = [(name, ks, scores)]
        finite = [v for v in scores if v is not None and np.isfinite(v)]
        if chosen_k is not None and np.isfinite(chosen_k) and finite:
            series.append((f"chosen k = {int(chosen_k)}", [chosen_k] * 2,
                           [min(finite), max(finite)]))
        found.append(_chart("Choosing k", "k", name, series))
    roc = sorted(k for k in curves if k.startswith("probe.roc_tpr."))
    if roc:
        def name(key: str) -> str:
            # Logged by class name, or by class index in stores written before.
            label = key.removeprefix("probe.roc_tpr.")
            if label in classes or not label.isdigit() or int(label) >= len(classes):
                return label
            return classes[int(label)]

        found.append(_chart("Linear probe ROC (one class against the rest)",
                            "false-positive rate", "true-positive rate",
                            # Logged at evenly spaced false-positive rates, 0 to 1.
                            [(name(k), np.linspace(0, 1, len(curves[k])).tolist(), curves[k])
                             for k in roc],
                            limits=[0, 1]))
    losses = sorted(k for k in curves if k.startswith(("encode.train_", "encode.val_")))
    if losses:
        found.append(_chart("Encoder training", "epoch", "loss", [
            (k.removeprefix("encode."), list(range(1, len(curves[k]) + 1)), curves[k])
            for k in losses]))
    return found


def _chart(title: str, x_label: str, y_label: str, series,
           limits: list[float] | None = None) -> dict[str, Any]:
    """A line chart; ``limits`` fixes both axes (else they fit the data)."""
    def finite(values):
        return [None if v is None or not np.isfinite(v) else round(float(v), 6)
                for v in values]

    return {"title": title, "x": x_label, "y": y_label, "limits": limits,
            "series": [{"name": name, "x": finite(x), "y": finite(y)} for name, x, y in series]}

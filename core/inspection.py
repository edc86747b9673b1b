"""``clustergrid inspect``: what a dataset looks like after its transforms, before any grid.

Statistics are accumulated batch by batch, so a dataset larger than memory is inspected
in bounded memory. The montage shows the first items of each class, one row per class.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clustergrid.components import Dataset
from clustergrid.errors import ClustergridError
from clustergrid.registry import Registry
from clustergrid.spec import Component, DatasetChoice
from clustergrid.stages import build, transformed_batches
from clustergrid.thumbnails import display_image

#: What loaders and transforms raise on bad data (unreadable files, invalid parameters,
#: missing catalogue ids); anything else is a bug and keeps its traceback.
DATA_ERRORS = (ValueError, OSError, KeyError)


class DatasetError(ClustergridError):
    """Building or reading a dataset, or transforming its images, failed on its data."""


@dataclass
class Inspection:
    """Counts, shapes and per-channel statistics of one dataset chain."""

    name: str
    n: int
    shape: tuple[int, ...]
    class_names: list[str] | None
    #: class name (or "unlabelled") -> count
    label_counts: dict[str, int]
    #: per channel: min, max, mean, std over finite pixels; fraction of NaN pixels
    channel_stats: list[dict[str, float]]
    #: Pearson correlation between channels over all finite pixels
    correlation: np.ndarray
    #: class name -> up to ``per_class`` images, for the montage
    examples: dict[str, list[np.ndarray]] = field(default_factory=dict)
    #: ``(file, reason)`` of every item the loader dropped (``on_error: skip``)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: a name per channel of the transformed images (a FITS file's bands), or None
    channel_names: list[str] | None = None

    def channel_labels(self) -> list[str]:
        """The channels' names, or their numbers when the dataset does not name them."""
        return self.channel_names or [str(c) for c in range(len(self.channel_stats))]


def inspect_dataset(choice: DatasetChoice, registry: Registry, per_class: int = 6,
                    batch_size: int = 256) -> Inspection:
    """Statistics of ``choice`` after its transforms; a :class:`DatasetError` names the
    dataset when its files or parameters are bad (as ``run`` reports a failing data step)."""
    dataset_label = choice.dataset.label()
    with _data_errors(dataset_label):
        dataset = build(choice.dataset, registry)
        n = len(dataset)
        labels = dataset.labels()
        names = dataset.class_names()
        skipped = [(str(where), str(reason))
                   for where, reason in getattr(dataset, "skipped", list)()]
        if n == 0:
            raise DatasetError(f"dataset '{dataset_label}' has no items" + (
                f" ({len(skipped)} skipped by on_error: skip)" if skipped else ""))
        channel_names = _transformed_channel_names(dataset, choice.transforms, registry)

    def class_of(label: int) -> str:
        if label < 0:
            return "unknown"
        return names[label] if names and label < len(names) else str(label)

    moments = None
    examples: dict[str, list[np.ndarray]] = {}
    shape: tuple[int, ...] = ()
    batches = transformed_batches(dataset, choice.transforms, registry, batch_size)
    for start, batch in _guarded(batches, dataset_label):
        shape = batch.shape[1:]
        if moments is None:
            moments = _Moments(shape[0])
        moments.add(batch)
        for offset, image in enumerate(batch):
            name = "all" if labels is None else class_of(int(labels[start + offset]))
            if len(examples.setdefault(name, [])) < per_class:
                examples[name].append(image)
    counts = (Counter({"unlabelled": n}) if labels is None
              else Counter(class_of(int(label)) for label in labels))
    return Inspection(
        name=dataset_label + "".join(f" > {t.label()}" for t in choice.transforms),
        n=n,
        shape=shape,
        class_names=names,
        label_counts=dict(sorted(counts.items())),
        channel_stats=moments.stats(),
        correlation=moments.correlation(),
        examples=examples,
        skipped=skipped,
        channel_names=channel_names if len(channel_names or ()) == shape[0] else None,
    )


@contextmanager
def _data_errors(label: str) -> Iterator[None]:
    """Turn a loader's or transform's data error into one line naming the dataset."""
    try:
        yield
    except DATA_ERRORS as exc:
        raise DatasetError(f"dataset '{label}' failed: {type(exc).__name__}: {exc}") from exc


def _guarded(batches: Iterator, label: str) -> Iterator:
    """``batches``, with data errors raised while producing them named as by _data_errors;
    errors in the caller's loop body are left alone."""
    while True:
        with _data_errors(label):
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def _transformed_channel_names(dataset: Dataset, transforms: tuple[Component, ...],
                               registry: Registry) -> list[str] | None:
    """The dataset's channel names carried through ``transforms`` (each maps them with
    ``Transform.channel_names``), or None once one of them changes the channel count
    without naming the result: checked by passing the first item through the chain."""
    names = dataset.channel_names()
    if names is None:
        return None
    names = [str(name) for name in names]
    images = np.asarray(dataset.read(0, 1), dtype=np.float32) if transforms else None
    for component in transforms:
        transform = build(component, registry)
        names = transform.channel_names(names)
        images = np.asarray(transform.transform(images))
        if names is None or images.ndim != 4 or images.shape[1] != len(names):
            return None
    return names


class _Moments:
    """Running per-channel sums and cross products over finite pixels."""

    def __init__(self, channels: int):
        self.count = np.zeros(channels)
        self.nan = np.zeros(channels)
        self.total = np.zeros(channels)
        self.sum = np.zeros(channels)
        self.products = np.zeros((channels, channels))
        self.pairs = np.zeros((channels, channels))
        self.low = np.full(channels, np.inf)
        self.high = np.full(channels, -np.inf)

    def add(self, batch: np.ndarray) -> None:
        pixels = np.moveaxis(batch, 1, 0).reshape(batch.shape[1], -1).astype(np.float64)
        finite = np.isfinite(pixels)
        values = np.where(finite, pixels, 0.0)
        self.total += pixels.shape[1]
        self.nan += np.isnan(pixels).sum(axis=1)
        self.count += finite.sum(axis=1)
        self.sum += values.sum(axis=1)
        # Cross products only over pixels finite in both channels of a pair.
        self.products += values @ values.T
        self.pairs += finite.astype(np.float64) @ finite.T.astype(np.float64)
        self.low = np.minimum(self.low, np.where(finite, pixels, np.inf).min(axis=1))
        self.high = np.maximum(self.high, np.where(finite, pixels, -np.inf).max(axis=1))

    def stats(self) -> list[dict[str, float]]:
        mean = self.sum / np.maximum(self.count, 1)
        var = np.diag(self.products) / np.maximum(self.count, 1) - mean**2
        return [
            {"min": float(self.low[c]), "max": float(self.high[c]), "mean": float(mean[c]),
             "std": float(np.sqrt(max(var[c], 0.0))), "nan_fraction":
             float(self.nan[c] / max(self.total[c], 1))}
            for c in range(len(mean))
        ]

    def correlation(self) -> np.ndarray:
        # Approximates each pair's means by the channel means over all its finite
        # pixels; exact when NaNs are absent or shared by all channels.
        mean = self.sum / np.maximum(self.count, 1)
        covariance = self.products / np.maximum(self.pairs, 1) - np.outer(mean, mean)
        std = np.sqrt(np.clip(np.diag(covariance), 0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            return covariance / np.outer(std, std)


def montage(inspection: Inspection, path: Path, thumb: int = 64) -> Path:
    """A PNG with one row per class (its name on the left) and its first items."""
    from PIL import Image, ImageDraw

    rows = inspection.examples
    columns = max((len(images) for images in rows.values()), default=0)
    margin = 110
    canvas = Image.new("RGB", (margin + columns * (thumb + 4), len(rows) * (thumb + 4)),
                       "white")
    draw = ImageDraw.Draw(canvas)
    for row, (name, images) in enumerate(rows.items()):
        y = row * (thumb + 4)
        draw.text((4, y + thumb // 2 - 6), name[:16], fill="black")
        for column, image in enumerate(images):
            tile = Image.fromarray(display_image(image)).resize((thumb, thumb), Image.NEAREST)
            canvas.paste(tile, (margin + column * (thumb + 4), y))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path

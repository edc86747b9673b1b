"""``clustergrid inspect``: what a dataset looks like after its transforms, before any grid.

Statistics are accumulated batch by batch, so a dataset larger than memory is inspected
in bounded memory. The montage shows the first items of each class, one row per class.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clustergrid.registry import Registry
from clustergrid.spec import DatasetChoice
from clustergrid.stages import build, transformed_batches
from clustergrid.thumbnails import display_image


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


def inspect_dataset(choice: DatasetChoice, registry: Registry, per_class: int = 6,
                    batch_size: int = 256) -> Inspection:
    dataset = build(choice.dataset, registry)
    labels = dataset.labels()
    names = dataset.class_names()

    def class_of(label: int) -> str:
        if label < 0:
            return "unknown"
        return names[label] if names and label < len(names) else str(label)

    moments = None
    examples: dict[str, list[np.ndarray]] = {}
    shape: tuple[int, ...] = ()
    for start, batch in transformed_batches(dataset, choice.transforms, registry, batch_size):
        shape = batch.shape[1:]
        if moments is None:
            moments = _Moments(shape[0])
        moments.add(batch)
        for offset, image in enumerate(batch):
            name = "all" if labels is None else class_of(int(labels[start + offset]))
            if len(examples.setdefault(name, [])) < per_class:
                examples[name].append(image)
    counts = (Counter({"unlabelled": len(dataset)}) if labels is None
              else Counter(class_of(int(label)) for label in labels))
    return Inspection(
        name=choice.dataset.label() + "".join(f" > {t.label()}" for t in choice.transforms),
        n=len(dataset),
        shape=shape,
        class_names=names,
        label_counts=dict(sorted(counts.items())),
        channel_stats=moments.stats(),
        correlation=moments.correlation(),
        examples=examples,
    )


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

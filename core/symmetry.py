"""Orientation-free embeddings: any encoder's output pooled over a group of symmetries.

On sky (and detector) images orientation means nothing, yet an encoder's embedding of a
galaxy changes when it is rotated, and clusterings split images by orientation. With
``symmetry`` set on an encoder entry, the runner embeds every image under each element
of the group and pools the embeddings (mean or max, feature by feature), so the result
is the same for every rotated or flipped copy of an image: ``d4`` and ``c4`` exactly,
``rotations`` up to the interpolation of the rotated images.

Groups (``symmetry``):

    none       the image as it is (the default)
    c4         the 4 rotations by multiples of 90 degrees
    d4         the 8 symmetries of the square: those rotations, each also mirrored
    rotations  ``symmetry_angles`` rotations by multiples of 360 / angles degrees; the
               multiples of 90 degrees exactly, the others by linear interpolation
               (nearest edge pixel beyond the frame)

Every group needs square images. A trained encoder is fitted on the images as they are
(not on the transformed copies): only its outputs are pooled. Its ``transform`` runs
once per element of the group, so encoding costs ``len(group)`` times as much (8 for
``d4``). Rotated copies are made ``BATCH_SIZE`` images at a time for encoders that embed
row by row, and one whole copy of the stack at a time for the others.

The keys ``symmetry``, ``symmetry_pool`` and ``symmetry_angles`` of an encoder entry are
reserved: the runner applies them and never passes them to the encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the groups, by their name in an experiment file
GROUPS = ("none", "d4", "c4", "rotations")
#: how the embeddings of an image's copies are combined, feature by feature
POOLS = ("mean", "max")
#: rotations of the ``rotations`` group when ``symmetry_angles`` is not given
DEFAULT_ANGLES = 8
#: reserved keys of an encoder entry: runner settings, never the encoder's parameters
KEYS = ("symmetry", "symmetry_pool", "symmetry_angles")
#: part of the encode step's key: a change of how copies are made recomputes the caches
VERSION = "1"
#: images copied and transformed at a time for encoders that embed row by row
BATCH_SIZE = 256


def check_value(key: str, value: Any) -> Any:
    """``value`` of the reserved ``key`` in its canonical form; ValueError says why not."""
    if key == "symmetry":
        name = "none" if value is None else value
        if not isinstance(name, str) or name.lower() not in GROUPS:
            raise ValueError(f"{value!r} is not a symmetry: choose one of {', '.join(GROUPS)}")
        return name.lower()
    if key == "symmetry_pool":
        if not isinstance(value, str) or value.lower() not in POOLS:
            raise ValueError(f"{value!r} is not a pooling: choose one of {', '.join(POOLS)}")
        return value.lower()
    if key == "symmetry_angles":
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{value!r} is not valid: the number of rotations is an "
                             "integer of at least 2")
        return value
    raise ValueError(f"{key!r} is not a symmetry option (known: {', '.join(KEYS)})")


def options(symmetry: str = "none", symmetry_pool: str = "mean",
            symmetry_angles: int = DEFAULT_ANGLES) -> tuple[tuple[str, Any], ...]:
    """The canonical options of one encoder: () for no symmetry, and defaults left out,
    so that writing ``symmetry_pool: mean`` or not gives the same step (and label)."""
    symmetry = check_value("symmetry", symmetry)
    symmetry_pool = check_value("symmetry_pool", symmetry_pool)
    symmetry_angles = check_value("symmetry_angles", symmetry_angles)
    if symmetry == "none":
        return ()
    chosen: list[tuple[str, Any]] = [("symmetry", symmetry)]
    if symmetry_pool != "mean":
        chosen.append(("symmetry_pool", symmetry_pool))
    if symmetry == "rotations" and symmetry_angles != DEFAULT_ANGLES:
        chosen.append(("symmetry_angles", symmetry_angles))
    return tuple(chosen)


@dataclass(frozen=True)
class Element:
    """One symmetry: mirror left-right (when ``mirror``), then rotate by ``degrees``
    counter-clockwise."""

    degrees: float
    mirror: bool = False

    def apply(self, images: np.ndarray) -> np.ndarray:
        """The transformed copy of ``(n, c, h, w)`` images, as a C-contiguous float32
        array (a view would hand encoders negative strides, which torch refuses)."""
        out = images[..., ::-1] if self.mirror else images
        turns, rest = divmod(self.degrees, 90.0)
        if rest == 0:
            out = np.rot90(out, int(turns) % 4, axes=(-2, -1))
        else:
            from scipy.ndimage import rotate

            out = rotate(np.asarray(out, dtype=np.float32), self.degrees, axes=(-2, -1),
                         reshape=False, order=1, mode="nearest")
        return np.ascontiguousarray(out, dtype=np.float32)


@dataclass(frozen=True)
class Symmetry:
    """A group of image symmetries and the pooling of the embeddings over it."""

    group: str
    pool: str = "mean"
    angles: int = DEFAULT_ANGLES

    @classmethod
    def from_options(cls, step_options: dict[str, Any]) -> Symmetry | None:
        """The symmetry an encode step's options ask for, or None for none."""
        group = step_options.get("symmetry", "none")
        if group == "none":
            return None
        return cls(group, step_options.get("symmetry_pool", "mean"),
                   step_options.get("symmetry_angles", DEFAULT_ANGLES))

    def elements(self) -> list[Element]:
        """The group's elements, the identity first."""
        if self.group == "c4":
            return [Element(90.0 * k) for k in range(4)]
        if self.group == "d4":
            return [Element(90.0 * k, mirror) for mirror in (False, True) for k in range(4)]
        if self.group == "rotations":
            return [Element(360.0 * k / self.angles) for k in range(self.angles)]
        raise ValueError(f"{self.group!r} is not a symmetry: choose one of {', '.join(GROUPS)}")

    def __len__(self) -> int:
        return len(self.elements())

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError unless ``shape`` is ``(n, c, h, w)`` with square images."""
        if len(shape) != 4 or shape[-1] != shape[-2]:
            size = "x".join(str(side) for side in shape[-2:])
            raise ValueError(
                f"symmetry {self.group} needs square images, got images of shape "
                f"{tuple(shape)} ({size}): crop or resize them first (transforms 'crop' "
                "or 'resize')"
            )

    def embed(self, transform: Callable[[np.ndarray], np.ndarray],
              images: np.ndarray) -> np.ndarray:
        """``transform`` of every element's copy of ``images``, pooled: ``(n, d)``
        float32. One transformed copy is held at a time."""
        pooled: np.ndarray | None = None
        for element in self.elements():
            out = np.asarray(transform(element.apply(images)))
            if pooled is None:
                pooled = out.astype(np.float64 if self.pool == "mean" else np.float32)
            elif out.shape != pooled.shape:
                raise ValueError(f"the encoder returned shape {out.shape} for a rotated or "
                                 f"mirrored copy, {pooled.shape} for the images as they are")
            elif self.pool == "mean":
                pooled += out
            else:
                np.maximum(pooled, out, out=pooled)
        if self.pool == "mean":
            pooled /= len(self)
        return pooled.astype(np.float32, copy=False)

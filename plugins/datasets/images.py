"""PNG, JPEG and TIFF images read with Pillow, from a folder (one sub-folder per class) or
a glob."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from clustergrid.plugins.support.files import (
    FileDataset,
    Item,
    OnError,
    Problems,
    ShapePolicy,
    array_problem,
    folder_class,
    folder_root,
    resolve_files,
    unique_ids,
)

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class ImageFolder(FileDataset):
    """PNG/JPEG/TIFF images (8/16-bit gray or RGB) from a folder or glob, via Pillow.

    ``path``: a folder (searched recursively) or a glob. ``labels_from``: ``folders`` (the
    first sub-folder under ``path`` is the class; files directly in it get -1); or
    ``catalogue``, a CSV whose ``id_column`` holds item ids (the file name without
    suffix, or its path relative to ``path`` when names repeat) and ``label_column`` the
    classes (empty = unknown; every class of the catalogue is kept). ``channels``:
    ``auto`` keeps each file's channels (files whose count differs from the majority are
    bad items), ``gray`` converts to one channel, ``rgb`` to three. 16-bit values are
    kept as they are.
    """

    name = "images"
    suffixes = SUFFIXES

    def __init__(
        self,
        path: str,
        labels_from: Literal["folders"] | None = None,
        catalogue: str | None = None,
        id_column: str = "id",
        label_column: str = "label",
        channels: Literal["auto", "gray", "rgb"] = "auto",
        shape_policy: ShapePolicy = "error",
        size: int | None = None,
        on_error: OnError = "fail",
    ):
        self.path = path
        self.labels_from = labels_from
        self.catalogue = catalogue
        self.id_column = id_column
        self.label_column = label_column
        self.channels = channels
        self.shape_policy = shape_policy
        self.size = size
        self.on_error = on_error

    def _sources(self) -> list[Path]:
        return resolve_files(self.path, SUFFIXES)

    def _scan(self, problems: Problems) -> list[Item]:
        files = self._sources()
        root = folder_root(self.path)
        ids = unique_ids(files, root, SUFFIXES)
        items = []
        for file, item_id in zip(files, ids, strict=True):
            # Pillow raises OSError for truncated data, UnidentifiedImageError (an
            # OSError) for non-images, SyntaxError for some corrupt headers.
            array = problems.load([file], lambda file=file: self._decode(file), "image",
                                  (OSError, ValueError, SyntaxError))
            if array is None:
                continue
            problem = array_problem(array)
            if problem:
                problems.report(file, problem)
                continue
            label = folder_class(file, root) if self.labels_from == "folders" else None
            items.append(Item(item_id, str(file), array.shape, key=file, label=label))
        return items

    def _load(self, item: Item) -> np.ndarray:
        return self._decode(item.key)

    def _decode(self, file: Path) -> np.ndarray:
        """The image as ``(c, h, w)`` float32, converted as ``channels`` asks."""
        from PIL import Image

        with Image.open(file) as image:
            image.load()
            array = _pixels(image, self.channels)
        array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
        return np.ascontiguousarray(array, dtype=np.float32)


def _pixels(image, channels: str) -> np.ndarray:
    """Pixel values as ``(h, w)`` or ``(h, w, c)``, 16-bit and float modes unchanged."""
    mode = image.mode
    if mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        # palette and exotic colour spaces have no meaningful raw values: go through RGB
        # (or L for bilevel and gray palettes)
        image = image.convert("L" if mode == "1" else "RGB")
        mode = image.mode
    if mode in ("LA", "La"):
        image = image.getchannel("L")
        mode = "L"
    if mode in ("RGBA", "RGBa", "RGBX"):
        image = image.convert("RGB")
        mode = "RGB"
    array = np.asarray(image)
    if mode == "RGB" and channels == "gray":
        # ITU-R 601 luma, as Pillow's convert("L") but without rounding to 8 bits
        array = array.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    elif array.ndim == 2 and channels == "rgb":
        array = np.repeat(array[..., None], 3, axis=-1)
    return array

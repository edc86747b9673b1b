"""HDF5: images stacked in one dataset of one file (Galaxy10 style), read slice by slice."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from clustergrid.plugins.datasets.files import (
    FileDataset,
    Item,
    OnError,
    Problems,
    ShapePolicy,
    array_problem,
    catalogue_labels,
    encode_labels,
    fit_shape,
)

Layout = Literal["auto", "nhwc", "nchw", "nhw"]

#: Bytes of float32 pixels validated per chunk while scanning, to bound memory.
CHUNK_BYTES = 64 * 2**20


class Hdf5File(FileDataset):
    """HDF5 images: one dataset ``images`` of one file, with optional integer labels.

    ``images`` names the HDF5 dataset holding the stack (a path such as ``data/images``
    inside groups works too), shaped by ``layout``: ``nhwc`` ``(n, h, w, c)`` as Galaxy10
    ships, ``nchw`` ``(n, c, h, w)``, ``nhw`` ``(n, h, w)``; ``auto`` takes a 3-d stack as
    ``nhw`` and a 4-d one as ``nhwc`` when its last axis is 1..4 long and its second is
    not, else as ``nchw``. ``labels_dataset`` names a 1-d integer dataset of the same
    length (Galaxy10: ``ans``), negative meaning unknown; codes are kept as they are, and
    ``class_labels`` names them (index = code; default: the codes as strings). Labels can
    instead come from a CSV ``catalogue`` whose ``id_column`` holds item indices
    ``0..n-1``. Ids are those indices. Every image is checked at index time, in chunks;
    ``read`` reads only the requested slice from the file.
    """

    name = "hdf5"
    suffixes = (".h5", ".hdf5", ".he5")
    #: One file cannot have class folders; ``FileDataset`` reads this attribute.
    labels_from = None

    def __init__(
        self,
        path: str,
        images: str = "images",
        labels_dataset: str | None = None,
        class_labels: list[str] | None = None,
        layout: Layout = "auto",
        catalogue: str | None = None,
        id_column: str = "id",
        label_column: str = "label",
        shape_policy: ShapePolicy = "error",
        size: int | None = None,
        on_error: OnError = "fail",
    ):
        self.path = path
        self.images = images
        self.labels_dataset = labels_dataset
        self.class_labels = class_labels
        self.layout = layout
        self.catalogue = catalogue
        self.id_column = id_column
        self.label_column = label_column
        self.shape_policy = shape_policy
        self.size = size
        self.on_error = on_error

    # -- the file -------------------------------------------------------------------------
    def _file(self) -> Path:
        return Path(self.path).expanduser()

    def _sources(self) -> list[Path]:
        return [self._file()]

    def _open(self):
        """The file opened read-only (a context manager); h5py is imported only here."""
        import h5py

        file = self._file()
        if not file.is_file():
            raise ValueError(f"{self.path}: no such HDF5 file")
        try:
            return h5py.File(file, "r")
        except OSError as exc:
            raise ValueError(f"{self.path}: unreadable HDF5 file ({exc})") from exc

    def _dataset(self, handle, key: str, parameter: str):
        """The HDF5 dataset ``key``; a ValueError listing every dataset of the file."""
        import h5py

        node = handle.get(key)
        if isinstance(node, h5py.Dataset):
            return node
        found: list[str] = []
        handle.visititems(
            lambda name, obj: found.append(f"{name} {obj.shape} {obj.dtype}")
            if isinstance(obj, h5py.Dataset) else None
        )
        raise ValueError(
            f"{self.path}: no dataset {key!r} ({parameter}); the file holds "
            f"{', '.join(found) if found else 'no datasets'}"
        )

    def _layout(self, shape: tuple[int, ...]) -> str:
        """The layout of a stack of ``shape``: the parameter, or guessed for ``auto``."""
        if self.layout not in ("auto", "nhwc", "nchw", "nhw"):
            raise ValueError(f"layout must be auto, nhwc, nchw or nhw, not {self.layout!r}")
        layout = self.layout
        if layout == "auto":
            if len(shape) == 3:
                layout = "nhw"
            elif len(shape) == 4:
                # Channels are few (grey, RGB, RGBA) and images are larger than 4 pixels,
                # so a short last axis with a long second one means channels-last.
                channels_last = 1 <= shape[3] <= 4 and not 1 <= shape[1] <= 4
                layout = "nhwc" if channels_last else "nchw"
            else:
                layout = "?"
        if len(shape) != (3 if layout == "nhw" else 4):
            raise ValueError(
                f"{self.path}: dataset {self.images!r} has shape {shape}; expected "
                f"(n, h, w) or (n, h, w, c) / (n, c, h, w) (layout: {self.layout})"
            )
        return layout

    def _as_nchw(self, block: np.ndarray, layout: str) -> np.ndarray:
        """A slice of the stack as ``(n, c, h, w)`` float32."""
        if layout == "nhw":
            block = block[:, None]
        elif layout == "nhwc":
            block = block.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(block, dtype=np.float32)

    # -- the index ------------------------------------------------------------------------
    def _scan(self, problems: Problems) -> list[Item]:
        with self._open() as handle:
            stack = self._dataset(handle, self.images, "images")
            if not (np.issubdtype(stack.dtype, np.number) or stack.dtype == bool):
                raise ValueError(
                    f"{self.path}: dataset {self.images!r} has dtype {stack.dtype}, not numbers"
                )
            layout = self._layout(stack.shape)
            n = stack.shape[0]
            names = self._stored_labels(handle, n)
            per_image = max(1, int(np.prod(stack.shape[1:])) * 4)
            chunk = max(1, CHUNK_BYTES // per_image)
            items = []
            for start in range(0, n, chunk):
                # Only this slice is read from disk: the file may be larger than memory.
                block = self._as_nchw(stack[start : start + chunk], layout)
                for offset, image in enumerate(block):
                    i = start + offset
                    where = f"{self.path}[{i}]"
                    problem = array_problem(image)
                    if problem:
                        problems.report(where, problem)
                        continue
                    items.append(Item(str(i), where, image.shape, key=i, label=names[i]))
        return items

    def _stored_labels(self, handle, n: int) -> list[str | None]:
        """The label codes of ``labels_dataset`` as strings (None when negative)."""
        if self.labels_dataset is None:
            return [None] * n
        values = self._dataset(handle, self.labels_dataset, "labels_dataset")
        if values.ndim != 1:
            raise ValueError(
                f"{self.path}: labels dataset {self.labels_dataset!r} has shape "
                f"{values.shape}; it must be 1-d, one label per image"
            )
        if values.shape[0] != n:
            raise ValueError(
                f"{self.path}: {n} images in {self.images!r} but {values.shape[0]} labels "
                f"in {self.labels_dataset!r}; they must have the same length"
            )
        values = values[()]
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"{self.path}: labels dataset {self.labels_dataset!r} has dtype "
                f"{values.dtype}, not integers"
            )
        return [str(v) if v >= 0 else None for v in values.tolist()]

    def _labels_of(self, items: list[Item]):
        if self.labels_dataset is not None and self.catalogue is not None:
            raise ValueError(
                f"{self.path}: labels_dataset: {self.labels_dataset} and catalogue: "
                f"{self.catalogue} both give labels; keep one"
            )
        spec = self._catalogue()
        if spec is not None:
            names, every = catalogue_labels(spec, [item.id for item in items])
            labels, classes = encode_labels(names, every)
        elif self.labels_dataset is not None:
            # Stored codes are kept as they are (not re-numbered over the codes present),
            # so that code k keeps meaning class_labels[k] even when a class is absent.
            labels = np.array(
                [int(item.label) if item.label is not None else -1 for item in items],
                dtype=np.int64,
            )
            top = int(labels.max()) if len(labels) else -1
            classes = [str(code) for code in range(top + 1)]
        else:
            return None, None
        if self.class_labels is None:
            return labels, classes
        if len(self.class_labels) < len(classes):
            raise ValueError(
                f"{self.path}: class_labels names {len(self.class_labels)} classes but the "
                f"labels go up to code {len(classes) - 1}"
            )
        return labels, list(self.class_labels)

    # -- reading --------------------------------------------------------------------------
    def read(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop``: one contiguous slice of the file, minus skipped items."""
        index = self._index()
        items = index.items[start:stop]
        out = np.empty((len(items), *index.shape), dtype=np.float32)
        if not items:
            return out
        first, last = items[0].key, items[-1].key
        with self._open() as handle:
            stack = self._dataset(handle, self.images, "images")
            layout = self._layout(stack.shape)
            # Kept items are in file order, so they lie within [first, last]; rows that
            # were skipped in between are read and dropped rather than read one by one.
            block = self._as_nchw(stack[first : last + 1], layout)
        for row, item in enumerate(items):
            image = block[item.key - first]
            if image.shape[1:] != index.shape[1:]:
                image = fit_shape(image, index.shape[1:], self.shape_policy)
            out[row] = image
        return out

    def _load(self, item: Item) -> np.ndarray:
        with self._open() as handle:
            stack = self._dataset(handle, self.images, "images")
            layout = self._layout(stack.shape)
            return self._as_nchw(stack[item.key : item.key + 1], layout)[0]

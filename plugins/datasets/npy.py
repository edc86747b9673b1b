"""NumPy arrays: one ``.npy`` per image (DeepLense style), or one stacked ``.npy``/``.npz``."""

from __future__ import annotations

import re
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
    encode_labels,
    folder_class,
    folder_root,
    resolve_files,
    unique_ids,
)

#: Items validated per chunk of a stacked array, to bound memory while scanning it.
CHUNK = 256


class NpyFiles(FileDataset):
    """NumPy images: a folder/glob of ``.npy`` (one image each) or one stacked file.

    ``path`` naming a folder or a glob: one image per ``.npy`` file, shaped ``(h, w)`` or
    ``(c, h, w)``; ``labels_from`` is ``folders`` (first sub-folder under ``path``),
    ``filenames`` (the file name without a trailing number: ``axion_012.npy`` -> ``axion``)
    or a CSV ``catalogue`` (``id_column``: the file name without suffix, ``label_column``).
    ``path`` naming one ``.npy`` or ``.npz`` file: a stack ``(n, h, w)`` or
    ``(n, c, h, w)``, ids ``0..n-1``; ``array`` picks the ``.npz`` key (needed when it holds
    several), ``labels_array`` the ``.npz`` key (or, for a ``.npy`` stack, the path of a
    ``.npy``) of integer labels (negative = unknown). A stacked ``.npy`` is memory-mapped;
    a ``.npz`` member cannot be, so it is loaded once and kept on the instance.
    Files are loaded with ``allow_pickle=False``.
    """

    name = "npy"

    def __init__(
        self,
        path: str,
        array: str | None = None,
        labels_array: str | None = None,
        labels_from: Literal["folders", "filenames"] | None = None,
        catalogue: str | None = None,
        id_column: str = "id",
        label_column: str = "label",
        shape_policy: ShapePolicy = "error",
        size: int | None = None,
        on_error: OnError = "fail",
    ):
        self.path = path
        self.array = array
        self.labels_array = labels_array
        self.labels_from = labels_from
        self.catalogue = catalogue
        self.id_column = id_column
        self.label_column = label_column
        self.shape_policy = shape_policy
        self.size = size
        self.on_error = on_error

    def _stacked(self) -> bool:
        return Path(self.path).expanduser().is_file()

    def _sources(self) -> list[Path]:
        if not self._stacked():
            return resolve_files(self.path, (".npy",))
        files = [Path(self.path).expanduser()]
        if self.labels_array and not self.path.lower().endswith(".npz"):
            files.append(Path(self.labels_array).expanduser())
        return files

    # -- one file per image -------------------------------------------------------------
    def _scan(self, problems: Problems) -> list[Item]:
        if self._stacked():
            return self._scan_stack(problems)
        files = self._sources()
        root = folder_root(self.path)
        items = []
        for file, item_id in zip(files, unique_ids(files, root, (".npy",)), strict=True):
            array = problems.load(
                [file], lambda file=file: _as_image(np.load(file, mmap_mode="r",
                                                            allow_pickle=False)),
                ".npy", (OSError, ValueError, EOFError))
            if array is None:
                continue
            problem = array_problem(array)
            if problem:
                problems.report(file, problem)
                continue
            items.append(Item(item_id, str(file), array.shape, key=file, label=self._class(file)))
        return items

    def _class(self, file: Path) -> str | None:
        if self.labels_from == "folders":
            return folder_class(file, folder_root(self.path))
        if self.labels_from == "filenames":
            return re.sub(r"[_\-.]?\d+$", "", file.stem) or file.stem
        return None

    def _load(self, item: Item) -> np.ndarray:
        if isinstance(item.key, int):
            return _as_image(self._stack()[item.key])
        return _as_image(np.load(item.key, mmap_mode="r", allow_pickle=False))

    # -- one stacked file -----------------------------------------------------------------
    def _stack(self) -> np.ndarray:
        """The stacked array: memory-mapped ``.npy``, or the ``.npz`` member (kept)."""
        cached = self.__dict__.get("_cached_stack")
        if cached is not None:
            return cached
        path = Path(self.path).expanduser()
        if path.suffix.lower() == ".npz":
            stack = self._npz_member(self.array, "array")
        else:
            stack = np.load(path, mmap_mode="r", allow_pickle=False)
        if stack.ndim not in (3, 4):
            raise ValueError(f"{path}: a stack must be (n, h, w) or (n, c, h, w): {stack.shape}")
        self._cached_stack = stack
        return stack

    def _npz_member(self, key: str | None, parameter: str) -> np.ndarray:
        path = Path(self.path).expanduser()
        with np.load(path, allow_pickle=False) as npz:
            if key is None:
                if len(npz.files) != 1:
                    raise ValueError(
                        f"{path}: holds {', '.join(npz.files)}; name one with {parameter}"
                    )
                key = npz.files[0]
            if key not in npz.files:
                raise ValueError(f"{path}: no array {key!r} (it holds {', '.join(npz.files)})")
            return npz[key]

    def _stack_labels(self, n: int) -> list[str | None]:
        if self.path.lower().endswith(".npz"):
            values = self._npz_member(self.labels_array, "labels_array")
        else:
            values = np.load(Path(self.labels_array).expanduser(), allow_pickle=False)
        if values.shape != (n,) or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"{self.labels_array}: labels must be {n} integers, not {values.dtype} "
                f"{values.shape}"
            )
        return [str(v) if v >= 0 else None for v in values.tolist()]

    def _scan_stack(self, problems: Problems) -> list[Item]:
        stack = self._stack()
        names = self._stack_labels(len(stack)) if self.labels_array else [None] * len(stack)
        items = []
        for start in range(0, len(stack), CHUNK):
            chunk = np.asarray(stack[start : start + CHUNK], dtype=np.float32)
            for offset, image in enumerate(chunk):
                i = start + offset
                problem = array_problem(image)
                if problem:
                    problems.report(f"{self.path}[{i}]", problem)
                    continue
                shape = _as_image(image).shape
                items.append(Item(str(i), f"{self.path}[{i}]", shape, key=i, label=names[i]))
        return items

    def _labels_of(self, items: list[Item]):
        if self._stacked() and self.labels_array:
            return encode_labels([item.label for item in items])
        return super()._labels_of(items)


def _as_image(array: np.ndarray) -> np.ndarray:
    """``(h, w)`` or ``(c, h, w)`` numbers as ``(c, h, w)`` float32; ValueError otherwise."""
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"dtype {array.dtype} is not numeric")
    if array.ndim == 2:
        array = array[None]
    elif array.ndim != 3:
        raise ValueError(f"shape {array.shape} is neither (h, w) nor (c, h, w)")
    return np.asarray(array, dtype=np.float32)

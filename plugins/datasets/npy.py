"""NumPy arrays: one ``.npy`` per image (DeepLense style), or one stacked ``.npy``/``.npz``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np

from clustergrid.errors import listing
from clustergrid.plugins.support.files import (
    FileDataset,
    Item,
    OnError,
    Problems,
    ShapePolicy,
    array_problem,
    coded_labels,
    folder_class,
    folder_root,
    resolve_files,
    text_values,
    unique_ids,
)
from clustergrid.plugins.support.layout import Layout, as_chw, as_nchw, resolve_layout

#: Items validated per chunk of a stacked array, to bound memory while scanning it.
CHUNK = 256

#: The ``.npz`` member read as the names of the label codes.
CLASS_NAMES = "class_names"


class NpyFiles(FileDataset):
    """NumPy images: a folder/glob of ``.npy`` (one image each) or one stacked file.

    ``path`` naming a folder or a glob: one image per ``.npy`` file, ``(h, w)``,
    ``(h, w, c)`` or ``(c, h, w)``; ``labels_from`` is ``folders`` (first sub-folder under
    ``path``), ``filenames`` (the file name without a trailing number: ``axion_012.npy``
    -> ``axion``) or a CSV ``catalogue`` (``id_column``: the file name without suffix,
    ``label_column``).
    ``path`` naming one ``.npy`` or ``.npz`` file: a stack of images, ids ``0..n-1``;
    ``array`` picks the ``.npz`` key (by default the only member, or the only one with
    3 or more axes); ``labels_array`` the ``.npz`` key (or, for a ``.npy`` stack, the path
    of a ``.npy``) of integer labels (negative = unknown). Label codes are kept as stored:
    code k is class k even when no item has it. ``class_labels`` names the codes
    (index = code); without it a ``class_names`` array of strings in the ``.npz`` does,
    else the codes themselves ("0", "1", ...).
    ``layout`` says where the channels are: ``nhwc`` (stack ``(n, h, w, c)``, each file
    ``(h, w, c)``), ``nchw`` (``(n, c, h, w)``, each file ``(c, h, w)``), ``nhw``
    (``(n, h, w)``, each file ``(h, w)``) or ``auto``: a last axis of 1 to 4 entries after
    two larger ones is channels-last, else a first axis shorter than the two after it is
    channels-first (five bands ``(n, 5, 64, 64)``), no channel axis is one channel; any
    other shape (``(n, 3, 3, 3)``, ``(n, 64, 64, 6)``) is an error asking for ``layout``.
    A stacked ``.npy`` is memory-mapped; a ``.npz`` member cannot be, so it is loaded
    once and kept on the instance. Files are loaded with ``allow_pickle=False``.
    """

    name = "npy"

    def __init__(
        self,
        path: str,
        array: str | None = None,
        labels_array: str | None = None,
        class_labels: list[str] | None = None,
        layout: Layout = "auto",
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
        self.class_labels = class_labels
        self.layout = layout
        self.labels_from = labels_from
        self.catalogue = catalogue
        self.id_column = id_column
        self.label_column = label_column
        self.shape_policy = shape_policy
        self.size = size
        self.on_error = on_error

    def _stacked(self) -> bool:
        return Path(self.path).expanduser().is_file()

    def _npz(self) -> bool:
        return self.path.lower().endswith(".npz")

    def _sources(self) -> list[Path]:
        if not self._stacked():
            return resolve_files(self.path, (".npy",))
        files = [Path(self.path).expanduser()]
        if self.labels_array and not self._npz():
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
                [file], lambda file=file: np.load(file, mmap_mode="r", allow_pickle=False),
                ".npy", (OSError, ValueError, EOFError))
            if array is None:
                continue
            image = problems.image(file, lambda array=array: _as_image(array, self.layout))
            if image is None:
                continue
            items.append(Item(item_id, str(file), image.shape, key=file, label=self._class(file)))
        return items

    def _class(self, file: Path) -> str | None:
        if self.labels_from == "folders":
            return folder_class(file, folder_root(self.path))
        if self.labels_from == "filenames":
            return re.sub(r"[_\-.]?\d+$", "", file.stem) or file.stem
        return None

    def _load(self, item: Item) -> np.ndarray:
        if isinstance(item.key, int):
            return as_nchw(self._stack()[item.key : item.key + 1], self._stack_layout())[0]
        return _as_image(np.load(item.key, mmap_mode="r", allow_pickle=False), self.layout)

    # -- one stacked file -----------------------------------------------------------------
    def _stack(self) -> np.ndarray:
        """The stacked array: memory-mapped ``.npy``, or the ``.npz`` member (kept)."""
        cached = self.__dict__.get("_cached_stack")
        if cached is not None:
            return cached
        path = Path(self.path).expanduser()
        if self._npz():
            stack = self._npz_member(self._npz_images(), "array")
        else:
            stack = np.load(path, mmap_mode="r", allow_pickle=False)
        if not (np.issubdtype(stack.dtype, np.number) or stack.dtype == bool):
            raise ValueError(f"{path}: the stack has dtype {stack.dtype}, not numbers")
        self._cached_stack = stack
        return stack

    def _stack_layout(self) -> str:
        stack = self._stack()
        where = f"{self.path}: array {self._npz_images()!r}" if self._npz() else self.path
        return resolve_layout(stack.shape, self.layout, where)

    def _npz_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every member of the ``.npz`` and its shape, read from the headers only."""
        from numpy.lib import format as npy_format

        shapes = {}
        with np.load(Path(self.path).expanduser(), allow_pickle=False) as npz:
            for key in npz.files:
                try:
                    with npz.zip.open(f"{key}.npy") as member:
                        version = npy_format.read_magic(member)
                        read_header = (npy_format.read_array_header_1_0 if version == (1, 0)
                                       else npy_format.read_array_header_2_0)
                        shapes[key] = read_header(member)[0]
                except (KeyError, ValueError, OSError):  # an unusual member: load it
                    shapes[key] = npz[key].shape
        return shapes

    def _npz_images(self) -> str:
        """The ``.npz`` key of the images: ``array``, the only member, or the only member
        with 3 or more axes."""
        if self.array is not None:
            return self.array
        shapes = self._npz_shapes()
        if len(shapes) == 1:
            return next(iter(shapes))
        stacks = [key for key, shape in shapes.items() if len(shape) >= 3]
        if len(stacks) == 1:
            return stacks[0]
        held = listing(f"{key} {shape}" for key, shape in shapes.items())
        raise ValueError(f"{self.path}: holds {held}; name the images with array")

    def _npz_member(self, key: str, parameter: str) -> np.ndarray:
        path = Path(self.path).expanduser()
        with np.load(path, allow_pickle=False) as npz:
            if key not in npz.files:
                raise ValueError(f"{path}: no array {key!r} for {parameter} "
                                 f"(it holds {listing(npz.files)})")
            return npz[key]

    def _stack_labels(self, n: int) -> list[int | None]:
        if self._npz():
            values = self._npz_member(self.labels_array, "labels_array")
        else:
            values = np.load(Path(self.labels_array).expanduser(), allow_pickle=False)
        if values.shape != (n,) or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"{self.labels_array}: labels must be {n} integers, not {values.dtype} "
                f"{values.shape}"
            )
        return [int(v) if v >= 0 else None for v in values.tolist()]

    def _scan_stack(self, problems: Problems) -> list[Item]:
        stack = self._stack()
        layout = self._stack_layout()
        names = self._stack_labels(len(stack)) if self.labels_array else [None] * len(stack)
        items = []
        for start in range(0, len(stack), CHUNK):
            chunk = as_nchw(stack[start : start + CHUNK], layout)
            for offset, image in enumerate(chunk):
                i = start + offset
                problem = array_problem(image)
                if problem:
                    problems.report(f"{self.path}[{i}]", problem)
                    continue
                items.append(Item(str(i), f"{self.path}[{i}]", image.shape, key=i,
                                  label=names[i]))
        return items

    def _file_class_names(self) -> list[str] | None:
        """The ``class_names`` array of the ``.npz``, if it has one."""
        if not self._npz() or CLASS_NAMES not in self._npz_shapes():
            return None
        return text_values(self._npz_member(CLASS_NAMES, CLASS_NAMES))

    def _labels_of(self, items: list[Item]):
        if self._stacked() and self.labels_array:
            if self.class_labels is not None:
                names, source = self.class_labels, "class_labels"
            else:
                names, source = self._file_class_names(), f"the {CLASS_NAMES} array"
            return coded_labels([item.label for item in items], names, self.path, source)
        if self.class_labels is not None:
            raise ValueError(
                f"{self.path}: class_labels names integer label codes, which only "
                "labels_array gives; labels from folders, file names or a catalogue are "
                "names already"
            )
        return super()._labels_of(items)


def _as_image(array: np.ndarray, layout: str) -> np.ndarray:
    """One image, ``(h, w)`` or with channels as ``layout`` says, as ``(c, h, w)``
    float32; ValueError otherwise."""
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"dtype {array.dtype} is not numeric")
    return as_chw(array, resolve_layout(array.shape, layout, "image", stacked=False))

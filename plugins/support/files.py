"""Shared machinery of the file loaders (images, npy, fits).

Each loader lists its candidate items once (``_scan``), reporting bad files to a
:class:`Problems` collector, and reads one item at a time (``_load``). The base class
:class:`FileDataset` turns that into the ``Dataset`` contract: it checks channel counts and
shapes, joins labels, caches the index on the instance and fingerprints the files. Only the
items of a batch are ever loaded by ``read``.
"""

from __future__ import annotations

import collections
import csv
import glob
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from clustergrid import Dataset
from clustergrid.errors import listing

OnError = Literal["fail", "skip"]
ShapePolicy = Literal["error", "resize", "crop"]



@dataclass
class Item:
    """One image of a file dataset: where it comes from and its native shape."""

    id: str
    where: str  # the file (or file:stamp) named in messages
    shape: tuple[int, int, int]  # native (channels, height, width)
    key: Any = None  # loader-specific: a path, an array index, a tile position...
    label: str | int | None = None  # class name (folder, file name) or stored label code


@dataclass
class Index:
    """What ``FileDataset._index`` computes once per instance."""

    items: list[Item]
    shape: tuple[int, int, int]
    labels: np.ndarray | None
    class_names: list[str] | None
    skipped: list[tuple[str, str]]


class Problems:
    """Collects bad items; ``raise_if_failing`` raises one error listing them all."""

    def __init__(self, on_error: str, context: str):
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        self.on_error = on_error
        self.context = context
        self.found: list[tuple[str, str]] = []

    def report(self, where: Any, reason: str) -> None:
        self.found.append((str(where), reason))

    def load(self, files: list[Path], read: Callable[[], Any], kind: str,
             errors: tuple[type[BaseException], ...]) -> Any:
        """``read()``, or None after reporting why ``files`` could not be read."""
        try:
            return read()
        except errors as exc:
            empty = any(file.stat().st_size == 0 for file in files)
            self.report(", ".join(map(str, files)),
                        "empty file" if empty else f"unreadable {kind} ({exc})")
            return None

    def image(self, where: Any, convert: Callable[[], np.ndarray]) -> np.ndarray | None:
        """``convert()`` (one image as ``(c, h, w)``), or None after reporting why it is
        unusable: the ValueError ``convert`` raised, or an :func:`array_problem`."""
        try:
            image = convert()
        except ValueError as exc:
            self.report(where, str(exc))
            return None
        problem = array_problem(image)
        if problem:
            self.report(where, problem)
            return None
        return image

    def raise_if_failing(self) -> None:
        if self.on_error == "fail" and self.found:
            listed = listing((f"{where}: {reason}" for where, reason in self.found),
                             separator="; ")
            raise ValueError(
                f"{len(self.found)} bad item(s) in {self.context} (set on_error: skip to "
                f"drop them): {listed}"
            )


def resolve_files(path: str, suffixes: tuple[str, ...]) -> list[Path]:
    """The sorted files of a folder (searched recursively) or a glob whose names end with
    one of ``suffixes`` (case-insensitive); an error when there are none."""
    root = Path(path).expanduser()
    if root.is_dir():
        candidates = [p for p in root.rglob("*") if p.is_file()]
    elif root.is_file():
        candidates = [root]
    else:
        candidates = [Path(p) for p in glob.glob(str(root), recursive=True)]
        candidates = [p for p in candidates if p.is_file()]
    files = sorted(p for p in candidates if p.name.lower().endswith(suffixes))
    if not files and not root.exists() and not glob.has_magic(str(root)):
        # A relative path is read from the current folder, not the experiment file's.
        raise ValueError(f"{path}: no such file or folder (from {Path.cwd()})")
    if not files:
        raise ValueError(f"{path}: no files ending with {', '.join(suffixes)} found")
    return files


def strip_suffixes(name: str, suffixes: tuple[str, ...]) -> str:
    """``name`` without the longest matching suffix (``a.fits.gz`` -> ``a``)."""
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def unique_ids(files: list[Path], root: Path | None, suffixes: tuple[str, ...]) -> list[str]:
    """File names without suffix, or paths relative to ``root`` when names repeat
    (``FRI/a`` and ``FRII/a``), so that ids stay unique and readable."""
    stems = [strip_suffixes(f.name, suffixes) for f in files]
    if len(set(stems)) == len(stems):
        return stems
    if root is None:
        root = Path(*Path(files[0]).parts[:1])
    ids = []
    for file, stem in zip(files, stems, strict=True):
        try:
            parent = file.parent.relative_to(root).as_posix()
        except ValueError:
            parent = file.parent.as_posix()
        ids.append(stem if parent in ("", ".") else f"{parent}/{stem}")
    return ids


def folder_class(file: Path, root: Path) -> str | None:
    """The class of ``file``: its first sub-folder under ``root`` (None directly in root)."""
    parts = file.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def folder_root(path: str) -> Path:
    """The folder that ``labels: folders`` reads class names under (the non-glob prefix)."""
    root = Path(path).expanduser()
    if root.is_dir():
        return root
    parts = []
    for part in root.parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def array_problem(array: np.ndarray) -> str | None:
    """Why an image is unusable (empty, all NaN, constant), or None. An item one value
    high or wide is a row of values (a table's, stored as ``(1, 1, d)``), not an image:
    equal values there are a point like any other, never "constant"."""
    if array.size == 0:
        return "empty image"
    finite = np.isfinite(array)
    if not finite.any():
        return "all values are NaN or infinite"
    values = array[finite]
    if values.min() == values.max() and min(np.shape(array)[-2:]) > 1:
        return f"constant image (every value is {values.min():g})"
    return None


def fingerprint_files(files: list[Path], extra: str) -> str:
    """Hash of path, size and mtime_ns of every file, plus ``extra`` (the parameters)."""
    digest = hashlib.sha256(extra.encode())
    for file in sorted(files):
        stat = file.stat()
        digest.update(f"\n{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def read_catalogue(spec: dict) -> dict[str, str]:
    """``id -> label`` from a CSV catalogue ``{csv, id, label}``."""
    path = Path(spec["csv"]).expanduser()
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in (spec["id"], spec["label"]) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path}: no column {', '.join(map(repr, missing))} "
                f"(columns: {', '.join(reader.fieldnames or [])})"
            )
        return {row[spec["id"]].strip(): row[spec["label"]].strip() for row in reader}


def catalogue_labels(spec: dict, ids: list[str]) -> tuple[list[str | None], list[str]]:
    """The catalogue label of each id (None for an empty label) and every label of the
    catalogue (so class indices do not depend on which items are present); an error
    naming up to 5 ids absent from the catalogue."""
    table = read_catalogue(spec)
    absent = [i for i in ids if i not in table]
    if absent:
        raise ValueError(f"{spec['csv']}: {len(absent)} item id(s) missing from column "
                         f"{spec['id']!r}: {listing(absent, 5)}")
    return [table[i] or None for i in ids], [label for label in table.values() if label]


def encode_labels(
    names: list[str | None], classes: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Class names -> int64 codes (sorted names; numerically when all are integers),
    ``-1`` for None; ``classes`` adds names that no item has."""
    classes = sorted({n for n in [*names, *(classes or [])] if n is not None})
    if classes and all(re.fullmatch(r"-?\d+", c) for c in classes):
        classes.sort(key=int)
    code = {name: i for i, name in enumerate(classes)}
    labels = np.array([code[n] if n is not None else -1 for n in names], dtype=np.int64)
    return labels, classes


def coded_labels(
    codes: list[int | None], names: list[str] | None, where: str, source: str = "class_labels"
) -> tuple[np.ndarray, list[str]]:
    """Integer label codes kept as stored (None or negative: unknown, ``-1``), so that
    code k keeps meaning ``names[k]`` even when class k has no item, and the class names:
    ``names`` (given by ``source``, named in the error when too short), or the codes as
    strings ``0..max``."""
    labels = np.array([-1 if c is None or c < 0 else int(c) for c in codes], dtype=np.int64)
    top = int(labels.max()) if len(labels) else -1
    if names is None:
        return labels, [str(code) for code in range(top + 1)]
    if len(names) <= top:
        raise ValueError(
            f"{where}: {source} names {len(names)} classes but the labels go up to code {top}"
        )
    return labels, [str(name) for name in names]


def text_values(values: Any) -> list[str]:
    """Strings stored in a file (a str/bytes array or scalar, as NumPy and h5py give them)
    as a list of ``str``."""
    return [v.decode() if isinstance(v, bytes) else str(v)
            for v in np.atleast_1d(np.asarray(values)).ravel().tolist()]


def fit_shape(array: np.ndarray, shape: tuple[int, int], policy: str) -> np.ndarray:
    """``(c, h, w)`` resized (bilinear, anti-aliased) or centre-cropped to ``shape``."""
    h, w = shape
    if array.shape[1:] == (h, w):
        return array
    if policy == "crop":
        top = (array.shape[1] - h) // 2
        left = (array.shape[2] - w) // 2
        return array[:, top : top + h, left : left + w]
    from skimage.transform import resize

    return resize(
        array, (array.shape[0], h, w), order=1, preserve_range=True, anti_aliasing=True
    ).astype(np.float32)


def common(values: list) -> Any:
    """The most frequent value (the first seen among ties)."""
    return collections.Counter(values).most_common(1)[0][0]


class FileDataset(Dataset):
    """Base of the file loaders; subclasses implement ``_sources``, ``_scan``, ``_load``.

    Expects the parameters ``path``, ``labels_from``, ``catalogue``, ``id_column``,
    ``label_column``, ``shape_policy``, ``size`` and ``on_error`` as attributes. (No
    parameter can be called ``labels``: the attribute would hide the ``labels()`` method
    of the Dataset contract. The catalogue is three flat parameters rather than one
    mapping because component parameters must be hashable.)
    """

    #: suffixes of the files the loader reads, lower case
    suffixes: tuple[str, ...] = ()

    # -- to implement -------------------------------------------------------------------
    def _sources(self) -> list[Path]:
        """Every file the items are read from (listing only: used by ``fingerprint``)."""
        raise NotImplementedError

    def _scan(self, problems: Problems) -> list[Item]:
        """Every candidate item, validated; bad ones go to ``problems``, not the list."""
        raise NotImplementedError

    def _load(self, item: Item) -> np.ndarray:
        """One item as ``(c, h, w)`` float32, in its native shape."""
        raise NotImplementedError

    # -- the Dataset contract -----------------------------------------------------------
    def _index(self) -> Index:
        cached = self.__dict__.get("_cached_index")
        if cached is not None:
            return cached
        problems = Problems(self.on_error, self.path)
        items = self._scan(problems)
        problems.raise_if_failing()
        items = self._check_channels(items, problems)
        problems.raise_if_failing()
        items, shape = self._check_shapes(items, problems)
        problems.raise_if_failing()
        if not items:
            raise ValueError(f"{self.path}: no usable items ({len(problems.found)} skipped)")
        labels, class_names = self._labels_of(items)
        index = Index(items, shape, labels, class_names, problems.found)
        self._cached_index = index
        return index

    def _check_channels(self, items: list[Item], problems: Problems) -> list[Item]:
        if not items:
            return items
        channels = common([item.shape[0] for item in items])
        kept = []
        for item in items:
            if item.shape[0] == channels:
                kept.append(item)
            else:
                problems.report(
                    item.where, f"has {item.shape[0]} channel(s), the others have {channels}"
                )
        return kept

    def _check_shapes(self, items: list[Item], problems: Problems):
        if not items:
            return items, (0, 0, 0)
        channels = items[0].shape[0]
        sizes = [item.shape[1:] for item in items]
        size = self.size
        if self.shape_policy == "resize":
            target = (size, size) if size else common(sizes)
            return items, (channels, *target)
        if self.shape_policy == "crop":
            target = (size, size) if size else (min(s[0] for s in sizes), min(s[1] for s in sizes))
            kept = []
            for item in items:
                if item.shape[1] < target[0] or item.shape[2] < target[1]:
                    problems.report(
                        item.where, f"shape {item.shape[1:]} is smaller than the crop {target}"
                    )
                else:
                    kept.append(item)
            return kept, (channels, *target)
        if self.shape_policy != "error":
            raise ValueError(f"shape_policy must be error, resize or crop: {self.shape_policy!r}")
        target = (size, size) if size else common(sizes)
        odd = [item for item in items if item.shape[1:] != target]
        if odd and self.on_error == "fail":
            examples: dict[tuple, list[str]] = {}
            for item in items:
                examples.setdefault(item.shape[1:], []).append(item.where)
            found = ", ".join(
                f"{h}x{w} in {len(where)} item(s) (e.g. {where[0]})"
                for (h, w), where in sorted(examples.items(), key=lambda kv: -len(kv[1]))
            )
            what = f"images not {size}x{size}" if size else "images of different shapes"
            raise ValueError(
                f"{self.path}: {what}: {found}; set "
                "shape_policy: resize or crop (with size) to use them"
            )
        for item in odd:
            problems.report(item.where, f"shape {item.shape[1:]} differs from {target}")
        return [item for item in items if item.shape[1:] == target], (channels, *target)

    def _catalogue(self) -> dict | None:
        """``{csv, id, label}`` when labels come from a CSV catalogue, else None."""
        if self.catalogue is None:
            return None
        if self.labels_from is not None:
            raise ValueError(
                f"{self.path}: labels_from: {self.labels_from} and catalogue: {self.catalogue} "
                "both give labels; keep one"
            )
        return {"csv": self.catalogue, "id": self.id_column, "label": self.label_column}

    def _labels_of(self, items: list[Item]):
        spec = self._catalogue()
        if spec is not None:
            return encode_labels(*catalogue_labels(spec, [item.id for item in items]))
        if self.labels_from is None:
            return None, None
        return encode_labels([item.label for item in items])

    def __len__(self) -> int:
        return len(self._index().items)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self._index().shape

    def read(self, start: int, stop: int) -> np.ndarray:
        index = self._index()
        items = index.items[start:stop]
        out = np.empty((len(items), *index.shape), dtype=np.float32)
        for row, item in enumerate(items):
            out[row] = fit_shape(self._load(item), index.shape[1:], self.shape_policy)
        return out

    def labels(self) -> np.ndarray | None:
        return self._index().labels

    def class_names(self) -> list[str] | None:
        return self._index().class_names

    def ids(self) -> np.ndarray:
        return np.array([item.id for item in self._index().items])

    def sources(self) -> np.ndarray:
        return np.array([item.where for item in self._index().items])

    def skipped(self) -> list[tuple[str, str]]:
        """``(file, reason)`` of every item dropped because of ``on_error: skip``."""
        return list(self._index().skipped)

    def fingerprint(self) -> str:
        files = list(self._sources())
        if self.catalogue is not None:
            files.append(Path(self.catalogue).expanduser())
        return f"{self.name}:{fingerprint_files(files, repr(self.get_params()))}"

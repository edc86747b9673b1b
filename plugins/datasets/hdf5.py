"""HDF5: images stacked in one dataset (Galaxy10 style), read slice by slice, or one
group per object (FIRST Radio Galaxy Dataset style), read group by group."""

from __future__ import annotations

import collections
import re
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np

from clustergrid.errors import listing
from clustergrid.plugins.support.files import (
    FileDataset,
    Item,
    OnError,
    Problems,
    ShapePolicy,
    array_problem,
    catalogue_labels,
    coded_labels,
    encode_labels,
    fit_shape,
    text_values,
)
from clustergrid.plugins.support.layout import Layout, as_chw, as_nchw, resolve_layout

#: Bytes of float32 pixels validated per chunk while scanning, to bound memory.
CHUNK_BYTES = 64 * 2**20

#: The attribute (of the labels dataset or the file) or root dataset naming label codes.
CLASS_NAMES = "class_names"


class Hdf5File(FileDataset):
    """HDF5 images: one stacked dataset, or one group per object, with optional labels.

    ``images`` names the HDF5 dataset holding the stack (a path such as ``data/images``
    inside groups works too). With a ``*`` it is a pattern over groups holding one object
    each: ``data_*/Img`` reads the dataset ``Img`` of every group ``data_0``, ``data_1``,
    ... in natural order (``data_2`` before ``data_10``), ids being the group names; a
    group lacking ``Img`` is a bad item (see ``on_error``).
    ``layout`` says where the channels are: ``nhwc`` ``(n, h, w, c)`` as Galaxy10 ships,
    ``nchw`` ``(n, c, h, w)``, ``nhw`` ``(n, h, w)`` (per object: the same without ``n``);
    ``auto`` takes a last axis of 1 to 4 entries after two larger ones as channels-last,
    else a first axis shorter than the two after it as channels-first (five bands), and
    no channel axis as one channel; any other shape (``(n, 3, 3, 3)``, ``(n, 64, 64, 6)``)
    is an error asking for it.
    ``labels_dataset`` names a 1-d integer dataset as long as the stack (Galaxy10:
    ``ans``), or, per object, a pattern over the same groups (``data_*/Label``) of one
    integer or string each; a missing per-object label is unknown, as is a negative code.
    Integer codes are kept as they are, so code k is class k even when no item has it,
    and are named by ``class_labels`` (index = code), else by a ``class_names`` attribute
    of the labels dataset or of the file, or a root dataset ``class_names``, else by the
    codes themselves; string labels are the class names (``class_labels`` then fixes
    their order). ``select`` (a pattern over the same groups, e.g.
    ``data_*/Split_literature``) and ``select_values`` keep only the objects whose value
    there, compared as text, is one of ``select_values``.
    Labels can instead come from a CSV ``catalogue`` whose ``id_column`` holds the ids
    (stack indices ``0..n-1``, or group names). Every image is checked at index time, in
    chunks; ``read`` reads only the requested slice, or groups, from the file.
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
        select: str | None = None,
        select_values: list[str | int] | None = None,
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
        self.select = select
        self.select_values = select_values
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
        """The HDF5 dataset ``key``; a ValueError listing (some of) the file's datasets."""
        import h5py

        node = handle.get(key)
        if isinstance(node, h5py.Dataset):
            return node
        found: list[str] = []
        handle.visititems(
            lambda name, obj: found.append(f"{name} {obj.shape} {obj.dtype}")
            if isinstance(obj, h5py.Dataset) else None
        )
        hint = _pattern_hint(found[0].split(" ")[0]) if found else None
        hint = f" (one group per object? use a pattern such as {hint!r})" if hint else ""
        raise ValueError(
            f"{self.path}: no dataset {key!r} ({parameter}){hint}; the file holds "
            f"{listing(found) if found else 'no datasets'}"
        )

    def _stack_layout(self, stack) -> str:
        """The layout of the stacked dataset: the parameter, or decided for ``auto``."""
        try:
            return resolve_layout(stack.shape, self.layout,
                                  f"{self.path}: dataset {self.images!r}")
        except ValueError as exc:
            hint = _pattern_hint(self.images) if len(stack.shape) == 2 else None
            if hint is None:
                raise
            raise ValueError(f"{exc}; for one image per group use a pattern such as "
                             f"images: {hint!r}") from None

    # -- one group per object -------------------------------------------------------------
    def _per_object(self) -> bool:
        return "*" in self.images

    def _pattern(self, pattern: str, parameter: str) -> tuple[str, str, str]:
        """``(parent, group glob, member)`` of a pattern such as ``data_*/Img``."""
        parts = pattern.strip("/").split("/")
        starred = [i for i, part in enumerate(parts) if "*" in part]
        if len(starred) != 1 or starred[0] == len(parts) - 1:
            raise ValueError(
                f"{self.path}: {parameter} {pattern!r}: a per-object pattern has one '*' in "
                "a group name, then the dataset inside each group, e.g. 'data_*/Img'"
            )
        at = starred[0]
        return "/".join(parts[:at]), parts[at], "/".join(parts[at + 1 :])

    def _member(self, pattern: str | None, parameter: str) -> str | None:
        """The dataset inside each group that ``pattern`` names; it must run over the
        groups of ``images`` (None when the parameter is not set)."""
        if pattern is None:
            return None
        parent, groups, _ = self._pattern(self.images, "images")
        if "*" not in pattern:
            raise ValueError(
                f"{self.path}: {parameter} {pattern!r} is not a per-object pattern but "
                f"images {self.images!r} is; use one such as "
                f"'{_join(parent, groups, pattern.split('/')[-1])}'"
            )
        other_parent, other_groups, member = self._pattern(pattern, parameter)
        if (other_parent, other_groups) != (parent, groups):
            raise ValueError(
                f"{self.path}: {parameter} {pattern!r} must run over the groups of images "
                f"{self.images!r}: '{_join(parent, groups, member)}'"
            )
        return member

    def _groups(self, handle) -> list[str]:
        """The names of the groups matching ``images``, in natural order."""
        import h5py

        parent, groups, _ = self._pattern(self.images, "images")
        node = handle.get(parent) if parent else handle
        if not isinstance(node, h5py.Group):
            raise ValueError(f"{self.path}: no group {parent!r} (images {self.images!r})")
        names = sorted(
            (name for name in node if fnmatchcase(name, groups)
             and node.get(name, getclass=True) is h5py.Group),
            key=_natural,
        )
        if not names:
            held = [f"{name}/" if node.get(name, getclass=True) is h5py.Group
                    else f"{name} {node[name].shape} {node[name].dtype}"
                    for name in sorted(node, key=_natural)]
            where = f"group {parent!r}" if parent else "the file"
            raise ValueError(
                f"{self.path}: no group matches {groups!r} (images {self.images!r}); {where} "
                f"holds {listing(held) if held else 'nothing'}"
            )
        return names

    def _object(self, group: str, member: str) -> str:
        return _join(self._pattern(self.images, "images")[0], group, member)

    def _object_image(self, node) -> np.ndarray:
        """One object's image as ``(c, h, w)`` float32."""
        if not (np.issubdtype(node.dtype, np.number) or node.dtype == bool):
            raise ValueError(f"dtype {node.dtype} is not numbers")
        layout = resolve_layout(node.shape, self.layout, "image", stacked=False)
        return as_chw(node[()], layout)

    def _scan_objects(self, handle, problems: Problems) -> list[Item]:
        import h5py

        groups = self._groups(handle)
        member = self._pattern(self.images, "images")[2]
        label_member = self._member(self.labels_dataset, "labels_dataset")
        select_member = self._member(self.select, "select")
        wanted = {str(value) for value in self.select_values or ()}
        found: collections.Counter = collections.Counter()
        items = []
        for group in groups:
            if select_member is not None:
                value = self._value(handle, self._object(group, select_member))
                found[value] += 1
                if str(value) not in wanted:
                    continue
            where = f"{self.path}:{self._object(group, member)}"
            node = handle.get(self._object(group, member))
            if not isinstance(node, h5py.Dataset):
                problems.report(where, f"no dataset {member!r} in group {group!r}")
                continue
            image = problems.image(where, lambda node=node: self._object_image(node))
            if image is None:
                continue
            label = None
            if label_member is not None:
                label = self._value(handle, self._object(group, label_member))
                if isinstance(label, int) and label < 0:
                    label = None
            items.append(Item(group, where, image.shape, key=group, label=label))
        if select_member is not None and not any(str(v) in wanted for v in found):
            seen = [f"{value} ({count})" for value, count in found.most_common()]
            raise ValueError(
                f"{self.path}: no object has a {self.select!r} value in select_values "
                f"{sorted(wanted)}; the values found are {listing(seen)}"
            )
        return items

    def _value(self, handle, key: str) -> str | int | None:
        """The one value (integer or text) of a per-object dataset; None when absent."""
        import h5py

        node = handle.get(key)
        if not isinstance(node, h5py.Dataset):
            return None
        value = np.asarray(node[()])
        if value.size != 1:
            raise ValueError(f"{self.path}: {key} has shape {value.shape}, not one value")
        value = value.reshape(()).item()
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, str | int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{self.path}: {key} holds {value!r}, neither an integer nor text")

    # -- the index ------------------------------------------------------------------------
    def _scan(self, problems: Problems) -> list[Item]:
        if (self.select is None) != (self.select_values is None):
            raise ValueError(f"{self.path}: select and select_values go together; set both")
        with self._open() as handle:
            if self._per_object():
                return self._scan_objects(handle, problems)
            if self.select is not None:
                raise ValueError(
                    f"{self.path}: select works on one group per object (a pattern such "
                    f"as images: 'data_*/Img'), not on the stack {self.images!r}"
                )
            stack = self._dataset(handle, self.images, "images")
            if not (np.issubdtype(stack.dtype, np.number) or stack.dtype == bool):
                raise ValueError(
                    f"{self.path}: dataset {self.images!r} has dtype {stack.dtype}, not numbers"
                )
            layout = self._stack_layout(stack)
            n = stack.shape[0]
            names = self._stored_labels(handle, n)
            per_image = max(1, int(np.prod(stack.shape[1:])) * 4)
            chunk = max(1, CHUNK_BYTES // per_image)
            items = []
            for start in range(0, n, chunk):
                # Only this slice is read from disk: the file may be larger than memory.
                block = as_nchw(stack[start : start + chunk], layout)
                for offset, image in enumerate(block):
                    i = start + offset
                    where = f"{self.path}[{i}]"
                    problem = array_problem(image)
                    if problem:
                        problems.report(where, problem)
                        continue
                    items.append(Item(str(i), where, image.shape, key=i, label=names[i]))
        return items

    def _stored_labels(self, handle, n: int) -> list[int | None]:
        """The label codes of ``labels_dataset`` (None when negative)."""
        if self.labels_dataset is None:
            return [None] * n
        if "*" in self.labels_dataset:
            raise ValueError(
                f"{self.path}: labels_dataset {self.labels_dataset!r} is a per-object "
                f"pattern but images {self.images!r} is not"
            )
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
        return [int(v) if v >= 0 else None for v in values.tolist()]

    def _file_class_names(self, items: list[Item]) -> list[str] | None:
        """Names of the label codes stored in the file: a ``class_names`` attribute of the
        labels dataset (per object: the first item's) or of the file, or a root dataset
        ``class_names``; None when there are none."""
        import h5py

        with self._open() as handle:
            key = self.labels_dataset
            if self._per_object() and items:
                key = self._object(items[0].key, self._member(key, "labels_dataset"))
            labels = handle.get(key)
            for holder in (labels, handle):
                if holder is not None and CLASS_NAMES in holder.attrs:
                    return text_values(holder.attrs[CLASS_NAMES])
            stored = handle.get(CLASS_NAMES)
            if isinstance(stored, h5py.Dataset):
                return text_values(stored[()])
        return None

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
            if self.class_labels is None:
                return labels, classes
            if len(self.class_labels) < len(classes):
                raise ValueError(
                    f"{self.path}: class_labels names {len(self.class_labels)} classes but "
                    f"the labels go up to code {len(classes) - 1}"
                )
            return labels, list(self.class_labels)
        if self.labels_dataset is None:
            return None, None
        stored = [item.label for item in items]
        if any(isinstance(label, str) for label in stored):
            return self._text_labels([None if v is None else str(v) for v in stored])
        if self.class_labels is not None:
            return coded_labels(stored, list(self.class_labels), self.path)
        return coded_labels(stored, self._file_class_names(items), self.path,
                            f"the file's {CLASS_NAMES}")

    def _text_labels(self, names: list[str | None]):
        """Labels stored as text: the class names, in ``class_labels`` order if given."""
        if self.class_labels is None:
            return encode_labels(names)
        code = {name: i for i, name in enumerate(self.class_labels)}
        unknown = sorted({name for name in names if name is not None and name not in code})
        if unknown:
            raise ValueError(f"{self.path}: labels {listing(unknown)} are not in "
                             f"class_labels ({listing(self.class_labels)})")
        labels = np.array([-1 if name is None else code[name] for name in names], np.int64)
        return labels, list(self.class_labels)

    # -- reading --------------------------------------------------------------------------
    def read(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop``: one contiguous slice of the file, minus skipped items, or
        the groups of those objects."""
        index = self._index()
        items = index.items[start:stop]
        out = np.empty((len(items), *index.shape), dtype=np.float32)
        if not items:
            return out
        with self._open() as handle:
            if self._per_object():
                member = self._pattern(self.images, "images")[2]
                block = [self._object_image(handle[self._object(item.key, member)])
                         for item in items]
            else:
                first, last = items[0].key, items[-1].key
                stack = self._dataset(handle, self.images, "images")
                # Kept items are in file order, so they lie within [first, last]; rows
                # that were skipped in between are read and dropped rather than read one
                # by one.
                rows = as_nchw(stack[first : last + 1], self._stack_layout(stack))
                block = [rows[item.key - first] for item in items]
        for row, image in enumerate(block):
            if image.shape[1:] != index.shape[1:]:
                image = fit_shape(image, index.shape[1:], self.shape_policy)
            out[row] = image
        return out

    def _load(self, item: Item) -> np.ndarray:
        with self._open() as handle:
            if self._per_object():
                member = self._pattern(self.images, "images")[2]
                return self._object_image(handle[self._object(item.key, member)])
            stack = self._dataset(handle, self.images, "images")
            return as_nchw(stack[item.key : item.key + 1], self._stack_layout(stack))[0]


def _natural(name: str) -> list:
    """Sort key putting ``data_2`` before ``data_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def _pattern_hint(key: str) -> str | None:
    """``data_*/Img`` for ``data_0/Img``: the pattern over numbered groups, or None."""
    parts = key.strip("/").split("/")
    if len(parts) < 2:
        return None
    stem = re.sub(r"\d+$", "", parts[-2])
    if stem == parts[-2]:
        return None
    return "/".join([*parts[:-2], f"{stem}*", parts[-1]])

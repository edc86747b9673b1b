"""FITS images and cubes, several band files per object, and mosaics cut into stamps."""

from __future__ import annotations

import re
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
    strip_suffixes,
)

SUFFIXES = (".fits", ".fits.gz", ".fits.bz2", ".fits.fz", ".fz", ".fit", ".fts")
#: Errors astropy and numpy raise on unreadable, truncated or non-FITS files.
READ_ERRORS = (OSError, ValueError, TypeError, KeyError, IndexError, EOFError)


class FitsFiles(FileDataset):
    """FITS images from a folder or glob: cubes, band files per object, or tiled mosaics.

    ``hdu``: index or EXTNAME; with the default 0, a primary HDU without data (as in
    ``.fz`` tile-compressed files) falls through to the first image HDU. A 3-D cube's
    ``channel_axis`` (numpy order) becomes the channels. ``bands`` (e.g. ``[g, r, i]``):
    files are grouped per object by ``pattern`` (``{id}`` and ``{band}`` placeholders,
    matched against the file name with any ``.gz``/``.bz2`` ending removed; other files
    are ignored) and stacked as channels in the order of ``bands``; the band files of an
    object must share a shape. ``tile: 64`` cuts every image into 64 x 64 stamps every
    ``stride`` pixels (default: the tile size; partial edge stamps are dropped), with ids
    ``<file stem or object id>:<y>,<x>``. Labels: ``labels_from: folders``, or a CSV
    ``catalogue`` whose ``id_column`` holds the ids and ``label_column`` the classes.
    Items of an image with a celestial WCS know the sky position of their centre
    (``sky_positions``).

    Memory: ``.bz2`` files cannot be memory-mapped, so when tiling their decompressed
    float32 arrays are kept on the instance (4 bytes per pixel per band); other files
    are memory-mapped and only the stamps of a batch are read.
    """

    name = "fits"
    #: 2: items carry the sky position of their centre (``sky_positions``)
    version = "2"

    def __init__(
        self,
        path: str,
        hdu: int | str = 0,
        channel_axis: int = 0,
        bands: list[str] | None = None,
        pattern: str = "{id}_{band}.fits",
        tile: int | None = None,
        stride: int | None = None,
        labels_from: Literal["folders"] | None = None,
        catalogue: str | None = None,
        id_column: str = "id",
        label_column: str = "label",
        shape_policy: ShapePolicy = "error",
        size: int | None = None,
        on_error: OnError = "fail",
    ):
        self.path = path
        self.hdu = hdu
        self.channel_axis = channel_axis
        self.bands = bands
        self.pattern = pattern
        self.tile = tile
        self.stride = stride
        self.labels_from = labels_from
        self.catalogue = catalogue
        self.id_column = id_column
        self.label_column = label_column
        self.shape_policy = shape_policy
        self.size = size
        self.on_error = on_error

    def channel_names(self) -> list[str] | None:
        """The ``bands``, in channel order; None for single files and cubes."""
        return [str(band) for band in self.bands] if self.bands else None

    def _sources(self) -> list[Path]:
        return resolve_files(self.path, SUFFIXES)

    def _units(self, problems: Problems) -> list[tuple[str, tuple[Path, ...]]]:
        """``(id, files)`` per object: one file each, or one file per band."""
        files = self._sources()
        if not self.bands:
            return [(strip_suffixes(f.name, SUFFIXES), (f,)) for f in files]
        if "{id}" not in self.pattern or "{band}" not in self.pattern:
            raise ValueError(f"pattern {self.pattern!r} needs both {{id}} and {{band}}")
        bands = "|".join(re.escape(b) for b in self.bands)
        regex = re.escape(self.pattern)
        regex = regex.replace(r"\{id\}", "(?P<id>.+?)", 1)
        regex = regex.replace(r"\{band\}", f"(?P<band>{bands})", 1)
        matcher = re.compile(regex + r"(\.gz|\.bz2)?$")
        objects: dict[str, dict[str, Path]] = {}
        for file in files:
            match = matcher.fullmatch(file.name)
            if match:
                objects.setdefault(match["id"], {})[match["band"]] = file
        if not objects:
            raise ValueError(
                f"{self.path}: no file name matches {self.pattern!r} with bands {self.bands}"
            )
        units = []
        for object_id, found in sorted(objects.items()):
            missing = [b for b in self.bands if b not in found]
            if missing:
                names = ", ".join(str(f) for f in found.values())
                problems.report(names, f"object {object_id!r} lacks band(s) {', '.join(missing)}")
                continue
            units.append((object_id, tuple(found[b] for b in self.bands)))
        return units

    def _read_file(self, file: Path, window: tuple[int, int, int] | None = None) -> np.ndarray:
        """The selected HDU of ``file`` as ``(c, h, w)`` float32, or the ``(y, x, size)``
        window of it (read through a memory map where the file allows one)."""
        # bz2 streams cannot be memory-mapped; astropy decompresses them to memory
        memmap = not file.name.lower().endswith(".bz2")
        try:
            return self._read_hdu(file, window, memmap)
        except ValueError as exc:
            # astropy refuses to memory-map scaled integers (BZERO/BSCALE/BLANK) of a
            # read-only file: read that one into memory instead
            if memmap and "memory-mapped" in str(exc):
                return self._read_hdu(file, window, memmap=False)
            raise

    def _read_hdu(self, file: Path, window, memmap: bool) -> np.ndarray:
        from astropy.io import fits

        with fits.open(file, memmap=memmap) as hdul:
            data = _select_hdu(hdul, self.hdu).data
            if data is None:
                raise ValueError(f"HDU {self.hdu!r} holds no image data")
            if data.ndim == 2:
                data = data[None]
            elif data.ndim == 3:
                data = np.moveaxis(data, self.channel_axis, 0)
            else:
                raise ValueError(f"image of shape {data.shape} is neither 2-D nor 3-D")
            if window is not None:
                y, x, size = window
                data = data[:, y : y + size, x : x + size]
            return np.array(data, dtype=np.float32)

    def _read_unit(self, files: tuple[Path, ...], window=None) -> np.ndarray:
        if len(files) == 1:
            return self._read_file(files[0], window)
        planes = [self._read_file(f, window) for f in files]
        shapes = [p.shape for p in planes]
        if any(s[0] != 1 for s in shapes):
            raise ValueError("band files must hold 2-D images, not cubes")
        if len(set(shapes)) > 1:
            found = ", ".join(f"{b} {s[1]}x{s[2]}" for b, s in zip(self.bands, shapes, strict=True))
            raise ValueError(f"band files differ in shape ({found})")
        return np.concatenate(planes)

    def _scan(self, problems: Problems) -> list[Item]:
        root = folder_root(self.path)
        self._cached_arrays: dict[tuple[Path, ...], np.ndarray] = {}
        items = []
        for unit_id, files in self._units(problems):
            where = ", ".join(str(f) for f in files)
            data = problems.load(files, lambda files=files: self._read_unit(files), "FITS",
                                 READ_ERRORS)
            if data is None:
                continue
            label = folder_class(files[0], root) if self.labels_from == "folders" else None
            if not self.tile:
                problem = array_problem(data)
                if problem:
                    problems.report(where, problem)
                else:
                    items.append(Item(unit_id, where, data.shape, key=(files, None), label=label))
                continue
            size = self.tile
            stride = self.stride or size
            if size < 1 or stride < 1:
                raise ValueError(f"tile and stride must be positive: {size}, {stride}")
            _, h, w = data.shape
            if h < size or w < size:
                problems.report(where, f"image {h}x{w} is smaller than a {size}x{size} tile")
                continue
            if any(f.name.lower().endswith(".bz2") for f in files):
                self._cached_arrays[files] = data
            for y in range(0, h - size + 1, stride):
                for x in range(0, w - size + 1, stride):
                    problem = array_problem(data[:, y : y + size, x : x + size])
                    if problem:
                        problems.report(f"{where} stamp {y},{x}", problem)
                        continue
                    items.append(
                        Item(f"{unit_id}:{y},{x}", f"{where} stamp {y},{x}",
                             (data.shape[0], size, size), key=(files, (y, x, size)), label=label)
                    )
        return items

    def sky_positions(self) -> np.ndarray | None:
        """ICRS RA/Dec (degrees) of each item's centre, from the celestial WCS of its
        (first band's) header: a stamp's centre for tiles, the image's (or its
        ``shape_policy: crop`` window's) otherwise; None when no header has one."""
        index = self._index()
        positions = np.full((len(index.items), 2), np.nan)
        rows_of: dict[tuple[Path, ...], list[int]] = {}
        for row, item in enumerate(index.items):
            rows_of.setdefault(item.key[0], []).append(row)
        for files, rows in rows_of.items():
            centres = np.array([self._centre(index.items[row], index.shape) for row in rows])
            positions[rows] = _sky_of(self._header(files[0]), centres)
        return positions if np.isfinite(positions).any() else None

    def _centre(self, item: Item, shape: tuple[int, int, int]) -> tuple[float, float]:
        """The 0-based ``(x, y)`` pixel at the centre of what ``read`` gives of ``item``."""
        _, window = item.key
        if window is not None:
            y, x, size = window
            return x + (size - 1) / 2, y + (size - 1) / 2
        (h, w), (height, width) = item.shape[1:], shape[1:]
        if self.shape_policy == "crop":  # ``fit_shape`` keeps the central window
            return (w - width) // 2 + (width - 1) / 2, (h - height) // 2 + (height - 1) / 2
        return (w - 1) / 2, (h - 1) / 2

    def _header(self, file: Path):
        """The header of ``file``'s selected HDU (None when it cannot be read)."""
        from astropy.io import fits

        try:
            with fits.open(file) as hdul:
                return _select_hdu(hdul, self.hdu).header.copy()
        except READ_ERRORS:
            return None

    def _load(self, item: Item) -> np.ndarray:
        files, window = item.key
        cached = self.__dict__.get("_cached_arrays", {}).get(files)
        if cached is not None:
            y, x, size = window
            return cached[:, y : y + size, x : x + size]
        return self._read_unit(files, window)


def _sky_of(header, pixels: np.ndarray) -> np.ndarray:
    """ICRS ``(ra, dec)`` in degrees of the 0-based ``(x, y)`` ``pixels`` through the
    celestial WCS of ``header`` (distortions included), converted from the header's own
    frame (FK5, galactic...); NaN rows when it has no usable celestial WCS."""
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    unknown = np.full((len(pixels), 2), np.nan)
    if header is None:
        return unknown
    try:
        with warnings.catch_warnings():
            # Old headers (RADECSYS, DATE-OBS as dd/mm/yy) are fixed by astropy, noisily.
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header)
            if not wcs.has_celestial or wcs.celestial.naxis != 2:
                return unknown
            sky = wcs.celestial.pixel_to_world(pixels[:, 0], pixels[:, 1]).icrs
    except Exception:  # astropy's WCS raises many kinds on headers it cannot use
        return unknown
    return np.column_stack([sky.ra.deg, sky.dec.deg])


def _select_hdu(hdul, hdu: int | str):
    """The HDU named or numbered ``hdu``; for 0, the first image HDU holding data."""
    try:
        if hdu == 0 and hdul[0].header.get("NAXIS", 0) == 0:
            for candidate in hdul:
                if candidate.is_image and candidate.header.get("NAXIS", 0) > 0:
                    return candidate
            # CompImageHDU headers describe the image through ZNAXIS in older astropy
            for candidate in hdul[1:]:
                if candidate.header.get("ZNAXIS", 0) > 0:
                    return candidate
            raise ValueError("no image HDU holds data")
        selected = hdul[hdu]
    except (KeyError, IndexError):
        names = ", ".join(f"{i}:{h.name}" for i, h in enumerate(hdul))
        raise ValueError(f"no HDU {hdu!r} (HDUs: {names})") from None
    if not selected.is_image:
        raise ValueError(f"HDU {hdu!r} is a table, not an image")
    return selected

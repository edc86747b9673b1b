"""Tables (catalogues): FITS binary tables, VOTable, ECSV, HDF5 and Parquet through
astropy, CSV through pandas; one item per row, its features the columns chosen."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import numpy as np

from clustergrid import Dataset
from clustergrid.errors import listing
from clustergrid.plugins.support.files import encode_labels, fingerprint_files

#: file suffix (lower case) -> format; ``format`` overrides it
SUFFIXES = {
    ".fits": "fits", ".fit": "fits", ".fts": "fits", ".fits.gz": "fits", ".fit.gz": "fits",
    ".vot": "votable", ".votable": "votable", ".xml": "votable",
    ".csv": "csv", ".csv.gz": "csv", ".ecsv": "ecsv",
    ".parquet": "parquet", ".pq": "parquet",
    ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5",
}
#: rows checked for NaN (and read for the medians) at a time while scanning
SCAN_ROWS = 1_000_000
#: rows named in the message of ``nan_policy: fail``
NAMED_ROWS = 5

TableFormat = Literal["fits", "votable", "csv", "ecsv", "parquet", "hdf5"]
NanPolicy = Literal["fail", "drop", "impute"]


@dataclass
class _Index:
    """What ``Table._index`` computes once per instance."""

    rows: np.ndarray  # the file row of each item, in file order
    ids: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None
    positions: np.ndarray | None
    columns: list[str]
    units: list[str]
    medians: np.ndarray | None  # per column, for nan_policy: impute
    dropped: list[tuple[str, str]]


class Table(Dataset):
    """A table of one item per row: FITS, VOTable, CSV, ECSV, Parquet or HDF5.

    ``path`` is one file; its format comes from the suffix (``.fits``, ``.vot``/``.xml``,
    ``.csv``, ``.ecsv``, ``.parquet``, ``.h5``/``.hdf5``) unless ``format`` says.
    ``columns`` are the features: names or glob patterns (``pm*``), one string or a list;
    by default every numeric column but the id, label and RA/Dec columns. Each item is read
    as ``(1, 1, d)``, its ``d`` values in the order of ``columns``; units are kept.
    ``id_column`` gives the ids (the row number in the file otherwise), ``label_column``
    the classes (text or integers; empty is unknown) that grade the clusterings, and
    ``ra_column`` with ``dec_column`` each row's sky position (degrees, or converted from
    the column's angular unit), exported with the labels.
    ``nan_policy`` says what to do with a row holding NaN or an infinite value in a feature
    column: ``fail`` (the default) stops with the file, the first rows and their columns;
    ``drop`` leaves those rows out, counted and listed with the run; ``impute`` fills each
    with its column's median.
    ``hdu`` picks the table of a FITS file (an index or a name; default the first table
    HDU), ``hdf5_path`` that of an HDF5 file (default the first).
    A FITS table is memory-mapped and read batch by batch; Parquet files are read for the
    columns used only; CSV, ECSV, VOTable and HDF5 are read whole, then only the columns
    used are kept.
    """

    name = "table"

    def __init__(
        self,
        path: str,
        columns: str | list[str] | None = None,
        id_column: str | None = None,
        label_column: str | None = None,
        ra_column: str | None = None,
        dec_column: str | None = None,
        nan_policy: NanPolicy = "fail",
        hdu: int | str | None = None,
        hdf5_path: str | None = None,
        format: TableFormat | None = None,
    ):
        self.path = path
        self.columns = columns
        self.id_column = id_column
        self.label_column = label_column
        self.ra_column = ra_column
        self.dec_column = dec_column
        self.nan_policy = nan_policy
        self.hdu = hdu
        self.hdf5_path = hdf5_path
        self.format = format

    # -- the file ---------------------------------------------------------------------------
    def _file(self) -> Path:
        file = Path(self.path).expanduser()
        if not file.is_file():
            raise ValueError(f"{self.path}: no such file (from {Path.cwd()})")
        return file

    def _format(self) -> str:
        if self.format is not None:
            return self.format
        name = self._file().name.lower()
        for suffix in sorted(SUFFIXES, key=len, reverse=True):
            if name.endswith(suffix):
                return SUFFIXES[suffix]
        raise ValueError(f"{self.path}: cannot tell the table's format from its name; set "
                         f"format to one of fits, votable, csv, ecsv, parquet, hdf5")

    def _open(self) -> _Source:
        """The file's columns, opened once per instance (a FITS table memory-mapped)."""
        source = self.__dict__.get("_source")
        if source is None:
            source = self._source = _open(self._file(), self._format(), self.hdu,
                                          self.hdf5_path, self.path)
        return source

    # -- the index --------------------------------------------------------------------------
    def _features(self, source: _Source) -> list[str]:
        """The feature columns: the ``columns`` asked for, in that order, else every
        numeric column that is not the id, label or a coordinate."""
        special = {self.id_column, self.label_column, self.ra_column, self.dec_column}
        for parameter in ("id_column", "label_column", "ra_column", "dec_column"):
            name = getattr(self, parameter)
            if name is not None and name not in source.names:
                raise ValueError(f"{self.path}: {parameter} {name!r} is not a column; the "
                                 f"columns are {listing(source.names)}")
        if self.columns is None:
            chosen = [name for name in source.names
                      if source.numeric(name) and name not in special]
            if not chosen:
                raise ValueError(f"{self.path}: no numeric column to use as a feature; the "
                                 f"columns are {listing(source.names)}")
            return chosen
        patterns = [self.columns] if isinstance(self.columns, str) else list(self.columns)
        chosen = []
        for pattern in patterns:
            matched = [name for name in source.names if fnmatchcase(name, pattern)]
            if not matched:
                raise ValueError(f"{self.path}: no column matches {pattern!r}; the columns "
                                 f"are {listing(source.names)}")
            chosen.extend(name for name in matched if name not in chosen)
        odd = [f"{name} ({source.kind(name)})" for name in chosen if not source.numeric(name)]
        if odd:
            raise ValueError(f"{self.path}: columns {listing(odd)} are not numbers; features "
                             "must be numeric columns of one value per row")
        return chosen

    def _index(self) -> _Index:
        cached = self.__dict__.get("_cached_index")
        if cached is not None:
            return cached
        if self.nan_policy not in ("fail", "drop", "impute"):
            raise ValueError(f"nan_policy must be fail, drop or impute, not {self.nan_policy!r}")
        if (self.ra_column is None) != (self.dec_column is None):
            raise ValueError(f"{self.path}: ra_column and dec_column go together; set both")
        source = self._open()
        columns = self._features(source)
        special = [self.id_column, self.label_column, self.ra_column, self.dec_column]
        source.load([*columns, *(name for name in special if name and name not in columns)])
        n = source.n_rows
        if n == 0:
            raise ValueError(f"{self.path}: the table has no rows")
        ids = (np.arange(n).astype(str) if self.id_column is None
               else np.asarray(_text(source.column(self.id_column)[:]), dtype=str))
        if self.id_column is not None:
            unique, counts = np.unique(ids, return_counts=True)
            if (counts > 1).any():
                raise ValueError(f"{self.path}: id_column {self.id_column!r} holds duplicate "
                                 f"ids: {listing(unique[counts > 1], 5)}")
        bad, medians = self._scan(source, columns, n)
        if bad and self.nan_policy == "fail":
            raise ValueError(self._nan_message(bad, n, ids))
        rows = np.arange(n)
        dropped: list[tuple[str, str]] = []
        if bad and self.nan_policy == "drop":
            dropped = [(self._where(row, ids), f"NaN or infinite in {', '.join(names)}")
                       for row, names in bad.items()]
            rows = np.setdiff1d(rows, np.fromiter(bad, dtype=np.int64, count=len(bad)))
            if not len(rows):
                raise ValueError(f"{self.path}: every row has NaN or infinite values in "
                                 f"{', '.join(columns)}; nothing is left to cluster")
        labels, class_names = self._labels(source, rows)
        index = _Index(rows=rows, ids=ids[rows], labels=labels, class_names=class_names,
                       positions=self._positions(source, rows), columns=columns,
                       units=[source.unit(name) for name in columns],
                       medians=medians if self.nan_policy == "impute" else None,
                       dropped=dropped)
        self._cached_index = index
        return index

    def _scan(self, source: _Source, columns: list[str], n: int
              ) -> tuple[dict[int, list[str]], np.ndarray | None]:
        """The rows holding a non-finite feature, with those features' names, and each
        column's median over its finite values (for ``impute``), reading ``SCAN_ROWS`` rows
        of one column at a time."""
        bad: dict[int, list[str]] = {}
        for name in columns:
            column = source.column(name)
            for start in range(0, n, SCAN_ROWS):
                values = _numbers(column[start:start + SCAN_ROWS])
                for row in (start + np.flatnonzero(~np.isfinite(values))).tolist():
                    bad.setdefault(row, []).append(name)
        if self.nan_policy != "impute":
            return dict(sorted(bad.items())), None
        medians = np.empty(len(columns))
        for i, name in enumerate(columns):
            values = _numbers(source.column(name)[:])
            finite = values[np.isfinite(values)]
            if not len(finite):
                raise ValueError(f"{self.path}: column {name!r} has no finite value to "
                                 "impute the others from")
            medians[i] = np.median(finite)
        return dict(sorted(bad.items())), medians

    def _where(self, row: int, ids: np.ndarray) -> str:
        if self.id_column is None:
            return f"{self.path}[{row}]"
        return f"{self.path}[{row}] ({self.id_column} {ids[row]})"

    def _nan_message(self, bad: dict[int, list[str]], n: int, ids: np.ndarray) -> str:
        named = [f"{'row ' + str(row) if self.id_column is None else ids[row]} "
                 f"({', '.join(names)})" for row, names in list(bad.items())[:NAMED_ROWS]]
        more = f" and {len(bad) - NAMED_ROWS} more" if len(bad) > NAMED_ROWS else ""
        what = "" if self.id_column is None else f"{self.id_column} "
        return (f"{self.path}: {len(bad)} of {n} rows hold NaN or infinite values in the "
                f"feature columns: {what}{'; '.join(named)}{more}. Set nan_policy: drop to "
                "leave them out, or nan_policy: impute to fill each with its column's median")

    def _labels(self, source: _Source, rows: np.ndarray):
        if self.label_column is None:
            return None, None
        names = _text(_take(source.column(self.label_column), rows))
        return encode_labels([name.strip() or None for name in names])

    def _positions(self, source: _Source, rows: np.ndarray) -> np.ndarray | None:
        if self.ra_column is None:
            return None
        return np.stack([source.degrees(_take(source.column(name), rows), name)
                         for name in (self.ra_column, self.dec_column)], axis=1)

    # -- the Dataset contract ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index().rows)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 1, len(self._index().columns))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of the items: one contiguous block of the file per column,
        the dropped rows in it left out."""
        index = self._index()
        rows = index.rows[start:stop]
        out = np.empty((len(rows), 1, 1, len(index.columns)), dtype=np.float32)
        if not len(rows):
            return out
        source = self._open()
        for i, name in enumerate(index.columns):
            values = _numbers(source.column(name)[rows[0]:rows[-1] + 1])[rows - rows[0]]
            if index.medians is not None:
                values = np.where(np.isfinite(values), values, index.medians[i])
            out[:, 0, 0, i] = values
        return out

    def feature_names(self) -> list[str]:
        return list(self._index().columns)

    def feature_units(self) -> list[str]:
        return list(self._index().units)

    def labels(self) -> np.ndarray | None:
        return self._index().labels

    def class_names(self) -> list[str] | None:
        return self._index().class_names

    def ids(self) -> np.ndarray:
        return self._index().ids

    def sources(self) -> np.ndarray:
        name = self._file().name
        return np.char.add(f"{name}[", np.char.add(self._index().rows.astype(str), "]"))

    def sky_positions(self) -> np.ndarray | None:
        return self._index().positions

    def skipped(self) -> list[tuple[str, str]]:
        """``(row, reason)`` of every row left out by ``nan_policy: drop``."""
        return list(self._index().dropped)

    def fingerprint(self) -> str:
        return f"{self.name}:{fingerprint_files([self._file()], repr(self.get_params()))}"


# -- reading columns -------------------------------------------------------------------------
class _Source:
    """A table's columns by name: ``column(name)`` is sliceable (a memory map for FITS)."""

    def __init__(self, data: Any, units: dict[str, str], reader=None):
        self.data = data  # every column, or (with ``reader``) none of the rows yet
        self.names = [str(name) for name in data.columns]
        self.units = units
        self.reader = reader

    def load(self, names: list[str]) -> None:
        """Read the rows of the columns ``names`` where the format can read only some
        columns (Parquet, CSV); the others were read whole when opened."""
        if self.reader is not None:
            self.data, self.reader = self.reader(names), None

    @property
    def n_rows(self) -> int:
        return len(self.data)

    def column(self, name: str):
        return self.data[name]

    def numeric(self, name: str) -> bool:
        """Whether the column holds one number (not a boolean) per row."""
        column = self.data[name]
        if hasattr(column, "to_numpy"):  # a pandas Series
            from pandas.api import types

            return types.is_numeric_dtype(column.dtype) and not types.is_bool_dtype(
                column.dtype)
        return np.dtype(column.dtype).kind in "iuf" and column.ndim == 1

    def kind(self, name: str) -> str:
        """What the column holds, for messages: its type, and its shape per row if any."""
        column = self.data[name]
        shape = tuple(getattr(column, "shape", (0,))[1:])
        return f"{column.dtype}" + (f", {shape} per row" if shape else "")

    def unit(self, name: str) -> str:
        return self.units.get(name, "")

    def degrees(self, values: np.ndarray, name: str) -> np.ndarray:
        """``values`` in degrees: converted when the column's unit is another angle."""
        import astropy.units as u

        values = _numbers(values)
        unit = self.unit(name)
        if not unit:
            return values
        try:
            return (values * u.Unit(unit)).to_value(u.deg)
        except (ValueError, u.UnitConversionError):
            raise ValueError(f"column {name!r} has unit {unit!r}, not an angle: it cannot "
                             "give sky positions in degrees") from None


def _open(file: Path, kind: str, hdu, hdf5_path, shown: str) -> _Source:
    if kind == "csv":
        import pandas as pd

        # The first rows tell the columns and their types; ``load`` reads the used ones.
        return _Source(pd.read_csv(file, nrows=1000), {},
                       lambda names: pd.read_csv(file, usecols=names))
    options: dict[str, Any] = {"format": {"votable": "votable", "ecsv": "ascii.ecsv",
                                          "parquet": "parquet", "hdf5": "hdf5",
                                          "fits": "fits"}[kind]}
    if kind == "fits":
        options.update(hdu=_first_table_hdu(file, shown) if hdu is None else hdu, memmap=True)
    if kind == "hdf5" and hdf5_path is not None:
        options["path"] = hdf5_path
    if kind == "parquet":
        table = _astropy_read(file, shown, kind, format="parquet", schema_only=True)
        return _Source(table, _units(table), lambda names: _astropy_read(
            file, shown, kind, format="parquet", include_names=names))
    table = _astropy_read(file, shown, kind, **options)
    return _Source(table, _units(table))


def _astropy_read(file: Path, shown: str, kind: str, **options):
    from astropy.table import Table as AstropyTable

    try:
        with warnings.catch_warnings():
            # Units astropy does not know are kept as text; a VOTable's own deviations
            # from its standard are not the user's to fix.
            warnings.simplefilter("ignore")
            return AstropyTable.read(file, **options)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{shown}: cannot read it as a {kind} table ({exc})") from None


def _units(table) -> dict[str, str]:
    return {name: str(table[name].unit) for name in table.colnames
            if table[name].unit is not None}


def _first_table_hdu(file: Path, shown: str) -> int:
    """The index of the first table HDU of a FITS file."""
    from astropy.io import fits

    with fits.open(file, memmap=True) as hdus:
        for i, unit in enumerate(hdus):
            if isinstance(unit, fits.BinTableHDU | fits.TableHDU):
                return i
        held = [f"{i}: {type(unit).__name__}" for i, unit in enumerate(hdus)]
    raise ValueError(f"{shown}: no table HDU in the file (it holds {listing(held)})")


def _numbers(values) -> np.ndarray:
    """A column's values as float64, masked entries (FITS nulls, empty cells) as NaN."""
    if hasattr(values, "to_numpy"):  # a pandas Series
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.ma.isMaskedArray(values):
        return np.ma.filled(np.ma.asarray(values).astype(np.float64), np.nan)
    return np.asarray(values, dtype=np.float64)


def _take(column, rows: np.ndarray):
    """``column`` at ``rows`` (sorted), reading only the block they span."""
    if not len(rows):
        return column[0:0]
    block = column[int(rows[0]):int(rows[-1]) + 1]
    if hasattr(block, "iloc"):
        return block.iloc[rows - rows[0]]
    return block[rows - rows[0]]


def _text(values) -> list[str]:
    """Labels or ids as text: whole floats without ``.0``, missing entries as ``""``."""
    if hasattr(values, "to_numpy"):
        values = values.to_numpy(dtype=object)
    mask = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else None
    out = []
    for i, value in enumerate(np.asarray(values, dtype=object).tolist()):
        if mask is not None and mask[i]:
            out.append("")
        elif isinstance(value, bytes):
            out.append(value.decode())
        elif isinstance(value, float):
            out.append("" if math.isnan(value) else
                       str(int(value)) if value.is_integer() else repr(value))
        elif value is None:
            out.append("")
        else:
            out.append(str(value))
    return out

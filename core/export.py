"""``clustergrid labels``: one combination's clusters as a catalogue, one row per item.

Read from the tracking store only, as reports are, so it works wherever the store can
be reached. A row joins what three steps logged: the combination's ``labels.csv`` (id,
cluster, and the clusterer's membership probability or outlier score when it has one),
its data step's ``items.csv`` (source file and true class) and its map step's 2-D
coordinates. Written through astropy's ``Table``, so FITS and VOTable files open in
TOPCAT, and a user's own catalogue can be joined on an id column.
"""

from __future__ import annotations

import csv
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clustergrid import names
from clustergrid.errors import ClustergridError, listing
from clustergrid.record import ITEMS, LABELS, MAP
from clustergrid.results import load_results, pipeline_names, pipeline_order, varying_parts
from clustergrid.tracking import Tracker

#: file suffix -> astropy's format name
FORMATS = {".fits": "fits", ".fit": "fits", ".vot": "votable", ".votable": "votable",
           ".xml": "votable", ".csv": "ascii.csv", ".parquet": "parquet"}

#: what each column means, written into the file (VOTable and FITS keep descriptions)
DESCRIPTIONS = {
    "id": "item id, as the dataset names it",
    "source": "file (or file[index], HDF5 group) the item was read from",
    "ra": "ICRS right ascension of the item's centre (empty if unknown)",
    "dec": "ICRS declination of the item's centre (empty if unknown)",
    "cluster": "cluster of the item; -1 is noise",
    "probability": "how strongly the item belongs to its cluster, 0-1 (the clusterer's own)",
    "outlier_score": "how unusual the item is; higher is more unusual (docs/catalogues.md)",
    "map_x": "x of the item on the report's 2-D map of its embedding",
    "map_y": "y of the item on the report's 2-D map of its embedding",
    "class": "true class of the item, when the dataset has labels (empty if unknown)",
}
#: the units of the columns that have one
UNITS = {"ra": "deg", "dec": "deg"}
#: the IVOA UCDs that tell TOPCAT and Aladin what a column holds (the sky position first)
UCDS = {"id": "meta.id;meta.main", "ra": "pos.eq.ra;meta.main", "dec": "pos.eq.dec;meta.main"}
#: the key of a table's ``meta`` holding where it comes from (``provenance``), written as
#: INFO elements in a VOTable, header cards in FITS and comment lines elsewhere
PROVENANCE = "clustergrid_provenance"
#: FITS keyword and comment of each provenance entry
FITS_CARDS = {"experiment": ("EXPERIM", "clustergrid experiment"),
              "pipeline": ("PIPELINE", "combination (clustergrid results)"),
              "run_id": ("RUN_ID", "MLflow run of the combination"),
              "seed": ("SEED", "seed of the combination (none: no seed)"),
              "clustergrid_version": ("CGVERS", "clustergrid version that wrote it")}


def find_combination(frame: pd.DataFrame, experiment: str, pipeline: str,
                     seed: int | None) -> pd.Series:
    """The one finished combination ``pipeline`` names (and has ``seed``): its number as
    ``clustergrid results`` prints it (``3`` or ``#3``), its name in any spelling
    (``clustergrid.names.canonical``: parameters in any order, a tuple for a list), or
    any part of its name that only it contains; a one-line ClustergridError naming a few
    candidates otherwise."""
    if frame.empty:
        raise ClustergridError(f"no finished combinations in '{experiment}'")
    order = pipeline_order(frame)
    pipelines = pipeline_names(frame)
    given = pipeline.strip()
    if re.fullmatch(r"#?\d+", given):
        number = int(given.lstrip("#"))
        if not 1 <= number <= len(order.names):
            raise ClustergridError(
                f"--pipeline {given}: '{experiment}' has pipelines 1 to {len(order.names)}, "
                f"numbered as `clustergrid results {experiment}` prints them")
        matches = frame[pipelines == order.names[number - 1]]
    else:
        wanted = names.canonical(given)
        full = frame["pipeline"].map(names.canonical)
        matches = frame[(full == wanted) | (pipelines == wanted)]
        if matches.empty:
            matches = frame[full.str.contains(wanted, regex=False)
                            | full.str.contains(given, regex=False)]
    if seed is not None and not matches.empty:
        # A pipeline with nothing stochastic ran once, with no seed: any seed names it.
        matches = matches[matches["param.seed"].isin([str(seed), "none"])]
    if len(matches) == 1:
        return matches.iloc[0]
    _, short = varying_parts(order.names)

    def candidates(found: pd.Series) -> str:
        numbers = sorted(order.number(name) for name in set(found) if name in short)
        return listing((_clip(f"#{number} {short[order.names[number - 1]]}".rstrip())
                        for number in numbers), 5, "; ")

    quoted = _clip(pipeline.strip(), 60)
    if matches.empty:
        raise ClustergridError(
            f"no finished combination of '{experiment}' matches --pipeline '{quoted}'"
            + (f" with --seed {seed}" if seed is not None else "")
            + f"; its pipelines: {candidates(pipelines)} (all of them, numbered: "
            f"clustergrid results {experiment})")
    seeds = sorted(set(matches["param.seed"]) - {"none"}, key=lambda s: (len(s), s))
    hints = (["give its number or more of its name"]
             if pipelines[matches.index].nunique() > 1 else [])
    if len(seeds) > 1:
        hints.append("add --seed (one of " + ", ".join(seeds) + ")")
    hint = " and ".join(hints) or "give more of its name"
    raise ClustergridError(
        f"--pipeline '{quoted}' matches {len(matches)} combinations of '{experiment}' "
        f"({candidates(pipelines[matches.index])}); {hint}")


def _clip(text: str, limit: int = 70) -> str:
    """``text``, cut at ``limit`` characters: a message names a candidate, it does not
    spell out a name hundreds of characters long."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True)
class Chosen:
    """One finished combination found in a store: its results row and the store."""

    experiment: str
    row: pd.Series
    tracker: Tracker


def choose(tracking_uri: str | None, experiment: str, pipeline: str,
           seed: int | None = None) -> Chosen:
    """The combination ``pipeline`` (and ``seed``) names (see ``find_combination``),
    looked up once for every table written of it."""
    row = find_combination(load_results(tracking_uri, experiment), experiment, pipeline, seed)
    return Chosen(experiment, row, Tracker(tracking_uri, experiment, create=False))


def cluster_table(tracking_uri: str | None, experiment: str, pipeline: str,
                  seed: int | None = None):
    """An astropy ``Table`` with one row per item of the combination, in dataset order."""
    return clusters_of(choose(tracking_uri, experiment, pipeline, seed))


def clusters_of(chosen: Chosen):
    """``cluster_table`` of a combination already chosen."""
    from astropy.table import Table

    experiment, row, tracker = chosen.experiment, chosen.row, chosen.tracker
    with tempfile.TemporaryDirectory() as tmp:
        labels = _read_csv(Path(tracker.client.download_artifacts(
            row["run_id"], LABELS, tmp)))
        wanted = {("data", row["step.data"]): ITEMS}
        if isinstance(row.get("step.map"), str):
            wanted["map", row["step.map"]] = MAP
        found = tracker.step_files(wanted, tmp)
        items = _read_csv(found[data]) if (data := ("data", row["step.data"])) in found \
            else None
        coordinates = next((np.load(path, allow_pickle=False) for (stage, _), path
                            in found.items() if stage == "map"), None)
    columns: dict[str, np.ndarray] = {"id": labels["id"]}
    if items is not None:
        if not np.array_equal(items["id"], labels["id"]):
            raise ClustergridError(f"{experiment}: the items logged for the dataset of "
                                   f"'{row['pipeline']}' do not match its labels")
        if "source" in items:
            columns["source"] = items["source"]
        # Stores written before items had sky positions have no such columns.
        if "ra" in items and "dec" in items:
            for name in ("ra", "dec"):
                columns[name] = np.array([float(v) if v else np.nan for v in items[name]])
    columns["cluster"] = labels["cluster"].astype(np.int64)
    for name in ("probability", "outlier_score"):
        if name in labels:
            columns[name] = labels[name].astype(np.float64)
    if coordinates is not None and len(coordinates) == len(labels["id"]):
        columns["map_x"], columns["map_y"] = coordinates[:, 0], coordinates[:, 1]
    if items is not None and "class" in items:
        columns["class"] = items["class"]
    table = Table([columns[name] for name in columns], names=list(columns))
    for name in table.colnames:
        table[name].description = DESCRIPTIONS[name]
        if name in UNITS:
            table[name].unit = UNITS[name]
        if name in UCDS:
            table[name].meta["ucd"] = UCDS[name]
    # Kept in the file so a catalogue says which clustering it holds.
    table.meta[PROVENANCE] = provenance(chosen)
    return table


def provenance(chosen: Chosen, **extra: str) -> dict[str, str]:
    """Where a table of ``chosen`` comes from: its experiment, pipeline, MLflow run,
    seed and the clustergrid version writing it, then ``extra`` notes."""
    from clustergrid import __version__

    row = chosen.row
    return {"experiment": chosen.experiment, "pipeline": str(row["pipeline"]),
            "run_id": str(row["run_id"]), "seed": str(row.get("param.seed", "none")),
            "clustergrid_version": __version__, **extra}


def cards_of(chosen: Chosen):
    """The combination's cluster cards (``clustergrid.cards``) as a ``Table``: a row per
    cluster with its size, what sets it apart, its most and least typical members, its
    class mix, and each descriptor's median and effect size (Cliff's delta against the
    rest)."""
    import json

    from astropy.table import Table

    row, tracker = chosen.row, chosen.tracker
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = tracker.client.download_artifacts(row["run_id"], "cards/cards.json", tmp)
        except Exception as exc:  # MLflow raises its own errors for a missing file
            raise ClustergridError(f"'{row['pipeline']}' has no cluster cards (they are "
                                   "drawn by runs since cards were added)") from exc
        cards = json.loads(Path(path).read_text())
    columns: dict[str, list] = {name: [] for name in (
        "cluster", "size", "fraction", "set_apart", "typical", "atypical", "classes")}
    names = cards["descriptors"]
    for name in names:
        columns[f"median_{name}"], columns[f"delta_{name}"] = [], []
    for card in cards["clusters"]:
        columns["cluster"].append(card["cluster"])
        columns["size"].append(card["size"])
        columns["fraction"].append(card["fraction"])
        columns["set_apart"].append("; ".join(card["apart"]))
        columns["typical"].append(" ".join(map(str, card["typical"])))
        columns["atypical"].append(" ".join(map(str, card["atypical"])))
        columns["classes"].append(", ".join(f"{name} {count}" for name, count
                                            in (card.get("classes") or {}).items()))
        by_name = {entry["name"]: entry for entry in card["descriptors"]}
        for name in names:
            for stat in ("median", "delta"):
                value = by_name.get(name, {}).get(stat)
                columns[f"{stat}_{name}"].append(np.nan if value is None else value)
    if not any(columns["classes"]):
        del columns["classes"]
    table = Table(list(columns.values()), names=list(columns))
    table.meta[PROVENANCE] = provenance(
        chosen, comparison=f"descriptors compared by {cards['test']}, effect "
                           f"{cards['effect']}")
    return table


def join_catalogue(clusters, catalogue: Path, id_column: str):
    """``catalogue`` (any table astropy reads) with the clusters' columns added to each of
    its rows whose ``id_column`` equals an item's id (a left join: rows without an item
    keep empty, masked, cluster columns)."""
    from astropy.table import Table, join

    try:
        table = Table.read(str(catalogue), format=table_format(catalogue, "--catalogue"))
    except (OSError, ValueError) as exc:
        raise ClustergridError(f"{catalogue}: cannot read the catalogue ({exc})") from exc
    if id_column not in table.colnames:
        raise ClustergridError(f"{catalogue}: no column '{id_column}' (--id-column); its "
                               f"columns: {listing(table.colnames)}")
    # Ids are strings in clustergrid; a catalogue may store them as numbers.
    key = "_clustergrid_key"
    table[key] = [str(value).strip() for value in table[id_column]]
    clusters = clusters.copy()
    clusters.rename_column("id", key)
    matched = np.isin(table[key], clusters[key]).sum()
    if matched == 0:
        raise ClustergridError(
            f"{catalogue}: no value of column '{id_column}' is an item id (e.g. "
            f"{listing(table[key][:3], 3)} against {listing(clusters[key][:3], 3)})")
    joined = join(table, clusters, keys=key, join_type="left",
                  table_names=["catalogue", "clustergrid"])
    # A join sorts by the key; the catalogue's own order is what its user expects.
    order = {value: index for index, value in enumerate(table[key])}
    joined = joined[np.argsort([order[value] for value in joined[key]], kind="stable")]
    joined.remove_column(key)
    return joined, int(matched)


def write_table(table, path: Path) -> None:
    """``table`` written in the format its suffix names (see ``FORMATS``), with its
    provenance (``PROVENANCE`` in its meta): INFO elements of a VOTable, header cards of
    a FITS table, comment lines of the other formats."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = table.copy(copy_data=False)
    # A join keeps it beside the user's catalogue's own meta.
    origin = table.meta.pop(PROVENANCE, None) or {}
    kind = table_format(path, "-o")
    if kind == "votable":
        _write_votable(table, origin, path)
    elif kind == "fits":
        _write_fits(table, origin, path)
    else:
        if origin:
            table.meta["comments"] = [f"{key}: {value}" for key, value in origin.items()]
        table.write(str(path), format=kind, overwrite=True)


def _write_votable(table, origin: dict[str, str], path: Path) -> None:
    """A VOTable whose provenance is INFO elements of its resource, with ``ra``/``dec``
    tied to an ICRS COOSYS, and no ``arraysize="1"`` (deprecated since VOTable 1.3)."""
    from astropy.io.votable import converters, from_table, writeto
    from astropy.io.votable.tree import CooSys, Info

    votable = from_table(table)
    resource = votable.resources[0]
    for key, value in origin.items():
        resource.infos.append(Info(name=key, value=value))
    element = resource.tables[0]
    sky = {"ra", "dec"} <= {field.name for field in element.fields}
    if sky:
        resource.coordinate_systems.append(CooSys(ID="icrs", system="ICRS"))
    for field in element.fields:
        if field.datatype in ("char", "unicodeChar") and field.arraysize == "1":
            # A column of one-character strings: written as variable-length instead.
            field.arraysize = "*"
            field.converter = converters.get_converter(field)
        if sky and field.name in ("ra", "dec"):
            field.ref = "icrs"
    # A str: astropy's VOTable writer takes no Path.
    writeto(votable, str(path))


def _write_fits(table, origin: dict[str, str], path: Path) -> None:
    """A FITS binary table whose provenance is header cards (a short keyword each, long
    values continued over CONTINUE cards), with each column's UCD as ``TUCDn``."""
    import textwrap

    from astropy.io import fits

    hdu = fits.table_to_hdu(table)
    for number, name in enumerate(table.colnames, start=1):
        ucd = table[name].meta.get("ucd")
        if ucd:
            hdu.header[f"TUCD{number}"] = ucd
    for key, value in origin.items():
        if key in FITS_CARDS:
            keyword, comment = FITS_CARDS[key]
            hdu.header[keyword] = (value, comment)
        else:  # a note: whole words on each line
            for line in textwrap.wrap(f"{key}: {value}", 70, break_on_hyphens=False):
                hdu.header.add_comment(line)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def table_format(path: Path, option: str) -> str:
    """astropy's format for ``path``, by its suffix; a ClustergridError naming ``option``
    for a suffix it cannot write."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ClustergridError(f"{path} ({option}): the format is chosen by the suffix, one "
                               f"of {', '.join(FORMATS)}")
    return FORMATS[suffix]


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    """A logged CSV table as ``column -> strings``."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    return {name: np.array([row[i] for row in body], dtype=str)
            for i, name in enumerate(header)}

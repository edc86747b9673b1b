"""Public datasets by name: where each is published, with its checksums, size, licence and
citation, and the dataset entry that reads it once ``clustergrid data fetch`` has put it
in the data folder (``--to``, else ``$CLUSTERGRID_DATA``, else ``~/.cache/clustergrid/data``),
one sub-folder per dataset.

Downloads go through pooch: a file already in the folder with the published checksum is
not downloaded again, so a fetched set works offline; a download whose checksum differs
is deleted and refused. Tar archives are unpacked beside the download. FR-DEEP and
MiraBest are published as pickled image batches (CIFAR-10 style); they are unpickled only
after their archive matched its checksum, allowing nothing but numpy arrays, lists,
numbers and text, and written out as a PNG folder per class, which the ``images`` loader
reads.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
from dataclasses import dataclass
from difflib import get_close_matches
from math import isqrt
from pathlib import Path
from typing import Any

from clustergrid.errors import ClustergridError

#: the data folder, when set and no ``--to`` is given
DATA_VARIABLE = "CLUSTERGRID_DATA"
#: the data folder otherwise
DEFAULT_DATA_FOLDER = Path("~/.cache/clustergrid/data")
#: what stands for the fetched data's path in a dataset's ``entry``
PATH = "{path}"

#: The FIRST survey's terms, which FR-DEEP's and MiraBest's images carry.
FIRST_TERMS = ("FIRST survey images (Becker, Helfand, White et al.; copyright 1994, University "
               "of California): publication and reproduction permitted for scholarly, "
               "educational and private non-commercial use; ask the FIRST team about "
               "commercial use")


class ChecksumMismatch(ClustergridError):
    """A downloaded file whose checksum is not the published one; it was deleted."""


@dataclass(frozen=True)
class RemoteFile:
    """One published file and the checksum its publisher gives, in pooch's
    ``algorithm:hex`` form (``sha256:...``, ``md5:...``)."""

    url: str
    checksum: str

    @property
    def name(self) -> str:
        """The file's name in the dataset's folder: the URL's last part."""
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PickledBatches:
    """Image batches pickled CIFAR-10 style, as FR-DEEP and MiraBest publish them: each a
    dict with ``data`` (one flattened square grayscale image per row) and ``labels``
    (codes), and a meta file whose ``label_names`` names the codes. ``write`` makes a
    PNG folder per class, ``<prefix>_0000.png`` onwards, numbered across the batches in
    the order given."""

    batches: tuple[str, ...]
    meta: str = "batches.meta"
    prefix: str = "image"

    def write(self, files: list[Path], target: Path, dataset: str) -> int:
        """Write the images of the batches among ``files`` (the unpacked archive) into
        ``target``; the number written."""
        import numpy as np
        from PIL import Image

        by_name = {file.name: file for file in files}
        missing = [name for name in (*self.batches, self.meta) if name not in by_name]
        if missing:
            raise ClustergridError(f"{dataset}: the archive holds no {', '.join(missing)}")
        names = [_text(name) for name in
                 _load_batch(by_name[self.meta], dataset).get("label_names", [])]
        number = 0
        for batch_name in self.batches:
            batch = _load_batch(by_name[batch_name], dataset)
            data = np.asarray(batch.get("data", []), dtype=np.uint8)
            labels = list(batch.get("labels", []))
            width = data.shape[1] if data.ndim == 2 else 0
            side = isqrt(width)
            if not width or side * side != width or len(labels) != len(data):
                raise ClustergridError(
                    f"{dataset}: {batch_name}: expected one square image per row and a label "
                    f"each, found data of shape {data.shape} and {len(labels)} labels")
            unnamed = sorted({int(code) for code in labels} - set(range(len(names))))
            if unnamed:
                raise ClustergridError(f"{dataset}: {batch_name}: label codes {unnamed} have no "
                                       f"name in {self.meta} ({len(names)} names)")
            for row, code in zip(data, labels, strict=True):
                folder = target / names[int(code)]
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(row.reshape(side, side), mode="L").save(
                    folder / f"{self.prefix}_{number:04d}.png")
                number += 1
        return number


@dataclass(frozen=True)
class PublicDataset:
    """A public dataset ``clustergrid data fetch`` knows by name."""

    name: str
    title: str
    #: what the files hold
    description: str
    #: what is downloaded, in words
    size: str
    licence: str
    citation: str
    #: where the URLs and checksums below are published
    published: str
    files: tuple[RemoteFile, ...]
    #: the dataset entry that reads it, ``{path}`` standing for ``location``'s path
    entry: dict[str, Any]
    #: what the entry reads, relative to the dataset's folder
    location: str = "."
    #: tar archives among ``files`` are unpacked (pooch.Untar)
    unpack: bool = False
    #: how the unpacked files become ``location``; None: the files are read as they are
    convert: PickledBatches | None = None


CATALOGUE: dict[str, PublicDataset] = {dataset.name: dataset for dataset in (
    PublicDataset(
        name="frdeep",
        title="FR-DEEP, FIRST images (FRDEEP-F)",
        description="600 radio galaxies of the VLA FIRST survey, 150x150 grayscale, "
                    "Fanaroff-Riley class I (264) or II (336) from the FRICAT and CoNFIG "
                    "catalogues; published as 12 pickled batches of 50, written out as "
                    "FRI/ and FRII/ folders of PNG files",
        size="one .tar.gz holding 13.5 MB of images (600 x 150 x 150 bytes)",
        licence=FIRST_TERMS,
        citation="Tang H., Scaife A. M. M., Leahy J. P., 2019, Transfer learning for radio "
                 "galaxy classification, arXiv:1903.11921",
        published="FRDEEP.py (class FRDEEPF) in github.com/HongmingTang060313/FR-DEEP",
        files=(RemoteFile(
            "https://github.com/HongmingTang060313/FR-DEEP/raw/master/FIRST_data/"
            "FIRST_PNG_dataset.tar.gz",
            "md5:2f39461e6c62fb45289559915106013a"),),
        unpack=True,
        convert=PickledBatches(
            batches=(*(f"data_batch_{i}" for i in range(1, 12)), "test_batch"),
            prefix="frdeep"),
        location="images",
        entry={"plugin": "images", "path": PATH, "labels_from": "folders",
               "channels": "gray", "on_error": "skip"},
    ),
    PublicDataset(
        name="mirabest",
        title="MiraBest, full set",
        description="1256 radio galaxies of the VLA FIRST survey, 150x150 grayscale, "
                    "labelled by Miraghaei & Best (2017) in 10 classes named by a code: "
                    "100, 102, 104 confident FR I, 110, 112 uncertain FR I, 200, 201 "
                    "confident FR II, 210 uncertain FR II, 300, 310 hybrid (confident, "
                    "uncertain); published as 8 pickled batches, written out as a folder "
                    "of PNG files per class",
        size="one .tar.gz holding 28.3 MB of images (1256 x 150 x 150 bytes)",
        licence=FIRST_TERMS,
        citation="Porter F. A. M., Scaife A. M. M., 2023, MiraBest: a dataset of "
                 "morphologically classified radio galaxies for machine learning, "
                 "arXiv:2305.11108; labels: Miraghaei H., Best P. N., 2017, MNRAS 466, 4346",
        published="the MiraBest_full loader (MiraBest.py) that accompanies the dataset",
        files=(RemoteFile(
            "http://www.jb.man.ac.uk/research/MiraBest/full_dataset/"
            "MiraBest_full_batches.tar.gz",
            "md5:965b5daa83b9d8622bb407d718eecb51"),),
        unpack=True,
        convert=PickledBatches(
            batches=(*(f"data_batch_{i}" for i in range(1, 8)), "test_batch"),
            prefix="mirabest"),
        location="images",
        entry={"plugin": "images", "path": PATH, "labels_from": "folders",
               "channels": "gray"},
    ),
    PublicDataset(
        name="galaxy10-decals",
        title="Galaxy10 DECaLS",
        description="17,736 galaxies of the DESI Legacy Imaging Surveys, 256x256 colour "
                    "(g, r, z) images, in 10 Galaxy Zoo morphology classes; one HDF5 file "
                    "holding images, ans (the class), ra, dec, redshift and pxscale",
        size="2.54 GB (one HDF5 file)",
        licence="MIT (the Galaxy10 compilation, github.com/henrysky/Galaxy10); images from "
                "the DESI Legacy Imaging Surveys and labels from Galaxy Zoo, to be "
                "acknowledged as both ask",
        citation="Leung H. W., Bovy J., Galaxy10 DECaLS, doi:10.5281/zenodo.10845026 "
                 "(astronn.readthedocs.io/en/latest/galaxy10.html); Walmsley M. et al., 2022, "
                 "MNRAS 509, 3966 (Galaxy Zoo DECaLS); Dey A. et al., 2019, AJ 157, 168 "
                 "(the Legacy Surveys)",
        published="astroNN's galaxy10.py and its documentation (github.com/henrysky/astroNN)",
        files=(RemoteFile(
            "https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5",
            "sha256:19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571"),),
        location="Galaxy10_DECals.h5",
        entry={"plugin": "hdf5", "path": PATH, "images": "images", "labels_dataset": "ans",
               "class_labels": [[
                   "disturbed", "merging", "round_smooth", "in_between_smooth",
                   "cigar_smooth", "barred_spiral", "unbarred_tight_spiral",
                   "unbarred_loose_spiral", "edge_on_no_bulge", "edge_on_with_bulge"]]},
    ),
    PublicDataset(
        name="simtel-samples",
        title="sim_telarray samples of ctapipe and pyeventio",
        description="Cherenkov-telescope events simulated with sim_telarray: 30 LST muon "
                    "rings (lst_muons) and gamma showers (gamma_prod6_tel_event_header_v4, "
                    "history_meta_75), read by the simtel loader (the cta extra)",
        size="3 files, 11.5 MB",
        licence="pyeventio's files: MIT (github.com/cta-observatory/pyeventio); "
                "lst_muons: test data of github.com/cta-observatory/ctapipe-extra, which "
                "states no licence",
        citation="Bernlöhr K., 2008, Astroparticle Physics 30, 149 (sim_telarray); "
                 "read with ctapipe and pyeventio (github.com/cta-observatory)",
        published="the repositories' files at the commits in the URLs; SHA-256 of the "
                  "copies the project tests with",
        files=(
            RemoteFile("https://github.com/cta-observatory/ctapipe-extra/raw/"
                       "e88bc37bac674214964251a3de44dc5427ca938d/ctapipe_resources/"
                       "lst_muons.simtel.zst",
                       "sha256:cb737262c836ff03b4157581edccee6b31425846877311e6f040c6a6672ecf0b"),
            RemoteFile("https://github.com/cta-observatory/pyeventio/raw/"
                       "311a894d9d94c3618c6375311ccc733d4b8bc362/tests/resources/"
                       "gamma_prod6_tel_event_header_v4.simtel.zst",
                       "sha256:4fb83ddce3923f61e8a422a69855b02056b08aecc150d5a6c39f26702c02f284"),
            RemoteFile("https://github.com/cta-observatory/pyeventio/raw/"
                       "1b3ea2a197dd1f51cc6e48f6e141a978e1ac2289/tests/resources/"
                       "history_meta_75.simtel.zst",
                       "sha256:2c235d58a1a8beede4d6256ed103d084020501578ef67dc2beab22b3b8e7e8f0"),
        ),
        entry={"plugin": "simtel", "path": PATH, "telescope_type": "LSTCam"},
    ),
    PublicDataset(
        name="sdss-mosaics",
        title="SDSS g, r, i images of one field (astropy-data)",
        description="SDSS g, r and i images of one field reprojected onto one 496x682 grid "
                    "(FITS, bzip2), with a celestial WCS; cut into 64x64 stamps by the fits "
                    "loader",
        size="3 files, 3.7 MB",
        licence="no licence stated by astropy-data, which serves them for astropy's "
                "documentation; SDSS asks to be acknowledged",
        citation="York D. G. et al., 2000, AJ 120, 1579 (SDSS); Lupton R. et al., 2004, "
                 "PASP 116, 133 (the colour images astropy makes from them)",
        published="astropy's documentation (visualization/reprojected_sdss_*.fits.bz2 on "
                  "data.astropy.org; the same files' MD5 in its examples)",
        files=tuple(RemoteFile(
            f"http://data.astropy.org/visualization/reprojected_sdss_{band}.fits.bz2",
            f"sha256:{checksum}") for band, checksum in (
                ("g", "9b7a169519f80a35698448d2a04ec5b892f27c6ccd598ea772bbcc6d2cf52f5a"),
                ("r", "66892f2bcccaafe607378470d8a8145365f448fb159cc119e06861eabd59ead2"),
                ("i", "17d07bac79a7c7a30f4b93cd24422c002da9960155f3ead1672ed9c0ec056faf"))),
        entry={"plugin": "fits", "path": f"{PATH}/reprojected_sdss_*", "bands": [["g", "r", "i"]],
               "pattern": "{id}_{band}.fits", "tile": 64, "stride": 64},
    ),
)}


@dataclass(frozen=True)
class Fetched:
    """A dataset in the data folder, and how it got there."""

    dataset: PublicDataset
    #: the dataset's folder
    folder: Path
    #: what its ``entry`` reads
    path: Path
    #: files downloaded now, and files found in the folder with their checksum
    downloaded: tuple[str, ...]
    cached: tuple[str, ...]

    def entry(self) -> dict[str, Any]:
        """The dataset entry that reads it, for an experiment file."""
        return _filled(self.dataset.entry, str(self.path))


def data_folder(to: Path | str | None = None) -> Path:
    """The data folder: ``to``, else ``$CLUSTERGRID_DATA``, else ``~/.cache/clustergrid/data``
    (absolute)."""
    chosen = to or os.environ.get(DATA_VARIABLE) or DEFAULT_DATA_FOLDER
    return Path(chosen).expanduser().absolute()


def find(name: str) -> PublicDataset:
    """The dataset called ``name``; a ClustergridError naming the known ones otherwise."""
    if name in CATALOGUE:
        return CATALOGUE[name]
    close = get_close_matches(name, list(CATALOGUE), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise ClustergridError(f"no public dataset named '{name}' ({hint}known: "
                           f"{', '.join(CATALOGUE)}; see `clustergrid data list`)")


def location(name: str, to: Path | str | None = None) -> Path:
    """Where the dataset's entry reads it once fetched."""
    dataset = find(name)
    return data_folder(to) / dataset.name / dataset.location


def fetch(name: str, to: Path | str | None = None) -> Fetched:
    """Download ``name``'s files into the data folder unless they are there with their
    published checksum, unpack and convert them as the dataset needs; a download with
    another checksum is deleted and refused (``ChecksumMismatch``), one that fails is
    refused naming the URL."""
    import pooch  # only this command needs it

    pooch.get_logger().setLevel("WARNING")
    dataset = find(name)
    folder = data_folder(to) / dataset.name
    downloaded, cached, unpacked = [], [], []
    for remote in dataset.files:
        download = _CheckedDownload(remote.checksum.split(":", 1)[0])
        processor = pooch.Untar() if dataset.unpack and _is_tar(remote.name) else None
        try:
            result = pooch.retrieve(remote.url, known_hash=remote.checksum, fname=remote.name,
                                    path=folder, processor=processor, downloader=download)
        except ValueError as exc:
            if download.got is None:  # not a checksum: pooch refusing the URL, say
                raise ClustergridError(f"{dataset.name}: {remote.name}: {exc}") from exc
            raise ChecksumMismatch(
                f"{dataset.name}: {remote.name}: checksum mismatch: expected "
                f"{remote.checksum}, got {download.algorithm}:{download.got}; the download "
                f"from {remote.url} was deleted") from None
        except Exception as exc:  # requests' errors, without importing requests here
            if not _is_network_error(exc):
                raise
            raise ClustergridError(f"{dataset.name}: cannot download {remote.url} "
                                   f"({type(exc).__name__}: {exc})") from None
        (downloaded if download.calls else cached).append(remote.name)
        unpacked += [Path(path) for path in result] if isinstance(result, list) else []
    path = folder / dataset.location
    if dataset.convert is not None and (downloaded or not path.exists()):
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        dataset.convert.write(unpacked, partial, dataset.name)
        shutil.rmtree(path, ignore_errors=True)
        partial.rename(path)
    return Fetched(dataset, folder, path, tuple(downloaded), tuple(cached))


class _CheckedDownload:
    """pooch's HTTP(S) or FTP download, remembering the checksum of what arrived, so that a
    mismatch can be reported with it (pooch deletes the file before saying)."""

    def __init__(self, algorithm: str):
        self.algorithm = algorithm
        self.got: str | None = None
        self.calls = 0

    def __call__(self, url: str, output_file: Any, pooch_object: Any) -> None:
        import pooch

        # A bar only for a person watching: it would fill a batch job's log.
        kind = pooch.FTPDownloader if url.startswith("ftp://") else pooch.HTTPDownloader
        kind(progressbar=sys.stderr.isatty())(url, output_file, pooch_object)
        self.calls += 1
        self.got = pooch.file_hash(str(output_file), alg=self.algorithm)


def _is_tar(name: str) -> bool:
    return name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))


def _is_network_error(exc: Exception) -> bool:
    """An error of the transfer (requests, or the FTP library), not of this code."""
    import ftplib

    module = type(exc).__module__ or ""
    return module.startswith(("requests", "urllib3")) or isinstance(exc, ftplib.Error)


def _filled(value: Any, path: str) -> Any:
    """``value`` with ``{path}`` replaced in every string (other braces are kept: a
    ``fits`` pattern has its own)."""
    if isinstance(value, str):
        return value.replace(PATH, path)
    if isinstance(value, list):
        return [_filled(item, path) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, path) for key, item in value.items()}
    return value


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


#: What a pickled image batch may hold beyond plain containers: numpy arrays (written by
#: numpy 1 as numpy.core, by numpy 2 as numpy._core) and Python 3's protocol-2 bytes.
_BATCH_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain values, and refuses anything else
    a pickle could name (a pickle may run any function it names)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _BATCH_GLOBALS:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in an image batch")
        if module.startswith("numpy.core."):  # numpy 2 moved it; the old name warns
            import numpy

            if hasattr(numpy, "_core"):
                module = module.replace("numpy.core.", "numpy._core.", 1)
        return super().find_class(module, name)


def _load_batch(path: Path, dataset: str) -> dict:
    """One pickled batch or meta file (Python 2 pickles are read as Latin-1, as their
    authors' loaders do)."""
    try:
        with path.open("rb") as file:
            loaded = _BatchUnpickler(file, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise ClustergridError(f"{dataset}: {path.name}: not an image batch ({exc})") from None
    if not isinstance(loaded, dict):
        raise ClustergridError(f"{dataset}: {path.name}: not an image batch (a "
                               f"{type(loaded).__name__}, not a dict)")
    return loaded

"""Cherenkov-telescope camera images read from sim_telarray files with ctapipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clustergrid import Dataset
from clustergrid.plugins.support.files import (
    encode_labels,
    fingerprint_files,
    folder_root,
    resolve_files,
    unique_ids,
)
from clustergrid.plugins.support.simulation import pixel_grid

#: Bump when the images read for the same files and parameters change (cache keys).
SIMTEL_VERSION = "1"

#: File names the dataset reads (lower case): sim_telarray output, plain or compressed.
SUFFIXES = (".simtel", ".simtel.gz", ".simtel.zst", ".simtel.bz2", ".simtel.xz")

CTAPIPE_MISSING = "the simtel dataset needs ctapipe: pip install 'clustergrid[cta]'"

#: CORSIKA particle ids of the primaries with a name of their own; any other id
#: ``100 * A + Z`` is a nucleus. sim_telarray muon runs use 2 (and -2 for mu-).
PRIMARY_NAMES = {0: "gamma", 1: "electron", -1: "electron", 2: "muon", -2: "muon",
                 101: "proton"}


def primary_name(primary_id: int) -> str:
    """The class name of a CORSIKA primary particle id (``nucleus`` for ``100 * A + Z``)."""
    if primary_id in PRIMARY_NAMES:
        return PRIMARY_NAMES[primary_id]
    return "nucleus" if primary_id >= 200 else f"particle-{primary_id}"


def require_ctapipe() -> None:
    """Raise the one installation hint when ctapipe cannot be imported."""
    try:
        # the top-level package first: a blocked ``ctapipe`` must fail even when its
        # sub-modules were imported earlier in the process (sys.modules keeps them)
        import ctapipe
        import ctapipe.calib
        import ctapipe.io  # noqa: F401
    except ImportError as exc:
        raise ImportError(CTAPIPE_MISSING) from exc


def telescope_matches(name: str, wanted: str) -> bool:
    """Whether telescope type ``name`` (``LST_LST_LSTCam``) is the one ``wanted``:
    the whole name or one of its ``_``-separated parts, ignoring case (files spell
    ``LSTCam`` and ``LSTcam``)."""
    wanted = wanted.lower()
    name = name.lower()
    return wanted == name or wanted in name.split("_")


@dataclass
class SimtelIndex:
    """What ``SimtelFiles._index`` computes once per instance."""

    pixels: np.ndarray  # (n, n_pixels) float32 calibrated charge, p.e.
    pix_x: np.ndarray  # pixel centres in the camera frame, metres
    pix_y: np.ndarray
    nearest: np.ndarray  # (size, size) index of the camera pixel nearest each grid cell
    inside: np.ndarray  # (size, size) whether the cell lies on the camera
    names: list[str | None]  # class name per image
    ids: list[str]
    camera: str


class SimtelFiles(Dataset):
    """Cherenkov-telescope (IACT) camera images from sim_telarray files, read with ctapipe.

    ``path`` is a file, a folder (searched recursively) or a glob of sim_telarray files
    (``.simtel``, optionally ``.gz``/``.zst``/``.bz2``/``.xz`` compressed). Each item is one
    telescope's image of one event, calibrated by ctapipe's ``CameraCalibrator``
    (charge in photo-electrons per pixel). ``telescope_type`` keeps the telescopes whose
    type (``str(subarray.tel[tel_id])``, e.g. ``LST_LST_LSTCam`` or ``MST_MST_NectarCam``)
    equals it or one of its ``_``-separated parts, ignoring case; ``min_size`` drops
    images whose summed charge is below it (p.e.); ``max_events`` keeps the first images
    only. A dataset holds one camera type: when the selected images come from several,
    it fails and asks for ``telescope_type``.

    The class of an image is ``label`` when given (one class per dataset: for files of
    a known particle), otherwise the simulated primary particle: ``gamma``,
    ``electron``, ``muon``, ``proton`` or ``nucleus`` (-1, unknown, without simulation
    truth). ``ids`` are ``<file stem>:<event_id>:<tel_id>``.

    ``read`` resamples each camera image onto a ``size`` x ``size`` square grid spanning
    the camera: each cell takes the value of the nearest camera pixel, cells off the
    camera are 0 (as ``sim-cherenkov`` does). ``read_pixels`` gives the pixel values
    themselves and ``pixel_geometry`` their positions (metres in the camera frame).

    The files are read once, on first use, and the calibrated pixel values of the
    selected images are kept in memory: O(selected images x camera pixels) float32
    (7 kB per LST image), not the size of the files.
    """

    name = "simtel"
    version = SIMTEL_VERSION

    def __init__(
        self,
        path: str,
        label: str | None = None,
        telescope_type: str | None = None,
        min_size: float = 0.0,
        size: int = 64,
        max_events: int | None = None,
    ):
        self.path = path
        self.label = label
        self.telescope_type = telescope_type
        self.min_size = min_size
        self.size = size
        self.max_events = max_events

    # -- Dataset contract ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index().pixels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.size, self.size)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` as ``(n, 1, size, size)`` float32, resampled onto the grid."""
        index = self._index()
        pixels = index.pixels[start:stop]
        images = np.where(index.inside[None], pixels[:, index.nearest], 0.0)
        return images[:, None].astype(np.float32)

    def read_pixels(self, start: int, stop: int) -> np.ndarray:
        """Camera images ``start:stop`` as ``(n, n_pixels)`` float32 p.e. per pixel."""
        return self._index().pixels[start:stop].copy()

    def pixel_geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """``(pix_x, pix_y)``: the centre of each camera pixel, in metres."""
        index = self._index()
        return index.pix_x.copy(), index.pix_y.copy()

    def labels(self) -> np.ndarray | None:
        names = self._index().names
        if all(name is None for name in names):
            return None
        return encode_labels(names)[0]

    def class_names(self) -> list[str] | None:
        names = self._index().names
        if all(name is None for name in names):
            return None
        return encode_labels(names)[1]

    def ids(self) -> np.ndarray:
        return np.array(self._index().ids)

    def fingerprint(self) -> str:
        """Path, size and mtime of every file, the parameters and the reader's version."""
        extra = f"{self.version}|{self.get_params()!r}"
        return fingerprint_files(resolve_files(self.path, SUFFIXES), extra)

    # -- reading -------------------------------------------------------------------------
    def _check(self) -> None:
        if not isinstance(self.size, int) or self.size < 2:
            raise ValueError(f"size must be an integer >= 2, got {self.size!r}")
        if not np.isfinite(self.min_size):
            raise ValueError(f"min_size must be a finite number, got {self.min_size!r}")
        if self.max_events is not None and self.max_events < 1:
            raise ValueError(f"max_events must be >= 1 or None, got {self.max_events!r}")

    def _index(self) -> SimtelIndex:
        """Reads the selected images of every file, once per instance."""
        cached = getattr(self, "_index_cache", None)
        if cached is not None:
            return cached
        # ctapipe first, so that a missing install gives its hint whatever else is wrong
        require_ctapipe()
        self._check()
        files = resolve_files(self.path, SUFFIXES)
        stems = unique_ids(files, folder_root(self.path), SUFFIXES)

        pixels: list[np.ndarray] = []
        names: list[str | None] = []
        ids: list[str] = []
        # camera name (lower case: files spell LSTCam and LSTcam) -> (name as first
        # seen, telescope types seen), to name every type in the mixed-camera error
        cameras: dict[str, tuple[str, list[str]]] = {}
        geometry = None
        for file, stem in zip(files, stems, strict=True):
            if self.max_events is not None and len(pixels) >= self.max_events:
                break
            for tel_id, tel_name, camera, image, primary, event_id in self._events(file):
                tel_names = cameras.setdefault(camera.lower(), (camera, []))[1]
                if tel_name not in tel_names:
                    tel_names.append(tel_name)
                if len(cameras) > 1:
                    found = "; ".join(
                        f"{cam} ({', '.join(tels)})" for cam, tels in cameras.values()
                    )
                    raise ValueError(
                        f"{self.path}: the selected events mix camera types: {found}; a "
                        "simtel dataset holds one camera type: set telescope_type to one "
                        "of the telescope types (e.g. telescope_type: "
                        f"{next(iter(cameras.values()))[1][0]})"
                    )
                if geometry is None:
                    geometry = self._camera_geometry(file, tel_id)
                elif len(image) != len(geometry[0]):
                    raise ValueError(
                        f"{file}: telescope {tel_id} ({tel_name}) has {len(image)} pixels, "
                        f"earlier images of the same camera type {len(geometry[0])}"
                    )
                pixels.append(image)
                names.append(self.label if self.label is not None else
                             (primary_name(primary) if primary is not None else None))
                ids.append(f"{stem}:{event_id}:{tel_id}")
                if self.max_events is not None and len(pixels) >= self.max_events:
                    break
        if geometry is None:
            wanted = f" of telescope type {self.telescope_type!r}" if self.telescope_type else ""
            raise ValueError(
                f"{self.path}: no telescope image{wanted} with size >= {self.min_size} p.e. "
                f"in {len(files)} file(s)"
            )
        pix_x, pix_y, corner = geometry
        nearest, inside = self._grid(pix_x, pix_y, corner)
        index = SimtelIndex(
            pixels=np.stack(pixels).astype(np.float32), pix_x=pix_x, pix_y=pix_y,
            nearest=nearest, inside=inside, names=names, ids=ids,
            camera=next(iter(cameras.values()))[0],
        )
        self._index_cache = index
        return index

    def _selected_tels(self, subarray) -> dict[int, tuple[str, str]]:
        """``tel_id -> (telescope type, camera name)`` of the telescopes to keep."""
        selected = {}
        for tel_id, description in subarray.tel.items():
            tel_name = str(description)
            if self.telescope_type is None or telescope_matches(tel_name, self.telescope_type):
                selected[tel_id] = (tel_name, description.camera.name)
        return selected

    def _events(self, file: Path):
        """Yields ``(tel_id, type, camera, image, primary id, event id)`` per kept image."""
        from ctapipe.calib import CameraCalibrator
        from ctapipe.io import EventSource

        # EQUIVALENT: the focal length sim_telarray files describe; ctapipe's default
        # (EFFECTIVE) needs a value these files do not all carry
        options = {"focal_length_choice": "EQUIVALENT"}
        with EventSource(str(file), **options) as probe:
            selected = self._selected_tels(probe.subarray)
        if not selected:
            return
        # allowed_tels: only the selected telescopes are decoded and calibrated
        with EventSource(str(file), allowed_tels=set(selected), **options) as source:
            calibrator = CameraCalibrator(subarray=source.subarray)
            for event in source:
                calibrator(event)
                shower = event.simulation.shower if event.simulation is not None else None
                primary = int(shower.shower_primary_id) if shower is not None else None
                for tel_id, dl1 in event.dl1.tel.items():
                    if tel_id not in selected or dl1.image is None:
                        continue
                    # broken or unavailable pixels come out NaN; 0 is "no light" in
                    # the grid too, and keeps every image finite for the encoders
                    image = np.nan_to_num(np.asarray(dl1.image, dtype=np.float32),
                                          nan=0.0, posinf=0.0, neginf=0.0)
                    if image.sum() < self.min_size:
                        continue
                    tel_name, camera = selected[tel_id]
                    yield tel_id, tel_name, camera, image, primary, int(event.index.event_id)

    def _camera_geometry(self, file: Path, tel_id: int):
        """``(pix_x, pix_y, corner)`` of a telescope's camera: centres in metres and the
        distance from a pixel's centre to its farthest corner."""
        from ctapipe.instrument import PixelShape
        from ctapipe.io import EventSource

        with EventSource(str(file), focal_length_choice="EQUIVALENT") as source:
            geometry = source.subarray.tel[tel_id].camera.geometry
        pix_x = geometry.pix_x.to_value("m").astype(np.float64)
        pix_y = geometry.pix_y.to_value("m").astype(np.float64)
        width = float(np.max(geometry.pixel_width.to_value("m")))
        if geometry.pix_type == PixelShape.HEXAGON:
            corner = width / np.sqrt(3)  # pixel_width is flat to flat
        elif geometry.pix_type == PixelShape.SQUARE:
            corner = width / np.sqrt(2)
        else:
            corner = width / 2
        return pix_x, pix_y, corner

    def _grid(
        self, pix_x: np.ndarray, pix_y: np.ndarray, corner: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The nearest camera pixel of each square-grid cell, and which cells are on it."""
        from scipy.spatial import cKDTree

        # a square spanning the camera's pixels (round or square cameras alike), centred
        # on its middle so that off-centre layouts still fill the grid
        cx = (pix_x.max() + pix_x.min()) / 2
        cy = (pix_y.max() + pix_y.min()) / 2
        half = max(np.abs(pix_x - cx).max(), np.abs(pix_y - cy).max()) + corner
        cell_x, cell_y = pixel_grid(self.size, 2 * half / self.size)
        distance, nearest = cKDTree(np.column_stack([pix_x - cx, pix_y - cy])).query(
            np.column_stack([cell_x.ravel(), cell_y.ravel()])
        )
        # a cell farther from every pixel centre than a pixel's corner is off the camera
        inside = distance <= corner * 1.01
        return nearest.reshape(self.size, self.size), inside.reshape(self.size, self.size)

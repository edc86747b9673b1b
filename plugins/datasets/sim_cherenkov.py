from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from clustergrid.plugins.support.simulation import (
    SimulatedDataset,
    log_uniform,
    observe,
    pixel_grid,
    rotate,
)

#: Bump when the images drawn for the same parameters change (part of the fingerprint).
SIMULATOR_VERSION = "1"

#: camera field of view radius in degrees, whatever the number of pixels
FOV_RADIUS_DEG = 2.0
#: electronics noise (p.e. rms) and the single-photo-electron gain spread of the PMTs
ELECTRONIC_NOISE = 0.5
EXCESS_NOISE = 0.4
#: expected p.e. in the brightest pixel below which an event would not have triggered
TRIGGER_PE = 10.0


class SimCherenkov(SimulatedDataset):
    """Simulated Cherenkov-telescope (IACT) camera images: gamma, hadron and muon events.

    The camera is a hexagonal lattice of pixels inside a circle of ``camera_radius``
    pixel pitches; the field of view is fixed at 2 degrees radius, so ``camera_radius``
    sets the resolution (20 gives ~1450 pixels of 0.1 degree, like the LST or MAGIC
    cameras; 12 gives ~520 pixels of 0.17 degree, the size of H.E.S.S. pixels). The
    telescope points at a gamma-ray point source at the camera centre. Angles are in
    degrees, signals in photo-electrons (p.e.).

    - ``gamma``: an electromagnetic shower imaged as a compact ellipse: a 2-D Gaussian of
      length 0.10-0.25 and width 0.03-0.07 degrees whose major axis points back to the
      source (within 3 degrees), centroid 0.4-1.4 degrees from it; the light profile is
      skewed, falling off faster on the side facing the source. Size 80-2000 p.e.
      (before the trigger condition below).
    - ``hadron``: a cosmic-ray shower: a broad, randomly oriented core (length 0.25-0.6,
      width 0.1-0.25) plus 1-4 compact electromagnetic sub-showers (from pi0 decays)
      scattered around it, and in a quarter of the events a faint muon arc. Size
      100-4000 p.e.
    - ``muon``: a local muon's Cherenkov ring: radius 0.9-1.2 degrees (the Cherenkov
      angle), Gaussian ring width 0.03-0.07, centre within 0.7 degrees of the camera
      centre; the light along the ring follows the chord of the mirror crossed by the
      light, for an impact distance 0-1.5 mirror radii (beyond 1 only an arc is seen).
      Size 300-2500 p.e.

    The expected light per pixel (the image density integrated over the hexagonal pixel
    on 7 sub-points) is observed with Poisson statistics on top of night-sky background
    photons (``nsb_rate`` p.e. per pixel per integration window), photomultiplier gain
    spread (excess noise 0.4 sqrt(n)) and 0.5 p.e. electronics noise, then the mean NSB
    is subtracted as a pedestal would be: dark pixels fluctuate around 0. Only events
    that would trigger the camera are kept: a faint event's light is scaled up until its
    brightest pixel expects 10 p.e., so every image shows its shower or ring.

    Parameters: ``n_samples``; ``camera_radius`` (in pixel pitches); ``nsb_rate`` (the
    noise level); ``size`` of the square image. ``read`` gives each camera image
    resampled onto a ``size`` x ``size`` square grid spanning the camera (each cell
    takes the value of the nearest hexagonal pixel; cells outside the camera are 0).
    ``read_pixels`` gives the pixel values themselves and ``pixel_geometry`` their
    positions; ``truth`` the parameters drawn per event (ring centre and radius,
    Hillas-like length and width...). ``classes`` and ``class_weights`` set the class
    mix (default balanced round-robin over all classes); ``seed`` makes it reproducible.
    """

    name = "sim-cherenkov"
    version = SIMULATOR_VERSION
    CLASSES = ("gamma", "hadron", "muon")

    def __init__(
        self,
        n_samples: int = 1000,
        size: int = 64,
        camera_radius: float = 20.0,
        nsb_rate: float = 2.0,
        classes: Sequence[str] | None = None,
        class_weights: Sequence[float] | Mapping[str, float] | None = None,
        seed: int = 0,
    ):
        self.n_samples = n_samples
        self.size = size
        self.camera_radius = camera_radius
        self.nsb_rate = nsb_rate
        self.classes = classes
        self.class_weights = class_weights
        self.seed = seed

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.size, self.size)

    @property
    def pixel_pitch(self) -> float:
        """Distance between neighbouring pixel centres, in degrees."""
        return FOV_RADIUS_DEG / self.camera_radius

    def pixel_geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """``(pix_x, pix_y)``: the centre of each camera pixel, in degrees."""
        geometry = self._geometry()
        return geometry["x"].copy(), geometry["y"].copy()

    def read_pixels(self, start: int, stop: int) -> np.ndarray:
        """Camera images ``start:stop`` as ``(n, n_pixels)`` float32 p.e. per pixel."""
        natives = self._natives(start, stop, want_truth=False)[0]
        n_pixels = len(self._geometry()["x"])
        return np.asarray(natives, dtype=np.float32).reshape(len(natives), n_pixels)

    def _check(self) -> None:
        self._require(positive=("camera_radius",), non_negative=("nsb_rate",))
        if self.camera_radius < 4:
            raise ValueError(f"camera_radius must be >= 4 pixels, got {self.camera_radius!r}")

    def _geometry(self) -> dict[str, np.ndarray]:
        """Pixel centres, sub-sampling points and the square-grid lookup, built once."""
        key = (self.camera_radius, self.size)
        cached = getattr(self, "_geometry_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        self._validate()
        from scipy.spatial import cKDTree

        pitch = self.pixel_pitch
        x, y = hex_lattice(self.camera_radius)
        x, y = x * pitch, y * pitch
        # 7 points per pixel (centre and a ring at a third of the pitch) average the
        # light over the pixel, which matters for rings and gammas narrower than a pixel
        ring = np.exp(1j * (np.pi / 6 + np.pi / 3 * np.arange(6))) * pitch / 3
        offsets = np.concatenate([[0], ring])
        sub_x = x[:, None] + offsets.real[None, :]
        sub_y = y[:, None] + offsets.imag[None, :]

        half = (self.camera_radius + 0.5) * pitch
        cell_x, cell_y = pixel_grid(self.size, 2 * half / self.size)
        distance, nearest = cKDTree(np.column_stack([x, y])).query(
            np.column_stack([cell_x.ravel(), cell_y.ravel()])
        )
        # a cell farther from every pixel centre than a hexagon's corner is outside
        inside = distance <= pitch / np.sqrt(3) * 1.01
        geometry = {"x": x, "y": y, "sub_x": sub_x, "sub_y": sub_y,
                    "nearest": nearest.reshape(self.size, self.size),
                    "inside": inside.reshape(self.size, self.size)}
        self._geometry_cache = (key, geometry)
        return geometry

    def _image(self, native: np.ndarray) -> np.ndarray:
        geometry = self._geometry()
        return np.where(geometry["inside"], native[geometry["nearest"]], 0.0)[None]

    def _simulate(self, rng: np.random.Generator, class_name: str) -> tuple[np.ndarray, dict]:
        geometry = self._geometry()
        sx, sy = geometry["sub_x"], geometry["sub_y"]
        if class_name == "gamma":
            density, truth = _gamma(rng, sx, sy)
        elif class_name == "hadron":
            density, truth = _hadron(rng, sx, sy)
        else:
            density, truth = _muon(rng, sx, sy)
        # density is per square degree with unit integral; light off the camera is lost
        pixel_area = np.sqrt(3) / 2 * self.pixel_pitch**2
        expected = truth["size"] * pixel_area * density.mean(axis=1)
        # Only showers that trigger the camera are recorded: brighten faint ones until
        # their brightest pixel expects TRIGGER_PE (a stand-in for a trigger threshold).
        peak = expected.max()
        if peak < TRIGGER_PE:
            expected *= TRIGGER_PE / max(peak, 1e-12)
            truth["size"] *= TRIGGER_PE / max(peak, 1e-12)
        charge = observe(expected, rng, self.nsb_rate, ELECTRONIC_NOISE, EXCESS_NOISE)
        return charge, truth


def hex_lattice(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres of a hexagonal lattice of unit pitch inside a circle of ``radius``.

    Rows are ``sqrt(3)/2`` apart and alternate rows are offset by half a pitch; pixels
    are ordered by row, then by ``x``.
    """
    rows = int(np.floor(radius / (np.sqrt(3) / 2)))
    j = np.arange(-rows, rows + 1)
    i = np.arange(-int(np.ceil(radius)) - 1, int(np.ceil(radius)) + 2)
    jj, ii = np.meshgrid(j, i, indexing="ij")
    x = (ii + (jj % 2) / 2).ravel().astype(float)
    y = (jj * np.sqrt(3) / 2).ravel()
    keep = np.hypot(x, y) <= radius
    return x[keep], y[keep]


def _ellipse(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, angle: float,
    length: float, width: float, skew: float = 1.0,
) -> np.ndarray:
    """A unit-integral 2-D Gaussian; ``skew`` > 1 stretches its ``+u`` half by ``skew``."""
    u, v = rotate(x, y, cx, cy, angle)
    sigma_u = np.where(u < 0, length / skew**0.5, length * skew**0.5)
    norm = np.pi * width * (length / skew**0.5 + length * skew**0.5)
    return np.exp(-0.5 * ((u / sigma_u) ** 2 + (v / width) ** 2)) / norm


def _gamma(rng: np.random.Generator, x: np.ndarray, y: np.ndarray):
    size = log_uniform(rng, 80, 2000)
    distance, azimuth = rng.uniform(0.4, 1.4), rng.uniform(0, 2 * np.pi)
    cx, cy = distance * np.cos(azimuth), distance * np.sin(azimuth)
    # the major axis points back to the source; +u points away from it
    angle = azimuth + np.radians(rng.normal(0, 3))
    length = rng.uniform(0.10, 0.25)
    width = min(rng.uniform(0.03, 0.07), 0.5 * length)
    density = _ellipse(x, y, cx, cy, angle, length, width, skew=1.4)
    return density, {"size": size, "cog_x": cx, "cog_y": cy, "length": length,
                     "width": width, "psi": angle}


def _hadron(rng: np.random.Generator, x: np.ndarray, y: np.ndarray):
    size = log_uniform(rng, 100, 4000)
    radius, azimuth = 1.3 * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
    cx, cy = radius * np.cos(azimuth), radius * np.sin(azimuth)
    angle = rng.uniform(0, np.pi)
    length, width = rng.uniform(0.25, 0.6), rng.uniform(0.1, 0.25)
    n_sub = int(rng.integers(1, 5))
    shares = rng.dirichlet(np.ones(n_sub + 1) * 2) * rng.uniform(0.3, 0.6)
    density = (1 - shares.sum()) * _ellipse(x, y, cx, cy, angle, length, width)
    for share in shares[:n_sub]:
        # sub-showers trail along the shower axis and scatter across it
        along, across = rng.normal(0, 1.5 * length), rng.normal(0, 2 * width)
        sub_x = cx + along * np.cos(angle) - across * np.sin(angle)
        sub_y = cy + along * np.sin(angle) + across * np.cos(angle)
        sub_length = rng.uniform(0.05, 0.15)
        density += share * _ellipse(x, y, sub_x, sub_y, rng.uniform(0, np.pi), sub_length,
                                    sub_length * rng.uniform(0.4, 0.9))
    muon_arc = rng.random() < 0.25
    if muon_arc:  # muons from the hadronic cascade leave partial rings
        arc, _ = _muon(rng, x, y, impact_range=(1.1, 1.6))
        density += shares[-1] * arc
    return density, {"size": size, "cog_x": cx, "cog_y": cy, "length": length,
                     "width": width, "psi": angle, "sub_showers": n_sub, "muon_arc": muon_arc}


def _muon(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray,
    impact_range: tuple[float, float] = (0.0, 1.5),
):
    size = log_uniform(rng, 300, 2500)
    radius = rng.uniform(0.9, 1.2)
    offset, where = 0.7 * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
    cx, cy = offset * np.cos(where), offset * np.sin(where)
    ring_width = rng.uniform(0.03, 0.07)
    impact = rng.uniform(*impact_range)  # in mirror radii
    impact_azimuth = rng.uniform(0, 2 * np.pi)
    r, phi = np.hypot(x - cx, y - cy), np.arctan2(y - cy, x - cx)
    chord = _mirror_chord(phi - impact_azimuth, impact)
    # unit integral over the sky (the area element is r dr dphi)
    mean_chord = _mirror_chord(np.linspace(-np.pi, np.pi, 720, endpoint=False), impact).mean()
    norm = 2 * np.pi * mean_chord * np.sqrt(2 * np.pi) * ring_width
    profile = np.exp(-0.5 * ((r - radius) / ring_width) ** 2)
    density = chord * profile / (np.maximum(r, 1e-3) * norm)
    return density, {"size": size, "ring_x": cx, "ring_y": cy, "ring_radius": radius,
                     "ring_width": ring_width, "impact": impact}


def _mirror_chord(azimuth: np.ndarray, impact: float) -> np.ndarray:
    """Length (in mirror radii) of the chord of a circular mirror crossed by a muon's
    light emitted towards ``azimuth`` (relative to the impact direction), for an impact
    distance ``impact`` in mirror radii (Vacanti et al. 1994): the ring's brightness."""
    root = np.sqrt(np.clip(1 - (impact * np.sin(azimuth)) ** 2, 0, None))
    if impact <= 1:
        return root + impact * np.cos(azimuth)
    # from outside the mirror only the directions facing it see light, through both sides
    return np.where(np.cos(azimuth) > 0, 2 * root, 0.0)

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clustergrid.plugins.support.simulation import (
    SimulatedDataset,
    bin_pixels,
    convolve,
    log_uniform,
    moffat_kernel,
    observe,
    pixel_grid,
    rotate,
    sersic,
)

#: Bump when the images drawn for the same parameters change (part of the fingerprint).
SIMULATOR_VERSION = "1"

#: the filters stacked as channels for each value of ``bands``, blue to red
BANDS = {1: ("r",), 2: ("g", "i"), 3: ("g", "r", "i")}
WAVELENGTH_NM = {"g": 475.0, "r": 620.0, "i": 765.0}
#: dark-sky brightness per band relative to r (the sky is redder than most galaxies)
SKY_RELATIVE = {"g": 0.5, "r": 1.0, "i": 1.8}

#: AB colours (g-r, r-i) of the stellar populations that make up the models
COLOURS = {
    "old": (0.75, 0.40),  # early-type: ellipticals, bulges
    "disk": (0.50, 0.25),  # the smooth disk of a star-forming galaxy
    "young": (0.15, 0.05),  # spiral arms, HII regions, tidal debris
}

#: total r-band counts of a galaxy on the stamp, drawn log-uniformly
FLUX_RANGE = (2.5e4, 2.5e5)
#: sub-pixels per pixel side: cuspy Sersic centres and thin disks need finer sampling
OVERSAMPLE = 2

Components = list[tuple[np.ndarray, float, str]]


class SimGalaxies(SimulatedDataset):
    """Simulated optical galaxy cutouts: elliptical, spiral, edge-on disk, merger (g, r, i).

    Each stamp is a noiseless surface-brightness model, sampled on a 2x finer grid,
    convolved with a Moffat PSF (beta = 3.5) and observed with Poisson noise on source
    plus sky, the sky subtracted, plus Gaussian read noise. Pixel values are counts.

    Classes (angular sizes in arcsec; ``r_eff`` is the half-light radius):

    - ``elliptical``: Sersic n = 3.5-5.5 (de Vaucouleurs-like), axis ratio 0.72-1,
      ``r_eff`` 0.6-1.8, red ("old" colours g-r = 0.75, r-i = 0.40).
    - ``spiral``: exponential disk (scale length 1-1.8) seen at inclination cos i =
      0.45-0.95, a small red Sersic bulge (5-20 % of the light), and m = 2-4 logarithmic
      spiral arms (pitch angle 12-28 degrees, either handedness) carrying 50-75 % of the
      disk light in blue "young" colours (g-r = 0.15), dotted with HII-region knots.
    - ``edge-on``: a thin disk seen within 7 degrees of edge-on, ``(|R|/h) K1(|R|/h)``
      along the major axis and ``sech^2(z/z0)`` across (z0/h = 0.08-0.16), an optional
      small bulge and a dust lane whose optical depth scales as 1/wavelength, slightly
      off the mid-plane.
    - ``merger``: two overlapping galaxies (each bulge-dominated or disky, flux ratio
      1:1 to 1:3.3, separated by 1.3-2.8 half-light radii of the primary, the secondary
      tidally stretched along the line joining them) with one or two curved, fading and
      widening tidal tails carrying 15-30 % of the light in blue colours.

    Every galaxy gets a random position angle, a position jitter of 0.2 arcsec rms, a
    total r-band flux drawn log-uniformly in ``flux_range`` (2.5e4-2.5e5 counts, one
    decade; widen it to make brightness a nuisance stronger than the classes) and a
    colour scatter of 0.05 mag per band.

    Parameters:

    - ``n_samples``: number of stamps. ``size``: stamp side in pixels; the field of view
      stays ``fov`` arcsec (default 12.8, i.e. 0.2 arcsec pixels at size 64, like HSC or
      LSST), so a larger ``size`` samples the same scene more finely.
    - ``bands``: 1 (r), 2 (g, i) or 3 (g, r, i), stacked as channels blue to red.
    - ``psf_fwhm``: seeing FWHM in arcsec in r (jittered by +-15 % per stamp; it scales as
      wavelength^-0.2 across bands).
    - ``sky_level``: r-band sky in counts per arcsec^2 (g is 0.5x, i is 1.8x as bright);
      ``read_noise``: counts rms per pixel. Raise ``sky_level`` for noisier stamps.
    - ``classes``: names to include (default all four, in that order: it sets the label
      indices); ``class_weights``: relative frequency per class (a list aligned with
      ``classes`` or a mapping name -> weight), default exactly balanced round-robin.
    - ``seed``: any non-negative integer; the same seed gives the same stamps.
    """

    name = "sim-galaxies"
    version = SIMULATOR_VERSION
    CLASSES = ("elliptical", "spiral", "edge-on", "merger")

    def __init__(
        self,
        n_samples: int = 1000,
        size: int = 64,
        bands: int = 3,
        fov: float = 12.8,
        psf_fwhm: float = 0.7,
        sky_level: float = 2500.0,
        read_noise: float = 5.0,
        flux_range: tuple[float, float] = FLUX_RANGE,
        classes: Sequence[str] | None = None,
        class_weights: Sequence[float] | Mapping[str, float] | None = None,
        seed: int = 0,
    ):
        self.n_samples = n_samples
        self.size = size
        self.bands = bands
        self.fov = fov
        self.psf_fwhm = psf_fwhm
        self.sky_level = sky_level
        self.read_noise = read_noise
        self.flux_range = flux_range
        self.classes = classes
        self.class_weights = class_weights
        self.seed = seed

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (len(BANDS[self.bands]), self.size, self.size)

    def band_names(self) -> tuple[str, ...]:
        """The filter of each channel."""
        return BANDS[self.bands]

    def channel_names(self) -> list[str] | None:
        """The filters, blue to red, as inspect labels the channels."""
        return list(self.band_names()) if self.bands in BANDS else None

    def _check(self) -> None:
        if self.bands not in BANDS:
            raise ValueError(f"bands must be 1, 2 or 3, got {self.bands!r}")
        self._require(positive=("fov", "psf_fwhm"), non_negative=("sky_level", "read_noise"))
        low, high = self.flux_range
        if not 0 < low <= high:
            raise ValueError(f"flux_range must be [low, high] with 0 < low <= high, got "
                             f"{list(self.flux_range)}")

    def _simulate(self, rng: np.random.Generator, class_name: str) -> tuple[np.ndarray, dict]:
        pixel = self.fov / self.size
        x, y = pixel_grid(self.size * OVERSAMPLE, pixel / OVERSAMPLE)
        centre = rng.normal(0.0, 0.2, size=2)
        x, y = x - centre[0], y - centre[1]
        flux = log_uniform(rng, *self.flux_range)
        components, tau, truth = _BUILDERS[class_name](rng, x, y)

        bands = BANDS[self.bands]
        jitter = rng.normal(0.0, 0.05, size=len(bands))
        seeing = self.psf_fwhm * rng.uniform(0.85, 1.15)
        image = np.empty((len(bands), self.size, self.size))
        for channel, band in enumerate(bands):
            model = np.zeros_like(x)
            for profile, share, population in components:
                model += profile * (share * flux * _colour(population, band))
            if tau is not None:  # dust: optical depth ~ 1/wavelength
                model *= np.exp(-tau * WAVELENGTH_NM["r"] / WAVELENGTH_NM[band])
            model = bin_pixels(model, OVERSAMPLE) * 10 ** (-0.4 * jitter[channel])
            fwhm = seeing * (WAVELENGTH_NM[band] / WAVELENGTH_NM["r"]) ** -0.2 / pixel
            model = convolve(model, moffat_kernel(fwhm))
            sky = self.sky_level * SKY_RELATIVE[band] * pixel**2
            image[channel] = observe(model, rng, sky, self.read_noise)
        truth.update(flux=flux, x=float(centre[0]), y=float(centre[1]), psf_fwhm=seeing)
        return image, truth


def _colour(population: str, band: str) -> float:
    """Flux in ``band`` relative to r for a stellar population, from its AB colours."""
    g_r, r_i = COLOURS[population]
    magnitude = {"g": g_r, "r": 0.0, "i": -r_i}[band]
    return 10 ** (-0.4 * magnitude)


def _unit(profile: np.ndarray) -> np.ndarray:
    return profile / profile.sum()


def _elliptical(rng: np.random.Generator, x: np.ndarray, y: np.ndarray):
    n, r_eff = rng.uniform(3.5, 5.5), log_uniform(rng, 0.6, 1.8)
    q, angle = rng.uniform(0.72, 1.0), rng.uniform(0, np.pi)
    u, v = rotate(x, y, 0.0, 0.0, angle)
    profile = sersic(np.hypot(u, v / q), r_eff, n)
    truth = {"sersic_n": n, "r_eff": r_eff, "axis_ratio": q, "angle": angle}
    return [(_unit(profile), 1.0, "old")], None, truth


def _spiral(rng: np.random.Generator, x: np.ndarray, y: np.ndarray):
    h, cos_i = log_uniform(rng, 1.0, 1.8), rng.uniform(0.45, 0.95)
    angle = rng.uniform(0, np.pi)
    bulge_fraction = rng.uniform(0.05, 0.2)
    arms = int(rng.choice([2, 2, 2, 3, 4]))
    pitch = np.radians(rng.uniform(12, 28))
    arm_fraction = rng.uniform(0.5, 0.75)
    sharpness = rng.uniform(2.0, 4.0)
    handedness = rng.choice([-1.0, 1.0])
    phase = rng.uniform(0, 2 * np.pi)

    u, v = rotate(x, y, 0.0, 0.0, angle)
    # coordinates in the plane of the disk, de-projected from the sky
    r = np.hypot(u, v / cos_i)
    phi = np.arctan2(v / cos_i, u)
    disk = np.exp(-r / h)
    winding = np.log(np.maximum(r, 1e-3) / h) / np.tan(pitch)
    pattern = ((1 + np.cos(arms * (handedness * phi - winding) - phase)) / 2) ** sharpness
    # arms emerge from the bulge region rather than reaching the centre
    taper = 1 - np.exp(-((r / (0.6 * h)) ** 2))
    arm_light = disk * pattern * taper

    # HII regions: knots on the arm ridges, where the pattern is at its maximum
    knots = np.zeros_like(x)
    n_knots = int(rng.integers(6, 18))
    radius = h * rng.uniform(0.8, 2.8, size=n_knots)
    arm = rng.integers(0, arms, size=n_knots)
    azimuth = handedness * (
        np.log(radius / h) / np.tan(pitch) + (phase + 2 * np.pi * arm) / arms
    ) + rng.normal(0, 0.08, size=n_knots)
    for rad, az, width in zip(radius, azimuth, rng.uniform(0.08, 0.18, size=n_knots), strict=True):
        ku, kv = rad * np.cos(az), rad * np.sin(az) * cos_i
        knots += np.exp(-((u - ku) ** 2 + (v - kv) ** 2) / (2 * width**2)) * np.exp(-rad / h)

    bulge_r_eff = h * rng.uniform(0.2, 0.45)
    bulge_q = max(cos_i, rng.uniform(0.7, 0.95))
    bulge = sersic(np.hypot(u, v / bulge_q), bulge_r_eff, rng.uniform(1.5, 3.0))

    disk_fraction = 1 - bulge_fraction
    knot_fraction = 0.15 * arm_fraction * disk_fraction
    components = [
        (_unit(bulge), bulge_fraction, "old"),
        (_unit(disk), (1 - arm_fraction) * disk_fraction, "disk"),
        (_unit(arm_light), arm_fraction * disk_fraction - knot_fraction, "young"),
        (_unit(knots), knot_fraction, "young"),
    ]
    truth = {
        "scale_length": h, "cos_inclination": cos_i, "angle": angle, "arms": arms,
        "pitch_deg": float(np.degrees(pitch)), "bulge_fraction": bulge_fraction,
    }
    return components, None, truth


def _edge_on(rng: np.random.Generator, x: np.ndarray, y: np.ndarray):
    from scipy.special import k1

    h, angle = log_uniform(rng, 0.9, 1.6), rng.uniform(0, np.pi)
    thickness = h * rng.uniform(0.08, 0.16)
    cos_i = rng.uniform(0.0, 0.12)
    # a disk tilted slightly off edge-on looks thicker by its projected radius
    z0 = np.hypot(thickness, 0.5 * h * cos_i)
    u, v = rotate(x, y, 0.0, 0.0, angle)
    s = np.maximum(np.abs(u) / h, 1e-6)
    disk = s * k1(s) / np.cosh(v / z0) ** 2

    bulge_fraction = rng.uniform(0.0, 0.25)
    bulge = sersic(np.hypot(u, v / rng.uniform(0.6, 0.85)), h * rng.uniform(0.25, 0.5),
                   rng.uniform(1.0, 2.5))
    lane_offset = rng.uniform(-0.4, 0.4) * z0
    tau_r = rng.uniform(0.4, 1.2)
    tau = tau_r * np.exp(-np.abs(u) / (1.5 * h)) * np.exp(
        -((v - lane_offset) ** 2) / (2 * (0.4 * z0) ** 2)
    )
    components = [(_unit(disk), 1 - bulge_fraction, "disk"), (_unit(bulge), bulge_fraction, "old")]
    truth = {"scale_length": h, "scale_height": z0, "angle": angle, "tau_r": tau_r,
             "bulge_fraction": bulge_fraction}
    return components, tau, truth


def _merger(rng: np.random.Generator, x: np.ndarray, y: np.ndarray):
    ratio = rng.uniform(0.3, 1.0)  # secondary / primary flux
    r1 = log_uniform(rng, 0.7, 1.4)
    r2 = r1 * rng.uniform(0.6, 1.0)
    separation = r1 * rng.uniform(1.3, 2.8)
    direction = rng.uniform(0, 2 * np.pi)
    # put the light-weighted centre of the pair at the stamp's centre
    offsets = (-separation * ratio / (1 + ratio), separation / (1 + ratio))
    centres = [(d * np.cos(direction), d * np.sin(direction)) for d in offsets]

    tail_fraction = rng.uniform(0.15, 0.3)
    shares = np.array([1.0, ratio]) / (1 + ratio) * (1 - tail_fraction)
    components: Components = []
    for index, ((cx, cy), r_eff, share) in enumerate(zip(centres, (r1, r2), shares, strict=True)):
        early = rng.random() < 0.5
        n = rng.uniform(2.5, 4.5) if early else rng.uniform(0.8, 1.5)
        q = rng.uniform(0.6, 1.0) if early else rng.uniform(0.35, 0.9)
        # the companion is tidally stretched along the line joining the pair
        angle = direction + rng.normal(0, 0.3) if index == 1 else rng.uniform(0, np.pi)
        q = min(q, rng.uniform(0.5, 0.8)) if index == 1 else q
        u, v = rotate(x, y, cx, cy, angle)
        profile = sersic(np.hypot(u, v / q), r_eff, n)
        components.append((_unit(profile), share, "old" if early else "disk"))

    # Tidal tails: curved streams flung out of a galaxy, fading and widening outwards.
    tails = np.zeros_like(x)
    n_tails = int(rng.integers(1, 3))
    handedness = rng.choice([-1.0, 1.0])
    start = rng.uniform(0, 2 * np.pi)
    for tail in range(n_tails):
        which = tail % 2 if n_tails == 2 else int(rng.integers(0, 2))
        (cx, cy), r_eff = centres[which], (r1, r2)[which]
        t = np.linspace(0, 1, 40)
        length = rng.uniform(3.0, 5.0)
        sweep = rng.uniform(0.8, 2.0)
        radius = r_eff * (0.6 + length * t)
        theta = start + np.pi * tail + handedness * sweep * t
        px, py = cx + radius * np.cos(theta), cy + radius * np.sin(theta)
        width = r_eff * (0.2 + 0.3 * t)
        step = np.hypot(np.gradient(px), np.gradient(py))
        for tx, ty, w, ds, fade in zip(px, py, width, step, np.exp(-1.2 * t), strict=True):
            tails += fade * ds / w**2 * np.exp(-((x - tx) ** 2 + (y - ty) ** 2) / (2 * w**2))
    components.append((_unit(tails), tail_fraction, "young"))
    truth = {"flux_ratio": ratio, "separation": separation, "tails": n_tails,
             "tail_fraction": tail_fraction}
    return components, None, truth


_BUILDERS: dict[str, Any] = {
    "elliptical": _elliptical,
    "spiral": _spiral,
    "edge-on": _edge_on,
    "merger": _merger,
}

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from clustergrid.plugins.support.simulation import (
    SimulatedDataset,
    bin_pixels,
    convolve,
    gaussian_kernel,
    log_uniform,
    observe,
    pixel_grid,
    rotate,
    sersic,
    sersic_bn,
)

#: Bump when the images drawn for the same parameters change (part of the fingerprint).
SIMULATOR_VERSION = "1"

#: sub-pixels per pixel side for ray shooting: magnified arcs are thinner than a pixel
OVERSAMPLE = 3
#: unlensed source counts and lens-galaxy counts, drawn log-uniformly
SOURCE_FLUX_RANGE = (2.0e3, 8.0e3)
LENS_FLUX_RANGE = (2.0e4, 8.0e4)
#: Einstein radii in arcsec (galaxy-scale lenses)
THETA_E_RANGE = (0.9, 1.5)


class SimLenses(SimulatedDataset):
    """Simulated strong galaxy-galaxy lenses (DeepLense-style): no substructure, subhalos, vortex.

    The lens is a singular isothermal ellipsoid (Einstein radius 0.9-1.5 arcsec, axis
    ratio 0.6-0.95, any orientation) in an external shear (0-0.05). Light from a
    background Sersic source (n = 0.5-1.5, half-light radius 0.1-0.3 arcsec, with 0-3
    compact star-forming clumps) is ray-traced through the lens equation
    ``beta = theta - alpha(theta)`` on a 3x oversampled pixel grid: surface brightness is
    conserved, so sources near the caustic centre appear as Einstein rings, the others as
    arcs and multiple images. The lens galaxy's own light (Sersic n = 3-5, aligned with
    the mass) is added unlensed unless ``lens_light`` is false. The image is convolved
    with a Gaussian PSF and observed with Poisson noise on source plus sky, sky
    subtracted, plus Gaussian read noise; pixel values are counts.

    Classes differ only in the dark-matter substructure added to the deflection field;
    item ``i`` has the same lens and source in every class (for a given ``seed``), so
    datasets restricted to one class each are matched pairs:

    - ``no_substructure``: the smooth lens alone.
    - ``subhalos``: 3-7 point-mass subhalos (Einstein radii 0.04-0.15 arcsec, softened
      over 0.02 arcsec) scattered within 0.7-1.3 Einstein radii of the lens centre, where
      they perturb the ring: kinks, brightness gaps and split clumps.
    - ``vortex``: a straight line of mass (a superfluid dark-matter vortex or string),
      length 1-2 Einstein radii, crossing the lens within half an Einstein radius of its
      centre along a random direction; its line density (0.03-0.07 arcsec in units of
      the critical density) makes the deflection jump by 2 pi times that across the
      line, which kinks and offsets the arcs where it crosses them.

    Parameters: ``n_samples``; ``size`` (pixels) over a fixed field of view ``fov``
    (arcsec, default 5, i.e. 0.078 arcsec pixels at size 64, HST/Euclid-like);
    ``psf_fwhm`` (arcsec); ``sky_level`` (counts per arcsec^2) and ``read_noise``
    (counts rms per pixel) set the noise; ``lens_light`` (include the lens galaxy);
    ``classes`` and ``class_weights`` (the class mix, default balanced round-robin);
    ``seed``. One channel.
    """

    name = "sim-lenses"
    version = SIMULATOR_VERSION
    CLASSES = ("no_substructure", "subhalos", "vortex")

    def __init__(
        self,
        n_samples: int = 1000,
        size: int = 64,
        fov: float = 5.0,
        psf_fwhm: float = 0.1,
        sky_level: float = 1600.0,
        read_noise: float = 3.0,
        lens_light: bool = True,
        classes: Sequence[str] | None = None,
        class_weights: Sequence[float] | Mapping[str, float] | None = None,
        seed: int = 0,
    ):
        self.n_samples = n_samples
        self.size = size
        self.fov = fov
        self.psf_fwhm = psf_fwhm
        self.sky_level = sky_level
        self.read_noise = read_noise
        self.lens_light = lens_light
        self.classes = classes
        self.class_weights = class_weights
        self.seed = seed

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.size, self.size)

    def _check(self) -> None:
        self._require(positive=("fov", "psf_fwhm"), non_negative=("sky_level", "read_noise"))

    def _simulate(self, rng: np.random.Generator, class_name: str) -> tuple[np.ndarray, dict]:
        pixel = self.fov / self.size
        x, y = pixel_grid(self.size * OVERSAMPLE, pixel / OVERSAMPLE)

        # Everything but the substructure is drawn first, in the same order for every
        # class and whether or not the lens light is shown: item i of two datasets with
        # the same seed has the same lens and source, whatever their classes.
        theta_e = rng.uniform(*THETA_E_RANGE)
        lens_x, lens_y = rng.normal(0.0, 0.05, size=2)
        q, angle = rng.uniform(0.6, 0.95), rng.uniform(0, np.pi)
        gamma, gamma_angle = rng.uniform(0.0, 0.05), rng.uniform(0, np.pi)
        source = _draw_source(rng, lens_x, lens_y, theta_e)
        light_r_eff, light_n = rng.uniform(0.6, 1.5), rng.uniform(3.0, 5.0)
        light_angle = angle + rng.normal(0, 0.1)
        light_q = np.clip(q * rng.uniform(0.9, 1.1), 0.5, 1.0)
        lens_flux = log_uniform(rng, *LENS_FLUX_RANGE)

        alpha_x, alpha_y = _sie_deflection(x, y, lens_x, lens_y, theta_e, q, angle)
        # external shear: alpha = Gamma . theta, Gamma = [[g1, g2], [g2, -g1]]
        g1, g2 = gamma * np.cos(2 * gamma_angle), gamma * np.sin(2 * gamma_angle)
        dx, dy = x - lens_x, y - lens_y
        alpha_x += g1 * dx + g2 * dy
        alpha_y += g2 * dx - g1 * dy

        truth: dict = {"theta_e": theta_e, "lens_x": lens_x, "lens_y": lens_y,
                       "axis_ratio": q, "angle": angle, "shear": gamma, "pixel_scale": pixel,
                       "source_x": source["x"], "source_y": source["y"]}
        if class_name == "subhalos":
            sub_x, sub_y = _add_subhalos(rng, x, y, alpha_x, alpha_y, lens_x, lens_y, theta_e)
            truth.update(subhalo_x=sub_x, subhalo_y=sub_y)
        elif class_name == "vortex":
            truth.update(_add_vortex(rng, x, y, alpha_x, alpha_y, lens_x, lens_y, theta_e))

        # ray shooting: each sub-pixel sees the source where its ray lands
        brightness = _source_brightness(source, x - alpha_x, y - alpha_y)
        model = bin_pixels(brightness * (pixel / OVERSAMPLE) ** 2, OVERSAMPLE)
        truth["arc_flux"] = float(model.sum())
        if self.lens_light:
            u, v = rotate(x, y, lens_x, lens_y, light_angle)
            light = bin_pixels(sersic(np.hypot(u, v / light_q), light_r_eff, light_n), OVERSAMPLE)
            model += light * (lens_flux / light.sum())
        model = convolve(model, gaussian_kernel(self.psf_fwhm / pixel))
        image = observe(model, rng, self.sky_level * pixel**2, self.read_noise)
        return image[None], truth


def _sie_deflection(
    x: np.ndarray, y: np.ndarray, x0: float, y0: float, theta_e: float, q: float, angle: float
) -> tuple[np.ndarray, np.ndarray]:
    """Deflection of a singular isothermal ellipsoid (Kormann et al. 1994; Keeton 2001).

    Convergence ``theta_e / (2 sqrt(q u^2 + v^2 / q))`` with ``u`` along the major axis:
    ``theta_e`` is the Einstein radius of the circle of equal area.
    """
    u, v = rotate(x, y, x0, y0, angle)
    f = np.sqrt(1 - q**2)
    psi = np.maximum(np.hypot(q * u, v), 1e-9)
    scale = theta_e * np.sqrt(q) / f
    alpha_u = scale * np.arctan(f * u / psi)
    alpha_v = scale * np.arctanh(f * v / psi)
    cos, sin = np.cos(angle), np.sin(angle)
    return alpha_u * cos - alpha_v * sin, alpha_u * sin + alpha_v * cos


def _add_subhalos(rng, x, y, alpha_x, alpha_y, lens_x, lens_y, theta_e):
    """Adds point-mass subhalos near the Einstein ring to the deflection, in place."""
    count = int(rng.integers(3, 8))
    radius = theta_e * rng.uniform(0.7, 1.3, size=count)
    azimuth = rng.uniform(0, 2 * np.pi, size=count)
    sub_x, sub_y = lens_x + radius * np.cos(azimuth), lens_y + radius * np.sin(azimuth)
    for sx, sy in zip(sub_x, sub_y, strict=True):
        einstein = log_uniform(rng, 0.04, 0.15)
        dx, dy = x - sx, y - sy
        # softening keeps the deflection finite at the subhalo's centre (a finite core)
        factor = einstein**2 / (dx**2 + dy**2 + 0.02**2)
        alpha_x += factor * dx
        alpha_y += factor * dy
    return sub_x.tolist(), sub_y.tolist()


def _add_vortex(rng, x, y, alpha_x, alpha_y, lens_x, lens_y, theta_e) -> dict:
    """Adds a uniform line of mass to the deflection, in place; returns its parameters.

    A segment of length ``L`` along ``u`` with deflection scale ``k`` (its line density
    in units of the critical density, in arcsec) deflects by the integral of point
    masses along it: ``k/2 ln(((u + L/2)^2 + v^2) / ((u - L/2)^2 + v^2))`` along and
    ``k (atan2(v, u - L/2) - atan2(v, u + L/2))`` across the segment.
    """
    length = theta_e * rng.uniform(1.0, 2.0)
    offset = theta_e * 0.5 * np.sqrt(rng.random())
    where = rng.uniform(0, 2 * np.pi)
    cx, cy = lens_x + offset * np.cos(where), lens_y + offset * np.sin(where)
    angle = rng.uniform(0, np.pi)
    strength = rng.uniform(0.03, 0.07)
    u, v = rotate(x, y, cx, cy, angle)
    half = length / 2
    # the tiny constant keeps the logarithm finite exactly at the segment's ends
    far, near = (u + half) ** 2 + v**2 + 1e-12, (u - half) ** 2 + v**2 + 1e-12
    alpha_u = strength / 2 * np.log(far / near)
    alpha_v = strength * (np.arctan2(v, u - half) - np.arctan2(v, u + half))
    cos, sin = np.cos(angle), np.sin(angle)
    alpha_x += alpha_u * cos - alpha_v * sin
    alpha_y += alpha_u * sin + alpha_v * cos
    return {"vortex_x": cx, "vortex_y": cy, "vortex_angle": angle, "vortex_length": length,
            "vortex_strength": strength}


def _draw_source(rng: np.random.Generator, lens_x: float, lens_y: float, theta_e: float) -> dict:
    """Parameters of a Sersic source with a few compact star-forming clumps."""
    from scipy.special import gamma as gamma_function

    # within ~0.35 Einstein radii of the optical axis: mostly rings and bright arcs
    offset, where = theta_e * 0.35 * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
    n, r_eff = rng.uniform(0.5, 1.5), log_uniform(rng, 0.1, 0.3)
    q, angle = rng.uniform(0.5, 1.0), rng.uniform(0, np.pi)
    flux = log_uniform(rng, *SOURCE_FLUX_RANGE)
    clumps = int(rng.integers(0, 4))
    b = sersic_bn(n)
    # total flux of a Sersic profile equal to 1 at r_eff
    total = 2 * np.pi * n * q * r_eff**2 * np.exp(b) * b ** (-2 * n) * gamma_function(2 * n)
    return {
        "x": lens_x + offset * np.cos(where), "y": lens_y + offset * np.sin(where),
        "n": n, "r_eff": r_eff, "q": q, "angle": angle,
        "amplitude": flux * (1 - 0.1 * clumps) / total,
        "clumps": [  # (u, v, width, peak), each holding a tenth of the flux
            (*rng.normal(0, r_eff, size=2), width, flux * 0.1 / (2 * np.pi * width**2))
            for width in rng.uniform(0.03, 0.06, size=clumps)
        ],
    }


def _source_brightness(source: dict, beta_x: np.ndarray, beta_y: np.ndarray) -> np.ndarray:
    """Surface brightness (counts per arcsec^2) of the source at source-plane positions."""
    u, v = rotate(beta_x, beta_y, source["x"], source["y"], source["angle"])
    r = np.hypot(u, v / source["q"])
    brightness = source["amplitude"] * sersic(r, source["r_eff"], source["n"])
    for cu, cv, width, peak in source["clumps"]:
        brightness += peak * np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * width**2))
    return brightness

"""Write the Gaia-like star table that experiments/gaia.yaml reads.

A Milky Way group looks for co-moving groups (open clusters) in Gaia astrometry: stars of
one cluster share a proper motion and a parallax, while the field's stars scatter over
both. This script simulates such a field: three clusters at 300, 600 and 1,000 pc, each
moving with its own mean space velocity (1 km/s internal dispersion) and lying within a
degree or two of its centre on the sky, over a field population spread uniformly in
volume out to 3 kpc with a 25 km/s velocity dispersion; Gaia-like errors (0.05 mas in
parallax, 0.07 mas/yr in proper motion at these magnitudes) are added. As in Gaia, some
sources have a two-parameter solution only: no parallax and no proper motion (NaN).

The table (a FITS binary table, units in its header) has ``source_id``, ``ra``, ``dec``
(degrees), ``pmra``, ``pmdec`` (mas/yr), ``parallax`` (mas), ``phot_g_mean_mag`` and
``population`` (``field`` or the cluster's name), the truth the clusters are graded
against. The same seed writes the same table.

    python experiments/make_gaia_table.py                       # data/gaia_like.fits
    python experiments/make_gaia_table.py /tmp/stars.fits --n 1000 --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

#: km/s per (mas/yr x kpc): tangential velocity = K * proper motion / parallax
K = 4.74047
#: name, distance (pc), mean pmra and pmdec (mas/yr), centre (ra, dec) and radius (deg)
CLUSTERS = (
    ("cluster_a", 300.0, -6.0, 4.0, (56.0, 24.0), 1.5),
    ("cluster_b", 600.0, 3.0, -5.0, (58.0, 21.0), 1.0),
    ("cluster_c", 1000.0, -1.0, -2.5, (54.0, 20.5), 0.6),
)
#: share of the stars in the clusters (a third each), the rest is field
CLUSTER_SHARE = 0.5
#: the field's reach (pc), its mean proper motion (mas/yr) and velocity dispersion (km/s)
FIELD_DISTANCE = 3000.0
FIELD_MOTION = (-1.0, -3.0)
FIELD_DISPERSION = 25.0
#: a cluster's internal velocity dispersion (km/s) and depth (pc)
CLUSTER_DISPERSION = 1.0
CLUSTER_DEPTH = 5.0
#: Gaia-like errors: parallax (mas) and proper motion (mas/yr)
PARALLAX_ERROR = 0.05
MOTION_ERROR = 0.07
#: share of the stars with a two-parameter solution (no parallax, no proper motion)
TWO_PARAMETER = 0.03
#: the patch of sky: ra and dec ranges (deg)
FIELD_RA = (50.0, 62.0)
FIELD_DEC = (16.0, 28.0)


def make_stars(n: int = 3000, seed: int = 0):
    """An astropy Table of ``n`` simulated stars (see the module's docstring)."""
    import astropy.units as u
    from astropy.table import Table

    rng = np.random.default_rng(seed)
    per_cluster = round(n * CLUSTER_SHARE / len(CLUSTERS))
    n_field = n - per_cluster * len(CLUSTERS)
    population, ra, dec, distance, pmra, pmdec = [], [], [], [], [], []
    # The field: uniform in volume out to FIELD_DISTANCE, isotropic velocities.
    d = FIELD_DISTANCE * rng.uniform(0.02, 1.0, n_field) ** (1 / 3)
    population += ["field"] * n_field
    ra.append(rng.uniform(*FIELD_RA, n_field))
    dec.append(rng.uniform(*FIELD_DEC, n_field))
    distance.append(d)
    spread = FIELD_DISPERSION / K / (d / 1000)  # mas/yr at each star's distance
    pmra.append(FIELD_MOTION[0] + rng.normal(0, 1, n_field) * spread)
    pmdec.append(FIELD_MOTION[1] + rng.normal(0, 1, n_field) * spread)
    for name, pc, mu_ra, mu_dec, (ra0, dec0), radius in CLUSTERS:
        d = pc + rng.normal(0, CLUSTER_DEPTH, per_cluster)
        population += [name] * per_cluster
        ra.append(ra0 + rng.normal(0, radius / 2, per_cluster) / np.cos(np.radians(dec0)))
        dec.append(dec0 + rng.normal(0, radius / 2, per_cluster))
        distance.append(d)
        spread = CLUSTER_DISPERSION / K / (d / 1000)
        pmra.append(mu_ra + rng.normal(0, 1, per_cluster) * spread)
        pmdec.append(mu_dec + rng.normal(0, 1, per_cluster) * spread)
    distance = np.concatenate(distance)
    parallax = 1000 / distance + rng.normal(0, PARALLAX_ERROR, n)
    pmra = np.concatenate(pmra) + rng.normal(0, MOTION_ERROR, n)
    pmdec = np.concatenate(pmdec) + rng.normal(0, MOTION_ERROR, n)
    # Apparent G magnitude of stars of absolute magnitude 2 to 9 at their distance.
    magnitude = rng.uniform(2, 9, n) + 5 * np.log10(distance / 10)
    two_parameter = rng.random(n) < TWO_PARAMETER
    for values in (parallax, pmra, pmdec):
        values[two_parameter] = np.nan
    order = rng.permutation(n)  # a catalogue is not sorted by population
    return Table({
        "source_id": rng.choice(2**40, n, replace=False)[order].astype(np.int64) + 2**50,
        "ra": np.concatenate(ra)[order] * u.deg,
        "dec": np.concatenate(dec)[order] * u.deg,
        "pmra": pmra[order] * u.mas / u.yr,
        "pmdec": pmdec[order] * u.mas / u.yr,
        "parallax": parallax[order] * u.mas,
        "phot_g_mean_mag": magnitude[order] * u.mag,
        "population": np.asarray(population)[order],
    })


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="data/gaia_like.fits",
                        help="the table to write (.fits, .vot, .csv, .parquet, .ecsv)")
    parser.add_argument("--n", type=int, default=3000, help="stars (default 3000)")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    path = Path(options.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = make_stars(options.n, options.seed)
    if path.suffix.lower() == ".csv":
        table.to_pandas().to_csv(path, index=False)
    else:
        table.write(path, overwrite=True,
                    **({"format": "votable"} if path.suffix.lower() == ".vot" else {}))
    print(f"{len(table)} stars written to {path}")
    return path


if __name__ == "__main__":
    main()

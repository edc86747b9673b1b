"""Write the multi-band FITS cubes that experiments/multiband.yaml reads.

The multi-band study (docs/studies.md) had 150 four-band cutouts (600x600x4) in which one band was
nearly empty and two were strongly correlated. This script makes cubes like them from
clustergrid's galaxy simulator: the g, r and i bands of ``sim-galaxies`` (elliptical,
spiral, edge-on, merger; PSF, sky and noise included) and, first, a "u" band holding 2%
of the g light under more read noise than signal. One cube per file, ``(4, size,
size)`` float32 in counts (``channel_axis: 0`` of the ``fits`` loader), the bands named
in the header (``BAND1`` .. ``BAND4``), and ``catalogue.csv`` with each cube's class, so
that clusters can be graded against the truth (the study had no labels). The same seed
writes the same files.

    python experiments/make_multiband_cubes.py                  # data/multiband/, 150 cubes
    python experiments/make_multiband_cubes.py /tmp/cubes --n 60 --size 32 --seed 1
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

#: the cubes' bands, in channel order
BANDS = ("u", "g", "r", "i")
#: the share of the g light the nearly empty u band receives
U_SHARE = 0.02
#: read noise of the u band, counts per pixel
U_READ_NOISE = 20.0


def make_cubes(n: int = 150, size: int = 64, seed: int = 0,
               ) -> tuple[np.ndarray, list[str]]:
    """``(n, 4, size, size)`` float32 cubes (bands ``BANDS``) and each one's class."""
    from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies

    galaxies = SimGalaxies(n_samples=n, size=size, bands=3, seed=seed)
    gri = galaxies.read(0, n)
    names = galaxies.class_names()
    classes = [names[code] for code in galaxies.labels()]
    # The u band's own noise has its own stream, so it does not change the g, r, i ones.
    rng = np.random.default_rng([seed, 4])
    u = U_SHARE * gri[:, :1] + rng.normal(0.0, U_READ_NOISE, size=(n, 1, size, size))
    return np.concatenate([u, gri], axis=1).astype(np.float32), classes


def write_cubes(folder: Path, cubes: np.ndarray, classes: list[str]) -> list[Path]:
    """One ``cube_NNN.fits`` per cube and ``catalogue.csv`` (id, label) in ``folder``."""
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, cube in enumerate(cubes):
        header = fits.Header()
        header["BUNIT"] = "count"
        for channel, band in enumerate(BANDS, start=1):
            header[f"BAND{channel}"] = (band, f"filter of plane {channel}")
        header["ORIGIN"] = "clustergrid experiments/make_multiband_cubes.py"
        path = folder / f"cube_{index:03d}.fits"
        fits.PrimaryHDU(cube, header=header).writeto(path, overwrite=True)
        paths.append(path)
    with (folder / "catalogue.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label"])
        writer.writerows((path.stem, label) for path, label in zip(paths, classes, strict=True))
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="data/multiband", type=Path,
                        help="where to write the cubes (default: data/multiband)")
    parser.add_argument("--n", type=int, default=150, help="number of cubes (150)")
    parser.add_argument("--size", type=int, default=64, help="side in pixels (64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    args = parser.parse_args(argv)
    cubes, classes = make_cubes(args.n, args.size, args.seed)
    write_cubes(args.folder, cubes, classes)
    counts = ", ".join(f"{name} {classes.count(name)}" for name in dict.fromkeys(classes))
    print(f"{len(cubes)} cubes of {len(BANDS)}x{args.size}x{args.size} in {args.folder} "
          f"({counts}); labels in {args.folder / 'catalogue.csv'}")


if __name__ == "__main__":
    main()

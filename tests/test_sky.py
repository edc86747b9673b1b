"""Sky positions: tiles and cutouts of FITS images with a celestial WCS know the RA/Dec
of their centre, and ``clustergrid labels`` exports them as ``ra``/``dec`` columns that
TOPCAT and Aladin recognise, with the combination's provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from conftest import cli, write_experiment
from votlint import assert_valid_votable

from clustergrid import runner
from clustergrid.plugins.datasets.fits import FitsFiles
from clustergrid.registry import Registry
from clustergrid.spec import load_experiment

SDSS = Path(__file__).resolve().parents[2] / "shared" / "data" / "fits_multiband"

GRID = """\
name: sky
datasets:
  - plugin: fits
    path: {path}
    tile: {tile}
{extra}
encoders:
  - plugin: pixels
reducers:
  - plugin: pca
    n_components: 2
clusterers:
  - plugin: kmeans
    n_clusters: 2
executor: {{workers: 1}}
"""


def mosaic(folder: Path, name: str = "field.fits", frame: str = "ICRS") -> Path:
    """A 96 x 128 mosaic of noise and a few blobs, with a rotated RA---TAN/DEC--TAN WCS
    near the celestial equator's 300th degree, 0.4" pixels."""
    rng = np.random.default_rng(0)
    data = rng.normal(size=(96, 128)).astype(np.float32)
    yy, xx = np.mgrid[:96, :128]
    for y, x in ((20, 30), (70, 100), (50, 60)):
        data += 10 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 20)
    header = fits.Header()
    scale, angle = 0.4 / 3600, np.radians(30)
    header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CUNIT1": "deg",
                   "CUNIT2": "deg", "CRPIX1": 60.5, "CRPIX2": 40.25, "CRVAL1": 300.123,
                   "CRVAL2": -5.678, "RADESYS": frame,
                   "CD1_1": -scale * np.cos(angle), "CD1_2": scale * np.sin(angle),
                   "CD2_1": scale * np.sin(angle), "CD2_2": scale * np.cos(angle)})
    if frame == "FK5":
        header["EQUINOX"] = 2000.0
    path = folder / name
    fits.PrimaryHDU(data, header).writeto(path)
    return path


def expected(header: fits.Header, ids, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec of each tile's centre computed from its id (``<stem>:<y>,<x>``) by
    astropy.wcs directly, and the pixel scale in degrees."""
    wcs = WCS(header).celestial
    corners = np.array([[int(v) for v in str(i).rsplit(":", 1)[1].split(",")] for i in ids])
    centre = corners + (tile - 1) / 2  # (y, x) of the centre, 0-based
    ra, dec = wcs.all_pix2world(centre[:, 1], centre[:, 0], 0)
    return np.column_stack([ra, dec]), float(np.mean(proj_plane_pixel_scales(wcs)))


def offsets_in_pixels(found: np.ndarray, wanted: np.ndarray, scale: float) -> np.ndarray:
    """The angular distance between two RA/Dec lists, in pixels of ``scale`` degrees."""
    from astropy.coordinates import SkyCoord

    a = SkyCoord(found[:, 0], found[:, 1], unit="deg")
    b = SkyCoord(wanted[:, 0], wanted[:, 1], unit="deg")
    return a.separation(b).deg / scale


def run_grid(folder: Path, path: Path, tile: int, extra: str = "") -> None:
    spec = write_experiment(folder, GRID.format(path=path, tile=tile, extra=extra))
    registry = Registry.load()
    summary = runner.run(load_experiment(spec, registry), registry)
    assert summary.finished == 1 and not summary.failed


def test_tiles_of_a_mosaic_are_exported_with_the_ra_dec_of_their_centres(workdir):
    path = mosaic(workdir)
    run_grid(workdir, path, tile=32)
    for name in ("clusters.vot", "clusters.fits", "clusters.csv"):
        done = cli("labels", "sky", "-p", "kmeans", "-o", name, cwd=workdir)
        assert done.returncode == 0, done.stderr
    table = Table.read(workdir / "clusters.vot")
    assert len(table) == 3 * 4 and table.colnames[:4] == ["id", "source", "ra", "dec"]
    wanted, scale = expected(fits.getheader(path), table["id"], 32)
    found = np.column_stack([np.asarray(table[c], dtype=float) for c in ("ra", "dec")])
    assert offsets_in_pixels(found, wanted, scale).max() < 0.1
    # What TOPCAT and Aladin look for to put the rows on the sky.
    assert table["ra"].unit == "deg" and table["ra"].meta["ucd"] == "pos.eq.ra;meta.main"
    assert table["dec"].meta["ucd"] == "pos.eq.dec;meta.main"
    assert_valid_votable(workdir / "clusters.vot")
    fitted = Table.read(workdir / "clusters.fits")
    np.testing.assert_allclose(fitted["ra"], table["ra"], rtol=0, atol=1e-12)
    header = fits.getheader(workdir / "clusters.fits", 1)
    number = fitted.colnames.index("dec") + 1
    assert header[f"TUNIT{number}"] == "deg"
    assert header[f"TUCD{number}"] == "pos.eq.dec;meta.main"
    written = Table.read(workdir / "clusters.csv")
    np.testing.assert_allclose(written["dec"], table["dec"], rtol=0, atol=1e-12)


def test_exports_say_where_they_come_from(workdir):
    run_grid(workdir, mosaic(workdir), tile=32)
    for name in ("clusters.vot", "clusters.fits"):
        assert cli("labels", "sky", "-p", "1", "-o", name, cwd=workdir).returncode == 0
    from astropy.io.votable import parse

    from clustergrid import __version__

    infos = {info.name: info.value for info in parse(workdir / "clusters.vot").resources[0].infos}
    assert infos["experiment"] == "sky" and infos["clustergrid_version"] == __version__
    assert "kmeans[n_clusters=2]" in infos["pipeline"] and infos["run_id"]
    assert infos["seed"] == "0"
    header = fits.getheader(workdir / "clusters.fits", 1)
    # Readable cards: a long pipeline name is one value (CONTINUE cards), not comments
    # split mid-word.
    assert header["EXPERIM"] == "sky" and header["PIPELINE"] == infos["pipeline"]
    assert header["RUN_ID"] == infos["run_id"] and header["CGVERS"] == __version__
    assert not any("kmeans" in str(line) for line in header.get("COMMENT", []))


def test_cutouts_from_fk5_headers_are_given_in_icrs(tmp_path):
    """Whole images (no tiling) get their centre; an FK5 header is converted to ICRS."""
    from astropy.coordinates import SkyCoord

    mosaic(tmp_path, "a.fits", frame="FK5")
    mosaic(tmp_path, "b.fits")
    dataset = FitsFiles(str(tmp_path))
    positions = dataset.sky_positions()
    wcs = WCS(fits.getheader(tmp_path / "a.fits"))
    ra, dec = wcs.all_pix2world(63.5, 47.5, 0)  # the centre of 128 x 96 pixels
    icrs = SkyCoord(ra, dec, unit="deg", frame="fk5", equinox="J2000").icrs
    np.testing.assert_allclose(positions[0], [icrs.ra.deg, icrs.dec.deg], atol=1e-9)
    assert abs(positions[0, 0] - ra) > 1e-7  # FK5 and ICRS differ, by milliarcseconds
    assert list(dataset.ids()) == ["a", "b"]


def test_images_without_a_celestial_wcs_have_no_sky_positions(tmp_path):
    fits.PrimaryHDU(np.random.default_rng(0).normal(size=(16, 16))).writeto(tmp_path / "a.fits")
    assert FitsFiles(str(tmp_path)).sky_positions() is None


@pytest.mark.skipif(not SDSS.is_dir(), reason=f"the shared SDSS mosaics are not in {SDSS}")
def test_sdss_mosaic_tiles_match_its_wcs_to_a_tenth_of_a_pixel(workdir):
    run_grid(workdir, SDSS / "reprojected_sdss_*.fits.bz2", tile=64,
             extra="    bands: [[g, r, i]]")
    done = cli("labels", "sky", "-p", "kmeans", "-o", "sdss.vot", cwd=workdir)
    assert done.returncode == 0, done.stderr
    table = Table.read(workdir / "sdss.vot")
    assert len(table) == (496 // 64) * (682 // 64)
    assert all(str(i).startswith("reprojected_sdss:") for i in table["id"])
    header = fits.getheader(SDSS / "reprojected_sdss_g.fits.bz2")
    wanted, scale = expected(header, table["id"], 64)
    found = np.column_stack([np.asarray(table[c], dtype=float) for c in ("ra", "dec")])
    assert offsets_in_pixels(found, wanted, scale).max() < 0.1
    assert_valid_votable(workdir / "sdss.vot")

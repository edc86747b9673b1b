"""The simulated datasets: reproducibility, streaming, the Dataset contract, and physics
measured from the images the way an astronomer would (second moments, Hillas
parameters, radial profiles)."""

from __future__ import annotations

import numpy as np
import pytest

from clustergrid.plugins.datasets.sim_cherenkov import SimCherenkov
from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies
from clustergrid.plugins.datasets.sim_lenses import SimLenses
from clustergrid.plugins.support.simulation import pixel_grid

SIMULATORS = [SimGalaxies, SimLenses, SimCherenkov]

#: a changed value for every parameter of each simulator (the fingerprint must notice)
CHANGES = {
    SimGalaxies: {
        "n_samples": 9, "size": 40, "bands": 1, "fov": 10.0, "psf_fwhm": 1.0,
        "sky_level": 100.0, "read_noise": 1.0, "flux_range": (1e3, 1e5),
        "classes": ["spiral", "merger"],
        "class_weights": [1, 2, 3, 4], "seed": 1,
    },
    SimLenses: {
        "n_samples": 9, "size": 40, "fov": 6.0, "psf_fwhm": 0.2, "sky_level": 10.0,
        "read_noise": 1.0, "lens_light": False, "classes": ["vortex"],
        "class_weights": {"vortex": 2, "subhalos": 1, "no_substructure": 1}, "seed": 1,
    },
    SimCherenkov: {
        "n_samples": 9, "size": 40, "camera_radius": 12, "nsb_rate": 0.5,
        "classes": ["muon", "gamma"], "class_weights": [1, 1, 2], "seed": 1,
    },
}


def small(cls, **params):
    """A fast instance: few, small images."""
    return cls(**{"n_samples": 8, "size": 32, **params})


@pytest.mark.parametrize("cls", SIMULATORS)
def test_component_contract(cls):
    parameters = cls.parameters()
    assert "random_state" not in parameters  # seeds are data, not run-to-run randomness
    assert parameters["seed"].default == 0
    assert parameters["size"].default == 64
    assert cls.summary() and len(cls.summary()) < 100
    assert set(CHANGES[cls]) == set(parameters), "every parameter needs a fingerprint check"
    dataset = cls(**CHANGES[cls])
    assert dataset.get_params() == CHANGES[cls]


@pytest.mark.parametrize("cls", SIMULATORS)
def test_same_seed_same_images_and_other_seed_other_images(cls):
    first, again = small(cls, seed=7).read(0, 6), small(cls, seed=7).read(0, 6)
    assert np.array_equal(first, again)
    other = small(cls, seed=8).read(0, 6)
    assert not np.allclose(first, other)
    # items differ from each other too (each has its own stream)
    assert not np.allclose(first[0], first[3])


@pytest.mark.parametrize("cls", SIMULATORS)
@pytest.mark.parametrize("weights", [None, "weighted"])
def test_any_slice_equals_the_same_rows_of_a_full_read(cls, weights):
    class_weights = [1.0] * len(cls.CLASSES) if weights else None
    dataset = small(cls, class_weights=class_weights, seed=3)
    full = dataset.read(0, 8)
    assert np.array_equal(np.concatenate([dataset.read(0, 3), dataset.read(3, 8)]), full)
    assert np.array_equal(small(cls, class_weights=class_weights, seed=3).read(5, 7), full[5:7])
    assert np.array_equal(np.concatenate(list(dataset.batches(3))), full)
    # array-like slicing: a stop past the end is clipped, an empty slice is empty
    assert np.array_equal(dataset.read(6, 100), full[6:])
    assert dataset.read(4, 4).shape == (0, *dataset.image_shape)


@pytest.mark.parametrize("cls", SIMULATORS)
def test_shapes_dtypes_and_finite_values(cls):
    dataset = small(cls, n_samples=6)
    images = dataset.read(0, len(dataset))
    assert len(dataset) == 6
    assert images.shape == (6, *dataset.image_shape)
    assert dataset.image_shape[1:] == (32, 32)
    assert images.dtype == np.float32
    assert np.isfinite(images).all()
    assert images.std() > 0
    labels = dataset.labels()
    assert labels.dtype == np.int64 and labels.shape == (6,)


@pytest.mark.parametrize("cls", SIMULATORS)
def test_labels_cover_every_class_in_balanced_round_robin(cls):
    dataset = small(cls, n_samples=4 * len(cls.CLASSES))
    assert dataset.class_names() == list(cls.CLASSES)
    counts = np.bincount(dataset.labels(), minlength=len(cls.CLASSES))
    assert counts.tolist() == [4] * len(cls.CLASSES)
    # the truth of each item names the class its label says
    names = [item["class"] for item in dataset.truth(0, len(cls.CLASSES))]
    assert names == list(cls.CLASSES)


@pytest.mark.parametrize("cls", SIMULATORS)
def test_a_class_subset_has_only_those_labels(cls):
    subset = list(cls.CLASSES[:0:-1])  # all but the first, in reverse order
    dataset = cls(n_samples=10, size=32, classes=subset)
    labels = dataset.labels()
    assert dataset.class_names() == subset
    assert set(labels.tolist()) == set(range(len(subset)))
    truth_names = [item["class"] for item in dataset.truth(0, 10)]
    assert truth_names == [subset[label] for label in labels]
    assert cls.CLASSES[0] not in truth_names


@pytest.mark.parametrize("cls", SIMULATORS)
def test_class_weights_set_the_mix_reproducibly_across_label_blocks(cls):
    first, second = cls.CLASSES[0], cls.CLASSES[1]
    dataset = cls(n_samples=6000, size=16, class_weights={first: 3, second: 1}, seed=5)
    labels = dataset.labels()
    assert set(labels.tolist()) == {0, 1}  # zero weight: never drawn
    assert abs((labels == 0).mean() - 0.75) < 0.03
    assert np.array_equal(labels, cls(**dataset.get_params()).labels())
    assert not np.array_equal(labels, cls(**{**dataset.get_params(), "seed": 6}).labels())
    # a slice straddling the boundary between two blocks of label draws
    names = [item["class"] for item in dataset.truth(4094, 4098)]
    assert names == [cls.CLASSES[label] for label in labels[4094:4098]]


@pytest.mark.parametrize("cls", SIMULATORS)
def test_fingerprint_changes_with_every_parameter_and_the_version(cls, monkeypatch):
    base = cls()
    assert base.fingerprint() == cls().fingerprint()
    seen = {base.fingerprint()}
    for key, value in CHANGES[cls].items():
        changed = cls(**{key: value}).fingerprint()
        assert changed not in seen, key
        seen.add(changed)
    monkeypatch.setattr(cls, "version", "999")
    assert cls().fingerprint() not in seen


@pytest.mark.parametrize(
    ("cls", "bad"),
    [
        (SimGalaxies, {"classes": ["elliptical", "lenticular"]}),
        (SimGalaxies, {"classes": []}),
        (SimGalaxies, {"bands": 4}),
        (SimLenses, {"class_weights": [1, 2]}),
        (SimLenses, {"class_weights": {"vortex": -1}}),
        (SimLenses, {"seed": -1}),
        (SimCherenkov, {"n_samples": -5}),
        (SimCherenkov, {"class_weights": {"electron": 1}}),
        (SimCherenkov, {"camera_radius": 2}),
        (SimGalaxies, {"size": 64.5}),
        (SimLenses, {"sky_level": -1.0}),
        (SimCherenkov, {"size": 4}),
        (SimCherenkov, {"nsb_rate": "high"}),
    ],
)
def test_invalid_parameters_are_rejected_when_planned_or_read(cls, bad):
    dataset = cls(**bad)  # __init__ only stores its arguments
    with pytest.raises(ValueError):
        dataset.fingerprint()
    with pytest.raises(ValueError):
        dataset.read(0, 1)


# -- physics ----------------------------------------------------------------------------


def moments(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Flux-weighted second moments of the pixels kept: semi-axes ``a >= b`` (rms along
    and across the major axis) and the major axis' angle."""
    weights = np.clip(image, 0, None)
    total = weights.sum()
    mx, my = (weights * x).sum() / total, (weights * y).sum() / total
    dx, dy = x - mx, y - my
    cov = np.array([
        [(weights * dx * dx).sum(), (weights * dx * dy).sum()],
        [(weights * dx * dy).sum(), (weights * dy * dy).sum()],
    ]) / total
    values, vectors = np.linalg.eigh(cov)
    b, a = np.sqrt(np.clip(values, 0, None))
    return float(a), float(b), float(np.arctan2(vectors[1, 1], vectors[0, 1]))


def noise_sigma(image: np.ndarray) -> float:
    """Robust noise rms from the stamp's border, where there is (almost) only sky."""
    border = np.concatenate([image[:4].ravel(), image[-4:].ravel()])
    return 1.4826 * float(np.median(np.abs(border - np.median(border))))


def galaxy_ellipticities(images: np.ndarray) -> np.ndarray:
    x, y = pixel_grid(images.shape[-1])
    values = []
    for image in images:
        kept = np.where(image > 5 * noise_sigma(image), image, 0)  # 5 sigma: no sky pixels
        a, b, _ = moments(kept, x, y)
        values.append(1 - b / a)
    return np.array(values)


def test_edge_on_disks_are_far_more_elongated_than_ellipticals():
    dataset = SimGalaxies(n_samples=48, bands=1, classes=["elliptical", "edge-on"], seed=11)
    images, labels = dataset.read(0, 48)[:, 0], dataset.labels()
    ellipticity = galaxy_ellipticities(images)
    assert ellipticity[labels == 0].mean() < 0.3
    assert ellipticity[labels == 1].mean() > 0.5
    assert ellipticity[labels == 1].min() > ellipticity[labels == 0].max()


def test_ellipticals_are_redder_than_spirals():
    dataset = SimGalaxies(n_samples=24, classes=["elliptical", "spiral"], seed=2)
    assert dataset.band_names() == ("g", "r", "i")
    images, labels = dataset.read(0, 24), dataset.labels()
    colours = []
    for image in images:
        detected = image[1] > 5 * noise_sigma(image[1])
        colours.append(image[0][detected].sum() / image[2][detected].sum())  # g / i
    colours = np.array(colours)
    assert colours[labels == 1].mean() > 1.25 * colours[labels == 0].mean()


def test_lensed_light_lies_on_the_einstein_ring():
    # without the lens galaxy's light, the image is the lensed source alone
    dataset = SimLenses(n_samples=18, lens_light=False, seed=4)
    images, truths = dataset.read(0, 18)[:, 0], dataset.truth(0, 18)
    x, y = pixel_grid(dataset.size, truths[0]["pixel_scale"])
    on_ring, in_centre = [], []
    for image, truth in zip(images, truths, strict=True):
        r = np.hypot(x - truth["lens_x"], y - truth["lens_y"]) / truth["theta_e"]
        total = np.clip(image, 0, None).sum()
        on_ring.append(np.clip(image[(r > 0.7) & (r < 1.3)], 0, None).sum() / total)
        in_centre.append(np.clip(image[r < 0.4], 0, None).sum() / total)
    on_ring, in_centre = np.array(on_ring), np.array(in_centre)
    assert on_ring.mean() > 0.6
    assert np.median(on_ring) > 10 * np.median(in_centre)
    # ...while with the lens galaxy the centre is the brightest part of the stamp
    lit = SimLenses(n_samples=18, seed=4).read(0, 18)[:, 0]
    centre = np.hypot(x, y) < 0.15
    assert (lit[:, centre].mean(axis=1) > images[:, centre].mean(axis=1) + 20).all()


def test_lens_classes_share_lens_and_source_and_differ_in_substructure():
    truths = {
        name: SimLenses(n_samples=3, size=32, classes=[name], seed=9).truth(0, 3)
        for name in SimLenses.CLASSES
    }
    for smooth, sub, vortex in zip(*truths.values(), strict=True):
        for key in ("theta_e", "lens_x", "axis_ratio", "source_x", "source_y"):
            assert smooth[key] == sub[key] == vortex[key]
        assert len(sub["subhalo_x"]) >= 3 and "subhalo_x" not in smooth
        assert vortex["vortex_length"] > 0 and "vortex_length" not in smooth


def cleaned(values: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Two-level tail-cut cleaning (8 and 4 p.e.), as IACT analyses do before Hillas."""
    core = (values > 8) & (neighbours & (values > 4)[None]).any(axis=1)
    keep = core | ((values > 4) & (neighbours & core[None]).any(axis=1))
    return np.where(keep, values, 0.0)


def test_camera_is_hexagonal_and_the_square_image_resamples_it():
    dataset = SimCherenkov(n_samples=3, seed=1)
    pix_x, pix_y = dataset.pixel_geometry()
    assert 1000 <= len(pix_x) <= 2000
    distance = np.hypot(pix_x[:, None] - pix_x[None], pix_y[:, None] - pix_y[None])
    np.fill_diagonal(distance, np.inf)
    nearest = distance.min(axis=1)
    assert np.allclose(nearest, dataset.pixel_pitch)  # a regular lattice
    assert np.bincount((distance < 1.01 * dataset.pixel_pitch).sum(axis=1)).argmax() == 6
    pixels, images = dataset.read_pixels(0, 3), dataset.read(0, 3)
    assert pixels.shape == (3, len(pix_x)) and pixels.dtype == np.float32
    for values, image in zip(pixels, images, strict=True):
        shown = image[0][image[0] != 0]
        assert np.isin(shown, values).all()  # each cell shows one camera pixel
        assert np.isin(values, shown).mean() > 0.95  # and almost every pixel is shown
        assert image[0, 0, 0] == 0 and image[0, 0, -1] == 0  # corners lie off the camera


def test_muon_rings_are_hollow():
    dataset = SimCherenkov(n_samples=16, classes=["muon"], seed=3)
    pix_x, pix_y = dataset.pixel_geometry()
    for values, truth in zip(dataset.read_pixels(0, 16), dataset.truth(0, 16), strict=True):
        r = np.hypot(pix_x - truth["ring_x"], pix_y - truth["ring_y"])
        ring = values[np.abs(r - truth["ring_radius"]) < 2 * truth["ring_width"]].mean()
        centre = values[r < 0.5 * truth["ring_radius"]].mean()
        assert centre < 0.3 * ring


def test_gamma_images_are_narrow_and_point_to_the_source_unlike_hadrons():
    dataset = SimCherenkov(n_samples=60, classes=["gamma", "hadron"], seed=5)
    pix_x, pix_y = dataset.pixel_geometry()
    distance = np.hypot(pix_x[:, None] - pix_x[None], pix_y[:, None] - pix_y[None])
    neighbours = (distance > 0) & (distance < 1.1 * dataset.pixel_pitch)
    hillas: dict[int, list[tuple[float, float, float]]] = {0: [], 1: []}
    for values, label in zip(dataset.read_pixels(0, 60), dataset.labels(), strict=True):
        image = cleaned(values, neighbours)
        if (image > 0).sum() < 4:
            continue
        length, width, psi = moments(image, pix_x, pix_y)
        cog_x, cog_y = (image * pix_x).sum() / image.sum(), (image * pix_y).sum() / image.sum()
        # alpha: angle between the major axis and the line from the source (the centre)
        alpha = np.degrees(abs(np.arctan(np.tan(psi - np.arctan2(cog_y, cog_x)))))
        hillas[int(label)].append((width, length, alpha))
    gamma, hadron = np.array(hillas[0]), np.array(hillas[1])
    assert len(gamma) >= 25 and len(hadron) >= 25
    assert gamma[:, 0].mean() < 0.6 * hadron[:, 0].mean()
    assert (gamma[:, 0] / gamma[:, 1]).mean() < (hadron[:, 0] / hadron[:, 1]).mean()
    assert np.median(gamma[:, 2]) < 10 < 25 < np.median(hadron[:, 2])

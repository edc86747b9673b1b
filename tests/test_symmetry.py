"""Orientation-free embeddings (``symmetry`` on an encoder entry): pooled over d4, the
embedding of an image does not change when it is rotated by 90 degrees or mirrored,
for any encoder; the option is the runner's, part of the encode step and its label,
never the encoder's parameter."""

from __future__ import annotations

import fake_components
import numpy as np
import pytest
from conftest import write_experiment

from clustergrid import runner
from clustergrid.cache import Cache, write_meta
from clustergrid.errors import SpecError
from clustergrid.plan import Step, make_plan
from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies
from clustergrid.registry import Registry
from clustergrid.spec import Component, load_experiment, parse_experiment
from clustergrid.stages import StepError, run_step
from clustergrid.symmetry import Symmetry, options
from clustergrid.tracking import Tracker

SIZE = 16


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load(extra=[fake_components])


@pytest.fixture(scope="module")
def galaxies() -> np.ndarray:
    images = SimGalaxies(n_samples=40, size=SIZE, bands=1, seed=0).read(0, 40)
    lo = images.min(axis=(1, 2, 3), keepdims=True)
    hi = images.max(axis=(1, 2, 3), keepdims=True)
    return ((images - lo) / (hi - lo)).astype(np.float32)


#: the image transforms every d4 embedding must ignore
MOVES = {
    "rot90": lambda x: np.rot90(x, 1, axes=(-2, -1)),
    "rot270": lambda x: np.rot90(x, 3, axes=(-2, -1)),
    "mirror": lambda x: x[..., ::-1],
    "flip": lambda x: x[..., ::-1, :],
}


def encode(registry, cache: Cache, images: np.ndarray, encoder: Component,
           **step_options) -> np.ndarray:
    """The encode stage itself (``run_step``) on ``images``, as the runner calls it."""
    data = f"data{abs(hash(images.tobytes())):x}"
    if not cache.has(data):
        with cache.writer(data) as folder:
            np.save(folder / "images.npy", np.ascontiguousarray(images, dtype=np.float32))
            write_meta(folder, {})
    key = f"encode{abs(hash((data, encoder, tuple(sorted(step_options.items()))))):x}"
    run_step(Step("encode", key, (encoder,), (data,), None, tuple(sorted(step_options.items()))),
             cache, registry)
    return cache.load(key, "X")


@pytest.mark.parametrize("plugin", ["pixels", "morphology"])
@pytest.mark.parametrize("pool", ["mean", "max"])
def test_d4_embeddings_ignore_rotations_and_mirrors(registry, galaxies, tmp_path, plugin, pool):
    cache = Cache(tmp_path)
    encoder = Component("encoder", plugin, ())
    group = dict(options("d4", pool))
    pooled = encode(registry, cache, galaxies, encoder, **group)
    plain = encode(registry, cache, galaxies, encoder)
    assert pooled.shape == plain.shape
    for name, move in MOVES.items():
        moved = move(galaxies)
        np.testing.assert_allclose(encode(registry, cache, moved, encoder, **group), pooled,
                                   rtol=1e-5, atol=1e-5, err_msg=name)
        # Without the option the embedding does change: the test can fail.
        assert not np.allclose(encode(registry, cache, moved, encoder), plain, atol=1e-3), name


def test_c4_ignores_rotations_and_fine_rotations_nearly_do(galaxies):
    from clustergrid.plugins.encoders.pixels import Pixels

    transform = Pixels().transform
    c4 = Symmetry("c4")
    np.testing.assert_allclose(c4.embed(transform, MOVES["rot90"](galaxies)),
                               c4.embed(transform, galaxies), rtol=1e-5, atol=1e-6)
    assert len(c4) == 4 and len(Symmetry("d4")) == 8 and len(Symmetry("rotations", angles=16)) == 16
    # 8 rotations by 45 degrees: a quarter turn of the input permutes them (up to the
    # interpolation of the rotated copies).
    fine = Symmetry("rotations", angles=8)
    turned = fine.embed(transform, MOVES["rot90"](galaxies))
    np.testing.assert_allclose(turned, fine.embed(transform, galaxies), atol=1e-4)


def test_a_trained_encoder_fitted_once_is_invariant_too(galaxies):
    pytest.importorskip("torch")
    from clustergrid.plugins.encoders.autoencoder import Autoencoder

    model = Autoencoder(latent_dim=8, depth=2, channels=4, epochs=1, batch_size=16,
                        device="cpu", random_state=0).fit(galaxies)
    d4 = Symmetry("d4")
    pooled = d4.embed(model.transform, galaxies)
    plain = model.transform(galaxies)
    for name, move in MOVES.items():
        moved = np.ascontiguousarray(move(galaxies))
        np.testing.assert_allclose(d4.embed(model.transform, moved), pooled, rtol=1e-4,
                                   atol=1e-5, err_msg=name)
        assert not np.allclose(model.transform(moved), plain, atol=1e-4), name


def test_the_transform_runs_once_per_element_and_init_never_sees_the_option(
        registry, galaxies, tmp_path):
    fake_components.CALLS.clear()
    # ``counting`` takes only ``tag``: built with the option, it would raise.
    X = encode(registry, Cache(tmp_path), galaxies, Component("encoder", "counting", ()),
               **dict(options("d4")))
    assert fake_components.CALLS == [("a", None)] * 8
    assert X.shape == (len(galaxies), SIZE * SIZE)


def test_non_square_images_are_a_clear_error_naming_the_encoder(registry, galaxies, tmp_path):
    wide = np.concatenate([galaxies, galaxies], axis=-1)
    encoder = Component("encoder", "pixels", (), options("d4"))
    with pytest.raises(StepError, match=r"encoder 'pixels\[symmetry=d4\]'.*square images.*"
                                        r"\(40, 1, 16, 32\) \(16x32\)"):
        encode(registry, Cache(tmp_path), wide, encoder, **dict(options("d4")))


GRID = """\
name: sym
datasets:
  - plugin: digits
    n_samples: 120
encoders:
  - plugin: pixels
    symmetry: [none, d4]
  - plugin: counting
    tag: b
    symmetry: c4
    symmetry_pool: [mean, max]
reducers:
  - plugin: pca
    n_components: 4
clusterers:
  - plugin: kmeans
    n_clusters: 3
    n_init: 2
metrics: [silhouette]
"""


def test_a_sweep_gives_one_pipeline_each_with_its_own_encode_step_and_label(registry):
    experiment = parse_experiment(GRID, registry)
    labels = [encoder.label() for encoder in experiment.encoders]
    assert labels == ["pixels", "pixels[symmetry=d4]", "counting[tag=b,symmetry=c4]",
                      "counting[tag=b,symmetry=c4,symmetry_pool=max]"]
    assert all(encoder.kwargs in ({}, {"tag": "b"}) for encoder in experiment.encoders)
    plan = make_plan(experiment, registry)
    assert len(plan.combinations) == 4
    encode_steps = {c.steps["encode"] for c in plan.combinations}
    assert len(encode_steps) == 4
    assert len({c.key for c in plan.combinations}) == 4
    d4 = next(c for c in plan.combinations if c.encoder.label() == "pixels[symmetry=d4]")
    assert "pixels[symmetry=d4]" in d4.label()
    assert dict(plan.steps[d4.steps["encode"]].options)["symmetry"] == "d4"
    plain = next(c for c in plan.combinations if c.encoder.label() == "pixels")
    assert plan.steps[plain.steps["encode"]].options == ()


def test_defaults_written_out_are_the_same_component(registry):
    written = GRID.replace("symmetry: [none, d4]",
                           "symmetry: [none, d4]\n    symmetry_pool: mean")
    assert parse_experiment(written, registry).encoders == parse_experiment(
        GRID, registry).encoders
    no_option = parse_experiment(GRID.replace("symmetry: [none, d4]", "symmetry: none"),
                                 registry)
    assert no_option.encoders[0] == Component("encoder", "pixels", ())


@pytest.mark.parametrize(("change", "message"), [
    (("symmetry: [none, d4]", "symmetry: d5"), r"encoders\[0\]\.symmetry: 'd5' is not a"),
    (("symmetry: [none, d4]", "symmetry_angles: 16"),
     r"encoders\[0\]\.symmetry_angles: applies to symmetry: rotations only"),
    (("symmetry: [none, d4]", "symmetry_pool: max"),
     r"encoders\[0\]\.symmetry_pool: pools over a symmetry"),
    (("    n_components: 4", "    n_components: 4\n    symmetry: d4"),
     r"reducers\[0\]\.symmetry: symmetry applies to encoders only"),
])
def test_bad_symmetry_options_fail_before_anything_runs(registry, change, message):
    with pytest.raises(SpecError, match=message):
        parse_experiment(GRID.replace(*change), registry)


def test_a_grid_with_and_without_symmetry_runs_end_to_end(registry, workdir):
    path = write_experiment(workdir, GRID.replace("  - plugin: counting\n    tag: b\n"
                                                  "    symmetry: c4\n"
                                                  "    symmetry_pool: [mean, max]\n", ""))
    experiment = load_experiment(path, registry)
    summary = runner.run(experiment, registry)
    assert (summary.finished, summary.failed) == (2, [])
    runs = Tracker(None, "sym", create=False).combination_runs()
    names = sorted(run.info.run_name for run in runs)
    assert len(names) == 2 and any("pixels[symmetry=d4]" in name for name in names)
    # Logged as a parameter, so results and reports tell the two encoders apart.
    assert sorted(run.data.params.get("encoder.symmetry", "-") for run in runs) == ["-", "d4"]
    from clustergrid.results import component_labels, load_results

    assert component_labels(load_results(None, "sym"))["encoder"].nunique() == 2

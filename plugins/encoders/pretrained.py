"""Pretrained vision backbones (DINOv2, ViT, ResNet, CLIP) loaded from a local folder.

The loading and preprocessing live in module-level helpers (``load_backbone``,
``Backbone.prepare``, ``Backbone.features``) so that other encoders (``classifier``)
reuse exactly the same input pipeline instead of a copy that could drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from clustergrid import Encoder
from clustergrid.plugins.encoders.devices import select_device

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


def _missing(folder: str, why: str) -> ValueError:
    return ValueError(
        f"pretrained model folder '{folder}' {why}. Models are never downloaded at run "
        "time: on a machine with internet, run e.g. `huggingface-cli download "
        f"facebook/dinov2-small --local-dir {folder}` (or `hf download ...`), then copy "
        "the folder here. Supported model types: " + ", ".join(SUPPORTED)
    )


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
        """
        import torch
        import torch.nn.functional as F

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
        if not torch.isfinite(x).all():
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


def load_backbone(folder: str, device=None) -> Backbone:
    """Load the model saved in ``folder`` (``save_pretrained`` / ``huggingface-cli
    download`` layout) without touching the network; one clear ValueError otherwise."""
    import transformers

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise _missing(folder, "does not exist")
    if not (path / "config.json").is_file():
        raise _missing(folder, "has no config.json (not a Hugging Face model folder)")
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as error:  # any failure here means the same thing to the user
        raise _missing(folder, f"has an unreadable config.json ({error})") from error
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED:
        raise _missing(folder, f"holds a '{model_type}' model, which is not supported")

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
        model = cls.from_pretrained(str(path), local_files_only=True, **kwargs)
    except Exception as error:
        why = f"could not be loaded as a {model_type} model ({error})"
        raise _missing(folder, why) from error
    finally:
        hf_logging.set_verbosity(verbosity)
    model.eval()
    if device is not None:
        model.to(device)

    if model_type in ("clip", "clip_vision_model"):
        vision = config.vision_config if model_type == "clip" else config
        image_size = vision.image_size
        mean, std = CLIP_MEAN, CLIP_STD
        hidden = (getattr(model.config, "projection_dim", None)
                  if hasattr(model, "visual_projection") else None) or vision.hidden_size
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
    return Backbone(model, model_type, int(image_size), mean, std, int(hidden), n_prefix)


class Pretrained(Encoder):
    """Frozen pretrained vision backbone (DINOv2, ViT, ResNet, CLIP) from a local folder.

    Parameters:

    - ``model``: path to a Hugging Face model folder (``config.json`` plus weights).
      Nothing is downloaded at run time: fetch the weights on a machine with internet,
      e.g. ``huggingface-cli download facebook/dinov2-small --local-dir /models/dinov2-small``,
      and copy the folder over. The family is read from the config's ``model_type``:
      ``dinov2`` (also with registers), ``vit``, ``resnet``, ``clip`` (a full CLIP
      checkpoint: its projected ``image_embeds``) or ``clip_vision_model`` (the pooled
      output, or ``image_embeds`` for ``CLIPVisionModelWithProjection``).
    - ``pooling``: for DINOv2 and ViT, ``cls`` (the CLS token), ``mean`` (mean of the
      patch tokens; DINOv2 registers left out) or ``both`` (their concatenation, twice
      the width). ResNet and CLIP always give their pooled output and accept only ``cls``.
    - ``rescale``: per-image min-max to [0, 1] before the model's mean/std normalisation
      (default). With ``rescale: false`` images must already be in [0, 1], e.g. after
      ``normalize`` or ``to_rgb``; pixel values in counts would then saturate the model.
    - ``device``: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:1``...
    - ``batch_size``: images per forward pass; images are read in slices of this size.

    Preprocessing is done in torch: 1-channel images are repeated to 3 channels (other
    counts but 3 are refused: use the ``channels`` transform), resized to the model's
    input size (``image_size`` of the config; 224 for ResNet and, as DINOv2's own
    processor does, for DINOv2) bilinearly with antialiasing, then normalised with the
    ImageNet mean/std (CLIP: its own).

    Caching: the model is identified by its folder *path* only; results cached for a
    path are reused even if the folder's weights are replaced. Give a new folder (or
    clear the cache) when changing the weights behind a path.
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

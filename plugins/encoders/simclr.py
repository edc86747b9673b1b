from __future__ import annotations

import numpy as np

from clustergrid.plugins.support.training import (
    TrainedEncoder,
    as_widths,
    augment,
    corrupt,
    nt_xent,
    predict,
)


def build_resnet(c: int, widths: tuple[int, ...], projection_dim: int):
    """A small ResNet (one basic residual block per width) with a projection head.

    A 3x3 stem, then per width a block of two 3x3 convolutions with batch normalisation
    and an identity (or 1x1 strided) shortcut; every block after the first halves the
    image. ``encode`` averages the last feature map over positions (``widths[-1]``
    values); ``project`` maps that through a two-layer MLP for NT-Xent.
    """
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
            self.shortcut = (nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)))

        def forward(self, x):
            return torch.relu(self.body(x) + self.shortcut(x))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            layers: list[nn.Module] = [nn.Conv2d(c, widths[0], 3, padding=1, bias=False),
                                       nn.BatchNorm2d(widths[0]), nn.ReLU()]
            previous = widths[0]
            for i, width in enumerate(widths):
                layers.append(Block(previous, width, 1 if i == 0 else 2))
                previous = width
            self.backbone = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.Linear(previous, previous), nn.ReLU(),
                                      nn.Linear(previous, projection_dim))

        def encode(self, x):
            return self.backbone(x).mean(dim=(-2, -1))

        def project(self, features):
            return self.head(features)

    return ResNet()


class SimCLR(TrainedEncoder):
    """SimCLR contrastive learning with a small ResNet; embeds the backbone output.

    Recipe: two random views of each image (flips, 90-degree rotations, shifts of up to
    ``max_shift`` pixels, then Poisson plus Gaussian noise of rms ``noise_level`` at
    intensity 1; 0 turns the noise off) go through the backbone and a projection head;
    NT-Xent with ``temperature`` makes each view pick its partner among the batch. The
    embedding is the backbone output before the projection head (``channels[-1]`` values,
    averaged over positions), which transfers better than the projection itself.

    Parameters:

    - ``channels``: width of each residual block, e.g. ``[16, 32, 64]`` (in an experiment
      file, wrap it in a list, ``[[16, 32, 64]]``: a bare list is a sweep); every block
      after the first halves the image.
    - ``projection_dim``: output size of the projection head (NT-Xent only).
    - ``temperature``, ``max_shift``, ``noise_level``: the recipe above.
    - ``epochs``, ``batch_size`` (larger batches give NT-Xent more negatives), ``lr``
      (Adam), ``patience`` (early stopping on the held-out NT-Xent), ``val_fraction``,
      ``device`` (``auto``, ``cpu``, ``cuda``, ``mps``), ``random_state``.

    ``metrics_``: ``train_loss`` and ``val_loss`` (NT-Xent) per epoch and ``best_epoch``;
    the trained weights stay in ``state_dict_``.
    """

    name = "simclr"
    version = "1"

    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32, 64),
        projection_dim: int = 32,
        temperature: float = 0.5,
        max_shift: int = 2,
        noise_level: float = 0.05,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        patience: int = 5,
        val_fraction: float = 0.1,
        device: str = "auto",
        random_state: int | None = None,
    ):
        self.channels = channels
        self.projection_dim = projection_dim
        self.temperature = temperature
        self.max_shift = max_shift
        self.noise_level = noise_level
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state

    def views(self, batch, generator):
        """Two augmented, noisy views of each image in a torch batch."""
        first = corrupt(augment(batch, generator, self.max_shift), self.noise_level, generator)
        second = corrupt(augment(batch, generator, self.max_shift), self.noise_level, generator)
        return first, second

    def losses(self, batch, generator) -> dict:
        """NT-Xent between the projections of two views of each image."""
        first, second = self.views(batch, generator)
        z1 = self.model_.project(self.model_.encode(first))
        z2 = self.model_.project(self.model_.encode(second))
        return {"loss": nt_xent(z1, z2, self.temperature)}

    def build(self, channels: int, height: int, width: int):
        # Strided convolutions with padding take any size: no divisibility to check.
        return build_resnet(channels, as_widths(self.channels), self.projection_dim)

    def project(self, images: np.ndarray) -> np.ndarray:
        """The projection-head outputs (the space NT-Xent trained)."""
        self.check_fitted(images)
        return predict(lambda x: self.model_.project(self.model_.encode(x)), images,
                       self.batch_size, self.device_)

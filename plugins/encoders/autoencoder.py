from __future__ import annotations

from clustergrid.plugins.support.training import (
    TrainedEncoder,
)


def build_autoencoder(c: int, h: int, w: int, depth: int, channels: int, latent_dim: int):
    """A convolutional autoencoder as a torch module with ``encode`` and ``forward``.

    Each of the ``depth`` levels is a 3x3 convolution and a stride-2 convolution (the
    width doubles per level from ``channels``); a linear layer maps the last feature map to
    ``latent_dim``, and the decoder mirrors it with transposed convolutions.
    """
    import torch
    from torch import nn

    widths = [channels * 2**i for i in range(depth)]
    bh, bw = h // 2**depth, w // 2**depth

    class ConvAutoencoder(nn.Module):
        def __init__(self):
            super().__init__()
            layers: list[nn.Module] = []
            previous = c
            for width in widths:
                layers += [nn.Conv2d(previous, width, 3, padding=1), nn.BatchNorm2d(width),
                           nn.ReLU(), nn.Conv2d(width, width, 3, stride=2, padding=1),
                           nn.ReLU()]
                previous = width
            self.encoder = nn.Sequential(*layers)
            self.to_latent = nn.Linear(widths[-1] * bh * bw, latent_dim)
            self.from_latent = nn.Linear(latent_dim, widths[-1] * bh * bw)
            layers = []
            for i in reversed(range(depth)):
                out = widths[i - 1] if i > 0 else widths[0]
                layers += [nn.ConvTranspose2d(widths[i], out, 4, stride=2, padding=1),
                           nn.ReLU(), nn.Conv2d(out, out, 3, padding=1), nn.ReLU()]
            layers.append(nn.Conv2d(widths[0], c, 3, padding=1))  # linear: any pixel scale
            self.decoder = nn.Sequential(*layers)

        def encode(self, x):
            return self.to_latent(torch.flatten(self.encoder(x), 1))

        def forward(self, x):
            z = self.from_latent(self.encode(x)).view(-1, widths[-1], bh, bw)
            return self.decoder(z)

    return ConvAutoencoder()


class Autoencoder(TrainedEncoder):
    """Convolutional autoencoder trained on the images; the bottleneck is the embedding.

    Parameters:

    - ``latent_dim``: size of the embedding (the bottleneck).
    - ``depth``: number of halvings of the image (h and w must be divisible by
      ``2**depth``); ``channels``: width of the first level, doubled at each level.
    - ``epochs``, ``batch_size``, ``lr`` (Adam): training; ``patience``: epochs without a
      better validation loss before stopping early (the best weights are kept);
      ``val_fraction``: share of the images held out to score each epoch.
    - ``device``: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
    - ``random_state``: seeds the weights, the split and the shuffling.

    Recipe: mean squared reconstruction error, Adam, early stopping on the held-out
    loss. Scale the images first (e.g. the ``normalize`` transform): the loss is in
    pixel units. ``metrics_`` holds ``train_loss`` and ``val_loss`` per epoch and
    ``best_epoch``; the trained weights stay in ``state_dict_``.
    """

    name = "autoencoder"
    version = "1"

    def __init__(
        self,
        latent_dim: int = 32,
        depth: int = 3,
        channels: int = 16,
        epochs: int = 20,
        batch_size: int = 64,
        lr: float = 1e-3,
        patience: int = 5,
        val_fraction: float = 0.1,
        device: str = "auto",
        random_state: int | None = None,
    ):
        self.latent_dim = latent_dim
        self.depth = depth
        self.channels = channels
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state

    def check_parameters(self) -> None:
        if self.depth < 1 or self.channels < 1 or self.latent_dim < 1:
            raise ValueError("depth, channels and latent_dim must be >= 1")

    def build(self, channels: int, height: int, width: int):
        return build_autoencoder(channels, height, width, self.depth, self.channels,
                                 self.latent_dim)

    def losses(self, batch, generator) -> dict:
        import torch.nn.functional as F

        return {"loss": F.mse_loss(self.model_(batch), batch)}

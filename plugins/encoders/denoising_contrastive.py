from __future__ import annotations

import numpy as np

from clustergrid.plugins.support.training import (
    TrainedEncoder,
    augment,
    corrupt,
    foreground_mask,
    masked_mean,
    nt_xent,
    predict,
    ssim_map,
    total_variation,
)


def build_unet(c: int, depth: int, channels: int, latent_dim: int, projection_dim: int):
    """A small U-Net with a projection head, as a torch module.

    ``depth`` levels of two 3x3 convolutions then 2x2 average pooling (width ``channels``
    doubling per level); a bottleneck of ``latent_dim`` channels; a mirrored decoder with
    skip connections. ``forward`` returns the reconstruction and the pooled bottleneck;
    ``project`` maps the pooled bottleneck through a two-layer MLP for NT-Xent.
    """
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Module:
        # No batch normalisation: with few batches per epoch its running statistics lag
        # the weights, and held-out scores (computed in eval mode) lag far behind.
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())

    widths = [channels * 2**i for i in range(depth)]

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.ModuleList()
            previous = c
            for width in widths:
                self.down.append(block(previous, width))
                previous = width
            self.pool = nn.AvgPool2d(2)
            self.bottleneck = block(previous, latent_dim)
            self.up = nn.ModuleList()
            self.merge = nn.ModuleList()
            previous = latent_dim
            for width in reversed(widths):
                self.up.append(nn.ConvTranspose2d(previous, width, 2, stride=2))
                self.merge.append(block(2 * width, width))
                previous = width
            self.out = nn.Conv2d(widths[0], c, 1)  # linear output: no clipping of the range
            self.head = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.ReLU(),
                                      nn.Linear(latent_dim, projection_dim))

        def _encode(self, x):
            skips = []
            for down in self.down:
                x = down(x)
                skips.append(x)
                x = self.pool(x)
            return self.bottleneck(x), skips

        def encode(self, x):
            """The embedding: the bottleneck averaged over positions."""
            return self._encode(x)[0].mean(dim=(-2, -1))

        def forward(self, x):
            x, skips = self._encode(x)
            pooled = x.mean(dim=(-2, -1))
            for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
                x = merge(torch.cat([up(x), skip], dim=1))
            return self.out(x), pooled

        def project(self, pooled):
            return self.head(pooled)

    return UNet()


class DenoisingContrastive(TrainedEncoder):
    """Denoising U-Net with a contrastive head (Galaxy Zoo recipe); embeds its bottleneck.

    Recipe, per batch of clean images: two random views of each (flips, 90-degree
    rotations, shifts of up to ``max_shift`` pixels), each corrupted with Poisson plus
    Gaussian noise of rms ``noise_level`` at intensity 1. The network reconstructs each
    clean view from its noisy one. A foreground mask of the clean view (pixels above the
    image's mean + ``mask_sigma`` standard deviations, channels summed) splits the
    reconstruction loss: on the foreground ``1 - SSIM`` (Gaussian window), on the
    background total variation plus a darkening term (the mean absolute background
    intensity), so the sky comes out flat and dark instead of re-creating the noise.
    NT-Xent with ``temperature`` pulls the projections of the two views of one image
    together and pushes other images away. Total loss = ``weights[0]`` x foreground +
    ``weights[1]`` x background + ``weights[2]`` x contrastive. The embedding is the
    bottleneck averaged over positions (``latent_dim`` values) of the clean image.

    Parameters:

    - ``latent_dim``: bottleneck channels = embedding size; ``projection_dim``: size of
      the projection head's output used by NT-Xent only.
    - ``depth``: pooling levels (h and w must be divisible by ``2**depth``); ``channels``:
      width of the first level, doubled per level.
    - ``noise_level``, ``max_shift``, ``mask_sigma``, ``temperature``, ``weights``
      (foreground, background, contrastive): the recipe above.
    - ``epochs``, ``batch_size``, ``lr`` (Adam), ``patience`` (early stopping on the
      held-out loss), ``val_fraction``, ``device`` (``auto``, ``cpu``, ``cuda``, ``mps``),
      ``random_state``.

    Expects images scaled to about [0, 1] (e.g. the ``normalize`` transform): SSIM and the
    noise model assume that range. ``metrics_``: ``train_``/``val_`` ``loss``,
    ``foreground``, ``background``, ``contrastive`` and ``foreground_ssim`` per epoch
    (``val_foreground_ssim`` is the held-out foreground SSIM), ``best_epoch``; the trained
    weights stay in ``state_dict_``.
    """

    name = "denoising-contrastive"
    version = "1"

    def __init__(
        self,
        latent_dim: int = 64,
        projection_dim: int = 32,
        depth: int = 2,
        channels: int = 16,
        noise_level: float = 0.1,
        max_shift: int = 2,
        mask_sigma: float = 0.5,
        temperature: float = 0.5,
        weights: tuple[float, float, float] = (1.0, 1.0, 0.1),
        epochs: int = 20,
        batch_size: int = 64,
        lr: float = 1e-3,
        patience: int = 5,
        val_fraction: float = 0.1,
        device: str = "auto",
        random_state: int | None = None,
    ):
        self.latent_dim = latent_dim
        self.projection_dim = projection_dim
        self.depth = depth
        self.channels = channels
        self.noise_level = noise_level
        self.max_shift = max_shift
        self.mask_sigma = mask_sigma
        self.temperature = temperature
        self.weights = weights
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state

    def losses(self, batch, generator) -> dict:
        """The loss and its parts for one batch of clean images (see the class recipe)."""
        import torch

        w_fg, w_bg, w_con = (float(w) for w in self.weights)
        n = batch.shape[0]
        clean = torch.cat([augment(batch, generator, self.max_shift),
                           augment(batch, generator, self.max_shift)])
        noisy = corrupt(clean, self.noise_level, generator)
        recon, pooled = self.model_(noisy)
        mask = foreground_mask(clean, self.mask_sigma)
        fg_ssim = masked_mean(ssim_map(recon, clean), mask)
        background = ~mask
        bg = total_variation(recon, background) + masked_mean(recon.abs(), background)
        projections = self.model_.project(pooled)
        con = nt_xent(projections[:n], projections[n:], self.temperature)
        loss = w_fg * (1 - fg_ssim) + w_bg * bg + w_con * con
        return {"loss": loss, "foreground": 1 - fg_ssim, "background": bg,
                "contrastive": con, "foreground_ssim": fg_ssim}

    def check_parameters(self) -> None:
        if len(self.weights) != 3:
            raise ValueError(f"weights must be (foreground, background, contrastive), "
                             f"got {self.weights}")
        if self.depth < 1 or self.channels < 1 or self.latent_dim < 1:
            raise ValueError("depth, channels and latent_dim must be >= 1")

    def build(self, channels: int, height: int, width: int):
        return build_unet(channels, self.depth, self.channels, self.latent_dim,
                          self.projection_dim)

    def project(self, images: np.ndarray) -> np.ndarray:
        """The projection-head outputs (the space NT-Xent trained) of clean images."""
        self.check_fitted(images)
        return predict(lambda x: self.model_.project(self.model_.encode(x)), images,
                       self.batch_size, self.device_)

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """The denoised reconstructions of ``images``, same shape, float32."""
        import torch

        self.check_fitted(images)
        out = np.empty(images.shape, dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = np.array(images[start : start + self.batch_size], dtype=np.float32)
                recon = self.model_(torch.from_numpy(batch).to(self.device_))[0]
                out[start : start + len(batch)] = recon.float().cpu().numpy()
        return out

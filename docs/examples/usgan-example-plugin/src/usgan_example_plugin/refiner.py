"""The ``upconv-refiner`` Stage-II: refine the upsampled Stage-I image, no transposed convs.

The Stage-I image is upsampled (bilinear) to ``out_size``; a small network grows features
from the Stage-I image with nearest-neighbour upsampling + 3x3 convolutions, with the noise
added as a per-channel bias at the start, and predicts a correction to the upsampled image:
``tanh(atanh(up(x)) + delta)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from usgan.core import Stage2Generator
from usgan.core.layers import check_refinement_sizes, dcgan_init, up_block

from .networks import UpconvDiscriminator


class RefinerGenerator(Stage2Generator):
    """(Stage-I image, z) -> out_size image: upsampled input plus a learned correction."""

    def __init__(
        self, in_channels: int = 1, in_size: int = 64, out_channels: int = 1,
        out_size: int = 256, z_dim: int = 32, width: int = 64, **_: object,
    ) -> None:
        super().__init__()
        check_refinement_sizes(in_size, out_size)
        self.in_channels, self.in_size, self.z_dim = in_channels, in_size, z_dim
        self.out_channels, self.out_size = out_channels, out_size
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1), nn.ReLU(True))
        self.z_bias = nn.Linear(z_dim, width)
        blocks: list[nn.Module] = []
        c, res = width, in_size
        while res < out_size:
            blocks += up_block(c, max(c // 2, 8), mode="nearest")
            c, res = max(c // 2, 8), res * 2
        self.body = nn.Sequential(*blocks)
        self.to_delta = nn.Conv2d(c, out_channels, 3, 1, 1)
        dcgan_init(self)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.stem(x) + self.z_bias(z)[:, :, None, None]
        delta = self.to_delta(self.body(h))
        up = F.interpolate(x, size=delta.shape[-2:], mode="bilinear", align_corners=False)
        up = up.mean(dim=1, keepdim=True).expand(-1, self.out_channels, -1, -1)
        return torch.tanh(torch.atanh(up.clamp(-0.999, 0.999)) + delta)


def refiner_discriminator(
    out_channels: int = 1, out_size: int = 256, d_width: int = 32, **_: object
) -> UpconvDiscriminator:
    """The plugin's DCGAN-style discriminator at the Stage-II size."""
    return UpconvDiscriminator(channels=out_channels, size=out_size, d_width=d_width)

"""The ``upconv-dcgan`` generator and discriminator."""

from __future__ import annotations

import torch
from torch import nn

from usgan.core import ConfigError, Discriminator, Stage1Generator
from usgan.core.layers import dcgan_init, dcgan_width, down_block, up_block

UPSAMPLE_MODES = ("nearest", "bilinear")


def _check_size(size: int) -> None:
    if size < 8 or size & (size - 1):
        raise ConfigError(f"size must be a power of two >= 8, got {size}")


class UpconvGenerator(Stage1Generator):
    """z -> linear to 4x4 + BN + ReLU -> [upsample x2, conv3x3, BN, ReLU] * n -> conv3x3 + Tanh."""

    def __init__(
        self, z_dim: int = 100, channels: int = 1, size: int = 64, g_width: int = 64,
        upsample: str = "nearest", **_: object,
    ) -> None:
        super().__init__()
        _check_size(size)
        if upsample not in UPSAMPLE_MODES:
            raise ConfigError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.z_dim, self.out_channels, self.out_size = z_dim, channels, size

        c = dcgan_width(g_width, size, 4)
        self.project = nn.Linear(z_dim, c * 4 * 4, bias=False)
        self.project_act = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(True))
        self._c4 = c
        blocks: list[nn.Module] = []
        res = 4
        while res < size:
            res *= 2
            c_next = dcgan_width(g_width, size, res)
            blocks += up_block(c, c_next, mode=upsample)
            c = c_next
        self.body = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(c, channels, 3, 1, 1), nn.Tanh())
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z.view(z.shape[0], self.z_dim)).view(z.shape[0], self._c4, 4, 4)
        return self.to_image(self.body(self.project_act(h)))


class UpconvDiscriminator(Discriminator):
    """size x size -> [conv4x4 stride 2, (BN), LeakyReLU 0.2] down to 4x4 -> conv4x4 -> logit."""

    def __init__(
        self, channels: int = 1, size: int = 64, d_width: int = 64, **_: object,
    ) -> None:
        super().__init__()
        _check_size(size)
        self.in_channels, self.in_size = channels, size
        layers: list[nn.Module] = []
        c_in, res = channels, size
        while res > 4:
            res //= 2
            c = dcgan_width(d_width, size, res)
            layers += down_block(c_in, c, norm=bool(layers))  # no BN on the input layer
            c_in = c
        layers.append(nn.Conv2d(c_in, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(x.shape[0])

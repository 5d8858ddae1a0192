"""Built-in Stage-II GAN ``stack``: the paper's encoder-decoder generator.

The encoder (conv + max-pool blocks) turns the Stage-I image into feature maps at every
size down to a 4x4 bottleneck; the noise z joins at the bottleneck; the decoder upsamples to
``out_size`` and takes the encoder's features through skip connections. The discriminator is
the DCGAN discriminator at ``out_size``. Choices the paper leaves open: docs/architecture.md.
"""

from __future__ import annotations

import torch
from torch import nn

from usgan.core import GANSpec, hookimpl
from usgan.core.errors import ConfigError
from usgan.core.interfaces import Stage2Generator
from usgan.core.layers import (
    UP_MODES,
    DCGANDiscriminator,
    apply_spectral_norm,
    check_refinement_sizes,
    dcgan_init,
    up_block,
)
from usgan.core.noise import pixel_noise

Z_JOINS = ("tile", "project")
NOISE_INIT = 0.1  # starting per-channel strength of the injected noise (``noise=True``)


def _enc_width(width: int, max_width: int, in_size: int, res: int) -> int:
    return min(width * in_size // res, max_width)


def _dec_width(width: int, max_width: int, in_size: int, res: int, min_width: int) -> int:
    return max(min(width * in_size // res, max_width), min_width)


class EncoderDecoderGenerator(Stage2Generator):
    """(Stage-I image, z) -> out_size image; U-Net-like with z concatenated at the bottleneck.

    ``upsample``: the decoder's doubling, one of `UP_MODES` (``"transposed"``: ConvTranspose
    4x4; ``"nearest"`` / ``"bilinear"``: resize + Conv 3x3, no checkerboard).
    ``noise``: per-pixel noise maps (seeded by z, `pixel_noise`) added before the BN of each
    decoder block beyond ``in_size``, scaled per channel by a learned strength that starts at
    `NOISE_INIT`: the decoder's source of fine random texture (speckle).
    ``dec_min_width``: the fewest channels of a decoder block beyond ``in_size`` (the blocks
    that draw the texture at 128 and 256 px, where the halving schedule would go below it).
    """

    def __init__(
        self, in_channels: int = 1, in_size: int = 64, out_channels: int = 1,
        out_size: int = 256, z_dim: int = 100, width: int = 64, max_width: int = 512,
        z_join: str = "tile", spectral_norm: bool = False, residual: bool = True,
        upsample: str = "bilinear", noise: bool = False, dec_min_width: int = 16, **_: object,
    ) -> None:
        super().__init__()
        check_refinement_sizes(in_size, out_size)
        if z_join not in Z_JOINS:
            raise ConfigError(f"z_join must be one of {Z_JOINS}, got {z_join!r}")
        if upsample not in UP_MODES:
            raise ConfigError(f"upsample must be one of {UP_MODES}, got {upsample!r}")
        self.in_channels, self.in_size = in_channels, in_size
        self.out_channels, self.out_size, self.z_dim = out_channels, out_size, z_dim
        self.z_join = z_join
        self.residual = residual

        # Encoder: conv3x3 + BN + LeakyReLU, then max-pool; one block per size in_size..8.
        self.encoder = nn.ModuleList()
        c_in, res = in_channels, in_size
        skip_widths: list[int] = []
        while res > 4:
            c = _enc_width(width, max_width, in_size, res)
            self.encoder.append(nn.Sequential(
                nn.Conv2d(c_in, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c),
                nn.LeakyReLU(0.2, True),
            ))
            skip_widths.append(c)
            c_in, res = c, res // 2
        self.pool = nn.MaxPool2d(2)
        c_bottleneck = c_in

        # Noise joins the 4x4 encoder output: tiled over it, or projected to a 4x4 map.
        if z_join == "project":
            self.z_proj: nn.Module = nn.Linear(z_dim, z_dim * 16)
        else:
            self.z_proj = nn.Identity()

        # Decoder: x2 up_block (`upsample`) + BN + ReLU; at the sizes the encoder saw, the
        # encoder features are concatenated (skip connections); beyond in_size, plain upsampling.
        self.decoder = nn.ModuleList()
        self.noise_strength = nn.ParameterDict()  # decoder index -> per-channel strength
        c, res = c_bottleneck + z_dim, 4
        skips = list(reversed(skip_widths))
        while res < out_size:
            res *= 2
            c_out = (
                _enc_width(width, max_width, in_size, res) if res <= in_size
                else _dec_width(width, max_width, in_size, res, dec_min_width)
            )
            if noise and res > in_size:
                self.noise_strength[str(len(self.decoder))] = nn.Parameter(
                    torch.full((c_out,), NOISE_INIT))
            self.decoder.append(nn.Sequential(*up_block(c, c_out, mode=upsample)))
            c = c_out + (skips.pop(0) if res <= in_size else 0)
        self.to_image = nn.Conv2d(c, out_channels, 3, 1, 1)
        dcgan_init(self)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        feats: list[torch.Tensor] = []
        h = x
        for block in self.encoder:
            h = block(h)
            feats.append(h)
            h = self.pool(h)
        b = h.shape[0]
        if self.z_join == "project":
            zmap = self.z_proj(z).view(b, self.z_dim, 4, 4)
        else:
            zmap = z.view(b, self.z_dim, 1, 1).expand(b, self.z_dim, h.shape[2], h.shape[3])
        h = torch.cat([h, zmap], dim=1)
        for i, block in enumerate(self.decoder):  # skips by depth: any input size works
            h = self._decode(i, block, h, z)
            if i < len(feats):
                h = torch.cat([h, feats[-1 - i]], dim=1)
        out = self.to_image(h)
        if self.residual:  # refine the upsampled Stage-I image instead of drawing from scratch
            up = nn.functional.interpolate(x, size=out.shape[-2:], mode="bilinear",
                                           align_corners=False)
            out = out + torch.atanh(up.clamp(-0.999, 0.999))
        return torch.tanh(out)

    def _decode(self, i: int, block: nn.Sequential, h: torch.Tensor, z: torch.Tensor
                ) -> torch.Tensor:
        """Decoder block ``i``; with noise: upsample+conv, + strength x noise map, BN, ReLU."""
        strength = self.noise_strength[str(i)] if str(i) in self.noise_strength else None
        if strength is None:
            return block(h)
        h = block[:-2](h)
        return block[-2:](h + strength.view(1, -1, 1, 1) * pixel_noise(z, h.shape[-1], salt=i))


def _discriminator(
    out_channels: int = 1, out_size: int = 256, d_width: int = 64, spectral_norm: bool = False,
    d_batchnorm: bool = True, d_mbstd: bool = False, d_patch: int = 0, **_: object,
) -> DCGANDiscriminator:
    """The DCGAN discriminator extended to ``out_size`` input."""
    return DCGANDiscriminator(
        channels=out_channels, size=out_size, d_width=d_width, spectral_norm=spectral_norm,
        d_batchnorm=d_batchnorm, d_mbstd=d_mbstd, d_patch=d_patch,
    )


@hookimpl
def register_stage2(register):  # type: ignore[no-untyped-def]
    """The paper's Stage-II GAN."""
    register(GANSpec(
        name="stack",
        generator=EncoderDecoderGenerator,
        discriminator=_discriminator,
        defaults={
            "in_channels": 1, "in_size": 64, "out_channels": 1, "out_size": 256,
            "z_dim": 100, "width": 32, "max_width": 512, "z_join": "tile",
            "spectral_norm": False, "residual": True, "upsample": "bilinear", "noise": False,
            "dec_min_width": 16, "d_width": 32, "d_batchnorm": True, "d_mbstd": False,
            "d_patch": 0,
        },
        description="Stage-II encoder-decoder (conv+maxpool encoder, skips, z at bottleneck)",
    ))

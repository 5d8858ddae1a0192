"""Built-in Stage-I GANs: ``dcgan``, ``dcgan-sn`` and ``dcgan-sn-sa``.

One DCGAN family (Radford et al. 2015) with two switches: spectral normalization on every
conv of G and D (Miyato et al. 2018), and a SAGAN self-attention block in G and D at the
feature resolution ``attn_res`` (Zhang et al. 2019). See docs/architecture.md.
"""

from __future__ import annotations

import torch
from torch import nn

from usgan.core import GANSpec, hookimpl
from usgan.core.errors import ConfigError
from usgan.core.interfaces import Stage1Generator
from usgan.core.layers import (
    DCGANDiscriminator,
    SelfAttention,
    apply_spectral_norm,
    check_attention,
    dcgan_init,
    dcgan_width,
    last_up,
    log2_int,
    up_block,
)

__all__ = ["DCGANDiscriminator", "DCGANGenerator"]  # D lives in core.layers (stack uses it)


class DCGANGenerator(Stage1Generator):
    """z -> 4x4 (transposed conv) -> ... -> size x size; BN + ReLU inside, Tanh out.

    ``upsample``: each doubling, one of `UP_MODES` (``"transposed"``: the paper's 4x4 stride-2
    ConvTranspose; ``"nearest"``/``"bilinear"``: resize then 3x3 conv, no checkerboard).
    ``g_spectral_norm``: spectral norm in G; None (the default) follows ``spectral_norm``,
    which the paper applies to G and D alike; False keeps it in D only (Miyato et al.).
    """

    def __init__(
        self, z_dim: int = 100, channels: int = 1, size: int = 64, g_width: int = 64,
        spectral_norm: bool = False, attention: bool = False, attn_res: int = 16,
        upsample: str = "transposed", g_spectral_norm: bool | None = None, **_: object,
    ) -> None:
        super().__init__()
        n = log2_int(size, "size")
        if n < 3:
            raise ConfigError(f"size must be at least 8, got {size}")
        if attention:
            check_attention(attn_res, size)
        self.z_dim, self.out_channels, self.out_size = z_dim, channels, size
        c = dcgan_width(g_width, size, 4)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)
        ]
        res = 4
        if attention and res == attn_res:
            layers.append(SelfAttention(c))
        while res * 2 < size:
            c_next = dcgan_width(g_width, size, res * 2)
            layers += up_block(c, c_next, mode=upsample)
            c, res = c_next, res * 2
            if attention and res == attn_res:
                layers.append(SelfAttention(c))
        layers += [*last_up(c, channels, mode=upsample), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)
        if spectral_norm if g_spectral_norm is None else g_spectral_norm:
            apply_spectral_norm(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))


# BatchNorm in D for all three: the paper's DCGAN, with spectral norm added for dcgan-sn and
# dcgan-sn-sa. With it and the recipe below they beat their SN-GAN form (D without BatchNorm,
# no DiffAugment, batch 16) with both seeds on BUSI malignant and SFibAI ge1.0
# (docs/benchmarks.md, "Levers", 2026-12-06); with BatchNorm in D alone, D won outright.
_BASE = {"z_dim": 100, "channels": 1, "size": 64, "g_width": 64, "d_width": 64,
         "upsample": "transposed", "g_spectral_norm": None, "d_batchnorm": True,
         "d_mbstd": False, "d_patch": 0}
# Stage-I at batch 8: twice the steps in the same minutes, and at 8 minutes a lower KID with
# both seeds for dcgan on BUSI malignant (docs/benchmarks.md, "Levers").
_RECIPES = {"default": {"batch_size": 8}}


@hookimpl
def register_stage1(register):  # type: ignore[no-untyped-def]
    """The paper's three Stage-I networks."""
    register(GANSpec(
        name="dcgan",
        generator=DCGANGenerator,
        discriminator=DCGANDiscriminator,
        defaults={**_BASE, "spectral_norm": False, "attention": False},
        description="DCGAN (Radford et al. 2015), 64x64 grayscale",
        recipes=_RECIPES,
    ))
    register(GANSpec(
        name="dcgan-sn",
        generator=DCGANGenerator,
        discriminator=DCGANDiscriminator,
        defaults={**_BASE, "spectral_norm": True, "attention": False},
        description="DCGAN with spectral normalization in G and D (Miyato et al. 2018)",
        recipes=_RECIPES,
    ))
    register(GANSpec(
        name="dcgan-sn-sa",
        generator=DCGANGenerator,
        discriminator=DCGANDiscriminator,
        defaults={**_BASE, "spectral_norm": True, "attention": True, "attn_res": 16},
        description="DCGAN + spectral norm + SAGAN self-attention at 16x16 (Zhang et al. 2019)",
        recipes=_RECIPES,
    ))

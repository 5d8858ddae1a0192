"""The Stage-I and Stage-II network interfaces.

Each network declares the sizes and channels it takes and gives as plain attributes, so that
compositions can be checked before any tensor flows. Images are ``[B, C, H, W]`` in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from .noise import latent


class Generator(nn.Module):
    """What every generator shares: its noise ``z [B, z_dim]`` and its output size."""

    z_dim: int
    out_channels: int
    out_size: int

    def sample_z(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Standard-normal noise for ``n`` images (see `usgan.core.noise`)."""
        return latent(n, self.z_dim, generator, device)


class Stage1Generator(Generator):
    """Noise ``z [B, z_dim]`` -> image ``[B, out_channels, out_size, out_size]`` in [-1, 1]."""


class Stage2Generator(Generator):
    """Stage-I image ``[B, in_channels, in_size, in_size]`` and noise ``z [B, z_dim]`` ->
    image ``[B, out_channels, out_size, out_size]`` in [-1, 1].

    The contract: the factory accepts ``in_size``, ``in_channels`` and ``out_channels``
    (the trainer sets them from the Stage-I it stacks on), so they must be config keys.
    """

    in_channels: int
    in_size: int


class Discriminator(nn.Module):
    """Image ``[B, in_channels, in_size, in_size]`` -> real/fake logits ``[B]``.

    ``per_image``: True when, in train mode, each image's logit depends on that image alone
    (no BatchNorm, no minibatch statistic); ``per_slice``: True when every statistic across
    the batch is in a `usgan.core.layers.SliceAware` layer (`SliceBatchNorm2d`,
    `MinibatchStd`). Either way the training step runs D once on the real and the generated
    batch together (`usgan.core.contract.per_slice`).
    """

    in_channels: int
    in_size: int
    per_image: bool = False
    per_slice: bool = False

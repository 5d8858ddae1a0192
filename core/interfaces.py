"""The Stage-I and Stage-II network interfaces.

Each network declares the sizes and channels it takes and gives as plain attributes, so that
compositions can be checked before any tensor flows. Images are ``[B, C, H, W]`` in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn


class Stage1Generator(nn.Module):
    """Noise ``z [B, z_dim]`` -> image ``[B, out_channels, out_size, out_size]`` in [-1, 1]."""

    z_dim: int
    out_channels: int
    out_size: int

    def sample_z(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Standard-normal noise for ``n`` images."""
        return torch.randn(n, self.z_dim, generator=generator, device=device)


class Stage2Generator(nn.Module):
    """Stage-I image ``[B, in_channels, in_size, in_size]`` and noise ``z [B, z_dim]`` ->
    image ``[B, out_channels, out_size, out_size]`` in [-1, 1]."""

    in_channels: int
    in_size: int
    z_dim: int
    out_channels: int
    out_size: int

    def sample_z(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Standard-normal noise for ``n`` images."""
        return torch.randn(n, self.z_dim, generator=generator, device=device)


class Discriminator(nn.Module):
    """Image ``[B, in_channels, in_size, in_size]`` -> real/fake logits ``[B]``."""

    in_channels: int
    in_size: int

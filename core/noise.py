"""Latent noise: drawn in one place, so that every caller gets the same images from a seed.

Noise is always drawn on the CPU from the given ``torch.Generator`` and then moved to the
device, so a seed gives the same images on every device and whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def latent(
    n: int, z_dim: int, generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Standard-normal noise ``[n, z_dim]``."""
    return torch.randn(n, z_dim, generator=generator).to(device)


def noise_for(
    networks: Sequence[nn.Module], n: int, generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, ...]:
    """One noise tensor per network (each declares ``z_dim``), drawn in order: for a stack,
    ``(z1, z2)`` from ``(stage1, stage2)``."""
    return tuple(latent(n, int(net.z_dim), generator, device) for net in networks)

"""Latent noise: drawn in one place, so that every caller gets the same images from a seed.

Noise is always drawn on the CPU from the given ``torch.Generator`` and then moved to the
device, so a seed gives the same images on every device and whatever the batch size. Every
draw a training step makes on the CPU reaches the device through `to_device`: without a host
synchronisation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn


def to_device(x: torch.Tensor, device: torch.device | str,
              dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x`` (drawn on the CPU) on ``device`` (as ``dtype``) without waiting for it: on a
    GPU through pinned memory and an asynchronous copy, as a plain ``.to`` from pageable
    memory waits for every kernel queued before it (a host synchronisation per draw). A
    tensor already on a GPU moves as ``.to`` moves it (a copy to the host is waited for)."""
    on_cpu = x.device.type == "cpu"
    if on_cpu and torch.device(device).type == "cuda":
        x = x.pin_memory()
    return x.to(device, dtype, non_blocking=on_cpu)


def latent(
    n: int, z_dim: int, generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Standard-normal noise ``[n, z_dim]``."""
    return to_device(torch.randn(n, z_dim, generator=generator), device)


def noise_for(
    networks: Sequence[nn.Module], n: int, generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, ...]:
    """One noise tensor per network (each declares ``z_dim``), drawn in order: for a stack,
    ``(z1, z2)`` from ``(stage1, stage2)``."""
    return tuple(latent(n, int(net.z_dim), generator, device) for net in networks)


def pixel_noise(z: torch.Tensor, size: int, salt: int = 0) -> torch.Tensor:
    """Standard-normal maps ``[n, 1, size, size]``, one per sample, seeded by that sample's
    latent ``z[i]`` (and ``salt``, to tell layers apart).

    Per-pixel noise inside a generator would otherwise be a second, unseeded source of
    randomness; deriving it from z keeps the rule above: a seed gives the same images on every
    device, whatever the batch size, and training resumes bit-identically.
    """
    if z.device.type == "meta":  # shape-only passes (`usgan plugins check`, stacking checks)
        return torch.empty(z.shape[0], 1, size, size, device="meta")
    rows = z.detach().to("cpu", torch.float32).contiguous().numpy()
    salt_bytes = int(salt).to_bytes(8, "little", signed=True)
    maps = []
    for row in rows:
        digest = hashlib.blake2b(row.tobytes() + salt_bytes, digest_size=8).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
        maps.append(torch.randn(1, size, size, generator=gen))
    return torch.stack(maps).to(z.device)

"""Stacking: any Stage-I generator composed with any Stage-II generator.

`forward_stack` is the one Stage-I -> Stage-II forward pass (training, sampling, checks);
`stage2_config` is the Stage-II contract: a Stage-II is built with ``in_size``,
``in_channels`` and ``out_channels`` taken from the Stage-I it stacks on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .contract import check_stackable
from .interfaces import Stage1Generator, Stage2Generator
from .noise import noise_for

# The Stage-II that ``--stage2 on`` stacks (the built-in plugin's registry name): the one
# place this default is written.
DEFAULT_STAGE2 = "stack"


def stage2_config(stage1: nn.Module, overrides: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The Stage-II config for stacking on ``stage1``: its size and channels, then
    ``overrides`` (which win, so a mismatch is reported by `check_stackable`)."""
    return {"in_size": stage1.out_size, "in_channels": stage1.out_channels,
            "out_channels": stage1.out_channels, **dict(overrides or {})}


def forward_stack(
    generators: Sequence[nn.Module], noise: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Every stage's image: the first generator maps ``noise[0]`` to an image, each next one
    refines the previous image with its own noise. Every stage but the last runs without
    gradients (the lower stages are frozen while the top one trains)."""
    images: list[torch.Tensor] = []
    for k, (g, z) in enumerate(zip(generators, noise, strict=True)):
        last = k == len(generators) - 1
        with torch.set_grad_enabled(torch.is_grad_enabled() and last):
            images.append(g(z) if k == 0 else g(images[-1], z))
    return images


class StackedGenerator(nn.Module):
    """Stage-I then Stage-II. Stage-I is frozen (eval mode, no gradients) while Stage-II trains.

    The two stages stay separate modules with separate state_dicts (``.stage1``, ``.stage2``).
    ``forward(z1, z2)`` returns ``(mid_resolution_image, high_resolution_image)``.
    """

    def __init__(self, stage1: Stage1Generator, stage2: Stage2Generator) -> None:
        super().__init__()
        check_stackable(stage1, stage2)
        self.stage1 = stage1
        self.stage2 = stage2
        self.stage1.requires_grad_(False)
        self.stage1.eval()

    def train(self, mode: bool = True) -> StackedGenerator:
        """Switch Stage-II only; Stage-I stays in eval mode (its BatchNorm stats never move)."""
        self.training = mode
        self.stage2.train(mode)
        self.stage1.eval()
        return self

    def sample_z(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise for both stages: ``(z1 [n, stage1.z_dim], z2 [n, stage2.z_dim])``."""
        z1, z2 = noise_for((self.stage1, self.stage2), n, generator, device)
        return z1, z2

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mid, high = forward_stack((self.stage1, self.stage2), (z1, z2))
        return mid, high

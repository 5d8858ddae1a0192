"""The stacking wrapper: any Stage-I generator composed with a Stage-II generator."""

from __future__ import annotations

import torch
from torch import nn

from .errors import ShapeMismatchError
from .interfaces import Stage1Generator, Stage2Generator


def check_stackable(stage1: nn.Module, stage2: nn.Module) -> None:
    """Raise `ShapeMismatchError` unless ``stage1``'s output is what ``stage2`` takes."""
    for attr in ("z_dim", "out_channels", "out_size"):
        if not hasattr(stage1, attr):
            raise ShapeMismatchError(f"Stage-I {type(stage1).__name__} does not declare {attr}")
    for attr in ("in_channels", "in_size", "z_dim", "out_size"):
        if not hasattr(stage2, attr):
            raise ShapeMismatchError(f"Stage-II {type(stage2).__name__} does not declare {attr}")
    if (stage1.out_size, stage1.out_channels) != (stage2.in_size, stage2.in_channels):
        raise ShapeMismatchError(
            f"Stage-I gives {stage1.out_channels}x{stage1.out_size}x{stage1.out_size} images but "
            f"Stage-II takes {stage2.in_channels}x{stage2.in_size}x{stage2.in_size}; build the "
            f"Stage-II with in_size={stage1.out_size}, in_channels={stage1.out_channels}"
        )


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
        z1 = torch.randn(n, self.stage1.z_dim, generator=generator, device=device)
        z2 = torch.randn(n, self.stage2.z_dim, generator=generator, device=device)
        return z1, z2

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            mid = self.stage1(z1)
        return mid, self.stage2(mid, z2)

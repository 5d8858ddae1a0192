"""Exponential moving average of a generator's weights, used for sampling."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``shadow = decay * shadow + (1 - decay) * weights`` after each generator step.

    With ``warmup`` the decay starts low and grows as ``(1 + n) / (10 + n)`` after n updates
    (capped at ``decay``), so a short run is not an average dominated by its random start
    (docs/quality.md measured that). Buffers (BatchNorm statistics, spectral-norm vectors)
    are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = False) -> None:
        self.decay, self.warmup, self.updates = decay, warmup, 0
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        """The decay of the next update."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow towards ``model``."""
        decay = self.current_decay()
        self.updates += 1
        shadow, params = list(self.shadow.parameters()), list(model.parameters())
        if len(shadow) != len(params):
            raise ValueError("the EMA's model and this one have different parameters")
        if shadow:  # few launches for all of them
            torch._foreach_lerp_(shadow, [p.detach() for p in params], 1.0 - decay)
        buffers = list(self.shadow.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(model.buffers()))

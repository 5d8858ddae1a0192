"""Adversarial losses on discriminator logits (the Sigmoid lives here, not in D)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bce", "hinge")


def d_loss_real(logits: torch.Tensor, kind: str, smoothing: float = 0.0) -> torch.Tensor:
    """Discriminator loss on real images; ``smoothing`` > 0 is one-sided label smoothing
    (target 1 - smoothing; BCE only)."""
    if kind == "hinge":
        return F.relu(1.0 - logits).mean()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 - smoothing))


def d_loss_fake(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Discriminator loss on generated images."""
    if kind == "hinge":
        return F.relu(1.0 + logits).mean()
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def g_loss(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Generator loss (non-saturating BCE, Eq. 1 of the paper; or hinge)."""
    if kind == "hinge":
        return -logits.mean()
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def r1_penalty(logits: torch.Tensor, real: torch.Tensor, gamma: float) -> torch.Tensor:
    """Zero-centred gradient penalty on real images (R1, Mescheder et al. 2018):
    ``gamma / 2 * E ||grad_x D(x)||^2``; ``real`` must require grad."""
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return 0.5 * gamma * grad.float().pow(2).flatten(1).sum(1).mean()

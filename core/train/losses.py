"""Adversarial losses on discriminator logits (the Sigmoid lives here, not in D)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bce", "hinge")


def d_loss_real(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Discriminator loss on real images."""
    if kind == "hinge":
        return F.relu(1.0 - logits).mean()
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


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

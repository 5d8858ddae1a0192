"""Adversarial losses on discriminator logits (the Sigmoid lives here, not in D)."""

from __future__ import annotations

from typing import Any

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


class LeCam:
    """LeCam regularisation (Tseng et al. 2021, GANs under limited data): D's logits on real
    images are pulled towards the moving average of its logits on generated ones and the
    other way round, ``weight * (E[relu(D(x) - a_fake)^2] + E[relu(a_real - D(G(z)))^2])``,
    with ``a_real``/``a_fake`` moving averages (``decay``) of D's mean logits. `real` and
    `fake` each update their average and return their half (D's two backward passes).
    The averages stay on the device; a checkpoint keeps them (`state_dict`).
    """

    def __init__(self, weight: float, decay: float = 0.99,
                 device: torch.device | str = "cpu") -> None:
        self.weight, self.decay = weight, decay
        self.a_real = torch.zeros((), device=device)
        self.a_fake = torch.zeros((), device=device)

    def _move(self, average: torch.Tensor, logits: torch.Tensor) -> None:
        average.mul_(self.decay).add_(logits.detach().float().mean(), alpha=1 - self.decay)

    def real(self, logits: torch.Tensor) -> torch.Tensor:
        """The real half (after moving ``a_real``)."""
        self._move(self.a_real, logits)
        return self.weight * F.relu(logits.float() - self.a_fake).pow(2).mean()

    def fake(self, logits: torch.Tensor) -> torch.Tensor:
        """The generated half (after moving ``a_fake``)."""
        self._move(self.a_fake, logits)
        return self.weight * F.relu(self.a_real - logits.float()).pow(2).mean()

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (plain numbers)."""
        return {"a_real": float(self.a_real), "a_fake": float(self.a_fake)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict`."""
        self.a_real.fill_(float(state["a_real"]))
        self.a_fake.fill_(float(state["a_fake"]))

"""Differentiable augmentation (Zhao et al. 2020) for training GANs on small data.

Applied to real and fake images alike on the discriminator side. Written for grayscale or
colour images in [-1, 1]; every random draw comes from the given ``torch.Generator`` so that
training stays reproducible and resumable.

Each operation is applied to each image with probability ``p`` (Karras et al. 2020, ADA): at
``p = 1`` always (DiffAugment's form); below 1, D also sees unaugmented images, so an
augmentation that cannot be undone (cutout's black square) cannot leak into G's images.
`AdaptiveP` moves ``p`` during training by ADA's overfitting heuristic.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from usgan.core.noise import to_device

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str | None) -> list[str]:
    """``"color,translation"`` -> ``["color", "translation"]``; ``none`` or empty -> ``[]``;
    unknown names are an error."""
    from usgan.core.errors import UnknownNameError

    if (text or "").strip().lower() == "none":
        return []
    names = [p.strip() for p in (text or "").split(",") if p.strip()]
    for name in names:
        if name not in POLICIES:
            raise UnknownNameError("DiffAugment policy", name, POLICIES)
    return names


def _rand(x: torch.Tensor, g: torch.Generator, *shape: int) -> torch.Tensor:
    return to_device(torch.rand(x.shape[0], *shape, generator=g, device=g.device), x.device,
                     x.dtype)


def color(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random brightness (+-0.5) and contrast (x0.5..1.5) per image."""
    x = x + (_rand(x, g, 1, 1, 1) - 0.5)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, g, 1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Random shift by up to ``ratio`` of the size, zero (black) padding."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = (_rand(x, g, 1) * (2 * sh + 1)).long().squeeze(1) - sh
    tx = (_rand(x, g, 1) * (2 * sw + 1)).long().squeeze(1) - sw
    ys = (torch.arange(h, device=x.device)[None] - ty[:, None]).clamp(-1, h)  # [B, H]
    xs = (torch.arange(w, device=x.device)[None] - tx[:, None]).clamp(-1, w)
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    rows = (ys + 1)[:, None, :, None].expand(b, x.shape[1], h, w + 2)
    out = padded.gather(2, rows)
    cols = (xs + 1)[:, None, None, :].expand(b, x.shape[1], h, w)
    return out.gather(3, cols)


def cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """A random square of ``ratio`` of the size set to black, per image."""
    _, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (_rand(x, g, 1) * (h + 1 - ch % 2)).long()
    cx = (_rand(x, g, 1) * (w + 1 - cw % 2)).long()
    ys = torch.arange(h, device=x.device)[None]
    xs = torch.arange(w, device=x.device)[None]
    in_y = ((ys - cy + ch // 2) >= 0) & ((ys - cy + ch // 2) < ch)
    in_x = ((xs - cx + cw // 2) >= 0) & ((xs - cx + cw // 2) < cw)
    mask = (in_y[:, :, None] & in_x[:, None, :])[:, None]
    return torch.where(mask, torch.full_like(x, -1.0), x)


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: list[str], g: torch.Generator,
                 p: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Apply the named augmentations in order (identity for an empty policy), each to each
    image with probability ``p`` (a float, or a 0-d tensor that `AdaptiveP` moves); at a float
    ``p = 1`` nothing more is drawn from ``g`` than DiffAugment itself draws."""
    for name in policy:
        y = _OPS[name](x, g)
        if isinstance(p, torch.Tensor) or p < 1:
            draw = torch.rand(x.shape[0], 1, 1, 1, generator=g, device=g.device)
            y = torch.where(to_device(draw, x.device) < p, y, x)
        x = y
    return x


class AdaptiveP:
    """ADA's augmentation probability (Karras et al. 2020, "adaptive discriminator
    augmentation"): every ``interval`` steps, ``r = E[sign(D(real))]`` over them; ``p`` moves
    up by ``interval * batch / images`` when ``r > target`` (D is sure of the real images: it
    is overfitting), down otherwise, within [0, 1]. ``images``: how many images it takes ``p``
    to cross from 0 to 1 (ADA: 500k on large data; short CPU runs need far fewer).

    ``p`` stays a tensor on the device, so the step reads no value back to the host.
    """

    def __init__(self, p: float, target: float, images: int, batch: int, interval: int = 4,
                 device: torch.device | str = "cpu") -> None:
        self.target, self.interval = target, interval
        self.rate = interval * batch / images
        self.p = torch.tensor(float(p), device=device)
        self.acc = torch.zeros((), device=device)
        self.count = 0

    def observe(self, logit_real: torch.Tensor) -> None:
        """Count one step's real logits; adjust ``p`` at the end of every interval."""
        self.acc += torch.sign(logit_real.detach().float()).mean()
        self.count += 1
        if self.count % self.interval == 0:
            r = self.acc / self.interval
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(r)
                r = r / torch.distributed.get_world_size()
            self.p = (self.p + torch.sign(r - self.target) * self.rate).clamp(0.0, 1.0)
            self.acc.zero_()

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (plain numbers)."""
        return {"p": float(self.p), "acc": float(self.acc), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict`."""
        self.p.fill_(float(state["p"]))
        self.acc.fill_(float(state["acc"]))
        self.count = int(state["count"])

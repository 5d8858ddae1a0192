"""Differentiable augmentation (Zhao et al. 2020) for training GANs on small data.

Applied to real and fake images alike on the discriminator side. Written for grayscale or
colour images in [-1, 1]; every random draw comes from the given ``torch.Generator`` so that
training stays reproducible and resumable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
    return torch.rand(x.shape[0], *shape, generator=g, device=g.device).to(x.device, x.dtype)


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


def diff_augment(x: torch.Tensor, policy: list[str], g: torch.Generator) -> torch.Tensor:
    """Apply the named augmentations in order (identity for an empty policy)."""
    for name in policy:
        x = _OPS[name](x, g)
    return x

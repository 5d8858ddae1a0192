"""Differentiable augmentation (Zhao et al. 2020) for training GANs on small data.

Applied to real and fake images alike on the discriminator side. Written for grayscale or
colour images in [-1, 1]; every random draw comes from the given ``torch.Generator`` so that
training stays reproducible and resumable.

Written for few operators per call, as on a GPU each is a kernel launch and a small GAN step
is launch-bound: one draw and one copy for all of a call's random numbers, ``color`` as one
affine map per image, and a run of geometric ops (``translation,cutout``) as one gather whose
source indices are computed on small ``[B, H + W]`` tensors. About 30 operators forward and 3
backward per call, where the ops one at a time took 50 and 19.

Each operation is applied to each image with probability ``p`` (Karras et al. 2020, ADA): at
``p = 1`` always (DiffAugment's form); below 1, D also sees unaugmented images, so an
augmentation that cannot be undone (cutout's black square) cannot leak into G's images.
`AdaptiveP` moves ``p`` during training by ADA's overfitting heuristic.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
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


TRANSLATION = 0.125  # the largest shift, as a fraction of the size
CUTOUT = 0.5  # the square's side, as a fraction of the size
GEOMETRIC = ("translation", "cutout")  # ops that move or black out pixels: one gather


def diff_augment(x: torch.Tensor, policy: list[str], g: torch.Generator,
                 p: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Apply the named augmentations in order (identity for an empty policy), each to each
    image with probability ``p`` (a float, or a 0-d tensor that `AdaptiveP` moves); all of
    a call's random numbers are one draw from ``g`` (`draw`)."""
    if not policy:
        return x
    return augment(x, policy, draw(x.shape[0], len(policy), g, p, x.device), p)


def draw(batch: int, ops: int, g: torch.Generator, p: float | torch.Tensor,
         device: torch.device) -> torch.Tensor:
    """Uniform draws ``[batch, ops, k]`` from ``g``, one copy to ``device``: two per op and
    image (the op's parameters), and a third (whether it applies) unless ``p`` is the float
    1."""
    k = 2 if isinstance(p, float | int) and p >= 1 else 3
    return to_device(torch.rand(batch, ops, k, generator=g, device=g.device), device)


def augment(x: torch.Tensor, policy: list[str], u: torch.Tensor,
            p: float | torch.Tensor = 1.0) -> torch.Tensor:
    """``policy`` applied with the draws ``u`` of `draw`: ``color`` as one affine map per
    image, each run of geometric ops as one gather (`geometry`)."""
    on = u[..., 2] < p if u.shape[-1] > 2 else None  # [B, ops]: which op applies where
    i = 0
    while i < len(policy):
        if policy[i] == "color":
            x, i = color(x, u[:, i], None if on is None else on[:, i]), i + 1
            continue
        j = i
        while j < len(policy) and policy[j] in GEOMETRIC:
            j += 1
        x, i = geometry(x, policy[i:j], u[:, i:j], None if on is None else on[:, i:j]), j
    return x


def color(x: torch.Tensor, u: torch.Tensor, on: torch.Tensor | None) -> torch.Tensor:
    """Brightness +-0.5 (``u[:, 0]``), then contrast x0.5..1.5 (``u[:, 1]``) about the
    image's mean, per image where ``on``: ``x * c + mean * (1 - c) + b``, exactly ``x``
    where it is off (c = 1, b = 0)."""
    b, c = u[:, 0] - 0.5, u[:, 1] + 0.5
    if on is not None:
        b, c = b * on, torch.where(on, c, 1.0)
    b, c = (t.view(-1, 1, 1, 1).to(x.dtype) for t in (b, c))
    return x * c + (x.mean(dim=(1, 2, 3), keepdim=True) * (1 - c) + b)


def geometry(x: torch.Tensor, names: list[str], u: torch.Tensor, on: torch.Tensor | None
             ) -> torch.Tensor:
    """Translations (shift by up to `TRANSLATION` of the size, ``u[:, k, 0]`` down and
    ``u[:, k, 1]`` right, black padding) and cutouts (a black square of `CUTOUT` of the
    size centred at ``u[:, k]``) in order, as one gather from the black-padded image.

    Walking the ops from the last, each output pixel's source row and column are followed
    back (rows and columns side by side: ``[B, H + W]``); a pixel is black where a shift
    took it off the image or a square covered it."""
    b, ch, h, w = x.shape
    f = _frame(h, w, x.device, _stream(x.device))
    coords, black = f.coords.expand(b, -1), None
    for k in reversed(range(len(names))):
        apply = None if on is None else on[:, k, None]
        if names[k] == "translation":
            shift = (u[:, k, :2] * f.shift_span).long() - f.shift_max
            coords = coords - (shift if apply is None else shift * apply)[:, f.axis]
            off = (coords < 0) | (coords >= f.limit)
            hit = off[:, :h, None] | off[:, None, h:]
        else:
            low = (u[:, k, :2] * f.cut_room).long() - f.cut_half
            d = coords - low[:, f.axis]
            inside = (d >= 0) & (d < f.cut_side)
            hit = inside[:, :h, None] & inside[:, None, h:]
            hit = hit if apply is None else hit & apply[:, :, None]
        black = hit if black is None else black | hit
    index = coords[:, :h, None] * (w + 2) + coords[:, None, h:] + (w + 3)
    index = torch.where(black, 0, index).view(b, 1, h * w).expand(b, ch, h * w)
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0).flatten(2)  # index 0: a black corner
    return padded.gather(2, index).view(b, ch, h, w)


@dataclass(frozen=True)
class _Frame:
    """Constants of `geometry` for one image size on one device, per entry of ``[H + W]``
    (rows then columns): its coordinate, its axis (0 rows, 1 columns) and that axis's size,
    and per axis the shifts' and squares' sizes."""

    coords: torch.Tensor
    axis: torch.Tensor
    limit: torch.Tensor
    shift_span: torch.Tensor  # 2 * max + 1 shifts per axis
    shift_max: torch.Tensor
    cut_room: torch.Tensor  # where a square's centre can fall
    cut_half: torch.Tensor
    cut_side: torch.Tensor


def _stream(device: torch.device) -> int:
    """The current CUDA stream's id on ``device`` (0 elsewhere)."""
    return torch.cuda.current_stream(device).stream_id if device.type == "cuda" else 0


@functools.lru_cache(maxsize=32)
def _frame(h: int, w: int, device: torch.device, stream: int) -> _Frame:
    """Built on the CPU, moved by `to_device` (no host synchronisation), kept per size and
    per CUDA ``stream``: the copy is queued on the stream that uses it (`usgan train --jobs`
    trains each class in a stream of its own)."""
    shift = [int(n * TRANSLATION + 0.5) for n in (h, w)]
    side = [int(n * CUTOUT + 0.5) for n in (h, w)]
    axis = torch.tensor([0] * h + [1] * w)
    per_axis = {"shift_span": [2 * s + 1 for s in shift], "shift_max": shift,
                "cut_room": [h + 1 - side[0] % 2, w + 1 - side[1] % 2],
                "cut_half": [s // 2 for s in side]}
    cpu = {"coords": torch.cat([torch.arange(h), torch.arange(w)]), "axis": axis,
           "limit": torch.tensor([h, w])[axis], "cut_side": torch.tensor(side)[axis],
           **{k: torch.tensor(v) for k, v in per_axis.items()}}
    return _Frame(**{k: to_device(v, device) for k, v in cpu.items()})


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

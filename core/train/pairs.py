"""What a Stage-II generator refines, step by step: real pairs first, then Stage-I images.

A Stage-II learns fastest from the real high-resolution images themselves: each is
*degraded* to what a Stage-I gives (area-downsampled to the Stage-I size, blurred, noised),
and the refiner learns to restore the original (reconstruction + adversarial loss). Then it
fine-tunes on the frozen Stage-I's own images, where nothing is there to restore and the
reconstruction term becomes *consistency*: the refined image, downsampled, stays its input.

Both kinds of step can train on random crops (``crop`` px of the high-resolution image and
the matching ``crop / factor`` px of the low-resolution one): a fully convolutional refiner
and discriminator learn the same texture for a fraction of the cost, and sample at full size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from usgan.core.errors import ConfigError
from usgan.core.noise import to_device

if TYPE_CHECKING:
    from .state import Schedule, TrainState

BLUR_TAPS = 5  # Gaussian kernel of the low-resolution blur (radius 2: enough for sigma <= 1.5)
# Consistency compares the refined image with its Stage-I input at 1/4 of the Stage-I size:
# the layout stays, while Stage-I's pixel-level artefacts (checkerboard) may be repaired.
CONSISTENCY = 4


@dataclass(frozen=True)
class Degradation:
    """Real image -> what a Stage-I gives: area-downsample by ``factor``, then a Gaussian blur
    of sigma drawn from [0, ``blur``] (low-resolution pixels) and Gaussian noise of std drawn
    from [0, ``noise``] (in [-1, 1] units), each per image."""

    factor: int
    blur: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise ConfigError(f"the degradation factor must be at least 1, got {self.factor}")
        if self.blur < 0 or self.noise < 0:
            raise ConfigError("--stage2-blur and --stage2-noise must not be negative")

    def __call__(self, hr: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``hr`` [B, C, H, W] in [-1, 1] -> [B, C, H / factor, W / factor] in [-1, 1]."""
        x = F.avg_pool2d(hr, self.factor) if self.factor > 1 else hr
        b = x.shape[0]
        if self.blur > 0:
            x = gaussian_blur(x, to_device(_draw(b, self.blur, gen), x.device))
        if self.noise > 0:
            std = _draw(b, self.noise, gen).view(b, 1, 1, 1)
            x = x + to_device(std, x.device) * to_device(torch.randn(x.shape, generator=gen),
                                                         x.device)
        return x.clamp(-1, 1)


def _draw(n: int, high: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) * high


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of ``x`` [B, C, H, W] with its own sigma (``sigma`` [B]; 0: as it is),
    separably, reflecting at the borders."""
    b, c, h, w = x.shape
    r = BLUR_TAPS // 2
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    s = sigma.to(x.dtype).clamp_min(1e-3).view(b, 1)
    k = torch.exp(-0.5 * (t / s) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [B*C, taps]
    y = F.pad(x.reshape(1, b * c, h, w), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(b * c, 1, 1, -1), groups=b * c)
    y = F.conv2d(y, k.view(b * c, 1, -1, 1), groups=b * c)
    return y.view(b, c, h, w)


def random_crops(x: torch.Tensor, size: int, gen: torch.Generator, step: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``size`` crop of each image of ``x`` at a random corner on a grid of ``step`` px;
    returns the crops and the corners [B, 2] (y, x) so that a matching crop can be cut."""
    b, _, h, w = x.shape
    if size > min(h, w):
        raise ConfigError(f"crop {size} is larger than the {h}x{w} images")
    corners = torch.stack([torch.randint(0, (h - size) // step + 1, (b,), generator=gen),
                           torch.randint(0, (w - size) // step + 1, (b,), generator=gen)], 1)
    corners = corners * step
    return crop_at(x, corners, size), corners


def crop_at(x: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """The ``size`` crop of each image of ``x`` whose top-left corner is ``corners[i]`` (one
    gather on ``x``'s device: the corners are not read on the host)."""
    at = to_device(corners, x.device)
    span = torch.arange(size, device=x.device)
    rows, cols = (at[:, 0:1] + span)[:, :, None], (at[:, 1:2] + span)[:, None, :]
    batch = torch.arange(x.shape[0], device=x.device)[:, None, None]
    return x[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()  # from [B, size, size, C]


@dataclass
class RefineFeed:
    """Turns a step's real batch and noise into what the Stage-II step needs: the images D
    sees as real, the generator's inputs ``(low-resolution image, z2)``, and the target of
    the reconstruction term (the real crop while pretraining; the low-resolution input at
    1/`CONSISTENCY` of its size, for consistency, while fine-tuning on ``stage1``'s
    images)."""

    stage1: nn.Module
    degradation: Degradation
    crop: int | None  # high-resolution crop size; None: whole images

    def pretrain(self, real: torch.Tensor, noise: Sequence[torch.Tensor], gen: torch.Generator
                 ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
        """Real pairs: D's real images, G's inputs, the reconstruction target (= D's real)."""
        f = self.degradation.factor
        if self.crop:
            real, _ = random_crops(real, self.crop, gen, step=f)
        return real, (self.degradation(real, gen).to(real.dtype), noise[-1]), real

    def finetune(self, real: torch.Tensor, noise: Sequence[torch.Tensor], gen: torch.Generator
                 ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
        """Stage-I's images: D's real images, G's inputs, the consistency target (the input,
        area-downsampled by `CONSISTENCY`)."""
        with torch.no_grad():
            low = self.stage1(noise[0]).to(real.dtype)
        if self.crop:
            real, _ = random_crops(real, self.crop, gen)
            low, _ = random_crops(low, self.crop // self.degradation.factor, gen)
        return real, (low, noise[-1]), F.avg_pool2d(low, min(CONSISTENCY, low.shape[-1]))


def reconstruction(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of ``fake`` and ``target``, ``fake`` first area-downsampled to
    ``target``'s size when that is smaller (consistency with a low-resolution input)."""
    if fake.shape[-1] != target.shape[-1]:
        fake = F.adaptive_avg_pool2d(fake, target.shape[-2:])
    return (fake.float() - target.float()).abs().mean()


class Refinement:
    """A Stage-II phase's inputs, step by step: ``feed``'s real pairs for the first ``share``
    of the phase (by steps or time, whichever first; `Schedule.past`), then Stage-I's images;
    a ``share`` of 1 keeps the real pairs to the end. The step where the pairs ended is kept
    in the `TrainState` (and so in checkpoints); there both learning rates are multiplied by
    ``finetune_lr`` (the optimizers' state, and so checkpoints, keep it)."""

    def __init__(self, feed: RefineFeed, share: float, key: str,
                 echo: Callable[[str], None], finetune_lr: float = 1.0) -> None:
        self.feed, self.share, self.key, self.echo = feed, share, key, echo
        self.finetune_lr = finetune_lr

    def pretraining(self, state: TrainState) -> bool:
        return self.share > 0 and (state.pretrain_end is None or state.step < state.pretrain_end)

    def inputs(self, state: TrainState, real: torch.Tensor, noise: Sequence[torch.Tensor]
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
        """D's real images, G's inputs and the reconstruction target of this step."""
        make = self.feed.pretrain if self.pretraining(state) else self.feed.finetune
        return make(real, noise, state.streams["aug"])

    def advance(self, schedule: Schedule, state: TrainState,
                agree: Callable[[bool], bool]) -> None:
        """After a step: end the real pairs once their share is behind (``agree`` makes
        every process decide alike)."""
        if self.share >= 1 or not self.pretraining(state) or state.pretrain_end is not None:
            return
        if agree(schedule.past(self.share, state.step, state.elapsed)):
            state.pretrain_end = state.step
            for opt in (state.opt_g, state.opt_d) if self.finetune_lr != 1 else ():
                for group in opt.param_groups:
                    group["lr"] *= self.finetune_lr
            self.echo(f"{self.key}: real pairs done at step {state.step}; fine-tuning on "
                      "Stage-I's images")


class Unrefined:
    """A Stage-I phase: the real batch and the noise as they are, nothing to switch."""

    share = 0.0

    def inputs(self, state: TrainState, real: torch.Tensor, noise: Sequence[torch.Tensor]
               ) -> tuple[torch.Tensor, Sequence[torch.Tensor], None]:
        return real, noise, None

    def advance(self, schedule: Schedule, state: TrainState,
                agree: Callable[[bool], bool]) -> None:
        return None

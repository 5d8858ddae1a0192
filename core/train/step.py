"""One GAN step: a discriminator update, then a generator update.

The one definition used by the trainer, the benchmarks and the plugin conformance kit.
D sees real and generated images through the same DiffAugment policy (an empty policy is the
identity); losses are computed in fp32 on the logits, the forward passes run under the
runtime's autocast. A non-finite loss raises `NonFiniteLoss` before that update is applied;
with ``lazy_check`` the step instead adds its losses to a sum on the device and `verify`
raises later (the trainer calls it every ``--log-every`` steps), so that a step makes no host
synchronisation at all: its `StepStats` are device tensors too, read only when logged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from usgan.core.contract import per_slice
from usgan.core.layers import batch_slices
from usgan.core.noise import to_device
from usgan.core.stage import Stage

from . import losses
from .diffaugment import AdaptiveP, diff_augment
from .ema import EMA
from .losses import LeCam
from .pairs import reconstruction

if TYPE_CHECKING:
    from .options import TrainOptions

Generate = Callable[[Sequence[torch.Tensor]], torch.Tensor]
FUSED_ADAM = ("cuda", "cpu")  # devices where torch.optim.Adam(fused=True) runs


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite (``who`` is "discriminator" or "generator")."""

    def __init__(self, who: str, value: float, steps: int = 0) -> None:
        super().__init__(f"{who} loss is {value}")
        self.who, self.value = who, value
        self.steps = steps  # found by `GANStep.verify`: in one of the last ``steps`` steps


@dataclass
class StepStats:
    """What one step reports, as device tensors: the losses (0-dim) and D's logits on the
    real and the generated batch, turned into mean D(x), D(G(z)) only when read."""

    loss_d: torch.Tensor
    loss_g: torch.Tensor
    logit_real: torch.Tensor
    logit_fake: torch.Tensor

    def as_dict(self) -> dict[str, float]:
        """The numbers (a host synchronisation: call it when logging, not every step)."""
        d_real, d_fake = (torch.sigmoid(x.float()).mean() for x in (self.logit_real,
                                                                    self.logit_fake))
        values = torch.stack([self.loss_d.float(), self.loss_g.float(), d_real, d_fake])
        return dict(zip(("loss_d", "loss_g", "d_real", "d_fake"), values.tolist(),
                        strict=True))


def make_optimizers(
    g: nn.Module, d: nn.Module, lr: float = 2e-4, betas: Sequence[float] = (0.5, 0.999),
    lr_d: float | None = None,
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for G (its trainable parameters) and for D, as in the paper; ``lr_d`` gives D its
    own learning rate (two time-scale update rule, Heusel et al. 2017). On a GPU and on the
    CPU, torch's fused Adam: one operator per step for all parameters, where the default
    takes one per tensor per arithmetic step (on a GPU, a kernel launch each); the same state
    dict. Elsewhere torch's default."""
    trainable = [p for p in g.parameters() if p.requires_grad]
    b = (float(betas[0]), float(betas[1]))
    return (_adam(trainable, lr, b), _adam(list(d.parameters()), lr if lr_d is None else lr_d, b))


def _adam(params: list[nn.Parameter], lr: float, betas: tuple[float, float]
          ) -> torch.optim.Optimizer:
    fused = bool(params) and all(p.device.type in FUSED_ADAM for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, **({"fused": True} if fused else {}))


def load_optimizer(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``opt.load_state_dict(state)``, each moment then laid out in memory as its parameter:
    a checkpoint stores tensors contiguous, and torch's fused Adam walks a parameter and its
    moments as flat arrays, so a channels_last weight with contiguous moments would be
    updated wrongly, silently (the foreach and per-tensor forms do not care)."""
    opt.load_state_dict(state)
    for group in opt.param_groups:
        for p in group["params"]:
            moments = opt.state.get(p, {})
            for key, value in moments.items():
                if (isinstance(value, torch.Tensor) and value.shape == p.shape
                        and value.stride() != p.stride()):
                    moments[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


@dataclass(frozen=True)
class Regularizers:
    """What the discriminator step adds to the plain GAN loss (all off by default)."""

    label_smoothing: float = 0.0  # one-sided: real target 1 - s (BCE)
    instance_noise: float = 0.0  # std of Gaussian noise on every D input
    r1_gamma: float = 0.0  # zero-centred gradient penalty on real images


class GANStep:
    """Call with a batch of real images and the generator's noise; returns `StepStats`.

    ``generate(noise)`` makes the fake batch with gradients into the trained generator (for a
    Stage-II, through `usgan.core.stacking.forward_stack`); ``d`` may be DDP-wrapped. With
    ``ema`` the average of ``ema_of`` moves after each generator update. DiffAugment applies
    each op with probability ``p``, or ``ada.p`` when an `AdaptiveP` is given (which then
    observes every step's real logits); ``lecam`` adds `losses.LeCam` to D's loss. ``joint``
    (default: whether ``d`` declares `usgan.core.contract.per_slice`, or per_image) runs D's
    update on the real and the generated batch as one batch, in two `batch_slices`.
    """

    def __init__(
        self, generate: Generate, d: nn.Module, opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer, *, loss: str = "bce", policy: Sequence[str] = (),
        aug: torch.Generator | None = None,
        autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
        ema: EMA | None = None, ema_of: nn.Module | None = None,
        guard: Sequence[nn.Module] = (), reg: Regularizers = Regularizers(),
        recon: float = 0.0, p: float = 1.0, ada: AdaptiveP | None = None,
        lecam: LeCam | None = None, lazy_check: bool = False, joint: bool | None = None,
    ) -> None:
        self.generate, self.d, self.opt_g, self.opt_d = generate, d, opt_g, opt_d
        self.reg, self.recon, self.p, self.ada, self.lecam = reg, recon, p, ada, lecam
        self.loss, self.policy, self.aug, self.autocast = loss, list(policy), aug, autocast
        self.ema, self.ema_of = ema, ema_of
        self.joint = per_slice(d) if joint is None else joint
        self.guard = list(guard)
        if lazy_check and self.guard:
            raise ValueError("guard (--on-nan skip) needs every step checked: no lazy_check")
        self.lazy_check = lazy_check
        self._sums: dict[str, torch.Tensor] = {}  # lazy_check: each loss summed since verify
        self._since = 0  # steps since verify
        if (policy or reg.instance_noise) and aug is None:
            raise ValueError("DiffAugment and instance noise need their own torch.Generator "
                             "(aug=...)")

    @classmethod
    def for_options(cls, opts: TrainOptions, generate: Generate, d: nn.Module,
                    opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                    stage: Stage = Stage.ONE, **kwargs: Any) -> GANStep:
        """The step that ``opts`` asks for in ``stage``: its loss, DiffAugment policy,
        augmentation probability, regularizers and (Stage-II) the weight of the L1 term;
        ``kwargs`` are the run's own parts (aug, autocast, ema, ema_of, guard) and its
        stateful ones (ada, lecam: `TrainOptions.step_parts`)."""
        return cls(generate, d, opt_g, opt_d, loss=opts.loss, policy=opts.policy(stage),
                   reg=opts.regularizers(), recon=opts.stage2_recon if stage == Stage.TWO
                   else 0.0, p=opts.diffaugment_p, **kwargs)

    def _seen(self, *batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``batches`` as D sees them: through DiffAugment and instance noise, as one batch
        (one call for real and fake alike: half the operators of two), split back."""
        if not (self.policy or self.reg.instance_noise):
            return batches
        if len({b.shape[1:] for b in batches}) > 1:  # images of other sizes: one call each
            return tuple(seen for b in batches for seen in self._seen(b))
        x = batches[0] if len(batches) == 1 else torch.cat(batches)
        p = self.p if self.ada is None else self.ada.p
        x = diff_augment(x, self.policy, self.aug, p)  # type: ignore[arg-type]
        if self.reg.instance_noise:
            noise = torch.randn(x.shape, generator=self.aug, device=self.aug.device)  # type: ignore[union-attr]
            x = x + self.reg.instance_noise * to_device(noise, x.device, x.dtype)
        return x.split([b.shape[0] for b in batches])

    def _d(self, seen: torch.Tensor) -> torch.Tensor:
        return self.d(seen).float()

    def __call__(self, real: torch.Tensor, noise: Sequence[torch.Tensor],
                 target: torch.Tensor | None = None) -> StepStats:
        """One step; with ``target``, G's loss adds ``recon`` x the L1 distance of its images
        to it (`pairs.reconstruction`). With ``guard`` modules, a non-finite loss also restores
        their buffers (BatchNorm statistics, spectral-norm vectors), which the bad forward
        pass moved."""
        if not self.guard:
            return self._step(real, noise, target)
        saved = [[b.detach().clone() for b in m.buffers()] for m in self.guard]
        try:
            return self._step(real, noise, target)
        except NonFiniteLoss:
            with torch.no_grad():
                for module, buffers in zip(self.guard, saved, strict=True):
                    for b, old in zip(module.buffers(), buffers, strict=True):
                        b.copy_(old)
            raise

    def _d_update(self, real: torch.Tensor, fake: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """D's update; returns its loss and its logits on ``real`` and ``fake`` (detached).
        A `per_slice` D sees both batches as one (one forward and one backward pass), each
        batch a slice with its own BatchNorm statistics; any other sees real then fake, each
        its own pass, so that a BatchNorm's statistics stay those of one kind of image."""
        reg = self.reg
        if reg.r1_gamma:
            real = real.detach().requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        joint = self.joint and real.shape[1:] == fake.shape[1:]
        with self.autocast():
            if joint:
                (seen,) = self._seen(torch.cat([real, fake]))
                sizes = [real.shape[0], fake.shape[0]]
                with batch_slices(self.d, sizes):
                    logit_real, logit_fake = self._d(seen).split(sizes)
            else:
                seen_real, seen_fake = self._seen(real, fake)
                logit_real = self._d(seen_real)
            loss_real = losses.d_loss_real(logit_real, self.loss, reg.label_smoothing)
        if self.ada is not None:
            self.ada.observe(logit_real)
        penalty = losses.r1_penalty(logit_real, real, reg.r1_gamma) if reg.r1_gamma else 0.0
        if self.lecam is not None:
            penalty = penalty + self.lecam.real(logit_real)
        if not joint:  # with R1, the real pass's graph is freed before the fake pass
            (loss_real + penalty).backward()
            with self.autocast():
                logit_fake = self._d(seen_fake.detach())
        with self.autocast():
            loss_fake = losses.d_loss_fake(logit_fake, self.loss)
        fake_part = loss_fake if self.lecam is None else loss_fake + self.lecam.fake(logit_fake)
        (loss_real + penalty + fake_part if joint else fake_part).backward()  # joint: both
        loss_d = loss_real.detach() + loss_fake.detach()
        self._check("discriminator", loss_d)
        self.opt_d.step()
        return loss_d, logit_real.detach(), logit_fake.detach()

    def _step(self, real: torch.Tensor, noise: Sequence[torch.Tensor],
              target: torch.Tensor | None) -> StepStats:
        with self.autocast():
            fake = self.generate(noise)
        loss_d, logit_real, logit_fake = self._d_update(real, fake.detach())
        # Generator: through the updated D; D's gradients from this pass are dropped.
        self.opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            (seen,) = self._seen(fake)
            loss_g = losses.g_loss(self._d(seen), self.loss)
        if target is not None and self.recon:
            loss_g = loss_g + self.recon * reconstruction(fake, target)
        loss_g.backward()
        self._check("generator", loss_g)
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(self.ema_of)  # type: ignore[arg-type]
        self._since += 1
        return StepStats(loss_d, loss_g.detach(), logit_real, logit_fake)

    def _check(self, who: str, loss: torch.Tensor) -> None:
        if self.lazy_check:  # NaN or inf anywhere stays in the sum
            total = self._sums.get(who)
            self._sums[who] = loss.detach().float() if total is None else total + loss.detach()
        elif not torch.isfinite(loss):
            raise NonFiniteLoss(who, float(loss))

    def verify(self) -> None:
        """With ``lazy_check``: raise `NonFiniteLoss` if a loss since the last call was NaN or
        inf (one host synchronisation)."""
        (sums, self._sums), (since, self._since) = (self._sums, {}), (self._since, 0)
        for who, total in sums.items():
            if not torch.isfinite(total):
                raise NonFiniteLoss(who, float(total), steps=since)

"""The training-step workloads: a D step then a G step, in two forms.

- reference: the networks (built by the same factory, same seed) in plain fp32 eager,
  contiguous NCHW, `torch.optim.Adam(lr=2e-4, betas=(0.5, 0.999))`, and the paper's BCE step
  written out by hand (`PaperStep`): the baseline usgan is compared against.
- usgan: the trainer's own step, imported (`usgan.core.train.step.GANStep` with
  `make_optimizers`) as the default recipe sets it up (DiffAugment included), under the
  `Runtime`'s autocast (precision ``auto``: bf16 where the hardware computes it natively)
  and memory format (channels_last), inputs in that format.

A Stage-II trains on a fixed random Stage-I image (the frozen Stage-I is not timed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from usgan.core.factory import create_discriminator, create_generator, get_spec
from usgan.core.noise import noise_for
from usgan.core.runtime import Runtime
from usgan.core.stacking import DEFAULT_STAGE2, forward_stack
from usgan.core.stage import Stage
from usgan.core.train.options import TrainOptions
from usgan.core.train.step import GANStep, make_optimizers

from .forms import REFERENCE, USGAN, Form, Plan, Workload

STAGE1_NETS = ("dcgan", "dcgan-sn", "dcgan-sn-sa")
STAGE2_NET = DEFAULT_STAGE2
BATCH = 16
SEED = 0


class PaperStep:
    """The reference step: the paper's GAN step as plain PyTorch code would write it."""

    def __init__(self, g: nn.Module, d: nn.Module, generate: Callable[[torch.Tensor], Any],
                 real: torch.Tensor) -> None:
        self.g, self.d, self.generate, self.real = g, d, generate, real
        self.opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.ones = torch.ones(real.shape[0], device=real.device)
        self.zeros = torch.zeros(real.shape[0], device=real.device)

    def __call__(self, real: torch.Tensor | None = None) -> None:
        """One step on ``real`` (a batch of the constructor's size; default: its batch)."""
        real = self.real if real is None else real
        z = torch.randn(real.shape[0], self.g.z_dim, device=real.device)
        fake = self.generate(z)
        self.opt_d.zero_grad()
        loss_d = (F.binary_cross_entropy_with_logits(self.d(real), self.ones)
                  + F.binary_cross_entropy_with_logits(self.d(fake.detach()), self.zeros))
        loss_d.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        loss_g = F.binary_cross_entropy_with_logits(self.d(fake), self.ones)
        loss_g.backward()
        self.opt_g.step()


def _nets(name: str, device: torch.device, fmt: torch.memory_format
          ) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(SEED)
    g = create_generator(name).to(device).to(memory_format=fmt)
    d = create_discriminator(name).to(device).to(memory_format=fmt)
    return g.train(), d.train()


def _images(channels: int, size: int, batch: int, device: torch.device, seed: int
            ) -> torch.Tensor:
    """A fixed batch in [-1, 1] (the same for both forms)."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, channels, size, size, generator=gen) * 2 - 1).to(device)


def _inputs(g: nn.Module, batch: int, device: torch.device, fmt: torch.memory_format
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The real batch and, for a Stage-II, the fixed Stage-I image, in ``fmt``."""
    real = _images(g.out_channels, g.out_size, batch, device, SEED + 1)
    mid = (_images(g.in_channels, g.in_size, batch, device, SEED + 2)
           if hasattr(g, "in_size") else None)
    real = real.contiguous(memory_format=fmt)
    return real, mid.contiguous(memory_format=fmt) if mid is not None else None


def reference_step(name: str, batch: int, device: torch.device) -> Callable[[], Any]:
    """The reference form's unit of work for network ``name``."""
    g, d = _nets(name, device, torch.contiguous_format)
    real, mid = _inputs(g, batch, device, torch.contiguous_format)
    generate = g if mid is None else (lambda z: g(mid, z))
    return PaperStep(g, d, generate, real)


def usgan_step(name: str, batch: int, rt: Runtime) -> Callable[[], Any]:
    """usgan's form: the trainer's `GANStep` with the default recipe (its values for this
    Stage-I network, or its Stage-II policy), under the runtime's autocast and layout, G and
    D compiled as the trainer compiles them (`Runtime.compiled`, with ``--compile``)."""
    g, d = _nets(name, rt.device, rt.memory_format)
    real, mid = _inputs(g, batch, rt.device, rt.memory_format)
    g_train, d_train = rt.compiled(g), rt.compiled(d)
    if mid is None:
        generate = lambda noise: forward_stack([g_train], noise)[-1]  # noqa: E731 (as the trainer)
    else:
        generate = lambda noise: g_train(mid, noise[0])  # noqa: E731
    stage = Stage.ONE if mid is None else Stage.TWO
    opts = TrainOptions(**({"stage1": name} if stage == Stage.ONE else {}))
    aug = torch.Generator().manual_seed(SEED + 4)  # on the CPU, as the trainer's stream
    step = GANStep.for_options(opts, generate, d_train, *make_optimizers(g, d, opts.lr, opts.betas,
                                                                         opts.lr_d),
                               stage=stage, aug=aug, autocast=rt.autocast, lazy_check=True,
                               **opts.step_parts(stage, rt.device))  # ADA, as it trains
    gen = torch.Generator().manual_seed(SEED + 3)

    def unit() -> Any:
        rt.step_begin()  # as the trainer, before each step
        return step(real, noise_for([g], batch, gen, rt.device))

    return unit


def layout_name(fmt: torch.memory_format) -> str:
    return "channels_last" if fmt == torch.channels_last else "NCHW"


def train_workload(name: str, stage: int, plan: Plan, rt: Runtime, batch: int = BATCH
                   ) -> Workload:
    """The training-step row of network ``name``."""
    defaults = get_spec(name).defaults
    size = defaults.get("out_size", defaults.get("size"))
    work = Workload(f"stage{stage}:{name}", f"Stage-{'I' * stage} step {name} "
                    f"(batch {batch}, {size}x{size})", "step", plan)
    work.forms = [
        Form(REFERENCE, "fp32", "NCHW", batch, lambda: reference_step(name, batch, rt.device)),
        Form(USGAN, rt.precision, layout_name(rt.memory_format)
             + (f", compiled {rt.compile}" if rt.compile else ""), batch,
             lambda: usgan_step(name, batch, rt), counted=rt.compile is None),
    ]
    return work


CLASSES_NET = "dcgan"  # the `classes` row: two classes of this Stage-I network
CLASS_STEPS = {False: 10, True: 2}  # steps per class in one unit of work (--quick: 2)


def classes_workload(plan: Plan, rt: Runtime, batch: int = BATCH, quick: bool = False
                     ) -> Workload:
    """Two classes' GANs (usgan's step, `CLASSES_NET`), ``CLASS_STEPS`` steps each per unit:
    one class after the other (reference: ``usgan train --jobs 1``) against both at once
    (usgan: ``--jobs 2``, `usgan.core.train.together`: a thread and a CUDA stream each, the
    CPU threads split between them)."""
    steps = CLASS_STEPS[quick]
    work = Workload("classes", f"Two classes' Stage-I {CLASSES_NET}, {steps} steps each "
                    f"(batch {batch}): --jobs 1 (reference) vs --jobs 2 (usgan)", "unit", plan)
    layout, images = layout_name(rt.memory_format), 2 * steps * batch
    work.forms = [Form(name, rt.precision, layout, images,
                       lambda jobs=jobs: two_classes(batch, rt, steps, jobs), counted=False)
                  for name, jobs in ((REFERENCE, 1), (USGAN, 2))]
    return work


def two_classes(batch: int, rt: Runtime, steps: int, jobs: int) -> Callable[[], Any]:
    """A unit of work: ``steps`` of each of two classes' usgan steps, ``jobs`` at a time."""
    from usgan.core.train.together import run_by_class, split_threads

    class Phase:  # what `run_by_class` groups by
        def __init__(self, cls: str) -> None:
            self.cls = cls

    units = {cls: usgan_step(CLASSES_NET, batch, rt) for cls in ("a", "b")}

    def unit() -> None:
        with split_threads(jobs, 2):
            run_by_class([Phase("a"), Phase("b")],
                         lambda phase: [units[phase.cls]() for _ in range(steps)],
                         jobs, rt.device, lambda: None)

    return unit

"""The sampling workload: Stage-I then Stage-II generation (``dcgan`` then ``stack``), eval
mode, no gradients, one batch per unit of work.

- reference: fp32 eager, contiguous NCHW, ``stage2(stage1(z1), z2)``.
- usgan: `usgan.core.stacking.forward_stack` under the `Runtime`'s autocast, networks and
  noise in its memory format (channels_last), noise from `usgan.core.noise.noise_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from usgan.core.factory import create_generator
from usgan.core.noise import noise_for
from usgan.core.runtime import Runtime
from usgan.core.stacking import DEFAULT_STAGE2, forward_stack, stage2_config

from .forms import REFERENCE, USGAN, Form, Plan, Workload
from .training import SEED, layout_name

STAGE1, STAGE2 = "dcgan", DEFAULT_STAGE2
BATCH = 64


def _chain(device: torch.device, fmt: torch.memory_format) -> list[nn.Module]:
    torch.manual_seed(SEED)
    g1 = create_generator(STAGE1).to(device).eval()
    g2 = create_generator(STAGE2, **stage2_config(g1)).to(device).eval()
    return [g.requires_grad_(False).to(memory_format=fmt) for g in (g1, g2)]


def reference_sampler(batch: int, device: torch.device) -> Callable[[], Any]:
    g1, g2 = _chain(device, torch.contiguous_format)

    def run() -> torch.Tensor:
        with torch.no_grad():
            z1 = torch.randn(batch, g1.z_dim, device=device)
            z2 = torch.randn(batch, g2.z_dim, device=device)
            return g2(g1(z1), z2)

    return run


def usgan_sampler(batch: int, rt: Runtime) -> Callable[[], Any]:
    chain = _chain(rt.device, rt.memory_format)
    gen = torch.Generator().manual_seed(SEED + 3)

    def run() -> torch.Tensor:
        with torch.no_grad(), rt.autocast():
            return forward_stack(chain, noise_for(chain, batch, gen, rt.device))[-1]

    return run


def sampling_workload(plan: Plan, rt: Runtime, batch: int = BATCH) -> Workload:
    work = Workload("sampling", f"Sampling {STAGE1} + {STAGE2} (batch {batch}, 256x256)",
                    "batch", plan)
    work.forms = [
        Form(REFERENCE, "fp32", "NCHW", batch, lambda: reference_sampler(batch, rt.device)),
        Form(USGAN, rt.precision, layout_name(rt.memory_format), batch,
             lambda: usgan_sampler(batch, rt)),
    ]
    return work

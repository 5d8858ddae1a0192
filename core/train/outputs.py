"""What a phase leaves in the run directory besides checkpoints: a sample grid now and then
while it trains, and its final weights (`usgan.core.run.RunDir` names the files)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from usgan.core.errors import UsganError
from usgan.core.io import write_grid
from usgan.core.noise import noise_for
from usgan.core.run import RunDir
from usgan.core.serialization import save_network
from usgan.core.stacking import forward_stack
from usgan.core.stage import Stage

from .checkpoint import prune
from .state import TrainState


class Grid(NamedTuple):
    """What every sample grid of a phase shows: 16 fixed latents, under a row of 4 of its
    training images (in [-1, 1])."""

    noise: tuple[torch.Tensor, ...]
    shown: torch.Tensor

    @classmethod
    def for_phase(cls, chain: list[nn.Module], real: torch.Tensor, seed: int) -> Grid:
        """The grid of a phase training ``chain``'s top network on uint8 ``real``."""
        noise = noise_for(chain, 16, torch.Generator().manual_seed(seed))
        step = max(1, real.shape[0] // 4)
        return cls(noise, real[::step][:4].float().cpu().div(127.5).sub(1))


def sample_grid(path: Path, chain: list[nn.Module], grid: Grid, device: torch.device) -> None:
    """A PNG of ``grid``'s training images (a row) over what ``chain`` makes of its noise;
    the top generator samples in eval mode and goes back to how it was."""
    noise, shown = grid
    top = chain[-1]
    was_training = top.training
    top.eval()
    with torch.no_grad():
        out = forward_stack(chain, [z.to(device) for z in noise])[-1].float().cpu()
    top.train(was_training)
    shown = torch.nn.functional.interpolate(shown, size=out.shape[-2:], mode="area")
    write_grid(path, torch.cat([shown, out]), nrow=4, pad_value=0)


class TrainingDiverged(UsganError):
    """A loss became NaN or infinite."""


def refuse_nonfinite(state: TrainState, what: str, ckpt_dir: Path) -> None:
    """Weights that hold NaN or inf (a NaN step no lazy check has seen yet) are never
    written: `TrainingDiverged` naming ``what`` (e.g. "final healthy/stage1") instead."""
    if bad := nonfinite_roles(state):
        raise TrainingDiverged(f"the {what} weights of the {' and '.join(bad)} hold NaN or inf; "
                               f"they are not saved; the last good checkpoint is kept in "
                               f"{ckpt_dir}")


def nonfinite_roles(state: TrainState) -> list[str]:
    """The networks of ``state`` ("generator", ...) whose weights hold NaN or inf."""
    nets = {"generator": state.g, "discriminator": state.d,
            "generator_ema": state.ema.shadow if state.ema else None}
    return [role for role, net in nets.items() if net is not None and not all(
        torch.isfinite(t).all() for t in net.state_dict().values() if t.is_floating_point())]


def sampled(state: TrainState) -> str:
    """Which of the phase's generators sampling uses: the EMA copy when there is one."""
    return "generator_ema" if state.ema is not None else "generator"


def save_final(run: RunDir, cls: str, stage: Stage, state: TrainState, ckpt_dir: Path,
               main: bool = True, prune_checkpoints: bool = True) -> None:
    """The phase's generator, discriminator and EMA generator as safetensors (refused when
    they hold NaN or inf), by the ``main`` process; then its checkpoints but the last go,
    with ``prune_checkpoints``."""
    refuse_nonfinite(state, f"final {cls}/{stage}", ckpt_dir)
    if not main:
        return
    save_network(state.g, run.weights(cls, stage, "generator"))
    save_network(state.d, run.weights(cls, stage, "discriminator"))
    if state.ema is not None:
        save_network(state.ema.shadow, run.weights(cls, stage, "generator_ema"))
    if prune_checkpoints:
        prune(ckpt_dir, 1)

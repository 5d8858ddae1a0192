"""What a training phase carries from step to step, and so what a checkpoint holds.

`TrainState`: the networks being trained, their optimizers, the EMA copy, the random streams
(data order, noise, augmentation) and the counters. Restoring a checkpoint into a fresh state
continues bit-identically (on CPU) to a run that never stopped. `Schedule`: how many steps
make an epoch and the phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from usgan.core.errors import ConfigError, UsganError
from usgan.core.runtime import Dist

from .ema import EMA
from .step import load_optimizer

STREAMS = ("data", "noise", "aug")


@dataclass(frozen=True)
class Schedule:
    """Batch size per process, steps per epoch, and the length of one phase: ``total`` steps
    and/or ``seconds`` of wall-clock time, whichever comes first (None: no such bound)."""

    n: int
    per_rank: int
    steps_per_epoch: int
    total: int | None
    seconds: float | None = None
    minutes: float | None = None  # the budget as asked for (config.json's max_minutes)

    @classmethod
    def plan(cls, n: int, batch_size: int, d: Dist, epochs: int | None, max_steps: int | None,
             default_epochs: int, what: str, max_minutes: float | None = None,
             flag: str = "--batch-size") -> Schedule:
        """The schedule for ``n`` images; ``what`` names them and ``flag`` the batch size's
        option in errors. A time budget alone (no epochs, no steps) bounds the phase by time
        only."""
        if batch_size % d.world:
            raise ConfigError(f"{flag} {batch_size} does not split evenly over "
                              f"{d.world} processes")
        if batch_size > n:
            raise ConfigError(f"{flag} {batch_size} is larger than the {n} images of "
                              f"{what}; use {flag} {n} or less")
        per_rank = batch_size // d.world
        steps_per_epoch = (n // d.world) // per_rank
        total: int | None = max_steps or (epochs or default_epochs) * steps_per_epoch
        if max_steps and epochs:
            total = min(max_steps, epochs * steps_per_epoch)
        if max_minutes and not (max_steps or epochs):
            total = None
        seconds = max_minutes * 60 if max_minutes else None
        return cls(n, per_rank, steps_per_epoch, total, seconds, max_minutes)

    def stop_reason(self, step: int, elapsed: float) -> str | None:
        """"steps" or "minutes" once the phase is over after ``step`` steps and ``elapsed``
        seconds, else None."""
        if self.total is not None and step >= self.total:
            return "steps"
        if self.seconds is not None and elapsed >= self.seconds:
            return "minutes"
        return None

    def past(self, share: float, step: int, elapsed: float) -> bool:
        """Whether ``share`` of the phase (by steps or by time, whichever first) is behind."""
        return ((self.total is not None and step >= share * self.total)
                or (self.seconds is not None and elapsed >= share * self.seconds))


class TrainState:
    """Networks, optimizers, EMA, random streams and counters of one phase, and the step's
    stateful parts (``parts``: `TrainOptions.step_parts`, each with ``state_dict`` and
    ``load_state_dict``)."""

    def __init__(
        self, g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer, ema: EMA | None, streams: dict[str, torch.Generator],
        n: int, parts: dict[str, Any] | None = None,
    ) -> None:
        self.g, self.d, self.opt_g, self.opt_d, self.ema = g, d, opt_g, opt_d, ema
        self.parts = parts or {}
        self.streams = streams
        self.step = self.epoch = self.pos = 0
        self.elapsed = 0.0  # seconds of training so far (a time budget's clock)
        self.pretrain_end: int | None = None  # Stage-II: the step its real pairs ended at
        self.skipped = 0  # non-finite steps in a row (--on-nan skip); not checkpointed
        self.perm = torch.randperm(n, generator=streams["data"])

    def next_indices(self, schedule: Schedule, d: Dist) -> torch.Tensor:
        """This process's image indices for the next step (a new shuffle every epoch)."""
        if self.pos >= schedule.steps_per_epoch:
            self.epoch, self.pos = self.epoch + 1, 0
            self.perm = torch.randperm(schedule.n, generator=self.streams["data"])
        local = self.perm[d.rank::d.world]
        return local[self.pos * schedule.per_rank:(self.pos + 1) * schedule.per_rank]

    def advance(self) -> None:
        """Count one finished step."""
        self.step, self.pos = self.step + 1, self.pos + 1

    def rank_state(self) -> dict[str, Any]:
        """What this process holds of its own: its random state (the global torch RNG and
        every stream) and its step parts' state (ADA sums this process's real logits)."""
        return {"rng": {"torch": torch.get_rng_state(),
                        **{k: v.get_state() for k, v in self.streams.items()}},
                "parts": {name: part.state_dict() for name, part in self.parts.items()}}

    def snapshot(self, ranks: list[dict[str, Any]]) -> dict[str, Any]:
        """The checkpoint content; ``ranks`` is every rank's `rank_state`, in rank order."""
        return {
            "step": self.step, "epoch": self.epoch, "pos": self.pos, "perm": self.perm,
            "g": self.g.state_dict(), "d": self.d.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "ema": self.ema.shadow.state_dict() if self.ema else None,
            "ema_updates": self.ema.updates if self.ema else None,
            "rng": [r["rng"] for r in ranks], "parts": [r["parts"] for r in ranks],
            "elapsed": self.elapsed, "pretrain_end": self.pretrain_end,
        }

    def restore(self, ckpt: dict[str, Any], rank: int, where: str = "the checkpoint") -> None:
        """Continue from ``ckpt`` (a `snapshot`, read from ``where``) as process ``rank``."""
        check_fits(ckpt, {"g": self.g, "d": self.d}, where)
        self.g.load_state_dict(ckpt["g"])
        self.d.load_state_dict(ckpt["d"])
        load_optimizer(self.opt_g, ckpt["opt_g"])
        load_optimizer(self.opt_d, ckpt["opt_d"])
        if self.ema is not None and ckpt.get("ema") is not None:
            self.ema.shadow.load_state_dict(ckpt["ema"])
            self.ema.updates = int(ckpt.get("ema_updates") or ckpt["step"])
        self.step, self.epoch, self.pos = ckpt["step"], ckpt["epoch"], ckpt["pos"]
        self.elapsed = float(ckpt.get("elapsed") or 0.0)
        self.pretrain_end = ckpt.get("pretrain_end")
        saved = ckpt.get("parts") or {}
        if isinstance(saved, list):  # per rank; older checkpoints hold rank 0's alone
            saved = saved[rank]
        for name, part in self.parts.items():
            if name in saved:
                part.load_state_dict(saved[name])
        self.perm = ckpt["perm"]
        rng = ckpt["rng"][rank]
        torch.set_rng_state(rng["torch"])
        for name, stream in self.streams.items():
            stream.set_state(rng[name])


ROLES = {"g": "generator", "d": "discriminator"}


def check_fits(ckpt: dict[str, Any], nets: dict[str, nn.Module], where: str) -> None:
    """One clear error, not ``load_state_dict``'s, when a checkpoint's networks do not fit the
    ones built today: the network's definition or defaults changed since the run started."""
    for key, net in nets.items():  # the snapshot's keys: "g", "d"
        have = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        saved = {k: tuple(v.shape) for k, v in ckpt[key].items()}
        if have != saved:
            differ = sorted(set(have) ^ set(saved)) or sorted(k for k in have
                                                              if have[k] != saved[k])
            raise UsganError(
                f"{where}: its {ROLES[key]} does not fit the network as usgan builds it today "
                f"({len(differ)} tensors differ, first {differ[0]}): the network's definition "
                "or defaults changed since the run started; resume with the versions in the "
                "run's config.json, or give the network its old settings (--stage1-config or "
                "--stage2-config, with --force)")

"""Sampling from a trained run: ``usgan.load(SOURCE).sample(n, cls=..., seed=...)``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import UnknownNameError, UsganError
from .serialization import load_network
from .stacking import StackedGenerator
from .train.rundir import RunDir


class Synthesizer:
    """The generators of one run, per class, ready to sample."""

    def __init__(self, run_dir: str | Path, device: str = "cpu") -> None:
        self.run = RunDir(Path(run_dir))
        if not self.run.root.is_dir():
            raise UsganError(f"{run_dir}: no such run directory")
        config = self.run.read_config()
        self.config = config
        self.classes: list[str] = list(config.get("classes") or [])
        self.has_stage2 = bool(config.get("stage2"))
        self.use_ema = bool(config.get("options", {}).get("ema"))
        self.device = torch.device(device)
        self._cache: dict[tuple[str, int], nn.Module] = {}

    def _load(self, cls: str, stage: int) -> nn.Module:
        key = (cls, stage)
        if key not in self._cache:
            path = self.run.weights(cls, stage, "generator_ema" if self.use_ema else "generator")
            if not path.is_file():
                path = self.run.weights(cls, stage, "generator")
            if not path.is_file():
                raise UsganError(f"{self.run.root} has no stage {stage} generator for class "
                                 f"{cls!r} ({path}); is the run finished?")
            self._cache[key] = load_network(path, map_location=str(self.device)).eval()
        return self._cache[key]

    def generator(self, cls: str, stage: int | None = None) -> nn.Module:
        """The Stage-I generator, or the stacked Stage-I + Stage-II generator."""
        stage = self._stage(stage)
        self._check_class(cls)
        if stage == 1:
            return self._load(cls, 1)
        return StackedGenerator(self._load(cls, 1), self._load(cls, 2)).eval()

    def _stage(self, stage: int | None) -> int:
        if stage is None:
            return 2 if self.has_stage2 else 1
        if stage not in (1, 2):
            raise UsganError(f"--stage must be 1 or 2, got {stage}")
        if stage == 2 and not self.has_stage2:
            raise UsganError(f"{self.run.root} was trained without Stage-II; use --stage 1")
        return stage

    def _check_class(self, cls: str) -> None:
        if cls not in self.classes:
            raise UnknownNameError(f"class in {self.run.root}", cls, self.classes)

    @torch.no_grad()
    def sample(
        self, n: int, cls: str | None = None, seed: int = 0, stage: int | None = None,
        batch_size: int = 16,
    ) -> torch.Tensor:
        """``n`` images of class ``cls`` as uint8 ``[n, C, H, W]``; the same seed gives the
        same images whatever the batch size."""
        if cls is None:
            if len(self.classes) != 1:
                raise UsganError(f"say which class: one of {', '.join(self.classes)}")
            cls = self.classes[0]
        if n < 1:
            raise UsganError(f"-n must be at least 1, got {n}")
        g = self.generator(cls, stage)
        gen = torch.Generator().manual_seed(seed)
        stage = self._stage(stage)
        if stage == 1:
            noise = [torch.randn(n, g.z_dim, generator=gen)]
        else:
            noise = list(g.sample_z(n, generator=gen))
        out = []
        for i in range(0, n, batch_size):
            batch = [z[i:i + batch_size].to(self.device) for z in noise]
            img = g(*batch)
            img = img[1] if isinstance(img, tuple) else img
            out.append(img.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu())
        return torch.cat(out)


def load(source: str | Path, device: str = "cpu") -> Synthesizer:
    """Open a run directory for sampling (zoo names will be accepted once the zoo exists)."""
    return Synthesizer(source, device=device)

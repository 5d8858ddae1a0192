"""Sampling from a trained run directory: ``Synthesizer(run_dir).sample(n, cls=..., seed=...)``.

``usgan.load(SOURCE)`` resolves zoo names and Hub repos to a run directory first
(`usgan.zoo.source`); this module only knows folders.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UnknownNameError, UsganError
from .noise import noise_for
from .plugin_manager import get_registry
from .registry import Registry
from .run import RunDir
from .runtime import Runtime
from .serialization import load_network
from .stacking import StackedGenerator, forward_stack
from .stage import Stage
from .train.options import TrainOptions


class Synthesizer:
    """The generators of one run, per class, ready to sample.

    ``precision`` (``auto``: bf16 where the hardware computes it natively, else fp32) and the
    runtime's memory format (channels_last) are the fast path `usgan bench` measures.
    """

    def __init__(self, run_dir: str | Path, device: str = "cpu",
                 registry: Registry | None = None, precision: str = "auto") -> None:
        self.run = RunDir(Path(run_dir))
        self.registry = registry
        self.config = self.run.read_config()
        self.options = TrainOptions.from_json(self.config["options"],
                                              where=str(self.run.config_path))
        self.classes: list[str] = self.run.classes
        self.stages = self.run.stages()
        self.runtime = Runtime.create(device, precision)
        self.device = self.runtime.device
        self._cache: dict[tuple[str, Stage], nn.Module] = {}
        self._check_installed(self.registry or get_registry())

    def _check_installed(self, registry: Registry) -> None:
        """Every network of the run is registered, else name the plugin to install."""
        for stage in self.stages:
            entry = self.config[str(stage)]
            if entry["name"] in registry:
                continue
            made_by = " ".join(str(entry[k]) for k in ("distribution", "version") if entry.get(k))
            hint = (f"install {made_by}, the plugin that made it" if made_by
                    else "install the plugin that registers it")
            raise UsganError(f"{self.run.config_path}: its {stage.label} network "
                             f"{entry['name']!r} is not registered by any installed plugin; "
                             f"{hint} ('usgan plugins list' shows what is installed)")

    @property
    def has_stage2(self) -> bool:
        return Stage.TWO in self.stages

    def _load(self, cls: str, stage: Stage) -> nn.Module:
        key = (cls, stage)
        if key not in self._cache:
            path = self.run.generator_path(cls, stage, ema=self.options.ema_in(stage))
            net = load_network(path, self.registry, str(self.device)).eval()
            self._cache[key] = net.to(memory_format=self.runtime.memory_format)
        return self._cache[key]

    def chain(self, cls: str, stage: Stage | int | str | None = None) -> list[nn.Module]:
        """The generators that make an image of ``stage``: [Stage-I] or [Stage-I, Stage-II]."""
        stage = self._stage(stage)
        self._check_class(cls)
        return [self._load(cls, s) for s in self.stages[:stage.number]]

    def generator(self, cls: str, stage: Stage | int | str | None = None) -> nn.Module:
        """The Stage-I generator, or the stacked Stage-I + Stage-II generator."""
        chain = self.chain(cls, stage)
        return chain[0] if len(chain) == 1 else StackedGenerator(*chain).eval()

    def _stage(self, stage: Stage | int | str | None) -> Stage:
        if stage is None:
            return self.stages[-1]
        stage = Stage.parse(stage)
        if stage not in self.stages:
            raise UsganError(f"{self.run.root} was trained without Stage-II; use --stage 1")
        return stage

    def _check_class(self, cls: str) -> None:
        if cls not in self.classes:
            raise UnknownNameError(f"class in {self.run.root}", cls, self.classes)

    @torch.no_grad()
    def sample(
        self, n: int, cls: str | None = None, seed: int = 0,
        stage: Stage | int | str | None = None, batch_size: int = 16,
        progress: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """``n`` images of class ``cls`` as uint8 ``[n, C, H, W]``; the same seed gives the
        same images whatever the batch size. ``progress(k)`` is called after each batch of
        ``k`` images."""
        if cls is None:
            if len(self.classes) != 1:
                raise UsganError(f"say which class: one of {', '.join(self.classes)}")
            cls = self.classes[0]
        if n < 1:
            raise UsganError(f"-n must be at least 1, got {n}")
        if batch_size < 1:
            raise UsganError(f"--batch-size must be at least 1, got {batch_size}")
        return sample_chain(self.chain(cls, stage), n, seed, self.device, batch_size,
                            self.runtime.autocast, progress)


@torch.no_grad()
def sample_chain(
    chain: list[nn.Module], n: int, seed: int, device: torch.device | str = "cpu",
    batch_size: int = 16,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``n`` uint8 ``[n, C, H, W]`` images from a generator chain (Stage-I[, Stage-II]) as it
    is (the caller sets eval mode and memory format); the noise is drawn at once from
    ``seed``, so the images do not depend on ``batch_size``."""
    noise = noise_for(chain, n, torch.Generator().manual_seed(seed))
    out = []
    for i in range(0, n, batch_size):
        batch = [z[i:i + batch_size].to(device) for z in noise]
        with autocast():
            img = forward_stack(chain, batch)[-1]
        out.append(img.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu())
        if progress is not None:
            progress(out[-1].shape[0])
    return torch.cat(out).contiguous()

"""``--eval-every``: FID/KID and diversity of the generator while it trains.

Every N steps the sampling generator (the EMA copy when on) draws ``eval_n`` images from a
fixed noise seed; torch-fidelity embeds them and they are scored against the cached features
of the class's own training images (`usgan.core.evaluation`). Nothing here touches the
training's random streams or BatchNorm statistics, so a run with ``--eval-every`` trains the
same weights as one without. With ``--keep-best``, `BestKeeper` keeps the sampling generator of
the lowest KID so far beside the checkpoints, and the stage ends with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from usgan.core.evaluation import Extractor, TensorImages, evaluate, real_key, weights_path
from usgan.core.io import read_json, write_atomic, write_json
from usgan.core.run import RunDir
from usgan.core.runtime import seed_for
from usgan.core.serialization import save_network
from usgan.core.stage import Stage
from usgan.core.synth import sample_chain

from .options import TrainOptions
from .outputs import sampled
from .state import TrainState

BATCH = 64


class QualityWatch:
    """Scores a generator chain against one class's training images (uint8 ``[N, 1, H, W]``)."""

    def __init__(self, real: torch.Tensor, fingerprint: str, cls: str, n: int, seed: int,
                 weights: str | None, keep_in: Path | None = None, every: int = 1,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock, self.every = clock, every
        self.seconds = 0.0  # what the last evaluation took
        self.extractor = Extractor.create(["fid", "kid"], weights=weights_path(weights))
        self.real = TensorImages(real.cpu())
        self.key = real_key(fingerprint, cls, int(real.shape[-1]))
        self.n, self.seed = n, seed
        self.keeper = BestKeeper(keep_in) if keep_in is not None else None

    @classmethod
    def for_phase(cls, opts: TrainOptions, run: RunDir, phase: Any, fingerprint: str,
                  real: torch.Tensor, clock: Callable[[], float] = time.perf_counter
                  ) -> QualityWatch:
        """The watch of one phase (a class and a stage) of a run, as ``opts`` ask for,
        timed by the trainer's ``clock``."""
        keep_in = run.checkpoints(phase.cls, phase.stage) if opts.keep_best else None
        return cls(real, fingerprint, phase.cls, opts.eval_n,
                   seed_for(opts.seed, phase.index, 10), opts.inception_weights, keep_in,
                   opts.eval_every, clock)

    def spare(self, step: int) -> float:
        """Seconds a time budget must still hold to go on after ``step``: the final
        evaluation, and this step's own when one is due (as long as the last one took)."""
        return self.seconds * (2 if step % self.every == 0 else 1)

    def generate(self, chain: Sequence[nn.Module], device: torch.device) -> torch.Tensor:
        """``n`` uint8 images from a fixed seed, the top network in eval mode."""
        top, was_training = chain[-1], chain[-1].training
        top.eval()
        try:
            return sample_chain(list(chain), self.n, self.seed, device, BATCH)
        finally:
            top.train(was_training)

    def __call__(self, chain: Sequence[nn.Module], device: torch.device, step: int
                 ) -> dict[str, Any]:
        """FID, KID and diversity (pixels, features) as plain numbers (None: unavailable),
        from `usgan.core.evaluation.evaluate`'s row; the keeper, if any, sees the KID."""
        started = self.clock()
        row = evaluate(self.extractor, TensorImages(self.generate(chain, device)), self.real,
                       ["fid", "kid"], self.key)
        pixels, features = (d["ratio"] for d in row["diversity"])
        if self.keeper is not None:
            self.keeper.offer(step, row["kid"]["value"], chain[-1])
        self.seconds = self.clock() - started
        return {"fid": row["fid"]["value"], "kid": row["kid"]["value"],
                "diversity_pixels": pixels, "diversity_features": features}

    def log(self, run: RunDir, phase: Any, step: int, chain: Sequence[nn.Module],
            device: torch.device, echo: Callable[[str], None]) -> None:
        """Score ``chain`` (the sampling generator on top) at ``step`` of ``phase``, write the
        numbers to the run's metrics and show them."""
        got = self(chain, device, step)
        run.log_metrics({"class": phase.cls, "stage": phase.stage.number, "step": step,
                         "eval_n": self.n, **got})
        echo(f"{phase.key} step {step}: " + ", ".join(
            f"{k} {v:.4g}" if v is not None else f"{k} n/a" for k, v in got.items()))

    def finish(self, run: RunDir, cls: str, stage: Stage, state: TrainState) -> int | None:
        """With a keeper: the best generator replaces the phase's sampling generator; its
        step (else None)."""
        if self.keeper is None:
            return None
        return self.keeper.install(run.weights(cls, stage, sampled(state)))


class BestKeeper:
    """``--keep-best``: the generator of the lowest KID a stage's evaluations saw, kept in its
    checkpoint folder (``best-step-N.safetensors``, named by ``best.json``, which is written
    last, so a run killed in between keeps the previous best), and put in place of the
    stage's final sampling generator when the stage ends. A resume picks up the best so far."""

    INDEX = "best.json"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        index = directory / self.INDEX
        self.best: dict[str, Any] | None = (
            read_json(index, "best-generator index") if index.is_file() else None)

    def offer(self, step: int, kid: float | None, g: nn.Module) -> None:
        """Keep ``g`` when its ``kid`` is the lowest so far (None or NaN: not kept)."""
        if kid is None or not math.isfinite(kid) or (
                self.best is not None and kid >= self.best["kid"]):
            return
        name = f"best-step-{step:08d}.safetensors"
        save_network(g, self.directory / name)
        old = self.best["file"] if self.best is not None else None
        self.best = {"step": step, "kid": kid, "file": name}
        write_json(self.directory / self.INDEX, self.best)
        if old and old != name:
            (self.directory / old).unlink(missing_ok=True)

    def install(self, final: Path) -> int | None:
        """Put the best generator at ``final`` (the stage's sampling generator); its step."""
        if self.best is None:
            return None
        write_atomic(final, (self.directory / self.best["file"]).read_bytes())
        return int(self.best["step"])

"""``--eval-every``: FID/KID and diversity of the generator while it trains.

Every N steps the sampling generator (the EMA copy when on) draws ``eval_n`` images from a
fixed noise seed; torch-fidelity embeds them and they are scored against the cached features
of the class's own training images (`usgan.core.evaluation`). Nothing here touches the
training's random streams or BatchNorm statistics, so a run with ``--eval-every`` trains the
same weights as one without.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from usgan.core.evaluation import Extractor, TensorImages, evaluate, real_key, weights_path
from usgan.core.synth import sample_chain

BATCH = 64


class QualityWatch:
    """Scores a generator chain against one class's training images (uint8 ``[N, 1, H, W]``)."""

    def __init__(self, real: torch.Tensor, fingerprint: str, cls: str, n: int, seed: int,
                 weights: str | None) -> None:
        self.extractor = Extractor.create(["fid", "kid"], weights=weights_path(weights))
        self.real = TensorImages(real.cpu())
        self.key = real_key(fingerprint, cls, int(real.shape[-1]))
        self.n, self.seed = n, seed

    def generate(self, chain: Sequence[nn.Module], device: torch.device) -> torch.Tensor:
        """``n`` uint8 images from a fixed seed, the top network in eval mode."""
        top, was_training = chain[-1], chain[-1].training
        top.eval()
        try:
            return sample_chain(list(chain), self.n, self.seed, device, BATCH)
        finally:
            top.train(was_training)

    def __call__(self, chain: Sequence[nn.Module], device: torch.device) -> dict[str, Any]:
        """FID, KID and diversity (pixels, features) as plain numbers (None: unavailable),
        from `usgan.core.evaluation.evaluate`'s row."""
        row = evaluate(self.extractor, TensorImages(self.generate(chain, device)), self.real,
                       ["fid", "kid"], self.key)
        pixels, features = (d["ratio"] for d in row["diversity"])
        return {"fid": row["fid"]["value"], "kid": row["kid"]["value"],
                "diversity_pixels": pixels, "diversity_features": features}

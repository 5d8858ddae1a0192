"""Named sets of training options: ``paper`` (Che et al., for reproduction) and ``default``
(ours: what measured best on small ultrasound data, docs/quality.md).

A recipe fills the options a user did not give; anything given explicitly wins. The run's
config.json records the recipe's name and every resolved option, so a run never depends on
what a recipe says later.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from usgan.core.errors import UnknownNameError

from .options import TrainOptions


@dataclass(frozen=True)
class Recipe:
    """A name, one line on where it comes from, the option values it sets, and the values
    measured to differ for particular Stage-I networks (by registry name)."""

    name: str
    summary: str
    options: dict[str, Any] = field(default_factory=dict)
    per_stage1: dict[str, dict[str, Any]] = field(default_factory=dict)

    def options_for(self, stage1: str) -> dict[str, Any]:
        """The values for a run whose Stage-I is ``stage1`` (a copy: lists are not shared)."""
        return copy.deepcopy({**self.options, **self.per_stage1.get(stage1, {})})


_PAPER = Recipe("paper", "Che et al.: cross-entropy loss, Adam lr 2e-4, betas (0.5, 0.999), "
                "batch 16; nothing else", {
                    "loss": "bce", "lr": 2e-4, "lr_d": None, "betas": [0.5, 0.999],
                    "batch_size": 16, "ema": False, "ema_warmup": False, "diffaugment": [],
                    "stage2_diffaugment": None, "label_smoothing": 0.0, "instance_noise": 0.0,
                    "r1_gamma": 0.0, "stage2_pretrain": 0.0, "stage2_recon": 0.0,
                    "stage2_crop": None, "stage2_blur": 0.0, "stage2_noise": 0.0})

_TC = ["translation", "cutout"]
# Spectral norm already holds D back: with DiffAugment on top, the SN discriminators sat at
# chance and FID was worse (BUSI for both networks, SFibAI for dcgan-sn-sa; SFibAI favoured
# it for dcgan-sn: docs/quality.md).
_SN = {"diffaugment": []}

# Stage-II learns from degraded real crops first, then from Stage-I's images, on 64-px crops
# (core/train/pairs.py; the values measured on BUSI in docs/quality.md). No DiffAugment: the
# random crops already keep its D from memorising the images.
_STAGE2 = {"stage2_pretrain": 0.5, "stage2_recon": 10.0, "stage2_crop": 64,
           "stage2_blur": 1.5, "stage2_noise": 0.1, "stage2_diffaugment": []}

_DEFAULT = Recipe("default", "usgan's: the paper's recipe plus DiffAugment (translation, "
                  "cutout) in the Stage-I of dcgan; Stage-II restores degraded real crops, "
                  "then fine-tunes on Stage-I's images (docs/quality.md)",
                  {**_PAPER.options, "diffaugment": _TC, **_STAGE2},
                  {"dcgan-sn": _SN, "dcgan-sn-sa": _SN})

RECIPES = {r.name: r for r in (_PAPER, _DEFAULT)}
DEFAULT_RECIPE = "default"


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, else an `UnknownNameError` listing them."""
    if name not in RECIPES:
        raise UnknownNameError("recipe", name, tuple(RECIPES))
    return RECIPES[name]


def recipe_options(name: str = DEFAULT_RECIPE, **given: Any) -> TrainOptions:
    """`TrainOptions` from recipe ``name`` (its values for ``given["stage1"]``, else for
    the default Stage-I) with ``given`` options on top."""
    base = TrainOptions().to_json()
    values = get_recipe(name).options_for(given.get("stage1", base["stage1"]))
    return TrainOptions.from_json({**base, **values, "recipe": name, **given})

"""Named sets of training options: ``paper`` (Che et al., for reproduction) and ``default``
(ours: what measured best on small ultrasound data, docs/quality.md).

A recipe sets every option of `TrainOptions` whose default is `FROM_RECIPE`; anything given
explicitly wins. A network may carry values measured to suit it better under a recipe, in
its own `GANSpec.recipes` (dcgan-sn: no DiffAugment in the default recipe). The run's
config.json records the recipe's name and every resolved option, so a run never depends on
what a recipe says later.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from usgan.core.errors import ConfigError, UnknownNameError


@dataclass(frozen=True)
class Recipe:
    """A name, one line on where it comes from, and the option values it sets."""

    name: str
    summary: str
    options: dict[str, Any] = field(default_factory=dict)

    def options_for(self, stage1: str) -> dict[str, Any]:
        """The values for a run whose Stage-I is ``stage1``: the recipe's, with what the
        network's `GANSpec.recipes` says for this recipe on top (a copy: lists not shared)."""
        from usgan.core.plugin_manager import get_registry

        registry = get_registry()
        own = registry.get(stage1).recipes.get(self.name, {}) if stage1 in registry else {}
        unknown = sorted(set(own) - set(self.options))
        if unknown:
            raise ConfigError(f"network {stage1!r} sets {', '.join(unknown)} for recipe "
                              f"{self.name!r}, which recipes do not set; expected some of "
                              f"{', '.join(sorted(self.options))}")
        return copy.deepcopy({**self.options, **own})


_PAPER = Recipe("paper", "Che et al.: cross-entropy loss, Adam lr 2e-4, betas (0.5, 0.999), "
                "batch 16; nothing else", {
                    "loss": "bce", "lr": 2e-4, "lr_d": None, "betas": [0.5, 0.999],
                    "batch_size": 16, "stage2_batch_size": None, "ema": False,
                    "ema_warmup": False, "stage2_ema": None,
                    "diffaugment": [], "stage2_diffaugment": None, "diffaugment_p": 1.0,
                    "ada_target": None, "label_smoothing": 0.0, "instance_noise": 0.0,
                    "r1_gamma": 0.0, "stage2_pretrain": 0.0, "stage2_recon": 0.0,
                    "stage2_finetune_lr": 1.0, "stage2_crop": None, "stage2_blur": 0.0,
                    "stage2_noise": 0.0})

# Stage-II learns from degraded real crops first, then from Stage-I's images, on 64-px crops
# (core/train/pairs.py; the values measured on BUSI in docs/quality.md), with DiffAugment
# (translation, cutout; p as Stage-I's) in its D for every Stage-I network (measured with
# dcgan only: BUSI malignant seeds 0 and 1, KID 0.88 and 0.84 of the Stage-I's, from 0.98
# and 1.31 without; docs/quality.md, "Where it stands"), and a third of the learning rate
# once it fine-tunes on Stage-I's images (same seeds: mean KID after the switch 0.164 and
# 0.198, against 0.184 and 0.230), at batch 16 whatever its Stage-I's batch (measured so).
_STAGE2 = {"stage2_batch_size": 16, "stage2_pretrain": 0.5, "stage2_recon": 10.0,
           "stage2_crop": 64, "stage2_blur": 1.5, "stage2_noise": 0.1,
           "stage2_diffaugment": ["translation", "cutout"], "stage2_finetune_lr": 0.3}

# Stage-I: DiffAugment on half of the images (docs/benchmarks.md, "Levers": on BUSI both seeds
# better than p = 1 and than ADA's adaptive p; D also sees unaugmented images, so cutout's
# squares do not leak into G's images), and sampling from an EMA of G with warm-up (both
# seeds better again on top). Stage-II keeps no EMA (measured worse once, docs/quality.md).
_DEFAULT = Recipe("default", "usgan's: the paper's recipe plus DiffAugment (translation, "
                  "cutout) on half the images and batch 8 in the Stage-I of dcgan, an EMA of "
                  "Stage-I's G with warm-up; Stage-II restores degraded real crops, then "
                  "fine-tunes on Stage-I's images, DiffAugment in its D (docs/quality.md)",
                  {**_PAPER.options, "diffaugment": ["translation", "cutout"],
                   "diffaugment_p": 0.5, "ema": True, "ema_warmup": True, "stage2_ema": False,
                   **_STAGE2})

RECIPES = {r.name: r for r in (_PAPER, _DEFAULT)}
DEFAULT_RECIPE = "default"


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, else an `UnknownNameError` listing them."""
    if name not in RECIPES:
        raise UnknownNameError("recipe", name, tuple(RECIPES))
    return RECIPES[name]

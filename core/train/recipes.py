"""Named sets of training options: ``paper`` (Che et al., for reproduction) and ``default``
(ours: what measured best on small ultrasound data, docs/quality.md).

A recipe fills the options a user did not give; anything given explicitly wins. The run's
config.json records the recipe's name and every resolved option, so a run never depends on
what a recipe says later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from usgan.core.errors import UnknownNameError

from .options import TrainOptions


@dataclass(frozen=True)
class Recipe:
    """A name, one line on where it comes from, and the option values it sets."""

    name: str
    summary: str
    options: dict[str, Any] = field(default_factory=dict)


_PAPER = Recipe("paper", "Che et al.: cross-entropy loss, Adam lr 2e-4, betas (0.5, 0.999), "
                "batch 16; nothing else", {
                    "loss": "bce", "lr": 2e-4, "lr_d": None, "betas": [0.5, 0.999],
                    "batch_size": 16, "ema": False, "ema_warmup": False, "diffaugment": [],
                    "label_smoothing": 0.0, "instance_noise": 0.0, "r1_gamma": 0.0})

_DEFAULT = Recipe("default", "usgan's: the paper's recipe plus DiffAugment (translation, "
                  "cutout), the clear winner of the phantom ablation in docs/quality.md", {
                      **_PAPER.options, "diffaugment": ["translation", "cutout"]})

RECIPES = {r.name: r for r in (_PAPER, _DEFAULT)}
DEFAULT_RECIPE = "default"


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, else an `UnknownNameError` listing them."""
    if name not in RECIPES:
        raise UnknownNameError("recipe", name, tuple(RECIPES))
    return RECIPES[name]


def recipe_options(name: str = DEFAULT_RECIPE, **given: Any) -> TrainOptions:
    """`TrainOptions` from recipe ``name`` with ``given`` options on top."""
    recipe = get_recipe(name)
    return TrainOptions.from_json({**TrainOptions().to_json(), **recipe.options,
                                   "recipe": name, **given})

"""Every option of a training run, resolved, JSON-able and comparable."""

from __future__ import annotations

import json
import types
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

from usgan.core.errors import ConfigError
from usgan.core.stacking import DEFAULT_STAGE2
from usgan.core.stage import Stage

from .diffaugment import AdaptiveP
from .losses import LeCam
from .recipes import DEFAULT_RECIPE, get_recipe
from .step import Regularizers


class _FromRecipe:
    """The default of an option that the recipe sets (`TrainOptions.recipe`, recipes.py)."""

    def __repr__(self) -> str:
        return "FROM_RECIPE"


FROM_RECIPE: Any = _FromRecipe()

# Options that do not change what a run computes: they may differ on --resume.
VOLATILE = {"device", "quiet", "sample_every", "checkpoint_every", "keep_checkpoints",
            "log_every", "threads", "compile", "prune_checkpoints", "eval_every", "eval_n",
            "inception_weights", "recipe"}  # a recipe is a label; its values are compared


@dataclass
class TrainOptions:
    """The options of ``usgan train``. An option defaulting to `FROM_RECIPE` takes its value
    from ``recipe`` (for this ``stage1``) unless given: ``TrainOptions()`` is what ``usgan
    train`` with no options trains."""

    stage1: str = "dcgan"
    stage2: str | None = DEFAULT_STAGE2  # None: Stage-I only (--stage2 off)
    data: str = "phantom"
    data_options: dict[str, Any] = field(default_factory=dict)  # crop, skip_bad, bins, split...
    classes: list[str] | None = None
    stage1_config: dict[str, Any] = field(default_factory=dict)
    stage2_config: dict[str, Any] = field(default_factory=dict)
    stage1_from: str | None = None
    epochs: int | None = None
    max_steps: int | None = None
    stage2_epochs: int | None = None  # None: as Stage-I
    stage2_max_steps: int | None = None
    max_minutes: float | None = None  # wall-clock budget per phase (whichever comes first)
    stage2_max_minutes: float | None = None  # None: as Stage-I, unless Stage-II has a length
    stage2_pretrain: float = FROM_RECIPE  # share of Stage-II's length on degraded real pairs
    stage2_recon: float = FROM_RECIPE  # weight of Stage-II's L1 reconstruction/consistency
    stage2_crop: int | None = FROM_RECIPE  # Stage-II trains on crops of this size (None: whole)
    stage2_blur: float = FROM_RECIPE  # degradation of the real pairs: max blur sigma (low-res px)
    stage2_noise: float = FROM_RECIPE  # and max noise std ([-1, 1] units)
    batch_size: int = FROM_RECIPE
    lr: float = FROM_RECIPE
    lr_d: float | None = FROM_RECIPE  # None: lr (two time-scales when set)
    betas: tuple[float, float] = FROM_RECIPE
    seed: int = 0
    recipe: str = DEFAULT_RECIPE  # sets the FROM_RECIPE options (recipes.py)
    loss: str = FROM_RECIPE
    label_smoothing: float = FROM_RECIPE
    instance_noise: float = FROM_RECIPE
    r1_gamma: float = FROM_RECIPE
    lecam: float = 0.0  # LeCam regularisation weight (losses.LeCam; 0: off)
    on_nonfinite: str = "stop"  # or "skip": drop a step whose loss is NaN/inf, with a warning
    diffaugment: list[str] = FROM_RECIPE
    stage2_diffaugment: list[str] | None = FROM_RECIPE  # None: as Stage-I
    diffaugment_p: float = 1.0  # each op on each image with this probability (ADA's start)
    ada_target: float | None = None  # adapt p (diffaugment.AdaptiveP) towards this E[sign D]
    ada_images: int = 5000  # images for an adaptive p to cross from 0 to 1
    ema: bool = FROM_RECIPE
    ema_decay: float = 0.999
    ema_warmup: bool = FROM_RECIPE  # decay (1+n)/(10+n) until it reaches ema_decay
    precision: str = "auto"
    device: str = "auto"
    sample_every: int = 100
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 10
    prune_checkpoints: bool = True  # a finished phase keeps only its last checkpoint
    threads: int | None = None
    compile: bool = False  # torch.compile G and D for training (docs/benchmarks.md)
    eval_every: int = 0  # 0: off; else FID/KID of G every N steps (watch.py)
    eval_n: int = 400
    inception_weights: str | None = None
    quiet: bool = False

    DEFAULT_EPOCHS = 100

    def __post_init__(self) -> None:
        self._fill_from_recipe()
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.loss not in ("bce", "hinge"):
            raise ConfigError(f"--loss must be bce or hinge, got {self.loss!r}")
        if self.on_nonfinite not in ("stop", "skip"):
            raise ConfigError(f"--on-nan must be stop or skip, got {self.on_nonfinite!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"--precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.label_smoothing and self.loss != "bce":
            raise ConfigError("--label-smoothing works with --loss bce only")
        for name in ("label_smoothing", "instance_noise", "r1_gamma", "lecam", "eval_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must not be negative")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.eval_every and self.eval_n < 2:
            raise ConfigError(f"--eval-n must be at least 2, got {self.eval_n}")
        for name in ("epochs", "max_steps", "stage2_epochs", "stage2_max_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        for name in ("max_minutes", "stage2_max_minutes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be more than 0, got {value}")
        for name in ("stage2_recon", "stage2_blur", "stage2_noise"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must not be negative")
        if not 0 <= self.diffaugment_p <= 1:
            raise ConfigError(f"--diffaugment-p must be in [0, 1], got {self.diffaugment_p}")
        if self.ada_target is not None and not 0 < self.ada_target < 1:
            raise ConfigError(f"--ada-target must be in (0, 1), got {self.ada_target}")
        if self.ada_images < 1:
            raise ConfigError(f"--ada-images must be at least 1, got {self.ada_images}")
        if not 0 <= self.stage2_pretrain <= 1:
            raise ConfigError(f"--stage2-pretrain must be in [0, 1], got {self.stage2_pretrain}")
        if self.stage2_crop == 0:  # --stage2-crop 0: whole images
            self.stage2_crop = None
        if self.stage2_crop is not None and self.stage2_crop < 8:
            raise ConfigError(f"--stage2-crop must be at least 8, got {self.stage2_crop}")

    def _fill_from_recipe(self) -> None:
        unset = [f.name for f in fields(self) if getattr(self, f.name) is FROM_RECIPE]
        if not unset:
            return
        values = get_recipe(self.recipe).options_for(self.stage1)
        for name in unset:
            setattr(self, name, values[name])

    def length(self, stage: Stage) -> tuple[int | None, int | None, float | None]:
        """(epochs, max_steps, max_minutes) of ``stage``: Stage-II's own when any is given,
        else Stage-I's."""
        own = (self.stage2_epochs, self.stage2_max_steps, self.stage2_max_minutes)
        if stage == Stage.TWO and any(v is not None for v in own):
            return own
        return self.epochs, self.max_steps, self.max_minutes

    def policy(self, stage: Stage) -> list[str]:
        """The DiffAugment policy of ``stage``: Stage-II's own when given, else Stage-I's."""
        if stage == Stage.TWO and self.stage2_diffaugment is not None:
            return self.stage2_diffaugment
        return self.diffaugment

    def step_parts(self, stage: Stage, device: Any) -> dict[str, Any]:
        """The stateful parts of ``stage``'s GAN step that these options turn on, by their
        `GANStep` keyword: ``ada`` (`AdaptiveP`, with ``--ada-target`` where the stage
        augments) and ``lecam`` (`LeCam`). A checkpoint keeps their state."""
        parts: dict[str, Any] = {}
        if self.ada_target is not None and self.policy(stage):
            parts["ada"] = AdaptiveP(self.diffaugment_p, self.ada_target, self.ada_images,
                                     self.batch_size, device=device)
        if self.lecam:
            parts["lecam"] = LeCam(self.lecam, device=device)
        return parts

    def regularizers(self) -> Regularizers:
        """What the discriminator step adds (step.Regularizers)."""
        return Regularizers(self.label_smoothing, self.instance_noise, self.r1_gamma)

    def to_json(self) -> dict[str, Any]:
        """A plain dict (lists for tuples) for config.json."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, data: Any, where: str = "config.json") -> TrainOptions:
        """Rebuild a run from config.json's ``options`` (unknown keys ignored): an option
        missing there is older than the run's usgan, so it was off (the paper recipe's value,
        whatever the recipe now says). A value of the wrong JSON type is a `ConfigError`
        naming ``where`` and the option."""
        data = cls._checked(data, where)
        return cls(**{**get_recipe("paper").options, **data})

    @classmethod
    def from_given(cls, data: Any, where: str = "options") -> TrainOptions:
        """New options from JSON-like ``data`` (checked as `from_json` does); what it does
        not give comes from its recipe."""
        return cls(**cls._checked(data, where))

    @classmethod
    def _checked(cls, data: Any, where: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: 'options' is not a JSON object")
        hints = get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        for key, value in data.items():
            if key in known and not _matches(value, hints[key]):
                raise ConfigError(f"{where}: option {key!r} is {json.dumps(value)}, which is not "
                                  f"a {_describe(hints[key])}")
        return {k: v for k, v in data.items() if k in known}


def _matches(value: Any, tp: Any) -> bool:
    """Whether a JSON value fits the annotation ``tp`` (bool is not a number here)."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp in (bool, str):
        return isinstance(value, tp)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if origin is tuple:
        return isinstance(value, (list, tuple)) and len(value) == len(args) and all(
            _matches(v, a) for v, a in zip(value, args, strict=True))
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    return True


def _describe(tp: Any) -> str:
    names = {int: "whole number", float: "number", bool: "boolean", str: "string",
             type(None): "null"}
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        return f"list of {len(args)} numbers"
    if origin is list:
        return f"list of {_describe(args[0])}s"
    if origin is dict:
        return "JSON object"
    return names.get(tp, str(tp))


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"name: old -> new"`` for every run-defining option that differs."""
    out = []
    for key in sorted(set(old) | set(new)):
        if key in VOLATILE:
            continue
        if old.get(key) != new.get(key):
            out.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return out

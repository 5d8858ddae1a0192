"""Every option of a training run, resolved, JSON-able and comparable."""

from __future__ import annotations

import json
import types
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

from usgan.core.errors import ConfigError
from usgan.core.runtime import COMPILE_MODES, PRECISIONS, Dist
from usgan.core.stacking import DEFAULT_STAGE2
from usgan.core.stage import Stage

from .diffaugment import AdaptiveP
from .losses import LeCam
from .recipes import DEFAULT_RECIPE, get_recipe
from .state import Schedule
from .step import Regularizers


class _FromRecipe:
    """The default of an option that the recipe sets (`TrainOptions.recipe`, recipes.py)."""

    def __repr__(self) -> str:
        return "FROM_RECIPE"


FROM_RECIPE: Any = _FromRecipe()


def _h(text: str) -> dict[str, str]:
    """A field's help text (``usgan train --help`` takes it, and the default, from here)."""
    return {"help": text}


# Options that do not change what a run computes: they may differ on --resume (a recipe is a
# label; its values are compared).
VOLATILE = {"device", "quiet", "sample_every", "checkpoint_every", "keep_checkpoints",
            "log_every", "threads", "jobs", "compile", "compile_mode", "prune_checkpoints",
            "eval_every", "eval_n", "inception_weights", "recipe"}


@dataclass
class TrainOptions:
    """The options of ``usgan train``. An option defaulting to `FROM_RECIPE` takes its value
    from ``recipe`` (for this ``stage1``) unless given: ``TrainOptions()`` is what ``usgan
    train`` with no options trains."""

    stage1: str = field(default="dcgan", metadata=_h("Stage-I network name."))
    stage2: str | None = field(default=DEFAULT_STAGE2, metadata=_h(
            "Stage-II network on the frozen Stage-I (None: off)."))
    data: str = field(default="phantom", metadata=_h("Data spec (see docs/data.md)."))
    data_options: dict[str, Any] = field(default_factory=dict, metadata=_h(
            "crop, skip_bad, bins, split, repeat (docs/data.md)."))
    classes: list[str] | None = field(default=None, metadata=_h(
            "Classes to train, e.g. healthy,steatosis."))
    stage1_config: dict[str, Any] = field(default_factory=dict, metadata=_h(
            "Stage-I config overrides, k=v,k=v."))
    stage2_config: dict[str, Any] = field(default_factory=dict, metadata=_h(
            "Stage-II config overrides, k=v,k=v."))
    stage1_from: str | None = field(default=None, metadata=_h(
            "Reuse the Stage-I of this run (a run directory or a zoo SOURCE)."))
    epochs: int | None = field(default=None, metadata=_h(
            "Epochs per stage (default 100 when no length is given)."))
    max_steps: int | None = field(default=None, metadata=_h("Steps per stage (caps --epochs)."))
    stage2_epochs: int | None = field(default=None, metadata=_h(
            "Stage-II epochs (default: --epochs)."))
    stage2_max_steps: int | None = field(default=None, metadata=_h(
            "Stage-II steps (default: --max-steps)."))
    max_minutes: float | None = field(default=None, metadata=_h(
            "Wall-clock budget per stage and class, in minutes (with --max-steps or --epochs: "
            "whichever comes first); a resume continues what is left."))
    stage2_max_minutes: float | None = field(default=None, metadata=_h(
            "Stage-II's budget in minutes (default: --max-minutes)."))
    stage2_pretrain: float = field(default=FROM_RECIPE, metadata=_h(
            "Share of Stage-II's length spent restoring degraded real images before fine-tuning"
            " on Stage-I's (0: the paper's from-scratch schedule; 1: real pairs only)."))
    stage2_finetune_lr: float = field(default=FROM_RECIPE, metadata=_h(
            "Stage-II's learning rates are multiplied by this when it moves from the real "
            "pairs to Stage-I's images (1: unchanged)."))
    stage2_recon: float = field(default=FROM_RECIPE, metadata=_h(
            "Weight of Stage-II's L1 term: reconstruction of the real pairs, then consistency "
            "with its Stage-I input."))
    stage2_crop: int | None = field(default=FROM_RECIPE, metadata=_h(
            "Stage-II trains on random crops of this size (a fully convolutional Stage-II; it "
            "samples at full size); 0: whole images."))
    stage2_blur: float = field(default=FROM_RECIPE, metadata=_h(
            "Degradation of the real pairs: blur sigma up to this (Stage-I pixels)."))
    stage2_noise: float = field(default=FROM_RECIPE, metadata=_h(
            "Degradation of the real pairs: noise std up to this ([-1, 1] units)."))
    batch_size: int = field(default=FROM_RECIPE, metadata=_h(
            "Images per step (the default recipe's: 8 in the Stage-I of dcgan, else 16)."))
    stage2_batch_size: int | None = field(default=FROM_RECIPE, metadata=_h(
            "Stage-II's images per step (the recipe's; with --batch-size given alone, that)."))
    lr: float = field(default=FROM_RECIPE, metadata=_h("Adam learning rate."))
    lr_d: float | None = field(default=FROM_RECIPE, metadata=_h(
            "Discriminator learning rate (two time-scales; default: --lr)."))
    betas: tuple[float, float] = field(default=FROM_RECIPE, metadata=_h("Adam betas."))
    seed: int = field(default=0, metadata=_h(
            "Seed of every random draw (bit-identical on resume)."))
    recipe: str = field(default=DEFAULT_RECIPE, metadata=_h(
            "Named defaults: paper (Che et al., for reproduction) or default (ours, "
            "docs/quality.md); options given here override it."))
    loss: str = field(default=FROM_RECIPE, metadata=_h("GAN loss."))
    label_smoothing: float = field(default=FROM_RECIPE, metadata=_h(
            "One-sided label smoothing: D's target for real images is 1 - this (bce)."))
    instance_noise: float = field(default=FROM_RECIPE, metadata=_h(
            "Std of Gaussian noise added to every image D sees."))
    r1_gamma: float = field(default=FROM_RECIPE, metadata=_h(
            "Zero-centred gradient penalty on real images (R1) with this weight."))
    lecam: float = field(default=0.0, metadata=_h(
            "LeCam regularisation of D (Tseng et al. 2021) with this weight (0: off)."))
    on_nonfinite: str = field(default="stop", metadata=_h(
            "A NaN/inf loss stops training, or skips that step with a warning."))
    diffaugment: list[str] = field(default=FROM_RECIPE, metadata=_h(
            "DiffAugment policy, e.g. color,translation,cutout ('none': off); the default "
            "recipe's for dcgan (none for dcgan-sn and dcgan-sn-sa)."))
    stage2_diffaugment: list[str] | None = field(default=FROM_RECIPE, metadata=_h(
            "Stage-II's DiffAugment policy (default: --diffaugment's)."))
    diffaugment_p: float = field(default=FROM_RECIPE, metadata=_h(
            "Apply each DiffAugment op to each image with this probability (with --ada-target: "
            "where it starts)."))
    ada_target: float | None = field(default=FROM_RECIPE, metadata=_h(
            "Adapt that probability (ADA): up while the mean sign of D's real logits is above "
            "this (0.6 in ADA), down below; 0: off (a fixed --diffaugment-p)."))
    ada_images: int = field(default=5000, metadata=_h(
            "Images an adaptive probability takes to cross from 0 to 1."))
    ema: bool = field(default=FROM_RECIPE, metadata=_h("Keep an EMA copy of G for sampling."))
    stage2_ema: bool | None = field(default=FROM_RECIPE, metadata=_h(
            "Keep an EMA copy of Stage-II's G too (default: as --ema)."))
    ema_decay: float = field(default=0.999, metadata=_h("Decay of the EMA copy."))
    ema_warmup: bool = field(default=FROM_RECIPE, metadata=_h(
            "Ramp the EMA decay up as (1+n)/(10+n)."))
    precision: str = field(default="auto", metadata=_h(
            "auto: fp32, or bf16 where the hardware has it natively and it measured faster "
            "(docs/training.md)."))
    device: str = field(default="auto", metadata=_h("auto, cpu, cuda or cuda:N (GPU N)."))
    sample_every: int = field(default=100, metadata=_h("Steps between sample grids."))
    checkpoint_every: int = field(default=100, metadata=_h("Steps between checkpoints."))
    keep_checkpoints: int = field(default=3, metadata=_h("Checkpoints kept while a stage trains."))
    log_every: int = field(default=10, metadata=_h("Steps between log lines."))
    prune_checkpoints: bool = field(default=True, metadata=_h(
            "A finished stage keeps only its last checkpoint."))
    threads: int | None = field(default=None, metadata=_h("CPU threads (default: torch's)."))
    jobs: int = field(default=1, metadata=_h(
            "Classes trained at once, each in a thread (on a GPU, its own CUDA stream); "
            "the CPU threads are split between them."))
    compile: bool = field(default=False, metadata=_h(
            "torch.compile G and D (1.07x end to end for dcgan-sn-sa on an H200, "
            "docs/benchmarks.md); the first steps wait for the compiler."))
    compile_mode: str = field(default="default", metadata=_h(
            "torch.compile's mode with --compile: default, or reduce-overhead (CUDA graphs on "
            "a GPU, for launch-bound steps; not yet measured, docs/benchmarks.md)."))
    eval_every: int = field(default=0, metadata=_h(
            "FID/KID of G against its training data every N steps (0: off)."))
    eval_n: int = field(default=400, metadata=_h("Generated images per --eval-every evaluation."))
    keep_best: bool = field(default=False, metadata=_h(
            "With --eval-every: each stage ends with the generator of its lowest KID, not its "
            "last (config.json's phases name the step)."))
    inception_weights: str | None = field(default=None, metadata=_h(
            "Offline Inception weights for --eval-every (docs/evaluation.md)."))
    quiet: bool = field(default=False, metadata=_h("Log lines instead of progress bars."))

    DEFAULT_EPOCHS = 100

    @classmethod
    def help(cls, name: str) -> str:
        """The help text of option ``name``."""
        return str({f.name: f.metadata for f in fields(cls)}[name]["help"])

    def __post_init__(self) -> None:
        self._fill_from_recipe()
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        for name in ("batch_size", "stage2_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.loss not in ("bce", "hinge"):
            raise ConfigError(f"--loss must be bce or hinge, got {self.loss!r}")
        if self.on_nonfinite not in ("stop", "skip"):
            raise ConfigError(f"--on-nan must be stop or skip, got {self.on_nonfinite!r}")
        if self.precision not in ("auto", *PRECISIONS):
            raise ConfigError(f"--precision must be auto, {', '.join(PRECISIONS)}, got "
                              f"{self.precision!r}")
        if self.label_smoothing and self.loss != "bce":
            raise ConfigError("--label-smoothing works with --loss bce only")
        for name in ("label_smoothing", "instance_noise", "r1_gamma", "lecam", "eval_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must not be negative")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {self.jobs}")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(f"--compile-mode must be one of {', '.join(COMPILE_MODES)}, got "
                              f"{self.compile_mode!r}")
        if self.compile_mode != "default" and not self.compile:
            raise ConfigError(f"--compile-mode {self.compile_mode} needs --compile")
        if self.jobs > 1 and self.compile:
            raise ConfigError("--compile trains one class at a time: drop --jobs or --compile")
        if self.keep_best and not self.eval_every:
            raise ConfigError("--keep-best needs --eval-every N (the evaluations it picks from)")
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
        if self.ada_target == 0:  # --ada-target 0: a fixed probability
            self.ada_target = None
        if self.ada_target is not None and not 0 < self.ada_target < 1:
            raise ConfigError(f"--ada-target must be in (0, 1), got {self.ada_target}")
        if self.ada_images < 1:
            raise ConfigError(f"--ada-images must be at least 1, got {self.ada_images}")
        if not self.stage2_finetune_lr > 0:
            raise ConfigError(f"--stage2-finetune-lr must be more than 0, got "
                              f"{self.stage2_finetune_lr}")
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
        for name, value in batch_overrides(
                {f.name for f in fields(self)}.difference(unset)).items():
            setattr(self, name, value)
            unset.remove(name)
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

    def batch_in(self, stage: Stage) -> int:
        """Images per step of ``stage``: Stage-II's own when given."""
        if stage == Stage.TWO and self.stage2_batch_size is not None:
            return self.stage2_batch_size
        return self.batch_size

    def schedule(self, stage: Stage, n: int, dist: Dist, what: str) -> Schedule:
        """How ``stage`` trains on ``n`` images (``what`` names them): a `ConfigError`
        naming the batch size's option when it does not fit them."""
        own = stage == Stage.TWO and self.stage2_batch_size is not None
        epochs, max_steps, minutes = self.length(stage)
        return Schedule.plan(n, self.batch_in(stage), dist, epochs, max_steps,
                             self.DEFAULT_EPOCHS, what, minutes,
                             "--stage2-batch-size" if own else "--batch-size")

    def ema_in(self, stage: Stage) -> bool:
        """Whether ``stage`` keeps an EMA copy of its G: Stage-II's own when given."""
        if stage == Stage.TWO and self.stage2_ema is not None:
            return self.stage2_ema
        return self.ema

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
                                     self.batch_in(stage), device=device)
        if self.lecam:
            parts["lecam"] = LeCam(self.lecam, device=device)
        return parts

    @property
    def compiled_mode(self) -> str | None:
        """torch.compile's mode for the training networks (None: eager)."""
        return self.compile_mode if self.compile else None

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


def batch_overrides(given: set[str]) -> dict[str, None]:
    """``--batch-size`` given without ``--stage2-batch-size`` sets both stages: the option
    values that make it so (``stage2_batch_size`` None: as ``batch_size``), given the names
    of the options set explicitly (to a TrainOptions, or on the command line)."""
    if "batch_size" in given and "stage2_batch_size" not in given:
        return {"stage2_batch_size": None}
    return {}


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

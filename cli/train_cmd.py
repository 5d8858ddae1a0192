"""``usgan train``: train Stage-I (and Stage-II) GANs, one per class."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_type_hints

import click
from click.core import ParameterSource

from usgan.core.errors import UsganError
from usgan.core.registry import parse_kv
from usgan.core.runtime import COMPILE_MODES, PRECISIONS
from usgan.core.stacking import DEFAULT_STAGE2
from usgan.core.train.losses import LOSSES
from usgan.core.train.options import TrainOptions, batch_overrides
from usgan.core.train.recipes import RECIPES, get_recipe

# CLI parameter -> TrainOptions field, for the ones that map one to one.
_DIRECT = ("stage1", "data", "epochs", "max_steps", "stage2_epochs", "stage2_max_steps",
           "batch_size", "stage2_batch_size", "lr", "seed", "loss", "ema", "ema_decay",
           "ema_warmup", "precision",
           "stage2_ema", "device", "sample_every", "checkpoint_every", "keep_checkpoints",
           "log_every", "threads", "jobs", "quiet", "stage1_from", "on_nonfinite", "lr_d",
           "label_smoothing", "instance_noise", "r1_gamma", "eval_every", "eval_n", "keep_best",
           "inception_weights", "compile", "compile_mode",
           "max_minutes", "stage2_max_minutes", "stage2_pretrain", "stage2_recon",
           "stage2_crop", "stage2_blur", "stage2_noise", "stage2_finetune_lr", "diffaugment_p",
           "ada_target", "ada_images", "lecam")


def stage2_choice(value: str | None, alias: str | None) -> str | None:
    """``--stage2 on|off|NAME`` (and the old ``--stage2-model NAME``) -> a Stage-II name or
    None. ``on`` is the built-in Stage-II."""
    value = (value or "on").strip()
    if value.lower() == "off":
        if alias:
            raise UsganError(f"--stage2 off and --stage2-model {alias} contradict each other")
        return None
    if value.lower() == "on":
        return alias or DEFAULT_STAGE2
    if alias and alias != value:
        raise UsganError(f"--stage2 {value} and --stage2-model {alias} name different networks")
    return value


def _opt(name: str, *decls: str, **kw: Any) -> Callable[[Any], Any]:
    """A ``usgan train`` option for `TrainOptions` field ``name`` (``--name-with-dashes``
    unless ``decls`` say otherwise): its default (the default recipe's), its help and, for a
    number, its type from there."""
    numbers = [t for t in get_args(_HINTS[name]) or (_HINTS[name],) if t in (int, float)]
    if len(numbers) == 1 and not kw.get("is_flag"):
        kw.setdefault("type", numbers[0])
    kw.setdefault("default", _d(name))
    shown = kw["default"] is not None and kw["default"] is not False
    if shown and name in _FROM_RECIPE:
        shown = f"{kw['default']} in the default recipe"
    kw.setdefault("show_default", shown)
    return click.option(*(decls or (f"--{name.replace('_', '-')}",)),
                        help=TrainOptions.help(name), **kw)


def _d(name: str) -> Any:
    """The default recipe's value of option ``name`` (for dcgan): what --help shows. The
    one source of a default is `TrainOptions` and the recipes; the CLI overrides only what is
    given on the command line (`_options_from_cli`)."""
    return _DEFAULTS[name]


# The recipe's values as a network without values of its own gets them (dcgan has batch 8,
# the SN networks no DiffAugment: plugins/dcgan.py, shown in the options' help): built
# without the registry, so that --help works before (and without) loading any plugin.
_DEFAULTS = TrainOptions(**get_recipe(TrainOptions.recipe).options).to_json()
_FROM_RECIPE = set(get_recipe(TrainOptions.recipe).options)
_HINTS = get_type_hints(TrainOptions)


def parse_pair(text: str, what: str) -> tuple[float, float]:
    """``"0.5,0.999"`` -> ``(0.5, 0.999)``."""
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise UsganError(f"{what}: expected two numbers like 0.5,0.999, got {text!r}") from None
    return a, b


def _options_from_cli(ctx: click.Context, p: dict[str, Any], base: TrainOptions | None
                      ) -> TrainOptions:
    """Options from the command line over ``base`` (a resumed run's saved options) or, for a
    new run, over the --recipe; only parameters given on the command line override."""
    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) in (
            ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)

    if base is None:
        opts = TrainOptions(recipe=p["recipe"], stage1=p["stage1"]).to_json()
    else:  # a resumed run keeps its options; --recipe again re-applies that recipe's values
        opts = base.to_json()
        if given("recipe"):
            opts.update(get_recipe(p["recipe"]).options_for(opts["stage1"]),
                        recipe=p["recipe"])
    for name in _DIRECT:
        if given(name):
            opts[name] = p[name]
    opts.update(batch_overrides({n for n in ("batch_size", "stage2_batch_size") if given(n)}))
    if given("stage2") or given("stage2_model"):
        opts["stage2"] = stage2_choice(p["stage2"], p["stage2_model"])
    if given("classes"):
        opts["classes"] = [c.strip() for c in p["classes"].split(",")] if p["classes"] else None
    if given("betas"):
        opts["betas"] = list(parse_pair(p["betas"], "--betas"))
    from usgan.core.train.diffaugment import parse_policy

    for name in ("diffaugment", "stage2_diffaugment"):
        if given(name):
            opts[name] = parse_policy(p[name])
    for name in ("stage1_config", "stage2_config"):  # over the recipe's (or the run's)
        if given(name):
            flag = f"--{name.replace('_', '-')}"
            opts[name] = {**(opts.get(name) or {}), **parse_kv(p[name], flag)}
    data_opts = dict(opts.get("data_options") or {})
    for name in ("crop", "bins", "split", "repeat"):
        if given(name) and p[name] is not None:
            data_opts[name] = p[name]
    if given("keep_all_checkpoints"):
        opts["prune_checkpoints"] = not p["keep_all_checkpoints"]
    if given("skip_bad") and p["skip_bad"]:
        data_opts["skip_bad"] = True
    if "crop" in data_opts and isinstance(data_opts["crop"], str):
        try:
            data_opts["crop"] = [int(v) for v in data_opts["crop"].split(",")]
        except ValueError:
            raise UsganError(f"--crop: expected x,y,w,h, got {data_opts['crop']!r}") from None
    opts["data_options"] = data_opts
    return TrainOptions.from_json(opts)


@click.command("train")
@_opt("stage1")
@click.option("--stage2", default="on", show_default=True, metavar="on|off|NAME",
              help="Stage-II on top of the frozen Stage-I: on (the built-in 'stack'), off, or "
                   "the name of any registered Stage-II network.")
@click.option("--stage2-model", default=None, hidden=True, help="Old spelling of --stage2 NAME.")
@_opt("data")
@_opt("classes")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Run directory to create (default: a new runs/STAGE1-STAGE2[-N]).")
@_opt("epochs")
@_opt("max_steps")
@_opt("stage2_epochs")
@_opt("stage2_max_steps")
@_opt("max_minutes")
@_opt("stage2_max_minutes")
@_opt("stage2_pretrain")
@_opt("stage2_finetune_lr")
@_opt("stage2_recon")
@_opt("stage2_crop")
@_opt("stage2_blur")
@_opt("stage2_noise")
@_opt("recipe", type=click.Choice(list(RECIPES)))
@_opt("batch_size", show_default=False)  # per network: its help says
@_opt("stage2_batch_size")
@_opt("lr")
@_opt("lr_d")
@_opt("betas", default=",".join(map(str, _d("betas"))))
@_opt("seed")
@_opt("device")
@_opt("precision", type=click.Choice(["auto", *PRECISIONS]))
@_opt("loss", type=click.Choice(list(LOSSES)))
@_opt("on_nonfinite", "--on-nan", "on_nonfinite", type=click.Choice(["stop", "skip"]))
@_opt("label_smoothing")
@_opt("instance_noise")
@_opt("r1_gamma")
@_opt("lecam")
@_opt("diffaugment", default=",".join(_d("diffaugment")) or "none")
@_opt("stage2_diffaugment", default=None)
@_opt("diffaugment_p")
@_opt("ada_target")
@_opt("ada_images")
@_opt("ema", "--ema/--no-ema")
@_opt("stage2_ema", "--stage2-ema/--no-stage2-ema", default=None)
@_opt("ema_decay")
@_opt("ema_warmup", "--ema-warmup/--no-ema-warmup")
@_opt("sample_every")
@_opt("checkpoint_every")
@_opt("keep_checkpoints")
@click.option("--keep-all-checkpoints", is_flag=True,
              help="Keep them when a stage finishes too (default: only the last one).")
@_opt("threads")
@_opt("jobs")
@_opt("compile", is_flag=True)
@_opt("compile_mode", type=click.Choice(COMPILE_MODES))
@_opt("log_every")
@_opt("eval_every")
@_opt("eval_n")
@_opt("keep_best", is_flag=True)
@_opt("inception_weights", metavar="PATH", envvar="USGAN_INCEPTION_WEIGHTS")
@_opt("stage1_config", default=None)
@_opt("stage2_config", default=None)
@_opt("stage1_from", metavar="SOURCE")
@click.option("--crop", default=None, help="Data crop x,y,w,h (overrides sector detection).")
@click.option("--bins", default=None, help="Grade bins for graded folders (docs/data.md).")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable images instead of failing.")
@click.option("--split", default=None, help="Split file from `usgan data split` (train part).")
@click.option("--repeat", type=int, default=None, help="Which repeat of --split (default 0).")
@click.option("--resume", is_flag=False, flag_value="", default=None,
              help="Continue the run in --out (or in the given RUN_DIR) from its last checkpoint.")
@click.option("--force", is_flag=True,
              help="Move an existing run in --out aside and start again; with --resume, "
                   "continue despite changed options.")
@_opt("quiet", is_flag=True)
@click.pass_context
def train_cmd(ctx: click.Context, **p: Any) -> None:
    """Train one GAN per class: Stage-I, then Stage-II on the frozen Stage-I."""
    from usgan.core.run import RunDir, fresh_dir
    from usgan.core.train.trainer import Trainer
    from usgan.zoo.card import write_card
    from usgan.zoo.source import resolve

    resume = p["resume"] is not None
    out = p["out"] or (Path(p["resume"]) if p["resume"] else None)
    if out is None and resume:
        raise click.UsageError("say which run to continue: --resume RUN_DIR")
    if out is None:
        stage2 = stage2_choice(p["stage2"], p["stage2_model"])
        out = fresh_dir(Path("runs") / f"{p['stage1']}-{stage2 or 'stage1'}")
        _echo(f"no --out given: training into {out}")
    base = None
    if resume and RunDir(out).exists():
        base = TrainOptions.from_json(RunDir(out).read_config()["options"])
    opts = _options_from_cli(ctx, p, base)
    run = Trainer(opts, out, resume=resume, force=p["force"], echo=_echo,
                  resolve_source=resolve, on_finish=[write_card]).train()
    click.echo(f"run directory: {run.root}")


def _echo(message: str) -> None:
    click.echo(message, err=True)

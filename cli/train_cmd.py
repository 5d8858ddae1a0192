"""``usgan train``: train Stage-I (and Stage-II) GANs, one per class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from usgan.core.errors import UsganError
from usgan.core.registry import parse_kv
from usgan.core.stacking import DEFAULT_STAGE2
from usgan.core.train.losses import LOSSES
from usgan.core.train.options import TrainOptions
from usgan.core.train.recipes import RECIPES, get_recipe

# CLI parameter -> TrainOptions field, for the ones that map one to one.
_DIRECT = ("stage1", "data", "epochs", "max_steps", "stage2_epochs", "stage2_max_steps",
           "batch_size", "lr", "seed", "loss", "ema", "ema_decay", "ema_warmup", "precision",
           "device", "sample_every", "checkpoint_every", "keep_checkpoints", "log_every",
           "threads", "quiet", "stage1_from", "on_nonfinite", "lr_d", "label_smoothing",
           "instance_noise", "r1_gamma", "eval_every", "eval_n", "inception_weights", "compile",
           "max_minutes", "stage2_max_minutes", "stage2_pretrain", "stage2_recon",
           "stage2_crop", "stage2_blur", "stage2_noise", "diffaugment_p", "ada_target",
           "ada_images", "lecam")


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


def _d(name: str) -> Any:
    """The default recipe's value of option ``name`` (for dcgan): what --help shows. The
    one source of a default is `TrainOptions` and the recipes; the CLI overrides only what is
    given on the command line (`_options_from_cli`)."""
    return _DEFAULTS[name]


# The recipe's values as every network without values of its own gets them (dcgan's): built
# without the registry, so that --help works before (and without) loading any plugin.
_DEFAULTS = TrainOptions(**get_recipe(TrainOptions.recipe).options).to_json()


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
@click.option("--stage1", default="dcgan", show_default=True, help="Stage-I network name.")
@click.option("--stage2", default="on", show_default=True, metavar="on|off|NAME",
              help="Stage-II on top of the frozen Stage-I: on (the built-in 'stack'), off, or "
                   "the name of any registered Stage-II network.")
@click.option("--stage2-model", default=None, hidden=True, help="Old spelling of --stage2 NAME.")
@click.option("--data", default="phantom", show_default=True, help="Data spec (see docs/data.md).")
@click.option("--classes", default=None, help="Classes to train, e.g. healthy,steatosis.")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Run directory to create (default: a new runs/STAGE1-STAGE2[-N]).")
@click.option("--epochs", type=int, default=None,
              help=f"Epochs per stage (default {TrainOptions.DEFAULT_EPOCHS}).")
@click.option("--max-steps", type=int, default=None, help="Steps per stage (caps --epochs).")
@click.option("--stage2-epochs", type=int, default=None,
              help="Stage-II epochs (default: --epochs).")
@click.option("--stage2-max-steps", type=int, default=None,
              help="Stage-II steps (default: --max-steps).")
@click.option("--max-minutes", type=float, default=None,
              help="Wall-clock budget per stage and class, in minutes (with --max-steps or "
                   "--epochs: whichever comes first); a resume continues what is left.")
@click.option("--stage2-max-minutes", type=float, default=None,
              help="Stage-II's budget in minutes (default: --max-minutes).")
@click.option("--stage2-pretrain", type=float, default=None,
              help="Share of Stage-II's length spent restoring degraded real images before "
                   "fine-tuning on Stage-I's (0: the paper's from-scratch schedule; 1: real "
                   "pairs only).")
@click.option("--stage2-recon", type=float, default=None,
              help="Weight of Stage-II's L1 term: reconstruction of the real pairs, then "
                   "consistency with its Stage-I input.")
@click.option("--stage2-crop", type=int, default=None,
              help="Stage-II trains on random crops of this size (a fully convolutional "
                   "Stage-II; it samples at full size); 0: whole images.")
@click.option("--stage2-blur", type=float, default=None,
              help="Degradation of the real pairs: blur sigma up to this (Stage-I pixels).")
@click.option("--stage2-noise", type=float, default=None,
              help="Degradation of the real pairs: noise std up to this ([-1, 1] units).")
@click.option("--recipe", type=click.Choice(list(RECIPES)), default=_d("recipe"),
              show_default=True,
              help="Named defaults: paper (Che et al., for reproduction) or default (ours, "
                   "docs/quality.md); options given here override it.")
@click.option("--batch-size", type=int, default=_d("batch_size"), show_default=True)
@click.option("--lr", type=float, default=_d("lr"), show_default=True)
@click.option("--lr-d", type=float, default=None,
              help="Discriminator learning rate (two time-scales; default: --lr).")
@click.option("--betas", default=",".join(map(str, _d("betas"))), show_default=True,
              help="Adam betas.")
@click.option("--seed", type=int, default=_d("seed"), show_default=True)
@click.option("--device", default=_d("device"), show_default=True,
              help="auto, cpu, cuda or cuda:N (GPU N).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
              default=_d("precision"), show_default=True,
              help="auto: fp32, or bf16 where the hardware has it natively and it measured "
                   "faster (docs/training.md).")
@click.option("--loss", type=click.Choice(list(LOSSES)), default=_d("loss"), show_default=True)
@click.option("--on-nan", "on_nonfinite", type=click.Choice(["stop", "skip"]),
              default=_d("on_nonfinite"),
              show_default=True,
              help="A NaN/inf loss stops training, or skips that step with a warning.")
@click.option("--label-smoothing", type=float, default=_d("label_smoothing"), show_default=True,
              help="One-sided label smoothing: D's target for real images is 1 - this (bce).")
@click.option("--instance-noise", type=float, default=_d("instance_noise"), show_default=True,
              help="Std of Gaussian noise added to every image D sees.")
@click.option("--r1-gamma", type=float, default=_d("r1_gamma"), show_default=True,
              help="Zero-centred gradient penalty on real images (R1) with this weight.")
@click.option("--lecam", type=float, default=_d("lecam"), show_default=True,
              help="LeCam regularisation of D (Tseng et al. 2021) with this weight (0: off).")
@click.option("--diffaugment", default=",".join(_d("diffaugment")) or "none", show_default=True,
              help="DiffAugment policy, e.g. color,translation,cutout ('none': off); the "
                   "default recipe's for dcgan (none for dcgan-sn and dcgan-sn-sa).")
@click.option("--stage2-diffaugment", default=None,
              help="Stage-II's DiffAugment policy (default: --diffaugment's).")
@click.option("--diffaugment-p", type=float, default=_d("diffaugment_p"), show_default=True,
              help="Apply each DiffAugment op to each image with this probability (with "
                   "--ada-target: where it starts).")
@click.option("--ada-target", type=float, default=None,
              help="Adapt that probability (ADA): up while the mean sign of D's real logits "
                   "is above this (0.6 in ADA), down below it.")
@click.option("--ada-images", type=int, default=_d("ada_images"), show_default=True,
              help="Images an adaptive probability takes to cross from 0 to 1.")
@click.option("--ema/--no-ema", default=_d("ema"), show_default=True,
              help="Keep an EMA copy of G for sampling.")
@click.option("--ema-decay", type=float, default=_d("ema_decay"), show_default=True)
@click.option("--ema-warmup/--no-ema-warmup", default=_d("ema_warmup"), show_default=True,
              help="Ramp the EMA decay up as (1+n)/(10+n).")
@click.option("--sample-every", type=int, default=_d("sample_every"), show_default=True)
@click.option("--checkpoint-every", type=int, default=_d("checkpoint_every"), show_default=True)
@click.option("--keep-checkpoints", type=int, default=_d("keep_checkpoints"), show_default=True,
              help="Checkpoints kept while a stage trains.")
@click.option("--keep-all-checkpoints", is_flag=True,
              help="Keep them when a stage finishes too (default: only the last one).")
@click.option("--threads", type=int, default=None, help="CPU threads (default: torch's).")
@click.option("--compile", is_flag=True,
              help="torch.compile G and D (1.07x end to end for dcgan-sn-sa on an H200, "
              "docs/benchmarks.md); the first steps wait for the compiler.")
@click.option("--log-every", type=int, default=_d("log_every"), show_default=True)
@click.option("--eval-every", type=int, default=_d("eval_every"), show_default=True,
              help="FID/KID of G against its training data every N steps (0: off).")
@click.option("--eval-n", type=int, default=_d("eval_n"), show_default=True,
              help="Generated images per --eval-every evaluation.")
@click.option("--inception-weights", default=None, metavar="PATH",
              envvar="USGAN_INCEPTION_WEIGHTS",
              help="Offline Inception weights for --eval-every (docs/evaluation.md).")
@click.option("--stage1-config", default=None, help="Stage-I config overrides, k=v,k=v.")
@click.option("--stage2-config", default=None, help="Stage-II config overrides, k=v,k=v.")
@click.option("--stage1-from", default=None, metavar="SOURCE",
              help="Reuse the Stage-I of this run (a run directory or a zoo SOURCE).")
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
@click.option("--quiet", is_flag=True, help="Log lines instead of progress bars.")
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

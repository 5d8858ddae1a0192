"""Before the first step: check the networks, claim the output folder, load the data and
write the run's config.json (options, data, provenance of every network, versions)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from usgan.core.contract import ContractError, check_pair, check_stackable
from usgan.core.errors import ConfigError, UsganError
from usgan.core.registry import Registry, build
from usgan.core.run import ROLES, RunDir
from usgan.core.runtime import Dist, Runtime, versions
from usgan.core.stacking import stage2_config
from usgan.core.stage import Stage

from .options import TrainOptions, differences


def validate_networks(registry: Registry, opts: TrainOptions) -> None:
    """Build the networks once, on the meta device (no memory), and run them on a batch of
    two, so that bad names, configs and shapes fail before any training."""
    if opts.stage1_from:
        return
    with torch.device("meta"):
        g1 = _check_pair(registry, opts.stage1, Stage.ONE, opts.stage1_config)
        if g1.out_channels != 1:
            raise ConfigError(f"Stage-I {opts.stage1!r} makes {g1.out_channels}-channel "
                              "images; usgan's data is grayscale (1 channel)")
        if opts.stage2:
            config = stage2_config(g1, opts.stage2_config)
            g2 = build(registry, opts.stage2, "generator", config, Stage.TWO)
            check_stackable(g1, g2)
            _check_pair(registry, opts.stage2, Stage.TWO, config)
            if opts.stage2_crop:
                _check_crop(registry, opts, g2, config)


def discriminator_config(opts: TrainOptions, stage: Stage, config: dict[str, Any]
                         ) -> dict[str, Any]:
    """The discriminator's config: with ``--stage2-crop``, Stage-II's D judges crops."""
    if stage == Stage.TWO and opts.stage2_crop:
        return {**config, "out_size": opts.stage2_crop}
    return config


def _check_crop(registry: Registry, opts: TrainOptions, g2: torch.nn.Module,
                config: dict[str, Any]) -> None:
    """``--stage2-crop``: the Stage-II refines a crop into a crop (fully convolutional), and
    its discriminator takes crops of that size."""
    crop, factor = opts.stage2_crop, g2.out_size // g2.in_size
    assert crop is not None
    who = f"--stage2-crop {crop}: Stage-II {opts.stage2!r}"
    if crop > g2.out_size or crop % factor:
        raise ConfigError(f"{who} makes {g2.out_size} px images from {g2.in_size} px; the crop "
                          f"must be a multiple of {factor} up to {g2.out_size}")
    try:
        x = g2(torch.empty(2, g2.in_channels, crop // factor, crop // factor),
               torch.empty(2, g2.z_dim))
        build(registry, opts.stage2, "discriminator",
              discriminator_config(opts, Stage.TWO, config), Stage.TWO)(x)
    except (RuntimeError, ValueError, ConfigError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{who} does not train on crops of that size ({first}); try a "
                          "multiple of 64, or no --stage2-crop") from None
    if tuple(x.shape[-2:]) != (crop, crop):
        raise ConfigError(f"{who} turns a {crop // factor} px crop into {list(x.shape[-2:])}, "
                          f"not {crop} px: it is not fully convolutional; drop --stage2-crop")


def _check_pair(registry: Registry, name: str, stage: Stage, config: dict[str, Any]
                ) -> torch.nn.Module:
    """G and D of ``name`` keep the contract (`usgan.core.contract.check_pair`); else a
    `ContractError` naming the plugin and the command that says more."""
    spec = registry.get(name, stage)
    g = build(registry, name, "generator", config, stage)
    d = build(registry, name, "discriminator", config, stage)
    try:
        check_pair(g, d, stage, f"{stage.label} {name!r} (plugin {spec.plugin!r})")
    except ContractError as err:
        raise ContractError(f"{err}; run 'usgan plugins check {name}'") from None
    return g


def prepare_out(run: RunDir, opts: TrainOptions, resume: bool, force: bool, d: Dist,
                echo: Callable[[str], None]) -> None:
    """Refuse to overwrite; check resume compatibility; create the folder."""
    root = run.root
    if run.exists():
        saved = run.read_config().get("options", {})
        if resume:
            diffs = differences(saved, opts.to_json())
            if diffs and not force:
                raise UsganError(
                    f"--resume with options that differ from the run in {root}: "
                    f"{'; '.join(diffs)}; drop them, or add --force to continue anyway"
                )
        elif force:
            aside = root.with_name(f"{root.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            if d.is_main:
                root.rename(aside)
                echo(f"moved the existing run {root} aside to {aside}")
        else:
            state = "a finished" if run.is_finished() else "an unfinished"
            hint = ("choose another --out, or --force to move it aside and start again"
                    if run.is_finished() else
                    "add --resume to continue it, or --force to move it aside and start again")
            raise UsganError(f"{root} holds {state} run; {hint}")
    elif resume:
        raise UsganError(f"nothing to resume: {root} holds no usgan run (no config.json)")
    elif root.exists() and any(root.iterdir()):
        raise UsganError(f"{root} exists and is not a usgan run; choose a new or empty folder")
    d.barrier()
    if d.is_main and not run.exists():
        root.mkdir(parents=True, exist_ok=True)


def load_data(opts: TrainOptions) -> Any:
    """The training images of the run (the train part of ``--split`` when given)."""
    from usgan.core.data import load_dataset
    from usgan.core.data.splits import load_split

    options = dict(opts.data_options)
    split, repeat = options.pop("split", None), options.pop("repeat", None) or 0
    if options.get("crop") is not None:
        options["crop"] = tuple(options["crop"])
    ds = load_dataset(opts.data, classes=opts.classes, min_classes=1, **options)
    if split:
        train, _ = load_split(split, ds, repeat)
        ds = ds.subset(train)
    return ds


def network_provenance(registry: Registry, opts: TrainOptions, stage1_source: RunDir | None
                       ) -> dict[str, Any]:
    """For each stage: the network name, the plugin that registered it, that plugin's
    distribution and version (a reused Stage-I keeps what its own run recorded)."""
    if stage1_source is not None:
        stage1 = dict(stage1_source.read_config().get("stage1") or {})
        stage1["from"] = opts.stage1_from
    else:
        stage1 = {**registry.get(opts.stage1, Stage.ONE).provenance(), "from": None}
    stage2 = registry.get(opts.stage2, Stage.TWO).provenance() if opts.stage2 else None
    return {"stage1": stage1, "stage2": stage2}


def started_runtime(run: RunDir, resume: bool) -> dict[str, str] | None:
    """The device and precision a run to be resumed recorded when it started (config.json),
    which ``--precision auto`` keeps; None for a new run."""
    if not (resume and run.exists()):
        return None
    runtime = run.read_config().get("runtime")
    return runtime if isinstance(runtime, dict) else None


def write_config(run: RunDir, opts: TrainOptions, ds: Any, provenance: dict[str, Any],
                 rt: Runtime, echo: Callable[[str], None]) -> None:
    """config.json of the run (``created`` is kept across resumes), with the device and
    precision this process trains in and why (said once, for ``--precision auto``)."""
    if opts.precision == "auto" and not opts.quiet:
        echo(f"precision: {rt.precision} ({rt.why})")
    old = run.read_config() if run.exists() else {}
    created = old.get("created")
    run.write_config({
        **({"phases": old["phases"]} if "phases" in old else {}),
        "options": opts.to_json(),
        "classes": ds.class_names if opts.classes is None else opts.classes,
        "data": {"spec": opts.data, "fingerprint": ds.fingerprint,
                 "counts": {c: int((ds.labels == i).sum())
                            for i, c in enumerate(ds.class_names)}},
        **provenance,
        "versions": versions(),
        "runtime": {"device": str(rt.device), "precision": rt.precision, "why": rt.why},
        "seed": opts.seed,
        "created": created or time.strftime("%Y-%m-%dT%H:%M:%S"),
    })


def source_run(resolve: Callable[[str], Path], source: str) -> RunDir:
    """The run directory named by ``--stage1-from``."""
    run = RunDir(resolve(source))
    if not run.exists():
        raise UsganError(f"--stage1-from {source}: not a usgan run directory")
    return run


def copy_stage1(source: RunDir, run: RunDir, cls: str, is_main: bool) -> None:
    """Take the Stage-I weights of ``source`` for ``cls`` as they are (copied, not re-saved)."""
    for role in ROLES:
        path = source.weights(cls, Stage.ONE, role)
        if role == "generator" and not path.is_file():
            raise UsganError(f"--stage1-from {source.root}: it has no Stage-I generator "
                             f"for class {cls!r} ({path})")
        if path.is_file() and is_main:
            dest = run.weights(cls, Stage.ONE, role)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)


def validate_eval(opts: TrainOptions) -> None:
    """``--eval-every`` has usable Inception weights (checked before anything is written)."""
    if opts.eval_every:
        from usgan.core.evaluation import weights_path

        weights_path(opts.inception_weights)


def record_phase(run: RunDir, key: str, state: Any, schedule: Any, stop: str, pairs: bool,
                 best_step: int | None = None) -> None:
    """config.json's ``phases``: the length asked for and reached, what ended it and, with
    ``--keep-best``, the step whose generator the phase kept."""
    record = {
        "steps": state.step, "seconds": round(state.elapsed, 1), "max_steps": schedule.total,
        "max_minutes": schedule.minutes, "stopped_by": stop,
        "pretrain_steps": (state.pretrain_end or state.step) if pairs else None,
        **({"best_step": best_step} if best_step is not None else {}),
    }
    run.update_config(lambda config: config.setdefault("phases", {}).update({key: record}))


def check_batches(opts: TrainOptions, ds: Any, phases: Any, dist: Dist) -> None:
    """Every phase's batch fits the images of its class, checked before any phase trains (a
    `ConfigError` naming the option, not after Stage-I's minutes)."""
    counts = ds.class_counts()
    for phase in phases:
        opts.schedule(phase.stage, counts[phase.cls], dist, f"class {phase.cls!r}")

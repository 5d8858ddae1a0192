"""The two-stage trainer: one GAN per class, Stage-I then (optionally) Stage-II.

Reproducible and resumable: every random draw comes from a seeded ``torch.Generator`` whose
state is checkpointed, so a run killed at any moment and resumed ends bit-identical (CPU) to
an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import platform
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from usgan import __version__
from usgan.core.errors import ConfigError, UsganError
from usgan.core.plugin_manager import get_registry
from usgan.core.registry import Registry, build
from usgan.core.serialization import load_network, save_network
from usgan.core.stacking import StackedGenerator, check_stackable

from . import losses
from .checkpoint import load_latest, save_checkpoint
from .diffaugment import diff_augment
from .distributed import Dist, init_distributed, shutdown
from .ema import EMA
from .options import TrainOptions, differences
from .progress import ProgressReporter
from .rundir import RunDir


class TrainingDiverged(UsganError):
    """A loss became NaN or infinite."""


class Interrupted(UsganError):
    """Training was interrupted (SIGINT); a checkpoint was saved."""

    exit_code = 130


@dataclass
class Phase:
    """One GAN to train: a class and a stage."""

    cls: str
    stage: int
    index: int

    @property
    def key(self) -> str:
        return f"{self.cls}/stage{self.stage}"


def resolve_device(name: str, d: Dist) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA GPU is available; use --device cpu")
        return torch.device("cuda", d.local_rank)
    if name != "cpu":
        raise ConfigError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device("cpu")


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> bf16 where the hardware computes it natively (CUDA with bf16, or a CPU with
    AVX512-BF16/AMX), else fp32."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        native = (torch.backends.mkldnn.is_available()
                  and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return "bf16" if native else "fp32"


def _seed_for(seed: int, phase: Phase, stream: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + phase.index * 7919 + stream * 104_729 + rank * 15_485_863) % 2**63


class Trainer:
    """Train every phase of a run into ``out``; see `TrainOptions` for the options."""

    def __init__(
        self, options: TrainOptions, out: str | Path, *, resume: bool = False,
        force: bool = False, registry: Registry | None = None, dataset: Any = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.opts = options
        self.run = RunDir(Path(out))
        self.resume = resume
        self.force = force
        self.registry = registry or get_registry()
        self._dataset = dataset
        self.echo = echo or (lambda msg: print(msg, file=sys.stderr))
        self._interrupted = False

    # ---------------------------------------------------------------- set-up
    def _stage2_config(self, stage1: nn.Module) -> dict[str, Any]:
        cfg = dict(self.opts.stage2_config)
        cfg.setdefault("in_size", stage1.out_size)
        cfg.setdefault("in_channels", stage1.out_channels)
        cfg.setdefault("out_channels", stage1.out_channels)
        return cfg

    def _validate_networks(self) -> None:
        """Build the networks once so that bad names and shapes fail before any training."""
        if self.opts.stage1_from:
            return
        g1 = build(self.registry, self.opts.stage1, "generator", self.opts.stage1_config, "stage1")
        build(self.registry, self.opts.stage1, "discriminator", self.opts.stage1_config, "stage1")
        if g1.out_channels != 1:
            raise ConfigError(f"Stage-I {self.opts.stage1!r} makes {g1.out_channels}-channel "
                              "images; usgan's data is grayscale (1 channel)")
        if self.opts.stage2:
            cfg = self._stage2_config(g1)
            g2 = build(self.registry, self.opts.stage2, "generator", cfg, "stage2")
            check_stackable(g1, g2)

    def _prepare_out(self, d: Dist) -> None:
        """Refuse to overwrite; check resume compatibility; write config.json."""
        root = self.run.root
        new = self.opts.to_json()
        if self.run.exists():
            saved = self.run.read_config().get("options", {})
            if self.resume:
                diffs = differences(saved, new)
                if diffs and not self.force:
                    raise UsganError(
                        f"--resume with options that differ from the run in {root}: "
                        f"{'; '.join(diffs)}; drop them, or add --force to continue anyway"
                    )
            elif self.force:
                stamp = time.strftime("%Y%m%d-%H%M%S")
                aside = root.with_name(f"{root.name}.replaced-{stamp}")
                if d.is_main:
                    root.rename(aside)
                    self.echo(f"moved the existing run {root} aside to {aside}")
            else:
                state = "a finished" if self.run.is_finished() else "an unfinished"
                hint = ("choose another --out, or --force to move it aside and start again"
                        if self.run.is_finished() else
                        "add --resume to continue it, or --force to move it aside and start again")
                raise UsganError(f"{root} holds {state} run; {hint}")
        elif self.resume:
            raise UsganError(f"nothing to resume: {root} holds no usgan run (no config.json)")
        elif root.exists() and any(root.iterdir()):
            raise UsganError(f"{root} exists and is not a usgan run; choose a new or empty folder")
        d.barrier()
        if d.is_main and not self.run.exists():
            root.mkdir(parents=True, exist_ok=True)

    def _write_config(self, ds: Any) -> None:
        config = {
            "usgan_run": 1,
            "options": self.opts.to_json(),
            "classes": ds.class_names if self.opts.classes is None else self.opts.classes,
            "data": {"spec": self.opts.data, "fingerprint": ds.fingerprint,
                     "counts": {c: int((ds.labels == i).sum())
                                for i, c in enumerate(ds.class_names)}},
            "stage1": {"name": self.opts.stage1, "from": self.opts.stage1_from},
            "stage2": {"name": self.opts.stage2} if self.opts.stage2 else None,
            "versions": {"usgan": __version__, "torch": torch.__version__,
                         "python": platform.python_version()},
            "seed": self.opts.seed,
        }
        if self.run.exists():
            old = self.run.read_config()
            config["created"] = old.get("created")
        else:
            config["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.run.write_json(self.run.config_path, config)

    def _load_data(self) -> Any:
        if self._dataset is not None:
            return self._dataset
        from usgan.core.data import load_dataset
        from usgan.core.data.splits import load_split

        options = dict(self.opts.data_options)
        split, repeat = options.pop("split", None), options.pop("repeat", None) or 0
        if options.get("crop") is not None:
            options["crop"] = tuple(options["crop"])
        ds = load_dataset(self.opts.data, classes=self.opts.classes, min_classes=1, **options)
        if split:
            train, _ = load_split(split, ds, repeat)
            ds = ds.subset(train)
        return ds

    # ---------------------------------------------------------------- main loop
    def train(self) -> RunDir:
        """Train every phase not yet done; returns the run directory."""
        opts = self.opts
        self._validate_networks()
        d = init_distributed(opts.device)
        try:
            device = resolve_device(opts.device, d)
            self._prepare_out(d)
            if self.run.is_finished():
                self.echo(f"{self.run.root} is already finished; nothing to do")
                return self.run
            ds = self._load_data()
            classes = list(ds.class_names)
            if d.is_main:
                self._write_config(ds)
            d.barrier()
            phases = [Phase(c, s, i * 2 + s - 1) for i, c in enumerate(classes)
                      for s in ((1, 2) if opts.stage2 else (1,))]
            precision = resolve_precision(opts.precision, device)
            with self._sigint_handler():
                for phase in phases:
                    if phase.key in self.run.progress()["done"]:
                        continue
                    if phase.stage == 1 and opts.stage1_from:
                        self._copy_stage1(phase, d)
                    else:
                        images = ds.of_class(phase.cls)
                        self._train_phase(phase, images, device, precision, d)
                    if d.is_main:
                        self.run.mark_done(phase.key)
                    d.barrier()
            if d.is_main:
                self._finish(classes)
            return self.run
        finally:
            shutdown(d)

    @contextlib.contextmanager
    def _sigint_handler(self) -> Iterator[None]:
        def handler(signum: int, frame: Any) -> None:
            if self._interrupted:  # second Ctrl-C: stop now
                raise KeyboardInterrupt
            self._interrupted = True
            self.echo("interrupt received: saving a checkpoint (Ctrl-C again to stop at once)")

        try:
            old = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)

    def _copy_stage1(self, phase: Phase, d: Dist) -> None:
        src = RunDir(self._resolve_source(self.opts.stage1_from))
        for role in ("generator", "discriminator", "generator_ema"):
            path = src.weights(phase.cls, 1, role)
            if role == "generator" and not path.is_file():
                raise UsganError(f"--stage1-from {src.root}: it has no Stage-I generator for "
                                 f"class {phase.cls!r} ({path})")
            if path.is_file() and d.is_main:
                dest = self.run.weights(phase.cls, 1, role)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)

    @staticmethod
    def _resolve_source(source: str | None) -> Path:
        path = Path(source or "")
        if not (path / "config.json").is_file():
            raise UsganError(f"--stage1-from {source}: not a usgan run directory")
        return path

    def _stage1_for_stage2(self, cls: str, device: torch.device) -> nn.Module:
        role = "generator_ema" if self.opts.ema else "generator"
        path = self.run.weights(cls, 1, role)
        if not path.is_file():
            path = self.run.weights(cls, 1, "generator")
        return load_network(path, self.registry).to(device)

    def _build_phase_models(
        self, phase: Phase, device: torch.device
    ) -> tuple[nn.Module, nn.Module, nn.Module | None]:
        """(trainable G, D, frozen Stage-I or None)."""
        opts = self.opts
        torch.manual_seed(_seed_for(opts.seed, phase, 0))
        if phase.stage == 1:
            g = build(self.registry, opts.stage1, "generator", opts.stage1_config, "stage1")
            dnet = build(self.registry, opts.stage1, "discriminator", opts.stage1_config,
                         "stage1")
            return g.to(device), dnet.to(device), None
        assert opts.stage2 is not None
        stage1 = self._stage1_for_stage2(phase.cls, device)
        cfg = self._stage2_config(stage1)
        g = build(self.registry, opts.stage2, "generator", cfg, "stage2").to(device)
        dnet = build(self.registry, opts.stage2, "discriminator", cfg, "stage2").to(device)
        stacked = StackedGenerator(stage1, g)  # checks shapes, freezes Stage-I
        return g, dnet, stacked.stage1

    def _train_phase(
        self, phase: Phase, images: Any, device: torch.device, precision: str, d: Dist
    ) -> None:
        opts = self.opts
        g, dnet, stage1 = self._build_phase_models(phase, device)
        size = g.out_size
        real_all = images.at_size(size) if size != images.images.shape[-1] else images.images
        n = real_all.shape[0]
        per_rank = opts.batch_size // d.world
        if opts.batch_size % d.world:
            raise ConfigError(f"--batch-size {opts.batch_size} does not split evenly over "
                              f"{d.world} processes")
        if opts.batch_size > n:
            raise ConfigError(f"--batch-size {opts.batch_size} is larger than the {n} images of "
                              f"class {phase.cls!r}; use --batch-size {n} or less")
        steps_per_epoch = (n // d.world) // per_rank
        total = opts.max_steps or (opts.epochs or TrainOptions.DEFAULT_EPOCHS) * steps_per_epoch
        if opts.max_steps and opts.epochs:
            total = min(opts.max_steps, opts.epochs * steps_per_epoch)

        channels_last = device.type == "cpu" or device.type == "cuda"
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        g.to(memory_format=fmt)
        dnet.to(memory_format=fmt)
        if stage1 is not None:
            stage1.to(memory_format=fmt)
        real_all = real_all.to(device)

        ema = EMA(g, opts.ema_decay) if opts.ema else None
        g_train: nn.Module = g
        d_train: nn.Module = dnet
        if d.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            g_train = DDP(g, device_ids=ids)
            d_train = DDP(dnet, device_ids=ids)
        opt_g = torch.optim.Adam(g.parameters(), lr=opts.lr, betas=tuple(opts.betas))
        opt_d = torch.optim.Adam(dnet.parameters(), lr=opts.lr, betas=tuple(opts.betas))

        gen = {name: torch.Generator().manual_seed(_seed_for(opts.seed, phase, i + 1, rank))
               for i, (name, rank) in enumerate(
                   (("data", 0), ("noise", d.rank), ("aug", d.rank)))}
        fixed = torch.Generator().manual_seed(_seed_for(opts.seed, phase, 9))
        fixed_z = self._noise(g, stage1, 16, fixed, torch.device("cpu"))
        step, epoch, pos = 0, 0, 0
        perm = torch.randperm(n, generator=gen["data"])

        ckpt_dir = self.run.checkpoints(phase.cls, phase.stage)
        state = load_latest(ckpt_dir, warn=self.echo) if d.is_main else None
        state = d.broadcast(state)
        if state is not None:
            g.load_state_dict(state["g"])
            dnet.load_state_dict(state["d"])
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
            if ema is not None and state.get("ema") is not None:
                ema.shadow.load_state_dict(state["ema"])
            step, epoch, pos, perm = state["step"], state["epoch"], state["pos"], state["perm"]
            rng = state["rng"][d.rank]
            torch.set_rng_state(rng["torch"])
            for name in gen:
                gen[name].set_state(rng[name])
            if d.is_main:
                self.echo(f"resuming {phase.key} from step {step}")

        autocast = (torch.autocast(device.type, dtype=torch.bfloat16)
                    if precision == "bf16" else contextlib.nullcontext())
        policy = opts.diffaugment

        def save_ckpt() -> None:
            rngs = d.gather({"torch": torch.get_rng_state(),
                             **{k: v.get_state() for k, v in gen.items()}})
            if d.is_main:
                save_checkpoint(ckpt_dir, step, {
                    "step": step, "epoch": epoch, "pos": pos, "perm": perm,
                    "g": g.state_dict(), "d": dnet.state_dict(),
                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                    "ema": ema.shadow.state_dict() if ema else None, "rng": rngs,
                }, keep=opts.keep_checkpoints)

        reporter = ProgressReporter(
            f"{phase.cls} stage {phase.stage}", total, quiet=opts.quiet or not d.is_main,
            echo=self.echo,
        )
        g.train()
        dnet.train()
        t0, done_since = time.perf_counter(), 0
        with reporter:
            reporter.advance_to(step)
            while step < total:
                if pos >= steps_per_epoch:
                    epoch, pos = epoch + 1, 0
                    perm = torch.randperm(n, generator=gen["data"])
                local = perm[d.rank::d.world]
                idx = local[pos * per_rank:(pos + 1) * per_rank]
                real = real_all[idx].to(torch.float32).div_(127.5).sub_(1.0)
                real = real.contiguous(memory_format=fmt)
                noise = self._noise(g, stage1, per_rank, gen["noise"], device)

                with autocast:
                    fake = self._fake(g_train, stage1, noise)
                    # Discriminator: real then fake, each its own backward (DDP-friendly).
                    opt_d.zero_grad(set_to_none=True)
                    logit_real = d_train(diff_augment(real, policy, gen["aug"]))
                    loss_real = losses.d_loss_real(logit_real.float(), opts.loss)
                loss_real.backward()
                with autocast:
                    logit_fake = d_train(diff_augment(fake.detach(), policy, gen["aug"]))
                    loss_fake = losses.d_loss_fake(logit_fake.float(), opts.loss)
                loss_fake.backward()
                loss_d = loss_real.detach() + loss_fake.detach()
                if not torch.isfinite(loss_d):
                    self._diverged(phase, step, "discriminator", float(loss_d), ckpt_dir)
                opt_d.step()
                # Generator.
                opt_g.zero_grad(set_to_none=True)
                with autocast:
                    logit_gen = d_train(diff_augment(fake, policy, gen["aug"]))
                    loss_g = losses.g_loss(logit_gen.float(), opts.loss)
                loss_g.backward()
                if not torch.isfinite(loss_g):
                    self._diverged(phase, step, "generator", float(loss_g), ckpt_dir)
                opt_d.zero_grad(set_to_none=True)
                opt_g.step()
                if ema is not None:
                    ema.update(g)
                step, pos, done_since = step + 1, pos + 1, done_since + 1

                stats = {
                    "loss_d": float(loss_d), "loss_g": float(loss_g.detach()),
                    "d_real": float(torch.sigmoid(logit_real.detach().float()).mean()),
                    "d_fake": float(torch.sigmoid(logit_fake.detach().float()).mean()),
                }
                if step % opts.log_every == 0 or step == total:
                    dt = time.perf_counter() - t0
                    ips = done_since * opts.batch_size / dt if dt > 0 else 0.0
                    t0, done_since = time.perf_counter(), 0
                    if d.is_main:
                        self.run.log_metrics({"class": phase.cls, "stage": phase.stage,
                                              "step": step, "epoch": epoch, **stats,
                                              "img_per_s": round(ips, 2)})
                    reporter.update(step, epoch, stats, ips)
                else:
                    reporter.update(step, epoch, stats, None)
                if d.is_main and (step % opts.sample_every == 0 or step == total):
                    self._sample_grid(ema.shadow if ema else g, stage1, fixed_z, phase, step,
                                      device, fmt)
                if step % opts.checkpoint_every == 0 or step == total:
                    save_ckpt()
                if d.any(self._interrupted):
                    if step % opts.checkpoint_every and step != total:
                        save_ckpt()
                    raise Interrupted(
                        f"interrupted at {phase.key} step {step}; a checkpoint is saved in "
                        f"{ckpt_dir}; continue with: usgan train --resume {self.run.root}"
                    )
        if d.is_main:
            save_network(g, self.run.weights(phase.cls, phase.stage, "generator"))
            save_network(dnet, self.run.weights(phase.cls, phase.stage, "discriminator"))
            if ema is not None:
                save_network(ema.shadow, self.run.weights(phase.cls, phase.stage,
                                                          "generator_ema"))

    @staticmethod
    def _noise(
        g: nn.Module, stage1: nn.Module | None, n: int, gen: torch.Generator,
        device: torch.device,
    ) -> tuple[torch.Tensor, ...]:
        if stage1 is None:
            return (torch.randn(n, g.z_dim, generator=gen).to(device),)
        z1 = torch.randn(n, stage1.z_dim, generator=gen).to(device)
        z2 = torch.randn(n, g.z_dim, generator=gen).to(device)
        return z1, z2

    @staticmethod
    def _fake(g: nn.Module, stage1: nn.Module | None, noise: tuple[torch.Tensor, ...]) -> Any:
        if stage1 is None:
            return g(noise[0])
        with torch.no_grad():
            mid = stage1(noise[0]).contiguous(memory_format=torch.channels_last)
        return g(mid, noise[1])

    def _diverged(self, phase: Phase, step: int, who: str, value: float, ckpt_dir: Path) -> None:
        raise TrainingDiverged(
            f"training diverged: {who} loss is {value} at stage {phase.stage}, class "
            f"{phase.cls!r}, step {step + 1}; the last good checkpoint is kept in {ckpt_dir}; "
            "try a lower --lr, --loss hinge or --diffaugment, then --resume --force"
        )

    def _sample_grid(
        self, g: nn.Module, stage1: nn.Module | None, noise: tuple[torch.Tensor, ...],
        phase: Phase, step: int, device: torch.device, fmt: torch.memory_format,
    ) -> None:
        from torchvision.utils import save_image

        was_training = g.training
        g.eval()
        with torch.no_grad():
            out = self._fake(g, stage1, tuple(z.to(device) for z in noise)).float().cpu()
        g.train(was_training)
        self.run.samples.mkdir(parents=True, exist_ok=True)
        save_image(out, self.run.samples / f"{phase.cls}-stage{phase.stage}-step{step:06d}.png",
                   nrow=4, normalize=True, value_range=(-1, 1))

    def _finish(self, classes: list[str]) -> None:
        from .report import write_curves, write_model_card

        write_model_card(self.run, self.opts, classes)
        note = write_curves(self.run)
        if note:
            self.echo(note)
        self.run.mark_finished()

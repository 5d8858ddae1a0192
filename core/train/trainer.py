"""The two-stage trainer: one GAN per class, Stage-I then (optionally) Stage-II.

Reproducible and resumable: every random draw comes from a seeded ``torch.Generator`` whose
state is checkpointed (`state.TrainState`), so a run killed at any moment and resumed ends
bit-identical (CPU) to an uninterrupted one. One step is `step.GANStep`; the folder is
`usgan.core.run.RunDir`; device, precision and processes are `usgan.core.runtime`.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from usgan.core.contract import check_stackable
from usgan.core.errors import UsganError
from usgan.core.noise import noise_for, to_device
from usgan.core.plugin_manager import get_registry
from usgan.core.registry import Registry, build
from usgan.core.run import RunDir
from usgan.core.runtime import (
    Runtime,
    compile_failure,
    handling,
    init_distributed,
    seed_for,
    set_threads,
    shutdown,
)
from usgan.core.serialization import load_network
from usgan.core.stacking import stage2_config
from usgan.core.stage import Stage

from . import outputs, setup
from .checkpoint import load_latest, save_checkpoint
from .curves import write_curves
from .ema import EMA
from .options import TrainOptions
from .outputs import TrainingDiverged
from .pairs import Degradation, RefineFeed, Refinement, Unrefined
from .progress import ProgressReporter, RateClock
from .state import STREAMS, Schedule, TrainState
from .step import GANStep, NonFiniteLoss, StepStats, make_optimizers
from .together import GLOBAL_RNG, classes_at_once, run_by_class

MAX_SKIPPED = 10  # --on-nan skip: this many non-finite steps in a row stop training


class Interrupted(UsganError):
    """Training was interrupted (SIGINT); a checkpoint was saved."""

    exit_code = 130


@dataclass
class Phase:
    """One GAN to train: a class and a stage."""

    cls: str
    stage: Stage
    index: int

    @property
    def key(self) -> str:
        return f"{self.cls}/{self.stage}"


@dataclass
class PhaseNets:
    """The trained generator and discriminator, and the frozen stages below them."""

    g: nn.Module
    d: nn.Module
    frozen: list[nn.Module]

    @property
    def chain(self) -> list[nn.Module]:
        return [*self.frozen, self.g]


class Trainer:
    """Train every phase of a run into ``out``; see `TrainOptions` for the options.

    ``resolve_source`` turns ``--stage1-from`` into a run directory (the CLI passes the zoo's
    resolver; the default takes paths only); ``on_finish`` callbacks run on the finished run.
    """

    def __init__(self, options: TrainOptions, out: str | Path, *, resume: bool = False,
                 force: bool = False, registry: Registry | None = None, dataset: Any = None,
                 echo: Callable[[str], None] | None = None,
                 resolve_source: Callable[[str], Path] = Path,
                 on_finish: Sequence[Callable[[RunDir], None]] = ()) -> None:
        self.opts, self.run, self.resume, self.force = options, RunDir(Path(out)), resume, force
        self.registry = registry or get_registry()
        self._dataset = dataset
        self.echo = echo or (lambda msg: print(msg, file=sys.stderr))
        self.resolve_source = resolve_source
        self.on_finish = list(on_finish)
        self._interrupted = threading.Event()  # Ctrl-C, or another class failed (--jobs)
        self._shared_bars: Any = None
        self.clock: Callable[[], float] = time.perf_counter  # a time budget's clock

    # ------------------------------------------------------------------ the run
    def train(self) -> RunDir:
        """Train every phase not yet done; returns the run directory."""
        opts = self.opts
        setup.validate_networks(self.registry, opts)
        setup.validate_eval(opts)
        set_threads(opts.threads)
        d = init_distributed(opts.device)
        try:
            rt = Runtime.create(opts.device, opts.precision, d, opts.compiled_mode,
                                setup.started_runtime(self.run, self.resume))
            setup.prepare_out(self.run, opts, self.resume, self.force, d, self.echo)
            if self.run.is_finished():
                self.echo(f"{self.run.root} is already finished; nothing to do")
                return self.run
            ds = self._dataset if self._dataset is not None else setup.load_data(opts)
            source = (setup.source_run(self.resolve_source, opts.stage1_from)
                      if opts.stage1_from else None)
            if d.is_main:
                provenance = setup.network_provenance(self.registry, opts, source)
                setup.write_config(self.run, opts, ds, provenance, rt, self.echo)
            d.barrier()
            stages = (Stage.ONE, Stage.TWO) if opts.stage2 else (Stage.ONE,)
            phases = [Phase(c, s, i * 2 + s.number - 1)
                      for i, c in enumerate(ds.class_names) for s in stages]
            setup.check_batches(opts, ds, phases, rt.dist)
            todo = [p for p in phases if p.key not in self.run.progress()["done"]]
            with self._sigint_handler(), classes_at_once(todo, opts, rt.dist) as bars:
                self._shared_bars = bars
                run_by_class(todo, lambda phase: self._run_phase(phase, ds, source, rt),
                             opts.jobs, rt.device, self._interrupted.set)
            if d.is_main:
                self._finish()
            return self.run
        finally:
            shutdown(d)

    def _run_phase(self, phase: Phase, ds: Any, source: Path | None, rt: Runtime) -> None:
        """Train ``phase`` (or copy its Stage-I from ``source``) and mark it done."""
        if phase.stage == Stage.ONE and source is not None:
            setup.copy_stage1(source, self.run, phase.cls, rt.dist.is_main)
        else:
            self._train_phase(phase, ds.of_class(phase.cls), rt)
        if rt.dist.is_main:
            self.run.mark_done(phase.key)
        rt.dist.barrier()

    # ----------------------------------------------------------------- one phase
    def _train_phase(self, phase: Phase, images: Any, rt: Runtime) -> None:
        nets = self._build_nets(phase, rt)
        size = nets.g.out_size
        real_all = (images.at_size(size) if size != images.images.shape[-1] else images.images
                    ).to(rt.device)
        schedule = self.opts.schedule(phase.stage, real_all.shape[0], rt.dist,
                                      f"class {phase.cls!r}")
        state = self._new_state(phase, nets, real_all.shape[0], rt)
        ckpt_dir = self.run.checkpoints(phase.cls, phase.stage)
        self._resume(phase, state, ckpt_dir, rt)
        gan_step = self._gan_step(phase.stage, nets, state, rt)
        refine = self._refinement(phase, nets)
        agree = self._agree(schedule, rt)
        grid = outputs.Grid.for_phase(nets.chain, real_all,
                                      seed_for(self.opts.seed, phase.index, 9))
        reporter = ProgressReporter(f"{phase.cls} {phase.stage.label}", schedule.total,
                                    quiet=self.opts.quiet or not rt.dist.is_main, echo=self.echo,
                                    shared=self._shared_bars)
        watch = self._watch(phase, images, real_all, rt)
        nets.g.train()
        nets.d.train()
        clock, started, before = RateClock(), self.clock(), state.elapsed
        stop = schedule.stop_reason(state.step, state.elapsed)
        with reporter:
            reporter.advance_to(state.step)
            while stop is None:
                idx = state.next_indices(schedule, rt.dist)
                real = real_all[to_device(idx, rt.device)].float().div_(127.5).sub_(1.0)
                real = real.contiguous(memory_format=rt.memory_format)
                noise = noise_for(nets.chain, schedule.per_rank, state.streams["noise"],
                                  rt.device)
                real, inputs, target = refine.inputs(state, real, noise)
                rt.step_begin()  # a new generation of CUDA graphs (--compile-mode)
                stats = self._step(gan_step, real, inputs, target, phase, state, ckpt_dir)
                state.advance()
                state.elapsed = before + self.clock() - started
                spare = watch.spare(state.step) if watch else 0.0  # room for evaluations
                stopped = schedule.stop_reason(state.step, state.elapsed + spare)
                stop = stopped or ("minutes" if agree(stopped is not None) else None)
                refine.advance(schedule, state, agree)
                if gan_step.lazy_check and (state.step % self.opts.log_every == 0 or stop):
                    try:  # the losses since the last check (one host sync)
                        gan_step.verify()
                    except NonFiniteLoss as err:
                        self._diverged(err, phase, state.step, state, ckpt_dir)
                if stats is not None:
                    self._log(phase, state, stop is not None, stats, clock, reporter, rt)
                if watch and (state.step % self.opts.eval_every == 0 or stop is not None):
                    watch.log(self.run, phase, state.step,
                              [*nets.frozen, state.ema.shadow if state.ema else nets.g],
                              rt.device, self.echo)
                self._grid_and_checkpoint(phase, state, stop is not None, nets, grid, ckpt_dir,
                                          rt)
        outputs.save_final(self.run, phase.cls, phase.stage, state, ckpt_dir,
                           rt.dist.is_main, self.opts.prune_checkpoints)
        if rt.dist.is_main:
            best = watch and watch.finish(self.run, phase.cls, phase.stage, state)
            setup.record_phase(self.run, phase.key, state, schedule, stop or "steps",
                               refine.share > 0, best)

    @staticmethod
    def _agree(schedule: Schedule, rt: Runtime) -> Callable[[bool], bool]:
        """How every process reaches one decision that depends on its own clock."""
        return rt.dist.any if schedule.seconds is not None and rt.dist.enabled else bool

    def _refinement(self, phase: Phase, nets: PhaseNets) -> Refinement | Unrefined:
        """What a Stage-II refines, step by step (`pairs.Refinement`)."""
        if phase.stage == Stage.ONE:
            return Unrefined()
        opts, g = self.opts, nets.g
        degradation = Degradation(g.out_size // g.in_size, opts.stage2_blur, opts.stage2_noise)
        feed = RefineFeed(nets.frozen[0], degradation, opts.stage2_crop)
        return Refinement(feed, opts.stage2_pretrain, phase.key, self.echo, opts.stage2_finetune_lr)

    def _build_nets(self, phase: Phase, rt: Runtime) -> PhaseNets:
        with GLOBAL_RNG:  # initialisation draws from torch's global RNG, seeded per phase
            torch.manual_seed(seed_for(self.opts.seed, phase.index, 0))
            return self._build(phase, rt)

    def _build(self, phase: Phase, rt: Runtime) -> PhaseNets:
        opts = self.opts
        if phase.stage == Stage.ONE:
            name, config, frozen = opts.stage1, dict(opts.stage1_config), []
        else:
            assert opts.stage2 is not None
            stage1 = load_network(self.run.generator_path(phase.cls, Stage.ONE, ema=opts.ema),
                                  self.registry).to(rt.device)
            name, config, frozen = opts.stage2, stage2_config(stage1, opts.stage2_config), [stage1]
        g = build(self.registry, name, "generator", config, phase.stage).to(rt.device)
        d_config = setup.discriminator_config(opts, phase.stage, config)
        d = build(self.registry, name, "discriminator", d_config, phase.stage).to(rt.device)
        if frozen:
            check_stackable(frozen[0], g)
            frozen[0].requires_grad_(False).eval()
        for net in (g, d, *frozen):
            net.to(memory_format=rt.memory_format)
        return PhaseNets(g, d, frozen)

    def _new_state(self, phase: Phase, nets: PhaseNets, n: int, rt: Runtime) -> TrainState:
        opts = self.opts
        ema = EMA(nets.g, opts.ema_decay, opts.ema_warmup) if opts.ema_in(phase.stage) else None
        opt_g, opt_d = make_optimizers(nets.g, nets.d, opts.lr, opts.betas, opts.lr_d)
        ranks = {"data": 0, "noise": rt.dist.rank, "aug": rt.dist.rank}
        streams = {name: torch.Generator().manual_seed(
            seed_for(opts.seed, phase.index, i + 1, ranks[name])) for i, name in enumerate(STREAMS)}
        return TrainState(nets.g, nets.d, opt_g, opt_d, ema, streams, n,
                          opts.step_parts(phase.stage, rt.device))

    def _resume(self, phase: Phase, state: TrainState, ckpt_dir: Path, rt: Runtime) -> None:
        ckpt = load_latest(ckpt_dir, warn=self.echo) if rt.dist.is_main else None
        ckpt = rt.dist.broadcast(ckpt)
        if ckpt is not None:
            with GLOBAL_RNG:
                state.restore(ckpt, rt.dist.rank, str(ckpt_dir))
            if rt.dist.is_main:
                self.echo(f"resuming {phase.key} from step {state.step}")

    def _gan_step(self, stage: Stage, nets: PhaseNets, state: TrainState, rt: Runtime
                  ) -> GANStep:
        g_train, d_train = nets.g, nets.d
        if rt.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [rt.device.index] if rt.device.type == "cuda" else None
            g_train, d_train = DDP(nets.g, device_ids=ids), DDP(nets.d, device_ids=ids)
        # --compile shares the parameters: checkpoints still save nets.g and nets.d
        g_train, d_train = rt.compiled(g_train), rt.compiled(d_train)
        return GANStep.for_options(  # G's inputs: (z1,), or Stage-II's (image, z2)
            self.opts, lambda inputs: g_train(*inputs), d_train, state.opt_g,
            state.opt_d, stage=stage, aug=state.streams["aug"], autocast=rt.autocast,
            ema=state.ema, ema_of=nets.g, **state.parts,
            guard=[nets.g, nets.d] if self.opts.on_nonfinite == "skip" else (),
            lazy_check=self.opts.on_nonfinite == "stop")  # checked every --log-every steps

    def _step(self, gan_step: GANStep, real: torch.Tensor, noise: Sequence[torch.Tensor],
              target: torch.Tensor | None, phase: Phase, state: TrainState, ckpt_dir: Path
              ) -> StepStats | None:
        """One GAN step; a non-finite loss stops training, or with ``--on-nan skip`` drops
        the step (None) unless it happens ``MAX_SKIPPED`` times in a row."""
        try:
            stats = gan_step(real, noise, target)
        except NonFiniteLoss as err:
            return self._diverged(err, phase, state.step + 1, state, ckpt_dir)
        except Exception as err:
            if self.opts.compile and (plain := compile_failure(err)) is not None:
                raise plain from err
            raise
        state.skipped = 0
        return stats

    def _diverged(self, err: NonFiniteLoss, phase: Phase, step: int, state: TrainState,
                  ckpt_dir: Path) -> None:
        """A NaN loss at ``step`` (or in ``err.steps`` up to it): stop, or drop it (skip)."""
        state.skipped += 1
        at = f"a step in {step - err.steps + 1}-{step}" if err.steps else f"step {step}"
        where = (f"{err.who} loss is {err.value} at stage {phase.stage.number}, class "
                 f"{phase.cls!r}, {at}")
        if self.opts.on_nonfinite == "skip" and state.skipped < MAX_SKIPPED:
            state.opt_g.zero_grad(set_to_none=True)
            state.opt_d.zero_grad(set_to_none=True)
            return self.echo(f"warning: {where}; step skipped (--on-nan skip)")
        raise TrainingDiverged(
            f"training diverged: {where}"
            + (f" ({MAX_SKIPPED} steps in a row)" if state.skipped > 1 else "")
            + f"; the last good checkpoint is kept in {ckpt_dir}; try a lower --lr, "
            "--loss hinge or --diffaugment, then --resume --force") from None

    # ------------------------------------------------------------ after a step
    def _log(self, phase: Phase, state: TrainState, last: bool, stats: StepStats,
             clock: RateClock, reporter: ProgressReporter, rt: Runtime) -> None:
        clock.steps += 1
        if state.step % self.opts.log_every and not last:
            reporter.update(state.step, state.epoch, None, None)  # no host sync between logs
            return
        batch = self.opts.batch_in(phase.stage)
        ips, numbers = clock.rate(batch), stats.as_dict()  # one host sync
        if rt.dist.is_main:
            self.run.log_metrics({"class": phase.cls, "stage": phase.stage.number,
                                  "step": state.step, "epoch": state.epoch,
                                  **numbers, "img_per_s": round(ips, 2)})
        reporter.update(state.step, state.epoch, numbers, ips)

    def _watch(self, phase: Phase, images: Any, real: torch.Tensor, rt: Runtime) -> Any:
        """The ``--eval-every`` scorer of this phase (main process only), or None."""
        if not self.opts.eval_every or not rt.dist.is_main:
            return None
        from .watch import QualityWatch

        return QualityWatch.for_phase(self.opts, self.run, phase, images.fingerprint, real,
                                      self.clock)

    def _grid_and_checkpoint(self, phase: Phase, state: TrainState, last: bool,
                             nets: PhaseNets, grid: outputs.Grid, ckpt_dir: Path,
                             rt: Runtime) -> None:
        opts = self.opts
        if rt.dist.is_main and (state.step % opts.sample_every == 0 or last):
            g = state.ema.shadow if state.ema else nets.g
            outputs.sample_grid(
                self.run.samples / f"{phase.cls}-{phase.stage}-step{state.step:06d}.png",
                [*nets.frozen, g], grid, rt.device)
        saved = state.step % opts.checkpoint_every == 0 or last
        if saved:
            self._checkpoint(state, ckpt_dir, rt)
        if rt.dist.any(self._interrupted.is_set()):
            if not saved:
                self._checkpoint(state, ckpt_dir, rt)
            raise Interrupted(
                f"interrupted at {phase.key} step {state.step}; a checkpoint is saved in "
                f"{ckpt_dir}; continue with: usgan train --resume {self.run.root}"
            )

    def _checkpoint(self, state: TrainState, ckpt_dir: Path, rt: Runtime) -> None:
        outputs.refuse_nonfinite(state, f"step {state.step}", ckpt_dir)
        ranks = rt.dist.gather(state.rank_state())
        if rt.dist.is_main:
            save_checkpoint(ckpt_dir, state.step, state.snapshot(ranks),
                            keep=self.opts.keep_checkpoints)

    # --------------------------------------------------------------- the rest
    def _finish(self) -> None:
        if note := write_curves(self.run):
            self.echo(note)
        for callback in self.on_finish:
            callback(self.run)
        self.run.mark_finished()

    @contextlib.contextmanager
    def _sigint_handler(self) -> Iterator[None]:
        """SIGINT (Ctrl-C) and SIGTERM (``kill``, a scheduler's time limit) alike: finish
        the step, save a checkpoint, stop; a second one stops at once."""
        def handler(signum: int, frame: Any) -> None:
            if self._interrupted.is_set():  # second Ctrl-C: stop now
                raise KeyboardInterrupt
            self._interrupted.set()
            self.echo(f"{signal.Signals(signum).name} received: saving a checkpoint (Ctrl-C "
                      "again to stop at once)")

        with handling(signal.SIGINT, handler), handling(signal.SIGTERM, handler):
            yield

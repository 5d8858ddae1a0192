"""``usgan demo``: the main job on the built-in phantom, small enough for a laptop CPU."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"),
              show_default=True, help="Run directory (a new one is picked if it exists).")
@click.option("--stage1", default="dcgan", show_default=True)
@click.option("--steps1", type=int, default=300, show_default=True, help="Stage-I steps.")
@click.option("--steps2", type=int, default=150, show_default=True, help="Stage-II steps.")
@click.option("--minutes", type=float, default=2.0, show_default=True,
              help="Time budget per stage and class (whichever comes first with the steps).")
@click.option("--quiet", is_flag=True)
def demo_cmd(out: Path, stage1: str, steps1: int, steps2: int, minutes: float,
             quiet: bool) -> None:
    """Train Stage-I and Stage-II for both phantom classes, sample, and write a grid."""
    import torch

    import usgan
    from usgan.core.data import load_dataset
    from usgan.core.io import write_grid
    from usgan.core.run import fresh_dir
    from usgan.core.stacking import DEFAULT_STAGE2
    from usgan.core.train.options import TrainOptions
    from usgan.core.train.trainer import Trainer
    from usgan.zoo.card import write_card

    out = fresh_dir(out)
    t0 = time.perf_counter()
    # The default recipe as `usgan train` has it (Stage-II learns from real pairs first, on
    # crops); steps and a time budget, whichever comes first, keep it within minutes.
    opts = TrainOptions(
        data="phantom:n=64", stage1=stage1, stage2=DEFAULT_STAGE2, quiet=quiet,
        max_steps=steps1, stage2_max_steps=steps2, max_minutes=minutes,
        stage2_max_minutes=minutes, sample_every=50, checkpoint_every=50, log_every=10,
    )
    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    Trainer(opts, out / "run", echo=echo, on_finish=[write_card]).train()
    synth = usgan.load(out / "run")
    real = load_dataset("phantom:n=64")
    rows = []
    for cls in synth.classes:
        rows.append(real.of_class(cls).images[::8][:6])
        mid = synth.sample(6, cls=cls, seed=0, stage=1)
        rows.append(torch.nn.functional.interpolate(mid, size=256, mode="nearest"))
        rows.append(synth.sample(6, cls=cls, seed=0))
    grid_path = write_grid(out / "grid.png", torch.cat(rows), nrow=6, padding=4)
    minutes = (time.perf_counter() - t0) / 60
    click.echo(f"demo finished in {minutes:.1f} min")
    click.echo(f"  run directory : {out / 'run'}  (weights, config.json, samples/, curves.png)")
    click.echo(f"  grid          : {grid_path}  (rows per class: real phantom, "
               "Stage-I 64x64, Stage-II 256x256)")
    click.echo(f"  sample more   : usgan sample {out / 'run'} --class {synth.classes[0]} -n 16 "
               f"--out {out / 'samples'} --grid")

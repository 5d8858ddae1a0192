"""``usgan sample``: write generated images as 8-bit grayscale PNGs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from usgan.core.errors import UsganError
from usgan.core.runtime import PRECISIONS


@click.command("sample")
@click.argument("source")
@click.option("--class", "cls", default=None, help="Which class's GAN to sample.")
@click.option("-n", "n", type=int, default=16, show_default=True, help="Number of images.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--stage", type=click.Choice(["1", "2"]), default=None,
              help="1: the Stage-I size; 2: 256x256 (default when the run has Stage-II).")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--grid", is_flag=True, help="Also write grid.png.")
@click.option("--device", default="cpu", show_default=True,
              help="auto, cpu, cuda or cuda:N (GPU N).")
@click.option("--precision", default="auto", show_default=True,
              type=click.Choice(["auto", *PRECISIONS]),
              help="auto: bf16 where the hardware computes it natively, else fp32.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sample_cmd(source: str, cls: str | None, n: int, out: Path, seed: int, stage: str | None,
               batch_size: int, grid: bool, device: str, precision: str, force: bool,
               quiet: bool) -> None:
    """Sample N images of one class from SOURCE.

    SOURCE: a run directory, a zoo name (e.g. dcgan-sn-stage2) or hf-hub:owner/name[@rev].
    """
    import usgan

    synth = usgan.load(source, device=device, precision=precision)
    name = cls or (synth.classes[0] if len(synth.classes) == 1 else None)
    names = [out / f"{name}-{seed}-{i:05d}.png" for i in range(n)]
    targets = [*names, out / "grid.png"] if grid else names
    clash = [p for p in targets if p.exists()] if name else []
    if clash and not force:  # before sampling: nothing to wait for
        raise UsganError(f"{clash[0]} exists ({len(clash)} files would be overwritten); "
                         "choose another --out or add --force")
    with _progress(n, quiet) as advance:
        images = synth.sample(n, cls=cls, seed=seed, stage=int(stage) if stage else None,
                              batch_size=batch_size, progress=advance)
    save(images, names, out / "grid.png" if grid else None)
    click.echo(f"wrote {n} images to {out}" + (f" and {out / 'grid.png'}" if grid else ""))


@contextlib.contextmanager
def _progress(n: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A transient progress bar on stderr (nothing when quiet or not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield lambda k: None
        return
    with Progress("sampling", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("sampling", total=n)
        yield lambda k: bar.advance(task, k)


def save(images, names: list[Path], grid: Path | None) -> None:  # type: ignore[no-untyped-def]
    """uint8 [N, 1, H, W] -> one grayscale PNG each (+ a grid)."""
    from usgan.core.io import write_grid, write_image

    for img, path in zip(images, names, strict=True):
        write_image(path, img)
    if grid is not None:
        write_grid(grid, images, nrow=max(1, int(len(images) ** 0.5)), pad_value=0)

"""The figures of a reproduction: a sample grid (one row per configuration, a few images per
class) and the loss curves of every trained GAN."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from usgan.core.errors import UsganError
from usgan.core.io import write_png
from usgan.core.run import RunDir

from .plan import Config, Layout

TILE, LABEL, PER_CLASS = 96, 230, 4


def sample_grid(lay: Layout, chosen: Sequence[Config], classes: Sequence[str],
                seed: int = 0) -> Path | None:
    """OUT/figures/samples.png from the finished runs (None when there is none). A folder
    brought back from another machine without its weights keeps the grid drawn there."""
    import torch.nn.functional as F
    from PIL import Image, ImageDraw

    from usgan.core.synth import Synthesizer

    rows = [c for c in chosen if RunDir(lay.run(c.key)).is_finished()]
    if not rows or not classes:
        return None
    if not all(_weights_here(RunDir(lay.run(c.key)), classes) for c in rows):
        kept = lay.figures / "samples.png"
        return kept if kept.is_file() else None
    width = LABEL + len(classes) * PER_CLASS * TILE + (len(classes) - 1) * 8
    canvas = Image.new("L", (width, 24 + len(rows) * (TILE + 4)), 255)
    draw = ImageDraw.Draw(canvas)
    for k, cls in enumerate(classes):
        draw.text((LABEL + k * (PER_CLASS * TILE + 8), 4), cls, fill=0)
    for i, c in enumerate(rows):
        top = 24 + i * (TILE + 4)
        draw.text((4, top + TILE // 2 - 6), c.key, fill=0)
        synth = Synthesizer(lay.run(c.key), precision="fp32")  # a run directory of ours
        for k, cls in enumerate(classes):
            imgs = synth.sample(PER_CLASS, cls=cls, seed=seed)
            tiles = F.interpolate(imgs.float(), size=(TILE, TILE), mode="area").round()
            for j, tile in enumerate(tiles.to(torch.uint8)):
                left = LABEL + k * (PER_CLASS * TILE + 8) + j * TILE
                canvas.paste(Image.fromarray(tile[0].numpy(), mode="L"), (left, top))
    return write_png(lay.figures / "samples.png", canvas)


def _weights_here(run: RunDir, classes: Sequence[str]) -> bool:
    """Whether every generator the grid would sample from is in ``run``."""
    try:
        for cls in classes:
            for stage in run.stages():
                run.generator_path(cls, stage)
    except UsganError:
        return False
    return True


def loss_curves(lay: Layout, chosen: Sequence[Config]) -> Path | None:
    """OUT/figures/curves.png: D and G loss per class and stage of every finished run
    (None without matplotlib or runs)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [c for c in chosen if (lay.run(c.key) / "metrics.jsonl").is_file()]
    if not rows:
        return None
    cols = min(6, len(rows))
    n_rows = -(-len(rows) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(2.6 * cols, 2.2 * n_rows), squeeze=False)
    for ax, c in zip(axes.flat, rows, strict=False):
        stage = 2 if c.entry.stage2 else 1
        for cls, (steps, d, g) in _losses(lay.run(c.key) / "metrics.jsonl", stage).items():
            ax.plot(steps, d, linewidth=0.8, label=f"D {cls}")
            ax.plot(steps, g, linewidth=0.8, linestyle="--", label=f"G {cls}")
        ax.set_title(f"{c.key} (stage {stage})", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=5)
    fig.tight_layout()
    lay.figures.mkdir(parents=True, exist_ok=True)
    path = lay.figures / "curves.png"
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def _losses(path: Path, stage: int) -> dict[str, tuple[list[int], list[float], list[float]]]:
    out: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("stage") == stage and "loss_d" in row:
            steps, d, g = out.setdefault(row["class"], ([], [], []))
            steps.append(row["step"])
            d.append(row["loss_d"])
            g.append(row["loss_g"])
    return out

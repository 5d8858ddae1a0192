"""Sample grids of the quality ablation for docs/quality.md: one row of real images, then one
row per configuration (8 samples, seed 0, the generator each run samples with).

    .venv/bin/python docs/scripts/quality_figures.py --runs runs/ablation-phantom \\
        --real phantom:n=400,seed=1 --class healthy --out docs/figures/quality-phantom.png

Rows are labelled on the left; configurations without a finished run are skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

import usgan
from usgan.core.data import load_dataset
from usgan.core.io import write_png

LABEL_W, N = 190, 8


def row_image(images: torch.Tensor, label: str, tile: int = 64) -> Image.Image:
    """A labelled row of uint8 ``[N, 1, H, W]`` images at ``tile`` px (area-resized)."""
    tiles = F.interpolate(images.float(), size=(tile, tile), mode="area").to(torch.uint8)
    canvas = Image.new("L", (LABEL_W + N * (tile + 2), tile + 2), 255)
    ImageDraw.Draw(canvas).text((4, tile // 2 - 6), label, fill=0)
    for i, t in enumerate(tiles[:N]):
        canvas.paste(Image.fromarray(t[0].numpy(), mode="L"), (LABEL_W + i * (tile + 2), 1))
    return canvas


def run_images(run: Path, args: argparse.Namespace) -> torch.Tensor:
    """The first ``N`` seed-0 images of ``run``: sampled, or read from ``--samples-dir``."""
    if args.samples_dir is None:
        return usgan.load(run).sample(N, cls=args.cls, seed=0, stage=args.stage)
    files = sorted((run / args.samples_dir).glob("*.png"))[:N]
    return torch.stack([torch.from_numpy(np.array(Image.open(f).convert("L")))[None]
                        for f in files])


def curves_sheet(runs: Path, names: list[str]) -> Image.Image:
    """The runs' loss curves (``curves.png``, written by the trainer) side by side, labelled."""
    tiles = [Image.open(runs / n / "curves.png").convert("RGB") for n in names]
    sheet = Image.new("RGB", (sum(t.width for t in tiles), tiles[0].height + 16), "white")
    x = 0
    for name, t in zip(names, tiles, strict=True):
        ImageDraw.Draw(sheet).text((x + 8, 2), name, fill="black")
        sheet.paste(t, (x, 16))
        x += t.width
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--real", default=None, help="Data spec of the real row.")
    ap.add_argument("--class", dest="cls", required=True)
    ap.add_argument("--only", default="", help="Comma-separated run names, in this order.")
    ap.add_argument("--tile", type=int, default=64, help="Pixels per image in the sheet.")
    ap.add_argument("--stage", type=int, default=None, help="1: the Stage-I images of a "
                    "two-stage run (default: the run's last stage).")
    ap.add_argument("--curves", action="store_true", help="Instead: the --only runs' loss "
                    "curves side by side.")
    ap.add_argument("--no-real", action="store_true", help="No row of real images (data "
                    "that may not be redistributed, e.g. ../shared/data, stays out of the docs).")
    ap.add_argument("--stage1-row", action="store_true", help="Add a row of the first run's "
                    "Stage-I images (for Stage-II runs on one copied Stage-I).")
    ap.add_argument("--samples-dir", default=None, metavar="NAME", help="Take each run's "
                    "images from RUN/NAME/*.png (the first 8, e.g. `usgan sample --seed 0` "
                    "output of a run whose weights stayed on another machine).")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.curves:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_png(args.out, curves_sheet(args.runs, [n for n in args.only.split(",") if n]),
                  optimize=True)
        print(f"wrote {args.out}")
        return
    if not (args.real or args.no_real):
        ap.error("give --real DATA or --no-real")
    rows = []
    if not args.no_real:
        real = load_dataset(args.real, classes=[args.cls]).images
        rows.append(row_image(real[torch.linspace(0, len(real) - 1, N).long()], "real",
                              args.tile))
    names = [n for n in args.only.split(",") if n] or sorted(
        p.name for p in args.runs.iterdir() if (p / "config.json").is_file())
    for name in names:
        run = args.runs / name
        if '"finished": true' not in (run / "progress.json").read_text():
            continue
        if args.stage1_row and len(rows) == (0 if args.no_real else 1):
            images = usgan.load(run).sample(N, cls=args.cls, seed=0, stage=1)
            rows.append(row_image(images, "its Stage-I", args.tile))
        rows.append(row_image(run_images(run, args), name, args.tile))
    sheet = Image.new("L", (rows[0].width, sum(r.height for r in rows)), 255)
    for i, r in enumerate(rows):
        sheet.paste(r, (0, i * r.height))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_png(args.out, sheet, optimize=True)
    print(f"wrote {args.out} ({len(rows)} rows)")


if __name__ == "__main__":
    main()

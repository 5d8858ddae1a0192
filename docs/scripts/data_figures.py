"""Phantom vs real B-mode frames: writes docs/figures/phantom_vs_real.png, prints a stats table.

Run from the repository root: ``.venv/bin/python docs/scripts/data_figures.py``. Needs the real
data in ../shared/data (or $USGAN_SHARED/data); it is read, never copied (the figure holds small
downscaled crops of four frames of each real set).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from usgan.core.data import detect_sector, to_gray
from usgan.core.data import phantom as ph
from usgan.core.data.preprocess import crop_and_resize
from usgan.core.data.stats import RAYLEIGH_SNR, image_stats
from usgan.core.io import write_png

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("USGAN_SHARED", REPO.parent / "shared")) / "data"
OUT = REPO / "docs" / "figures" / "phantom_vs_real.png"
TILE, COLS, LABEL_W = 128, 4, 120


def preprocessed(files: list[Path]) -> list[np.ndarray]:
    """Sector-cropped 256x256 grayscale frames, as `load_dataset` makes them."""
    out = []
    for f in files:
        g = to_gray(Image.open(f))
        out.append(crop_and_resize(g, detect_sector(g) or (0, 0, g.shape[1], g.shape[0]), 256))
    return out


def main() -> None:
    if not SHARED.is_dir():
        sys.exit(f"real data not found at {SHARED}")
    byra = sorted((SHARED / "byra-nafld" / "partial-lcti" / "images").glob("*.jpeg"))
    sfib = sorted((SHARED / "sfibai-liver-fibrosis-us" / "train").glob("*/*.jpg"))
    sets = {
        "Byra (real)": preprocessed(byra),
        "SFibAI (real)": preprocessed(sfib[::10]),
        "phantom healthy": [im[0].numpy() for im in ph.simulate(40, 0.0, seed=0)],
        "phantom steatosis": [im[0].numpy() for im in ph.simulate(40, 1.0, seed=0)],
    }
    # Figure: one row per set, COLS frames each (frames of different subjects where possible).
    fig = Image.new("L", (LABEL_W + COLS * TILE, len(sets) * TILE), 0)
    draw = ImageDraw.Draw(fig)
    for r, (name, ims) in enumerate(sets.items()):
        step = 10 if name.startswith("phantom") else max(1, len(ims) // COLS)
        for c in range(COLS):
            tile = Image.fromarray(ims[(c * step) % len(ims)]).resize(
                (TILE, TILE), Image.Resampling.LANCZOS
            )
            fig.paste(tile, (LABEL_W + c * TILE, r * TILE))
        draw.text((6, r * TILE + TILE // 2 - 6), name, fill=255)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_png(OUT, fig, optimize=True)
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size // 1024} KB)\n")

    # Stats table (mean +- std over images).
    keys = ("mean", "std", "near", "depth_slope", "snr")
    print("| set | images | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, ims in sets.items():
        rows = [image_stats(im) for im in ims]
        cells = [
            f"{np.mean([x[k] for x in rows]):.1f} ± {np.std([x[k] for x in rows]):.1f}"
            for k in keys
        ]
        print(f"| {name} | {len(ims)} | " + " | ".join(cells) + " |")
    print(f"\n(Rayleigh envelope SNR: {RAYLEIGH_SNR:.2f})")

    # Linear-envelope SNR of the phantom (before log compression) and speed.
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ph.simulate(10, 1.0)
    t = time.perf_counter()
    ph.simulate(200, 1.0)
    rate = 200 / (time.perf_counter() - t)
    print(f"phantom speed: {rate:.0f} images/s at 256x256 ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()

"""Does the fast path train the same GAN? The same short run in fp32 and in bf16 autocast
(same seed, data and recipe), their losses step by step on one plot, and FID of each.

    .venv/bin/python docs/scripts/precision_curves.py --data phantom:n=64 --class healthy \
        --eval-real phantom:n=400,seed=1 --steps 200 --out runs/precision \
        --figure docs/figures/bench-precision-curves.png

Each run is `usgan train --log-every 1` (finished runs are not trained again); its 400
samples are drawn in fp32 (`usgan sample`, so only the training precision differs) and scored
with `usgan eval` against ``--eval-real``. bf16 is forced where the hardware lacks it
(emulated, slow, the same numerics). ``--no-score`` stops after sampling: train on a GPU
machine that lacks the Inception weights, bring OUT back, score here with the same command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from quality_ablation import WEIGHTS, usgan  # the sibling script: the same runner and weights

PRECISIONS = ("fp32", "bf16")


def train(args: argparse.Namespace, precision: str) -> Path:
    out, progress = args.out / precision, args.out / precision / "progress.json"
    if not (progress.is_file() and json.loads(progress.read_text()).get("finished")):
        usgan("train", "--data", args.data, "--classes", args.cls, "--stage1", args.stage1,
              "--stage2", "off", "--recipe", "default", "--max-steps", str(args.steps),
              "--precision", precision, "--device", args.device, "--log-every", "1",
              "--sample-every", str(args.steps), "--checkpoint-every", str(args.steps),
              "--quiet", "--force", "--out", str(out))
    return out


def samples(args: argparse.Namespace, run: Path) -> Path:
    folder = run.parent / f"{run.name}-samples"
    if not (folder / f"{args.cls}-0-00399.png").is_file():  # the last of 400, seed 0
        usgan("sample", str(run), "--class", args.cls, "-n", "400", "--batch-size", "100",
              "--precision", "fp32", "--device", args.device, "--quiet", "--force",
              "--out", str(folder))
    return folder


def score(args: argparse.Namespace, folder: Path) -> dict:
    path = folder.parent / f"{folder.name}.eval.json"
    if not path.is_file():
        usgan("eval", "--real", args.eval_real, "--fake", str(folder), "--class", args.cls,
              "--inception-weights", str(args.inception_weights), "--json", str(path))
    return json.loads(path.read_text())["results"][str(folder)][args.cls]


def losses(run: Path) -> dict[str, list[float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss_d" in r]
    return {"step": [r["step"] for r in rows], "D": [r["loss_d"] for r in rows],
            "G": [r["loss_g"] for r in rows]}


def plot(curves: dict[str, dict[str, list[float]]], figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3), squeeze=False)
    for ax, net in zip(axes[0], ("D", "G"), strict=True):
        for name, c in curves.items():
            ax.plot(c["step"], c[net], label=name, linewidth=1)
        ax.set_title(f"{net} loss")
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(figure, dpi=80)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="phantom:n=64")
    ap.add_argument("--class", dest="cls", default="healthy")
    ap.add_argument("--eval-real", default="phantom:n=400,seed=1")
    ap.add_argument("--stage1", default="dcgan")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--inception-weights", type=Path, default=WEIGHTS)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--no-score", action="store_true", help="Train and sample only.")
    args = ap.parse_args()
    runs = {p: train(args, p) for p in PRECISIONS}
    folders = {p: samples(args, r) for p, r in runs.items()}
    if args.no_score:
        return
    curves = {p: losses(r) for p, r in runs.items()}
    if args.figure:
        plot(curves, args.figure)
    print("| precision | mean abs. loss gap to fp32 (D / G) | FID | KID |")
    print("|---|---|---|---|")
    for p in runs:
        gap = [sum(abs(a - b) for a, b in zip(curves[p][n], curves["fp32"][n], strict=True))
               / len(curves[p][n]) for n in ("D", "G")]
        res = score(args, folders[p])
        print(f"| {p} | {gap[0]:.3f} / {gap[1]:.3f} | {res['fid']['value']:.1f} | "
              f"{res['kid']['value']:.3f} |")


if __name__ == "__main__":
    main()

"""Image-quality ablation for docs/quality.md: every configuration trains for the same
wall-clock budget, then `usgan eval` scores it against held-out real images.

Run from the repository root, e.g. (the phantom table of docs/quality.md):

    .venv/bin/python docs/scripts/quality_ablation.py --data phantom:n=64 --class healthy \\
        --eval-real phantom:n=400,seed=1 --minutes 3 --out runs/ablation-phantom

Budgets: each configuration's seconds per step are measured first, in one process and
interleaved (`calibrate`: this machine's speed drifts by a third from one minute to the
next), then it trains ``minutes * 60 / s_per_step`` steps. Resumable: measured speeds are
kept in OUT/speeds.json, finished runs and existing OUT/NAME.eval.json files are skipped, an
unfinished run resumes. Prints and writes OUT/table.md. Needs ../shared/weights (or
--inception-weights) for FID.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
USGAN = [sys.executable, "-m", "usgan"]
WEIGHTS = REPO.parent / "shared" / "weights" / "inception-fid-2015-12-05-features-only.pth"

# name -> `usgan train` arguments (Stage-I only unless they say otherwise)
STAGE1 = {
    "paper": ["--recipe", "paper"],
    "paper+diffaug-tc": ["--recipe", "paper", "--diffaugment", "translation,cutout"],
    "paper+diffaug-ctc": ["--recipe", "paper", "--diffaugment", "color,translation,cutout"],
    "paper+ema": ["--recipe", "paper", "--ema"],
    "paper+ema-warmup": ["--recipe", "paper", "--ema", "--ema-warmup"],
    "paper+hinge": ["--recipe", "paper", "--loss", "hinge"],
    "paper+ttur": ["--recipe", "paper", "--lr", "1e-4", "--lr-d", "4e-4"],
    "paper+r1": ["--recipe", "paper", "--r1-gamma", "1"],
    "paper+mbstd": ["--recipe", "paper", "--stage1-config", "d_mbstd=true"],
    "paper+smooth": ["--recipe", "paper", "--label-smoothing", "0.1"],
    "paper+inoise": ["--recipe", "paper", "--instance-noise", "0.1"],
    "paper+diffaug-tc+ema-warmup": ["--recipe", "paper", "--diffaugment", "translation,cutout",
                                    "--ema", "--ema-warmup"],
    "default": ["--recipe", "default"],
}


# name -> `usgan train` arguments for Stage-II on a fixed Stage-I (--stage1-from RUN)
HALF = "width=32,d_width=32"
STAGE2 = {
    "s2-paper": ["--recipe", "paper", "--stage2-config", HALF],
    "s2-default": ["--recipe", "default", "--stage2-config", HALF],
    "s2-default+resize": ["--recipe", "default", "--stage2-config", HALF + ",upsample=nearest"],
    "s2-default+residual": ["--recipe", "default", "--stage2-config", HALF + ",residual=true"],
    "s2-default+resize+residual": ["--recipe", "default", "--stage2-config",
                                   HALF + ",upsample=nearest,residual=true"],
    "s2-default+residual+noise": ["--recipe", "default", "--stage2-config",
                                  HALF + ",residual=true,noise=true"],
    "s2-default+resize+residual+noise": ["--recipe", "default", "--stage2-config",
                                         HALF + ",upsample=nearest,residual=true,noise=true"],
}


CONFIGS: dict[str, list[str]] = {}


def usgan(*args: str) -> None:
    print("$ usgan " + " ".join(args), flush=True)
    subprocess.run([*USGAN, *args], check=True)


def calibrate(names: list[str], base: list[str], out: Path, rounds: int = 3,
              steps: int = 6) -> dict[str, float]:
    """Seconds per step of each configuration, measured in one process with the trainer's
    own step (`GANStep`), interleaved over ``rounds`` so that a slow minute of the machine
    hits every configuration alike; the fastest round counts. Each configuration's resolved
    options come from a 1-step `usgan train` (its config.json). Kept in OUT/speeds.json."""
    speeds_file = out / "speeds.json"
    speeds = json.loads(speeds_file.read_text()) if speeds_file.is_file() else {}
    todo = [n for n in names if n not in speeds]
    if not todo:
        return speeds
    steppers = {n: _stepper(n, base, out) for n in todo}
    best = {n: float("inf") for n in todo}
    for _ in range(rounds):
        for name, (step, real, noise) in steppers.items():
            step(real, noise())  # warm-up
            t0 = time.perf_counter()
            for _ in range(steps):
                step(real, noise())
            best[name] = min(best[name], (time.perf_counter() - t0) / steps)
    speeds.update(best)
    speeds_file.write_text(json.dumps(speeds, indent=1))
    return speeds


def _stepper(name: str, base: list[str], out: Path):  # type: ignore[no-untyped-def]
    """(GANStep, a real batch, a noise maker) with the configuration's resolved options."""
    import torch

    from usgan.core.noise import noise_for
    from usgan.core.plugin_manager import get_registry
    from usgan.core.registry import build
    from usgan.core.runtime import Runtime
    from usgan.core.stacking import forward_stack
    from usgan.core.stage import Stage
    from usgan.core.train.ema import EMA
    from usgan.core.train.options import TrainOptions
    from usgan.core.train.step import GANStep, make_optimizers

    run = out / "calibrate" / name
    if not (run / "config.json").is_file():
        usgan("train", *base, *CONFIGS[name], *_length(base, 1), "--quiet", "--force",
              "--out", str(run))
    config = json.loads((run / "config.json").read_text())
    opts = TrainOptions.from_json(config["options"])
    rt, reg = Runtime.create("cpu", opts.precision), get_registry()
    name, net_config, chain = opts.stage1, opts.stage1_config, []
    if opts.stage1_from:  # a Stage-II configuration on the copied Stage-I
        from usgan.core.run import RunDir
        from usgan.core.serialization import load_network
        from usgan.core.stacking import stage2_config

        cls = config["classes"][0]
        stage1 = load_network(RunDir(run).generator_path(cls, Stage.ONE, ema=opts.ema), reg)
        chain = [stage1.to(memory_format=rt.memory_format).eval()]
        name, net_config = str(opts.stage2), stage2_config(stage1, opts.stage2_config)
    g = build(reg, name, "generator", net_config).to(memory_format=rt.memory_format)
    d = build(reg, name, "discriminator", net_config).to(memory_format=rt.memory_format)
    chain.append(g)
    gen = torch.Generator().manual_seed(0)
    step = GANStep.for_options(
        opts, lambda z: forward_stack(chain, z)[-1], d,
        *make_optimizers(g, d, opts.lr, opts.betas, opts.lr_d),
        stage=Stage.TWO if opts.stage1_from else Stage.ONE, aug=gen, autocast=rt.autocast,
        ema=EMA(g, opts.ema_decay) if opts.ema else None, ema_of=g)
    real = torch.rand(opts.batch_size, 1, g.out_size, g.out_size) * 2 - 1
    return step, real, lambda: noise_for(chain, opts.batch_size, gen)


def _length(base: list[str], steps: int) -> list[str]:
    """The steps option of the stage being trained."""
    return ["--stage2-max-steps" if "--stage1-from" in base else "--max-steps", str(steps)]


def train(name: str, base: list[str], steps: int, out: Path) -> Path:
    run = out / name  # a finished run is left as it is by --resume
    resume = ["--resume"] if (run / "config.json").is_file() else []
    usgan("train", *base, *CONFIGS[name], *_length(base, steps), "--sample-every", "250",
          "--checkpoint-every", "100", "--quiet", "--out", str(run), *resume)
    return run


def evaluate(name: str, run: Path, args: argparse.Namespace, cls: str,
             stage: int | None = None) -> dict:
    path = args.out / f"{name}.eval.json"
    if not path.is_file():
        usgan("eval", "--real", args.eval_real, "--fake", str(run), "--class", cls,
              "--n", str(args.n), "--inception-weights", str(args.inception_weights),
              "--json", str(path), *(["--stage", str(stage)] if stage else []))
    return json.loads(path.read_text())["results"][str(run)][cls]


def eval_folder(name: str, make_images, args: argparse.Namespace,  # type: ignore[no-untyped-def]
                cls: str) -> dict:
    """Score the uint8 ``make_images()`` [n, 1, H, W], written as PNGs to ``out/name``
    (cached: a scored folder is not made again)."""
    folder, path = args.out / name, args.out / f"{name}.eval.json"
    if not path.is_file():
        from usgan.core.io import write_image

        folder.mkdir(exist_ok=True)
        for i, img in enumerate(make_images()):
            write_image(folder / f"{i:04d}.png", img)
        usgan("eval", "--real", args.eval_real, "--fake", str(folder), "--class", cls,
              "--inception-weights", str(args.inception_weights), "--json", str(path))
    return json.loads(path.read_text())["results"][str(folder)][cls]


def floor(args: argparse.Namespace, cls: str, size: int) -> dict:
    """Real vs real: ``--floor-real`` images at ``size`` against ``--eval-real``."""
    def images():  # type: ignore[no-untyped-def]
        import torch

        from usgan.core.data import load_dataset

        return load_dataset(args.floor_real, classes=[cls]).at_size(size).to(torch.uint8)

    return eval_folder(f"floor-{cls}-{size}", images, args, cls)


def upsampled_stage1(name: str, run: Path, args: argparse.Namespace, cls: str,
                     size: int = 256) -> dict:
    """The run's Stage-I samples (seed 0, as `usgan eval`), bilinearly upsampled to ``size``:
    what Stage-II has to beat at its own size."""
    def images():  # type: ignore[no-untyped-def]
        import torch

        import usgan as api

        small = api.load(run).sample(args.n, cls=cls, seed=0, stage=1).float()
        up = torch.nn.functional.interpolate(small, size=size, mode="bilinear",
                                             align_corners=False)
        return up.round().clamp(0, 255).to(torch.uint8)

    return eval_folder(f"{name}-up{size}", images, args, cls)


def demo_table(args: argparse.Namespace) -> list[str]:
    """``--demo RUN``: per class, the floor and the run's Stage-I and Stage-II against the
    held-out images, with FID as a multiple of the floor at the same size."""
    classes = json.loads((args.demo / "config.json").read_text())["classes"]
    lines = ["| class | images | FID | × floor | KID | diversity (pixels) | "
             "diversity (Inception) |", "|---|---|---|---|---|---|---|"]
    for cls in classes:
        tag = f"demo-{cls}"
        rows = [(64, [("Stage-I (64 px)", evaluate(f"{tag}-stage1", args.demo, args, cls, 1))]),
                (256, [("Stage-I, bilinear to 256 px",
                        upsampled_stage1(f"{tag}-stage1", args.demo, args, cls)),
                       ("Stage-II (256 px)", evaluate(f"{tag}-stage2", args.demo, args, cls, 2))])]
        for size, scored in rows:
            base = floor(args, cls, size)
            for what, r in [(f"real vs real ({size} px)", base), *scored]:
                div = {d["space"].split()[0]: d["ratio"] for d in r["diversity"]}
                fid = r["fid"]["value"]
                lines.append(f"| {cls} | {what} | {fid:.1f} | {fid / base['fid']['value']:.1f} "
                             f"| {r['kid']['value']:.3f} | {div['pixels']:.2f} | "
                             f"{div['inception-v3-compat']:.2f} |")
    return lines


def row(name: str, steps: int, sps: float, res: dict) -> str:
    div = {d["space"].split()[0]: d["ratio"] for d in res["diversity"]}
    fid, kid = res["fid"]["value"], res["kid"]["value"]
    return (f"| {name} | {steps} | {sps:.2f} | {fid:.1f} | {kid:.3f} | "
            f"{div.get('pixels', float('nan')):.2f} | "
            f"{div.get('inception-v3-compat', float('nan')):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data")
    ap.add_argument("--class", dest="cls")
    ap.add_argument("--demo", type=Path, default=None, metavar="RUN",
                    help="Instead: score a two-stage run's Stage-I and Stage-II per class.")
    ap.add_argument("--eval-real", required=True, help="Held-out real images (a data spec).")
    ap.add_argument("--floor-real", default=None,
                    help="A second held-out real set: its row is the real-vs-real floor.")
    ap.add_argument("--stage1", default="dcgan")
    ap.add_argument("--minutes", type=float, default=3.0, help="Training budget per config.")
    ap.add_argument("--n", type=int, default=400, help="Generated images per evaluation.")
    ap.add_argument("--only", default="", help="Comma-separated configuration names.")
    ap.add_argument("--stage1-from", default=None, metavar="RUN",
                    help="Run the Stage-II configurations on this run's Stage-I.")
    ap.add_argument("--inception-weights", type=Path, default=WEIGHTS)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.demo:
        table = "\n".join(demo_table(args)) + "\n"
        (args.out / "demo-table.md").write_text(table)
        print(table)
        return
    if not (args.data and args.cls):
        ap.error("--data and --class are needed (or --demo RUN)")
    if args.stage1_from:
        base = ["--data", args.data, "--classes", args.cls, "--stage1-from", args.stage1_from,
                "--stage2", "on"]
        CONFIGS.update(STAGE2)
    else:
        base = ["--data", args.data, "--classes", args.cls, "--stage1", args.stage1,
                "--stage2", "off"]
        CONFIGS.update(STAGE1)
    names = [n for n in args.only.split(",") if n] or list(CONFIGS)
    lines = ["| configuration | steps | s/step | FID | KID | diversity (pixels) | "
             "diversity (Inception) |", "|---|---|---|---|---|---|---|"]
    if args.floor_real:
        lines.append(row("real vs real (64 px)", 0, 0.0, floor(args, args.cls, 64)))
    if args.stage1_from:  # the Stage-I being refined, at its own size
        lines.append(row("its Stage-I (64 px)", 0, 0.0,
                         evaluate("stage1", Path(args.stage1_from), args, args.cls, stage=1)))
        if args.floor_real:
            lines.append(row("real vs real (256 px)", 0, 0.0, floor(args, args.cls, 256)))
        lines.append(row("its Stage-I, bilinear to 256 px", 0, 0.0,
                         upsampled_stage1("stage1", Path(args.stage1_from), args, args.cls)))
    speeds = calibrate(names, base, args.out)
    for name in names:
        sps = speeds[name]
        steps = max(1, int(args.minutes * 60 / sps))
        run = train(name, base, steps, args.out)
        lines.append(row(name, steps, sps, evaluate(name, run, args, args.cls)))
        print("\n".join(lines), flush=True)
    table = "\n".join(lines) + "\n"
    (args.out / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()

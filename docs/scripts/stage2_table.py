"""Does Stage-II earn its place? The table of docs/quality.md ("Stage-II against its own
Stage-I"), one cell at a time, resumable across sessions.

Each cell holds out a quarter of one class (a subject-level split, `usgan data split`),
trains a Stage-I on the rest (`usgan train --stage2 off --max-minutes 8`), then a Stage-II on
it (`--stage1-from`, `--stage2-max-minutes 12 --eval-every 1000 --eval-n 200 --keep-best`:
it ends with its lowest-KID step against the training images; two runs, so that a new
Stage-II recipe can be measured again on the same Stage-I), then scores 400 Stage-II samples
and the very Stage-I samples they refine, upsampled bilinearly to the same 256 px, against
the held-out images only (KID unbiased, FID). Run from the repository root:

    .venv/bin/python docs/scripts/stage2_table.py --out runs/stage2-table [--only CELL,...]

A cell whose JSON exists in docs/results/stage2/ is done (``--again --only CELL`` runs it
once more: move its run folder out of OUT first, or its finished runs are only scored
again); an unfinished run resumes (its budget continues where it stopped). ``--report``
only rewrites the table and the figure from the JSON files. No weights leave OUT.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
WEIGHTS = SHARED / "weights" / "inception-fid-2015-12-05-features-only.pth"
RESULTS = REPO / "docs" / "results" / "stage2"
PAGE = REPO / "docs" / "quality.md"
FIGURES = REPO / "docs" / "figures"
BEGIN, END = "<!-- stage2-table:begin -->", "<!-- stage2-table:end -->"
N, SIZE, TEST_SHARE = 400, 256, 0.25
STAGE1_RECIPE = ("ema", "ema_warmup", "diffaugment", "diffaugment_p", "ada_target")
# Stage-II ends with the generator of its lowest KID against the class's training images
# (never the held-out ones), scored on 200 samples every 1,000 steps inside its budget.
KEEP_BEST = ("--eval-every", "1000", "--eval-n", "200", "--keep-best",
             "--inception-weights", str(WEIGHTS))


@dataclass(frozen=True)
class Cell:
    """One row: a class of a dataset, a Stage-I network and a seed."""

    name: str
    data: str
    cls: str
    stage1: str
    seed: int = 0
    bins: str | None = None

    @property
    def dataset(self) -> str:
        return self.name.split("-")[0]


BUSI = str(SHARED / "data" / "busi-256")
SFIBAI = str(SHARED / "data" / "sfibai-liver-fibrosis-us" / "train")
CELLS = [Cell(f"busi-malignant-{s}", BUSI, "malignant", s)
         for s in ("dcgan", "dcgan-sn", "dcgan-sn-sa")]
CELLS += [Cell(f"sfibai-ge1.0-{s}", SFIBAI, "ge1.0", s, bins="1.0")
          for s in ("dcgan", "dcgan-sn", "dcgan-sn-sa")]
CELLS += [Cell("busi-benign-dcgan", BUSI, "benign", "dcgan"),
          Cell("sfibai-lt1.0-dcgan", SFIBAI, "lt1.0", "dcgan", bins="1.0"),
          Cell("phantom-healthy-dcgan", "phantom:n=168", "healthy", "dcgan")]
CELLS += [Cell(f"busi-malignant-dcgan-seed{s}", BUSI, "malignant", "dcgan", seed=s)
          for s in (1, 2)]


def usgan(*args: str) -> None:
    print("$ usgan " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "usgan", *args], check=True)


def split(cell: Cell, out: Path) -> Path:
    """The held-out quarter of the class (seed 0, the same for every cell of the class)."""
    from usgan.core.data import load_dataset

    path = out / f"split-{cell.dataset}-{cell.cls}.json"
    if not path.is_file():
        n = int((load_dataset(cell.data, classes=[cell.cls], bins=cell.bins).labels == 0).sum())
        args = ["data", "split", cell.data, "--classes", cell.cls, "--test-per-class",
                str(round(n * TEST_SHARE)), "--repeats", "1", "--seed", "0", "--out", str(path)]
        usgan(*args, *(["--bins", cell.bins] if cell.bins else []))
    return path


def train(cell: Cell, split_file: Path, run: Path, args: argparse.Namespace) -> None:
    """Stage-I (``run/stage1``), then a Stage-II on it (``run/stage2``, `--stage1-from`), with
    the default recipe and the budgets; a stopped run resumes. Two runs, so that a new
    Stage-II recipe is measured again on the same Stage-I (remove ``run/stage2`` and the
    cell's JSON)."""
    common = ["--data", cell.data, "--classes", cell.cls, "--split", str(split_file),
              "--seed", str(cell.seed), "--quiet", "--log-every", "100",
              *(["--bins", cell.bins] if cell.bins else [])]
    stages = [(run / "stage1", ["--stage1", cell.stage1, "--stage2", "off",
                                "--max-minutes", str(args.stage1_minutes)]),
              (run / "stage2", ["--stage1-from", str((run / "stage1").resolve()),
                                "--stage2", "on",
                                "--stage2-max-minutes", str(args.stage2_minutes),
                                *KEEP_BEST])]
    from usgan.core.run import RunDir

    for path, own in stages:
        run_dir = RunDir(path)
        if run_dir.is_finished():
            continue
        if run_dir.config_path.is_file():
            usgan("train", "--resume", str(path), "--quiet")
        else:
            usgan("train", *common, *own, "--out", str(path))


def held_out(cell: Cell, split_file: Path, part: int = 1):  # type: ignore[no-untyped-def]
    """The class's held-out images at 256 px, uint8 (``part=0``: its training images)."""
    from usgan.core.data import load_dataset, load_split

    ds = load_dataset(cell.data, classes=[cell.cls], bins=cell.bins)
    return ds.subset(load_split(str(split_file), ds, 0)[part]).at_size(SIZE)


def score(cell: Cell, run: Path, split_file: Path) -> dict:
    """KID and FID at 256 px of Stage-II and of its Stage-I upsampled, against the held-out
    images; also the run's budget and steps per stage (config.json)."""
    import torch

    import usgan as api
    from usgan.benchmarks.machine import cpu_flags
    from usgan.core.diversity import diversity
    from usgan.core.evaluation import Extractor, TensorImages, compute, upsample
    from usgan.core.runtime import cpu_name

    real = held_out(cell, split_file).to(torch.uint8)
    model = api.load(run)
    low = model.sample(N, cls=cell.cls, seed=0, stage=1)
    fakes = {"stage1_up": upsample(low, SIZE),
             "stage2": model.sample(N, cls=cell.cls, seed=0, stage=2)}
    extractor = Extractor.create(["fid", "kid"], weights=WEIGHTS)
    out: dict = {"cell": cell.name, "data": cell.data, "class": cell.cls, "bins": cell.bins,
                 "stage1": cell.stage1, "seed": cell.seed, "n_fake": N, "n_real": len(real),
                 "size": SIZE}
    for name, images in fakes.items():
        got = compute(extractor, TensorImages(images), TensorImages(real), ["fid", "kid"])
        pix = diversity(images.float().div(127.5).sub(1).flatten(1),
                        real.float().div(127.5).sub(1).flatten(1), "pixels")
        out[name] = {"kid": got["kid"].value, "fid": got["fid"].value,
                     "diversity_pixels": pix.ratio}
    config = json.loads((run / "config.json").read_text())
    source = _stage1_config(config) or config  # the run itself trained its Stage-I
    out["phases"] = {**_stage1_phases(source), **config.get("phases", {})}
    out["stage1_recipe"] = {k: source.get("options", {}).get(k) for k in STAGE1_RECIPE}
    out["machine"] = {"cpu": cpu_name(), "cpu_flags": cpu_flags(),
                      "precision": source.get("runtime", {}).get("precision")}
    out["options"] = {k: config["options"][k] for k in (
        "recipe", "max_minutes", "stage2_max_minutes", "stage2_pretrain", "stage2_recon",
        "stage2_crop", "stage2_blur", "stage2_noise", "stage2_config", "stage2_diffaugment",
        "stage2_finetune_lr", "eval_every", "eval_n", "keep_best") if k in config["options"]}
    return out


def curve(cell: Cell, run: Path, split_file: Path, train_too: bool = False) -> list[dict]:
    """KID, FID and the power at 2-4 and 4-8 px over the real images' (`spectrum`) at 256 px
    of each Stage-II checkpoint the run kept (train it with
    ``--keep-checkpoints 1000 --keep-all-checkpoints``): where the fine-tuning helps or
    overshoots. ``train_too``: the same samples against the training images as well
    (``kid_train``, ``fid_train``: what a run can watch without held-out images)."""
    import torch

    import usgan as api
    from usgan.core.evaluation import Extractor, TensorImages, compute
    from usgan.core.run import RunDir
    from usgan.core.spectrum import spectrum
    from usgan.core.stage import Stage
    from usgan.core.train.checkpoint import list_checkpoints, load_checkpoint

    real_images = held_out(cell, split_file).to(torch.uint8)
    real = TensorImages(real_images)
    train = TensorImages(held_out(cell, split_file, 0).to(torch.uint8)) if train_too else None
    model = api.load(run)
    g2 = model.chain(cell.cls, 2)[1]
    ema = model.options.ema_in(Stage.TWO)  # the G the run samples from
    extractor = Extractor.create(["fid", "kid"], weights=WEIGHTS)
    points = []
    for path in list_checkpoints(RunDir(run).checkpoints(cell.cls, 2)):
        ckpt = load_checkpoint(path)
        g2.load_state_dict(ckpt["ema"] if ema and ckpt.get("ema") else ckpt["g"])
        images = model.sample(N, cls=cell.cls, seed=0, stage=2)
        fake = TensorImages(images)
        got = compute(extractor, fake, real, ["fid", "kid"])
        power = spectrum(images, real_images).ratios
        points.append({"step": int(ckpt["step"]), "kid": got["kid"].value,
                       "fid": got["fid"].value, "power_2_4": power[0], "power_4_8": power[1]})
        if train is not None:
            got = compute(extractor, fake, train, ["fid", "kid"])
            points[-1].update(kid_train=got["kid"].value, fid_train=got["fid"].value)
        print(f"step {points[-1]['step']}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in points[-1].items() if k != "step"), flush=True)
    return points


def oracle(cell: Cell, run: Path, split_file: Path) -> dict:
    """The Stage-II on a perfect Stage-I: the class's training images area-downsampled to the
    Stage-I size, upsampled bilinearly (``input_up``) and refined by the run's Stage-II
    (``stage2``), each scored at 256 px against the held-out images. Stage-II's ceiling on
    this data, apart from what its Stage-I hands it."""
    import torch
    import torch.nn.functional as F

    import usgan as api
    from usgan.core.data import load_dataset, load_split
    from usgan.core.evaluation import Extractor, TensorImages, compute, upsample
    from usgan.core.noise import noise_for

    ds = load_dataset(cell.data, classes=[cell.cls], bins=cell.bins)
    train, _ = load_split(str(split_file), ds, 0)
    hr = ds.subset(train).at_size(SIZE).float().div(127.5).sub(1)
    g1, g2 = api.load(run).chain(cell.cls, 2)
    low = F.avg_pool2d(hr, SIZE // int(g1.out_size))
    _, z2 = noise_for((g1, g2), len(low), torch.Generator().manual_seed(0))
    with torch.no_grad():
        high = torch.cat([g2(x.to(memory_format=torch.channels_last), z)
                          for x, z in zip(low.split(16), z2.split(16), strict=True)])

    def as_uint8(x: torch.Tensor) -> torch.Tensor:
        return x.float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)

    real = TensorImages(held_out(cell, split_file).to(torch.uint8))
    extractor = Extractor.create(["fid", "kid"], weights=WEIGHTS)
    out: dict = {"n_fake": len(low), "n_real": len(real)}
    for name, images in (("input_up", upsample(as_uint8(low), SIZE)), ("stage2", as_uint8(high))):
        got = compute(extractor, TensorImages(images), real, ["fid", "kid"])
        out[name] = {"kid": got["kid"].value, "fid": got["fid"].value}
    return out


def _stage1_config(config: dict) -> dict:
    """The config of the run a `--stage1-from` run took its Stage-I from (a local one)."""
    source = (config.get("stage1") or {}).get("from")
    path = Path(source) / "config.json" if source else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else {}


def _stage1_phases(source: dict) -> dict:
    """The Stage-I phases of that run."""
    return {k: v for k, v in source.get("phases", {}).items() if k.endswith("/stage1")}


def _recipe(r: dict) -> str:
    """The table's short name of a cell's recipe: Stage-I's DiffAugment (DA) and its p, EMA,
    whether Stage-II's D augments, its fine-tuning lr and `--keep-best`, the CPU. Cells scored
    before 2026-12-04 did not record Stage-I's: they trained with p 1 and no EMA on an AVX2
    CPU; a cell that did not record Stage-I's policy had the default recipe's (none for the
    spectral-norm networks)."""
    got = r.get("stage1_recipe") or {"diffaugment_p": 1.0, "ema": False}
    policy = got.get("diffaugment", [] if r["stage1"].startswith("dcgan-sn") else ["on"])
    one = f"DA p {got['diffaugment_p']:g}" if policy else "no DA"
    two = "DA" if r["options"].get("stage2_diffaugment") else "no DA"
    if r["options"].get("stage2_finetune_lr", 1.0) != 1.0:
        two += f", fine-tune lr x{r['options']['stage2_finetune_lr']:g}"
    if r["options"].get("keep_best"):
        two += f", keep-best every {r['options']['eval_every']:,}"
    flags = r.get("machine", {}).get("cpu_flags", [])
    cpu = "BF16" if "avx512_bf16" in flags else "AVX-512" if "avx512f" in flags else "AVX2"
    return f"I: {one}{', EMA' if got['ema'] else ''}; II: {two} ({cpu})"


def grid(cell: Cell, run: Path, split_file: Path, path: Path, with_real: bool = True) -> None:
    """Real (held-out), Stage-I upsampled, Stage-II: six of each, 128 px tiles (the real row
    only where the data may be shown: docs/ figures of BUSI and SFibAI leave it out)."""
    import torch

    import usgan as api
    from usgan.core.evaluation import upsample
    from usgan.core.io import write_grid

    def tiles(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x.float(), size=128, mode="area")

    model = api.load(run)
    real = held_out(cell, split_file)[:6]
    up = upsample(model.sample(6, cls=cell.cls, seed=0, stage=1), SIZE)
    high = model.sample(6, cls=cell.cls, seed=0, stage=2)
    rows = torch.cat([*([tiles(real)] if with_real else []), tiles(up), tiles(high)])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_grid(path, rows.round().to(torch.uint8), nrow=6)


def table() -> str:
    """The generated section of docs/quality.md from docs/results/stage2/*.json."""
    lines = ["| cell | recipe (CPU) | Stage-I steps | Stage-II steps (pairs; kept) | "
             "Stage-I up: KID | FID | Stage-II: KID | FID | KID ratio | met (<= 0.8) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for cell in CELLS:
        path = RESULTS / f"{cell.name}.json"
        if not path.is_file():
            lines.append(f"| {cell.name} | not run yet | | | | | | | | |")
            continue
        r = json.loads(path.read_text())
        p1 = r["phases"].get(f"{cell.cls}/stage1", {})
        p2 = r["phases"].get(f"{cell.cls}/stage2", {})
        k1, k2 = r["stage1_up"]["kid"], r["stage2"]["kid"]
        ratio = k2 / k1 if k1 > 0 else float("nan")
        kept = f"; kept {p2['best_step']}" if p2.get("best_step") else ""
        lines.append(
            f"| {cell.name} | {_recipe(r)} | {p1.get('steps', '?')} | {p2.get('steps', '?')} "
            f"({p2.get('pretrain_steps')}{kept}) | {k1:.3f} | {r['stage1_up']['fid']:.1f} | "
            f"{k2:.3f} | {r['stage2']['fid']:.1f} | {ratio:.2f} | "
            f"{'yes' if ratio <= 0.8 else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "stage2-table")
    ap.add_argument("--only", default=None, help="Comma-separated cell names, run in this order.")
    ap.add_argument("--stage1-minutes", type=float, default=8.0)
    ap.add_argument("--stage2-minutes", type=float, default=12.0)
    ap.add_argument("--report", action="store_true", help="Only rewrite the table.")
    ap.add_argument("--again", action="store_true",
                    help="Run the --only cells even where their JSON exists (a new recipe); "
                         "the old JSON stays until the new one replaces it.")
    ap.add_argument("--score", type=Path, default=None, metavar="RUN",
                    help="Only score this finished run (--split, --class, --data, --bins) and "
                         "print its JSON (the ablations of docs/quality.md).")
    ap.add_argument("--curve", type=Path, default=None, metavar="RUN",
                    help="Only score every Stage-II checkpoint this run kept.")
    ap.add_argument("--train-too", action="store_true",
                    help="With --curve: score each checkpoint against the training images "
                         "too (stage2-curve-train.json).")
    ap.add_argument("--oracle", type=Path, default=None, metavar="RUN",
                    help="Only score this run's Stage-II on the real training images "
                         "downsampled to the Stage-I size (a perfect Stage-I).")
    ap.add_argument("--split", type=Path, default=None)
    ap.add_argument("--class", dest="cls", default=None)
    ap.add_argument("--data", default=BUSI)
    ap.add_argument("--bins", default=None)
    args = ap.parse_args()
    if args.again and not args.only:
        ap.error("--again needs --only CELL,...")
    from usgan.core.io import write_json, write_markdown_section

    for mode in ("score", "oracle", "curve"):
        run = getattr(args, mode)
        if run is None:
            continue
        cell = Cell(run.name, args.data, args.cls, "?", bins=args.bins)
        if mode == "score":
            got = score(cell, run, args.split)
            grid(cell, run, args.split, run / "stage2-grid.png")
            got = {k: got[k] for k in ("stage1_up", "stage2", "phases")}
        elif mode == "curve" and args.train_too:
            got = curve(cell, run, args.split, train_too=True)
            write_json(run / "stage2-curve-train.json", got)
        else:
            got = (oracle if mode == "oracle" else curve)(cell, run, args.split)
            write_json(run / f"stage2-{mode}.json", got)
        print(json.dumps(got, indent=1))
    if args.score or args.oracle or args.curve:
        return

    by_name = {cell.name: cell for cell in CELLS}
    names = args.only.split(",") if args.only else list(by_name)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        ap.error(f"unknown cell {unknown[0]!r}; the cells: {', '.join(by_name)}")
    for cell in [] if args.report else [by_name[n] for n in names]:  # in the order given
        result = RESULTS / f"{cell.name}.json"
        if result.is_file() and not args.again:
            continue
        t0 = time.time()
        split_file = split(cell, args.out)
        run = args.out / cell.name
        train(cell, split_file, run, args)
        write_json(result, score(cell, run / "stage2", split_file))
        grid(cell, run / "stage2", split_file, args.out / "grids" / f"{cell.name}.png")
        grid(cell, run / "stage2", split_file, FIGURES / f"stage2-{cell.name}.png",
             with_real=cell.dataset == "phantom")
        print(f"{cell.name}: done in {(time.time() - t0) / 60:.1f} min", flush=True)
    write_markdown_section(PAGE, table(), BEGIN, END, "# Image quality")
    print(table())


if __name__ == "__main__":
    main()

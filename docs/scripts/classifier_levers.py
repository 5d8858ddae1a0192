"""Levers for the classification experiment's real-only classifier (docs/evaluation.md,
"Class balance" and "Levers on SFibAI"): trains `usgan.core.experiment`'s classifier on the real
training images of a split file, one lever at a time, and tests it on the split's held-out
images, over ``--repeats`` classifier seeds (the seeds of `usgan experiment classify`).

A lever is NAME:KEY=VALUE,... over the `fast` preset with ``--steps 100`` (what
`usgan reproduce --preset cpu` runs): keys size, steps, lr, batch, backbone, aug (0/1),
balance (1: every class repeated up to the largest class's count, so each batch is balanced
on average).
A lever finished with the same settings, repeats and seed is read back from ``--out`` and
skipped: run it again to continue.

  .venv/bin/python docs/scripts/classifier_levers.py \
      --data ../shared/data/sfibai-liver-fibrosis-us/train --bins 1.0 \
      --split runs/clf/sfibai-split.json --out runs/clf/sfibai.json \
      base: steps-500:steps=500 size-128:size=128,steps=300
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from usgan.core.data import Dataset, load_dataset, load_split
from usgan.core.experiment.backbone import make_model
from usgan.core.experiment.classify import (
    AUG,
    PRESETS,
    REAL,
    Preset,
    predict,
    repeat_seed,
    train_classifier,
    training_sets,
)
from usgan.core.experiment.report import classification_metrics, format_p, paired_p

BASE = replace(PRESETS["fast"], steps=100, balance=False)  # what results.md's Table 2 ran
KEYS = {"size": int, "steps": int, "lr": float, "batch": int, "backbone": str, "aug": int,
        "balance": int}


def parse_lever(text: str) -> tuple[str, dict[str, object]]:
    """NAME:KEY=VALUE,... -> (name, settings)."""
    name, _, rest = text.partition(":")
    out: dict[str, object] = {}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        if key not in KEYS:
            raise SystemExit(f"unknown lever key {key!r} in {text!r}; one of {', '.join(KEYS)}")
        out[key] = KEYS[key](value)
    return name, out


def run_lever(ds: Dataset, train: list[int], held: list[int], settings: dict[str, object],
              repeats: int, seed: int) -> dict[str, object]:
    """Accuracy and F1 of each repeat, and the seconds it took."""
    p: Preset = replace(BASE, **{k: v for k, v in settings.items() if k in Preset.__annotations__})
    backbone = str(settings.get("backbone", "efficientnet_b0"))
    x, y, aug = training_sets(ds, train, [], p, seed)[AUG if settings.get("aug") else REAL]
    tx, ty = ds.at_size(p.size)[held], ds.labels[held].tolist()
    rows, t0 = [], time.perf_counter()
    for r in range(repeats):
        s = repeat_seed(seed, r)
        model, _ = make_model(backbone, len(ds.class_names), s)
        train_classifier(model, x, y, p, s, aug, lambda: None)
        m = classification_metrics(ty, predict(model, tx), len(ds.class_names))
        rows.append({"accuracy": 100 * m["accuracy"], "f1": 100 * m["f1"]})
        print(f"  repeat {r}: accuracy {rows[-1]['accuracy']:.1f}%, F1 {rows[-1]['f1']:.1f}%",
              flush=True)
    return {"settings": {**settings}, "preset": asdict(p), "backbone": backbone, "seed": seed,
            "repeats": rows, "seconds": round(time.perf_counter() - t0, 1)}


def table(results: dict[str, dict]) -> str:
    """A markdown table of the finished levers; p: paired t-test of accuracy against the
    first lever over the same seeds."""
    lines = ["| lever | settings | accuracy (%) | F1 (%) | p vs first | minutes |",
             "|---|---|---|---|---|---|"]
    first = None
    for name, r in results.items():
        acc = [x["accuracy"] for x in r["repeats"]]
        f1 = [x["f1"] for x in r["repeats"]]
        first = acc if first is None else first
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        opts = ", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "fast, 100 steps"
        p = "—" if acc is first else format_p(paired_p(acc, first[:len(acc)]))
        lines.append(f"| {name} | {opts} | {statistics.mean(acc):.1f} ± {sd:.1f} | "
                     f"{statistics.mean(f1):.1f} | {p} | {r['seconds'] / 60:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--bins")
    ap.add_argument("--classes")
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("levers", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    levers = [parse_lever(t) for t in a.levers]
    ds = load_dataset(a.data, classes=a.classes.split(",") if a.classes else None, bins=a.bins)
    train, held = load_split(a.split, ds, 0)
    results = json.loads(a.out.read_text()) if a.out.exists() else {}
    for name, settings in levers:
        done = results.get(name, {})
        if (done.get("settings"), len(done.get("repeats", [])), done.get("seed", 0)) == \
                (settings, a.repeats, a.seed):
            continue
        print(f"{name}: {settings or 'fast, 100 steps'}", flush=True)
        results[name] = run_lever(ds, train, held, settings, a.repeats, a.seed)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1) + "\n")
    print(table({n: results[n] for n, _ in levers}))


if __name__ == "__main__":
    main()

"""End-of-run artefacts: the model card (README.md) and the loss curves (curves.png)."""

from __future__ import annotations

import json
from typing import Any

from .options import TrainOptions
from .rundir import RunDir


def write_model_card(run: RunDir, opts: TrainOptions, classes: list[str]) -> None:
    """A Hub-style README.md with YAML front matter describing the run."""
    stages = f"{opts.stage1} + {opts.stage2}" if opts.stage2 else opts.stage1
    files = "\n".join(
        f"- `{c}/stage{s}/generator.safetensors`"
        for c in classes for s in ((1, 2) if opts.stage2 else (1,))
    )
    text = f"""---
library_name: usgan
tags: [usgan, gan, ultrasound, medical-imaging, image-generation]
license: apache-2.0
---

# usgan run: {stages}

Stacked GAN for ultrasound image synthesis (usgan {json.dumps(opts.stage1)} Stage-I
{"with Stage-II " + json.dumps(opts.stage2) if opts.stage2 else "only"}), one GAN per class.

- classes: {", ".join(classes)}
- data: `{opts.data}`
- loss {opts.loss}, Adam lr {opts.lr}, betas {tuple(opts.betas)}, batch {opts.batch_size},
  seed {opts.seed}{", EMA" if opts.ema else ""}{", DiffAugment " + ",".join(opts.diffaugment)
  if opts.diffaugment else ""}

## Weights

{files}

Each file is safetensors with its architecture in the metadata. Sample with:

```bash
usgan sample RUN_DIR --class {classes[0]} -n 16 --out samples/
```

All options: `config.json`.
"""
    run.root.joinpath("README.md").write_text(text)


def write_curves(run: RunDir) -> str | None:
    """Plot losses per phase to curves.png; returns a note when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "note: matplotlib is not installed, so curves.png was not written " \
               "(pip install 'usgan[plots]')"
    records: list[dict[str, Any]] = []
    if run.metrics_path.is_file():
        records = [json.loads(line) for line in run.metrics_path.read_text().splitlines()
                   if line.strip()]
    phases = sorted({(r["class"], r["stage"]) for r in records})
    if not phases:
        return None
    fig, axes = plt.subplots(1, len(phases), figsize=(4 * len(phases), 3), squeeze=False)
    for ax, (cls, stage) in zip(axes[0], phases, strict=True):
        rows = [r for r in records if r["class"] == cls and r["stage"] == stage]
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["loss_d"] for r in rows], label="D")
        ax.plot(steps, [r["loss_g"] for r in rows], label="G")
        ax.set_title(f"{cls} stage {stage}")
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(run.root / "curves.png", dpi=80)
    plt.close(fig)
    return None

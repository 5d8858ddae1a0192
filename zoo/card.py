"""Model cards: the README.md of a run directory, which becomes the Hub repo's card.

Built with huggingface_hub's `ModelCard` / `ModelCardData` from the run's config.json, so
the YAML metadata (library, tags, license, datasets) is what the Hub expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from usgan.core.io import write_atomic
from usgan.core.run import RunDir
from usgan.core.stage import Stage
from usgan.core.train.curves import best_eval
from usgan.core.train.options import TrainOptions

TAGS = ["usgan", "gan", "ultrasound", "medical-imaging", "unconditional-image-generation"]


def card_data(config: dict[str, Any], evaluation: dict[str, Any] | None = None
              ) -> ModelCardData:
    """The card's YAML metadata; with the run's eval.json, a model-index of its metrics."""
    stage1 = (config.get("stage1") or {}).get("name", "")
    stage2 = (config.get("stage2") or {}).get("name")
    tags = [*TAGS, stage1, *([stage2] if stage2 else [])]
    results = _eval_results(evaluation) if evaluation else []
    return ModelCardData(library_name="usgan", license="apache-2.0", tags=tags,
                         pipeline_tag="unconditional-image-generation",
                         model_name=(stage1 + (f"-{stage2}" if stage2 else "")) if results
                         else None, eval_results=results or None)


def _eval_results(evaluation: dict[str, Any]) -> list[EvalResult]:
    """One EvalResult per class and available metric of ``usgan eval``'s eval.json (saying
    so when the real images were a split's held-out ones, ``usgan eval --split``)."""
    data = Path(str(evaluation.get("real", "data"))).name or "data"
    extractor = evaluation.get("extractor", "")
    out = []
    for cls, row in (evaluation.get("results") or {}).items():
        against = (f", against {row.get('n_real')} held-out images"
                   if evaluation.get("split") else "")
        for metric, value in row.items():
            if not isinstance(value, dict) or value.get("value") is None:
                continue
            out.append(EvalResult(
                task_type="unconditional-image-generation", dataset_type=data,
                dataset_name=f"{data} ({cls})", metric_type=metric,
                metric_value=float(value["value"]),
                metric_name=f"{metric.upper()} {cls} (N={row.get('n_fake')}, {extractor}"
                            f"{against})"))
    return out


def _watch_section(run: RunDir) -> str:
    """The ``--eval-every`` numbers: the final and the lowest-KID evaluation of each phase
    (the step `--keep-best` keeps; empty: none)."""
    records = [r for r in run.read_metrics() if r.get("fid") is not None]
    phases = sorted({(r["class"], r["stage"]) for r in records})
    if not phases:
        return ""
    lines = ["## Quality during training (`--eval-every`, against the training images)", "",
             "| class | stage | final step | FID | KID | lowest-KID step | its FID | its KID |",
             "|---|---|---|---|---|---|---|---|"]
    for cls, stage in phases:
        last = max((r for r in records if (r["class"], r["stage"]) == (cls, stage)),
                   key=lambda r: r["step"])
        best = best_eval(records, cls, stage) or last
        lines.append(f"| {cls} | {stage} | {last['step']} | {last['fid']:.1f} | "
                     f"{_kid(last)} | {best['step']} | {best['fid']:.1f} | {_kid(best)} |")
    kept = {k: v["best_step"] for k, v in run.read_config().get("phases", {}).items()
            if v.get("best_step") is not None}
    note = ("\n\nSampled weights kept from the lowest-KID step (`--keep-best`): " + ", ".join(
        f"{k} step {v}" for k, v in sorted(kept.items())) + ".") if kept else ""
    return ("\n".join(lines) + f"\n\n{last.get('eval_n', '?')} generated images per row."
            + note + "\n")


def _kid(record: dict[str, Any]) -> str:
    return f"{record['kid']:.4f}" if record.get("kid") is not None else "n/a"


def _network_line(label: str, entry: dict[str, Any] | None) -> str:
    if not entry:
        return f"- {label}: none"
    origin = entry.get("distribution") or entry.get("plugin") or "unknown plugin"
    version = f" {entry['version']}" if entry.get("version") else ""
    reused = f", reused from `{entry['from']}`" if entry.get("from") else ""
    return f"- {label}: `{entry.get('name')}` (from {origin}{version}{reused})"


def _augmentation(options: TrainOptions, stages: list[Stage]) -> str:
    """``, DiffAugment POLICY (p P) in STAGES`` for each policy the stages use, with its
    probability where not 1 (or ADA's target)."""
    p, target = options.diffaugment_p, options.ada_target
    how = (f" (ADA from p {p:g}, target {target:g})" if target is not None
           else f" (p {p:g})" if p != 1 else "")
    by_policy: dict[str, list[str]] = {}
    for stage in stages:
        if options.policy(stage):
            by_policy.setdefault(",".join(options.policy(stage)), []).append(stage.label)
    return "".join(f", DiffAugment {policy}{how} in {' and '.join(labels)}"
                   for policy, labels in by_policy.items())


def card_for(run: RunDir) -> ModelCard:
    """The model card of ``run``."""
    config = run.read_config()
    opts = config["options"]
    classes = list(config.get("classes") or [])
    stages = run.stages()
    files = "\n".join(f"- `{c}/{s}/generator.safetensors`" for c in classes for s in stages)
    options = TrainOptions.from_json(opts, where=str(run.config_path))
    ema = [stage.label for stage in stages if options.ema_in(stage)]
    extras = (f", EMA of G ({', '.join(ema)})" if ema else "") + _augmentation(options, stages)
    sizes = {stage.label: options.batch_in(stage) for stage in stages}
    batch = (" and ".join(f"{n} in {label}" for label, n in sizes.items())
             if len(set(sizes.values())) > 1 else str(options.batch_size))
    body = f"""
# usgan: {" + ".join(str((config.get(str(s)) or {}).get("name")) for s in stages)}

Stacked GAN for ultrasound image synthesis (Che et al.), one GAN per class, trained with
[usgan](https://github.com/usgan/usgan).

{_network_line("Stage-I", config.get("stage1"))}
{_network_line("Stage-II", config.get("stage2"))}
- classes: {", ".join(classes)}
- data: `{config.get("data", {}).get("spec", opts.get("data"))}`
- recipe `{opts.get("recipe", "paper")}`: loss {opts.get("loss")}, Adam lr {opts.get("lr")},
  betas {tuple(opts.get("betas") or ())}, batch {batch},
  seed {opts.get("seed")}{extras}

## Weights

{files}

Each file is safetensors with its architecture in the metadata. Sample with:

```bash
usgan sample RUN_DIR --class {classes[0] if classes else "CLASS"} -n 16 --out samples/
```

All options: `config.json`.

{_watch_section(run)}"""
    return ModelCard(f"---\n{card_data(config, run.read_eval()).to_yaml()}\n---\n{body}")


def write_card(run: RunDir) -> None:
    """Write ``run``'s README.md (atomically)."""
    write_atomic(run.card_path, str(card_for(run)))

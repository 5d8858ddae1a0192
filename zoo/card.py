"""Model cards: the README.md of a run directory, which becomes the Hub repo's card.

Built with huggingface_hub's `ModelCard` / `ModelCardData` from the run's config.json, so
the YAML metadata (library, tags, license, datasets) is what the Hub expects.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from usgan.core.io import write_atomic
from usgan.core.run import RunDir

TAGS = ["usgan", "gan", "ultrasound", "medical-imaging", "unconditional-image-generation"]


def card_data(config: dict[str, Any]) -> ModelCardData:
    """The card's YAML metadata."""
    stage1 = (config.get("stage1") or {}).get("name", "")
    stage2 = (config.get("stage2") or {}).get("name")
    tags = [*TAGS, stage1, *([stage2] if stage2 else [])]
    return ModelCardData(library_name="usgan", license="apache-2.0", tags=tags,
                         pipeline_tag="unconditional-image-generation")


def _network_line(label: str, entry: dict[str, Any] | None) -> str:
    if not entry:
        return f"- {label}: none"
    origin = entry.get("distribution") or entry.get("plugin") or "unknown plugin"
    version = f" {entry['version']}" if entry.get("version") else ""
    reused = f", reused from `{entry['from']}`" if entry.get("from") else ""
    return f"- {label}: `{entry.get('name')}` (from {origin}{version}{reused})"


def card_for(run: RunDir) -> ModelCard:
    """The model card of ``run``."""
    config = run.read_config()
    opts = config["options"]
    classes = list(config.get("classes") or [])
    stages = run.stages()
    files = "\n".join(f"- `{c}/{s}/generator.safetensors`" for c in classes for s in stages)
    extras = (", EMA" if opts.get("ema") else "") + (
        ", DiffAugment " + ",".join(opts["diffaugment"]) if opts.get("diffaugment") else "")
    body = f"""
# usgan: {" + ".join(str((config.get(str(s)) or {}).get("name")) for s in stages)}

Stacked GAN for ultrasound image synthesis (Che et al.), one GAN per class, trained with
[usgan](https://github.com/usgan/usgan).

{_network_line("Stage-I", config.get("stage1"))}
{_network_line("Stage-II", config.get("stage2"))}
- classes: {", ".join(classes)}
- data: `{config.get("data", {}).get("spec", opts.get("data"))}`
- loss {opts.get("loss")}, Adam lr {opts.get("lr")}, betas {tuple(opts.get("betas") or ())},
  batch {opts.get("batch_size")}, seed {opts.get("seed")}{extras}

## Weights

{files}

Each file is safetensors with its architecture in the metadata. Sample with:

```bash
usgan sample RUN_DIR --class {classes[0] if classes else "CLASS"} -n 16 --out samples/
```

All options: `config.json`.
"""
    return ModelCard(f"---\n{card_data(config).to_yaml()}\n---\n{body}")


def write_card(run: RunDir) -> None:
    """Write ``run``'s README.md (atomically)."""
    write_atomic(run.card_path, str(card_for(run)))

"""``usgan experiment``: the paper's experiments (``classify``: Table 2, see docs/evaluation.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from usgan.core.errors import ConfigError


@click.group("experiment")
def experiment_group() -> None:
    """Reproduce the paper's experiments."""


@experiment_group.command("classify")
@click.option("--data", "spec", required=True, help="Data SPEC (e.g. phantom, a folder, a CSV).")
@click.option("--classes", help="Comma-separated classes to use, in this order.")
@click.option("--bins", default=None, help="Grade bins for graded folders (docs/data.md).")
@click.option("--split", "split_file", type=click.Path(path_type=Path),
              help="Split file from 'usgan data split' (default: make subject-level splits).")
@click.option("--test-data", default=None, metavar="SPEC",
              help="A separate test set (same classes): train on all of --data, test on it.")
@click.option("--synthetic", "sources", multiple=True, metavar="SOURCE",
              help="A run directory or zoo name whose images augment training (repeatable).")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Train 'real only' and 'real + classic augmentation'.")
@click.option("--synthetic-only/--no-synthetic-only", default=True, show_default=True,
              help="Train 'synthetic only' per --synthetic source.")
@click.option("--preset", type=click.Choice(["fast", "paper"]), default="fast", show_default=True)
@click.option("--backbone", default="efficientnet_b0", show_default=True, help="A timm model.")
@click.option("--pretrained", is_flag=True, help="Start from ImageNet weights (offline only).")
@click.option("--backbone-weights", type=click.Path(path_type=Path),
              help="ImageNet weights as a .safetensors file (implies --pretrained).")
@click.option("--repeats", type=int,
              help="Splits to run (default: the preset's, or the file's; a file with fewer "
                   "splits is cycled with new seeds).")
@click.option("--test-per-class", type=int,
              help="Test images per class (default: min(70, 20% of the smallest class)).")
@click.option("--epochs", type=int, help="Override the preset's epochs.")
@click.option("--steps", type=int,
              help="Train every configuration for this many optimizer steps instead of "
                   "epochs, so a larger (topped-up) training set is not also more training.")
@click.option("--balance/--no-balance", default=None,
              help="Draw the real-only and classic-augmentation sets with every class equally "
                   "often (the smaller classes' images repeated), as the synthetic top-up "
                   "does; --no-balance trains on them as they are.  [default: the preset's, "
                   "which balances]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True,
              help="auto, cpu, cuda or cuda:N (the classifier's training and tests).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--force", is_flag=True, help="Overwrite an existing report.")
@click.option("--quiet", is_flag=True, help="Plain progress lines instead of bars.")
def classify_cmd(spec: str, classes: str | None, bins: str | None, split_file: Path | None,
                 test_data: str | None, sources: tuple[str, ...], baselines: bool,
                 synthetic_only: bool, preset: str, backbone: str, pretrained: bool,
                 backbone_weights: Path | None, repeats: int | None,
                 test_per_class: int | None, epochs: int | None, steps: int | None,
                 balance: bool | None, seed: int, device: str, out: Path, force: bool,
                 quiet: bool) -> None:
    """Table 2: classify real test images after training on real, real + synthetic,
    augmented real and synthetic-only images; writes OUT/report.md and OUT/results.json."""
    from usgan.core.data import load_dataset
    from usgan.core.experiment import ClassifyOptions, run_classify
    from usgan.core.experiment.backbone import check_backbone

    if (out / "report.md").exists() and not force:
        raise ConfigError(f"{out / 'report.md'} exists; choose another --out or add --force")
    if test_data and split_file:
        raise ConfigError("--test-data and --split both choose the test images; give one")
    if not baselines and not sources:
        raise ConfigError("nothing to train: --no-baselines and no --synthetic source")
    check_backbone(backbone)
    opts = ClassifyOptions(preset=preset, backbone=backbone,
                           pretrained=pretrained or backbone_weights is not None,
                           backbone_weights=backbone_weights, seed=seed, repeats=repeats,
                           test_per_class=test_per_class, split_file=split_file, epochs=epochs,
                           steps=steps, balance=balance, baselines=baselines,
                           synthetic_only=synthetic_only, device=device)
    opts.settings()  # a bad --epochs/--steps is refused before the data is read
    wanted = [c for c in (classes or "").split(",") if c.strip()] or None
    ds = load_dataset(spec, classes=wanted, bins=bins)
    test = load_dataset(test_data, classes=list(ds.class_names), bins=bins) if test_data else None
    synth = [_open_source(s) for s in sources]
    if quiet:
        res = run_classify(ds, synth, opts, _plain, test)
    else:
        with _bars() as bars:
            res = run_classify(ds, synth, opts, bars, test)
    _write(res, out)


def _open_source(text: str):  # type: ignore[no-untyped-def]
    import usgan
    from usgan.core.experiment import source_from

    return source_from(text, usgan.load(text))


def _plain(label: str, done: int, total: int) -> None:
    if done == total:
        click.echo(f"done: {label} ({total} steps)", err=True)


class _bars:
    """A rich bar per configuration and split, on stderr."""

    def __init__(self) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True))
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> _bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, label: str, done: int, total: int) -> None:
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(label, total=total)
        self.progress.update(self.tasks[label], completed=done)


def _write(res: dict, out: Path) -> None:  # type: ignore[type-arg]
    from usgan.core.experiment import render_markdown, report_header
    from usgan.core.experiment.classify import REAL
    from usgan.core.experiment.report import table_rows
    from usgan.core.io import write_atomic

    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "results.json", json.dumps(res, indent=1) + "\n")
    write_atomic(out / "report.md", render_markdown(report_header(res), res["summary"], REAL))
    for row in table_rows(res["summary"], REAL):
        click.echo(" | ".join(row))
    click.echo(f"wrote {out / 'report.md'} and {out / 'results.json'}")

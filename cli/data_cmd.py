"""``usgan data``: inspect, preview and split a data source (see docs/data.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from usgan.core.data import load_dataset, load_index, split_document, write_split
from usgan.core.errors import DataError
from usgan.core.names import printable

# Skip reasons too common to list file by file in `usgan data info` (they are counted).
COUNTED_ONLY = ("hidden", "not an image")
LISTED_MAX = 20  # skipped files listed by `usgan data info`, at most

SPEC_HELP = (
    "phantom[:n=..,seed=..], a folder with one subfolder per class, a CSV manifest "
    "(path,label[,subject]) or a Byra et al. .mat file"
)


def data_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by the data commands."""
    opts = [
        click.argument("spec", default="phantom", required=False),
        click.option("--classes", help="Comma-separated classes to keep, in this order."),
        click.option("--crop", help="Crop every image to x,y,w,h instead of detecting the sector."),
        click.option(
            "--skip-bad",
            is_flag=True,
            help="Skip unreadable or too small images (reported) instead of failing.",
        ),
        click.option(
            "--bins",
            help="Turn numeric grade folders/labels into classes: '1.0' -> "
            "lt1.0/ge1.0, or named lower bounds 'f0:0,f1:1.0'.",
        ),
        click.option(
            "--cache-dir",
            type=click.Path(path_type=Path),
            help="Preprocessed-data cache (default $USGAN_CACHE/data or ~/.cache/usgan/data).",
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the cache."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _classes(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _load(
    spec: str,
    classes: str | None,
    crop: str | None,
    skip_bad: bool,
    bins: str | None,
    cache_dir: Path | None,
    no_cache: bool,
):
    return load_dataset(
        spec,
        classes=_classes(classes),
        crop=crop,
        skip_bad=skip_bad,
        bins=bins,
        cache_dir=cache_dir,
        use_cache=not no_cache,
    )


@click.group("data")
def data_group() -> None:
    """Data sources: info, preview grids and subject-level splits."""


@data_group.command("info")
@data_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info_cmd(spec: str, as_json: bool, **kw: Any) -> None:
    """Counts per class and subject, image sizes and skipped files of SPEC."""
    ds = _load(spec, **kw)
    info = ds.summary()
    if as_json:
        info["skipped_files"] = [list(s) for s in ds.skipped]
        click.echo(json.dumps(info, indent=2))
        return
    table = Table()  # the title on its own line: a long path does not break inside the table
    for col in ("class", "images", "subjects"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for c, n in info["classes"].items():
        table.add_row(escape(printable(c)), str(n), str(info["subjects"][c]))
    table.add_row("total", str(info["images"]), str(len(set(ds.subjects))))
    console = Console()
    console.print(f"usgan data: {printable(spec)}", markup=False, highlight=False,
                  soft_wrap=True)
    console.print(table)
    src = info["source_sizes"]
    if src["min"]:
        console.print(
            f"source sizes: {src['min'][0]}x{src['min'][1]} .. {src['max'][0]}x{src['max'][1]}"
        )
    console.print(
        f"preprocessed: {ds.size}x{ds.size} grayscale (Stage-I: 64x64); "
        f"subject ids: {info['subject_ids']}"
    )
    skipped = ", ".join(f"{n} {r}" for r, n in info["skipped"].items()) or "none"
    console.print(f"skipped: {skipped}", markup=False)
    listed = [(p, r) for p, r in ds.skipped if r not in COUNTED_ONLY]
    for path, reason in listed[:LISTED_MAX]:
        why = reason[4:].strip() if reason.startswith("bad:") else reason
        console.print(f"  skipped {printable(path)}: {printable(why)}", markup=False)
    if len(listed) > LISTED_MAX:
        console.print(f"  ... and {len(listed) - LISTED_MAX} more (see --json)")
    converted = ", ".join(f"{r}: {n}" for r, n in info["converted"].items()) or "none"
    console.print(f"converted: {converted}", markup=False)


@data_group.command("preview")
@data_options
@click.option("--out", type=click.Path(path_type=Path), required=True, help="PNG to write.")
@click.option("--per-class", default=8, show_default=True, help="Images per class (one row each).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def preview_cmd(spec: str, out: Path, per_class: int, force: bool, **kw: Any) -> None:
    """Write a grid of preprocessed images of SPEC, one row per class."""
    from usgan.core.io import write_grid

    if out.exists() and not force:
        raise DataError(f"{out} exists; pass --force to overwrite it")
    ds = _load(spec, **kw)
    rows = []
    for c in ds.class_names:
        sub = ds.of_class(c).images[:per_class]
        pad = torch.zeros(per_class - len(sub), *sub.shape[1:], dtype=sub.dtype)
        rows.append(torch.cat([sub, pad]))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_grid(out, torch.cat(rows), nrow=per_class, pad_value=0)
    click.echo(f"wrote {out}: rows = {', '.join(ds.class_names)} ({per_class} per row)")


@data_group.command("split")
@click.argument("spec", default="phantom", required=False)
@click.option("--classes", help="Comma-separated classes to keep, in this order.")
@click.option("--bins", help="Turn numeric grades into classes (as for 'usgan data info').")
@click.option("--test-per-class", default=70, show_default=True, help="Test images per class.")
@click.option("--repeats", default=5, show_default=True, help="Independent splits.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="JSON file to write.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def split_cmd(
    spec: str,
    classes: str | None,
    bins: str | None,
    test_per_class: int,
    repeats: int,
    seed: int,
    out: Path,
    force: bool,
) -> None:
    """Subject-level train/test splits of SPEC (the paper's protocol by default).

    Reads only the listing of SPEC (no pixels). No subject is in both train and test within a
    repeat; without subject ids each image is its own subject.
    """
    if out.exists() and not force:
        raise DataError(f"{out} exists; pass --force to overwrite it")
    index = load_index(spec, classes=_classes(classes), bins=bins)
    items = index.items
    doc = split_document(
        spec,
        index.class_names,
        [it.id for it in items],
        [it.label for it in items],
        [str(it.subject) for it in items],
        index.has_subjects,
        test_per_class,
        repeats,
        seed,
    )
    doc["fingerprint"] = index.fingerprint
    write_split(doc, out, force=force)
    if not index.has_subjects:
        click.echo(f"note: {spec} has no subject ids; each image is its own subject")
    first = doc["repeats"][0]["counts"]
    counts = ", ".join(
        f"{c} {first['train'].get(c, 0)}/{first['test'].get(c, 0)}" for c in index.class_names
    )
    click.echo(f"wrote {out}: {repeats} repeat(s), train/test per class (repeat 0): {counts}")

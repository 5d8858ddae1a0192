"""``usgan zoo``: list, inspect, pull, push and build pretrained models (docs/zoo.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from usgan.core.train.recipes import RECIPES

hub_options = [
    click.option("--endpoint", default=None, metavar="URL",
                 help="Hub endpoint (default: HF_ENDPOINT, else the public Hub)."),
    click.option("--offline", is_flag=True, default=None,
                 help="Use the Hugging Face cache only (also HF_HUB_OFFLINE=1)."),
]


def _hub(fn: Any) -> Any:
    for opt in reversed(hub_options):
        fn = opt(fn)
    return fn


@click.group("zoo")
def zoo_group() -> None:
    """Pretrained models on the Hugging Face Hub, pulled by name."""


@zoo_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
def list_cmd(as_json: bool) -> None:
    """Every zoo entry, with its status (published or not)."""
    from usgan.zoo.index import get_index

    rows = [e.row() for e in get_index()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    # Fits 80 columns: the Hub repo and the full revision are in --json and `zoo info`.
    table = Table(title="usgan zoo", box=box.SIMPLE_HEAD)
    for col in ("name", "stage1", "stage2", "status", "classes"):
        table.add_column(col, no_wrap=col != "classes")
    for r in rows:
        status = f"{r['status']} {r['revision'][:7]}" if r["revision"] else r["status"]
        table.add_row(r["name"], r["stage1"], r["stage2"] or "-", status,
                      ", ".join(r["classes"]) or "-")
    Console().print(table)


@zoo_group.command("info")
@click.argument("name")
@_hub
def info_cmd(name: str, endpoint: str | None, offline: bool | None) -> None:
    """An entry: what it is, its metrics, and (when published) its files and sizes."""
    from usgan.zoo.hub import HubSettings, repo_files
    from usgan.zoo.index import PUBLISHED, get_index

    entry = get_index().get(name)
    console = Console(highlight=False)
    console.print(f"[bold]{entry.name}[/]: {entry.description or '-'}")
    for key in ("stage1", "stage2", "repo", "revision", "status", "data", "plugin"):
        console.print(f"  {key}: {getattr(entry, key) or '-'}", markup=False)
    console.print(f"  classes: {', '.join(entry.classes) or '-'}", markup=False)
    console.print(f"  metrics: {json.dumps(entry.metrics) if entry.metrics else '-'}",
                  markup=False)
    if entry.status != PUBLISHED:
        console.print("  not published yet: 'usgan zoo build' then 'usgan zoo push' "
                      "(docs/zoo.md)", markup=False)
        return
    settings = HubSettings.resolve(endpoint=endpoint, offline=offline)
    if settings.offline:
        return
    for path, size in repo_files(entry.repo, entry.revision, settings):
        mark = " (sha256 pinned)" if path in entry.sha256 else ""
        console.print(f"  {path}  {size:,} bytes{mark}", markup=False)


@zoo_group.command("pull")
@click.argument("source", metavar="NAME|hf-hub:OWNER/NAME[@REV]")
@click.option("--revision", default=None, help="A branch, tag or commit (hf-hub sources).")
@_hub
def pull_cmd(source: str, revision: str | None, endpoint: str | None,
             offline: bool | None) -> None:
    """Download a model into the Hugging Face cache (verified) and print where it is."""
    from usgan.zoo.hub import HubSettings
    from usgan.zoo.source import parse_source, resolve

    if revision:
        parsed = parse_source(source)
        if parsed.kind != "hub":
            raise click.UsageError("--revision goes with hf-hub:OWNER/NAME sources; a zoo name "
                                   "is pinned by the index")
        source = f"hf-hub:{parsed.repo}@{revision}"
    path = resolve(source, HubSettings.resolve(endpoint=endpoint, offline=offline))
    click.echo(str(path))


@zoo_group.command("push")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--repo", required=True, metavar="OWNER/NAME", help="The Hub repo to push to.")
@click.option("--private", is_flag=True, help="Create the repo private.")
@click.option("--revision-tag", default=None, help="Also tag the pushed commit.")
@click.option("--name", default=None, help="Zoo name for the printed index line.")
@click.option("--endpoint", default=None, metavar="URL",
              help="Hub endpoint (default: HF_ENDPOINT, else the public Hub).")
@click.option("--index-row", type=click.Path(path_type=Path), default=None,
              help="Also write the index line (the entry, as a zoo index holds it) to this "
                   "JSON file.")
def push_cmd(run_dir: Path, repo: str, private: bool, revision_tag: str | None,
             name: str | None, endpoint: str | None, index_row: Path | None) -> None:
    """Upload a finished run (weights as they are, model card, no checkpoints)."""
    from usgan.core.run import RunDir
    from usgan.zoo.card import write_card
    from usgan.zoo.hub import HubSettings, push
    from usgan.zoo.index import ZooEntry
    from usgan.zoo.source import resolve

    run = RunDir(resolve(str(run_dir)))
    write_card(run)
    result = push(run, repo, HubSettings.resolve(endpoint=endpoint, offline=False),
                  private=private, tag=revision_tag)
    click.echo(f"pushed {run.root} to {result.url} at revision {result.revision}")
    entry = ZooEntry.from_run(run, name or result.repo.split("/")[-1], result.repo,
                              result.revision, result.sha256)
    click.echo("index line: " + json.dumps(entry.index_row()))
    if index_row is not None:
        from usgan.core.io import write_json

        write_json(index_row, entry.index_row())


@zoo_group.command("build")
@click.option("--data", required=True, help="Data spec to train on (docs/data.md).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for one run per entry and index.json.")
@click.option("--only", default=None, help="Comma-separated entry names (default: all).")
@click.option("--classes", default=None, help="Classes to train, e.g. healthy,nafld.")
@click.option("--epochs", type=int, default=None)
@click.option("--max-steps", type=int, default=None)
@click.option("--batch-size", type=int, default=None,
              help="Images per step (default: the recipe's, docs/training.md).")
@click.option("--recipe", type=click.Choice(list(RECIPES)), default="paper",
              show_default=True, help="Training recipe (docs/training.md): the paper's, as "
              "the entries of its Table 1, or usgan's.")
@click.option("--stage1-config", default=None, help="Stage-I config overrides, k=v,k=v.")
@click.option("--stage2-config", default=None, help="Stage-II config overrides, k=v,k=v.")
@click.option("--push-org", default=None, help="Also push each run to ORG/<name> on the Hub.")
@click.option("--endpoint", default=None, metavar="URL", help="Hub endpoint for --push-org.")
@click.option("--quiet", is_flag=True, help="Log lines instead of progress bars.")
def build_cmd(data: str, out: Path, only: str | None, classes: str | None,
              epochs: int | None, max_steps: int | None, batch_size: int | None, recipe: str,
              stage1_config: str | None, stage2_config: str | None, push_org: str | None,
              endpoint: str | None, quiet: bool) -> None:
    """Train every zoo entry (or --only some) with the paper's recipe (or --recipe default);
    optionally push them; write OUT/index.json with revisions and sha256s."""
    from usgan.core.registry import parse_kv
    from usgan.zoo.build import INDEX_FILE, build
    from usgan.zoo.hub import HubSettings
    from usgan.zoo.index import get_index

    index = get_index()
    names = [n.strip() for n in only.split(",") if n.strip()] if only else [e.name for e in index]
    entries = [index.get(n) for n in names]
    options = {"data": data, "epochs": epochs, "max_steps": max_steps, "quiet": quiet,
               "recipe": recipe, **({"batch_size": batch_size} if batch_size else {}),
               "classes": [c.strip() for c in classes.split(",")] if classes else None,
               "stage1_config": parse_kv(stage1_config, "--stage1-config"),
               "stage2_config": parse_kv(stage2_config, "--stage2-config")}
    settings = HubSettings.resolve(endpoint=endpoint, offline=False) if push_org else None
    built = build(entries, out, options, push_org, settings,
                  echo=lambda m: click.echo(m, err=True))
    click.echo(f"built {len(built)} entries; index: {out / INDEX_FILE} "
               f"(use it with USGAN_ZOO_INDEX={out / INDEX_FILE})")

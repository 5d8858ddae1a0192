"""``usgan plugins``: list the registered networks and show one."""

from __future__ import annotations

import json
from typing import Any

import click
import torch
from rich.console import Console
from rich.table import Table

from usgan.core.factory import create_discriminator, create_generator
from usgan.core.plugin_manager import get_plugins, get_registry
from usgan.core.registry import GANSpec


@click.group("plugins")
def plugins_group() -> None:
    """Installed plugins and the networks they register."""


def _row(spec: GANSpec) -> dict[str, Any]:
    info = get_plugins().info.get(spec.plugin)
    return {
        "name": spec.name,
        "kind": spec.kind,
        "plugin": spec.plugin,
        "version": spec.version,
        "builtin": bool(info and info.builtin),
        "description": spec.description,
    }


@plugins_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def list_cmd(as_json: bool) -> None:
    """List every Stage-I and Stage-II network."""
    rows = [_row(s) for s in get_registry()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="usgan networks")
    for col in ("name", "kind", "plugin", "version", "description"):
        table.add_column(col)
    for r in rows:
        plugin = r["plugin"] + (" (built-in)" if r["builtin"] else "")
        table.add_row(r["name"], r["kind"], plugin, r["version"], r["description"])
    Console().print(table)


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(name: str) -> dict[str, Any]:
    """Default config, parameter counts and shapes of a registered network."""
    spec = get_registry().get(name)
    g, d = create_generator(name), create_discriminator(name)
    if spec.kind == "stage1":
        inputs = {"z": ["B", g.z_dim]}
    else:
        inputs = {"image": ["B", g.in_channels, g.in_size, g.in_size], "z": ["B", g.z_dim]}
    return {
        **_row(spec),
        "config": dict(spec.defaults),
        "generator": {
            "class": type(g).__name__,
            "parameters": _params(g),
            "inputs": inputs,
            "output": ["B", g.out_channels, g.out_size, g.out_size],
        },
        "discriminator": {
            "class": type(d).__name__,
            "parameters": _params(d),
            "inputs": {"image": ["B", d.in_channels, d.in_size, d.in_size]},
            "output": ["B"],
        },
    }


@plugins_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def show_cmd(name: str, as_json: bool) -> None:
    """Default config, parameter counts, input and output shapes of NAME."""
    info = describe(name)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    console = Console()
    console.print(f"[bold]{info['name']}[/] ({info['kind']}, plugin {info['plugin']} "
                  f"{info['version']}): {info['description']}")
    console.print("default config: " + json.dumps(info["config"]))
    for role in ("generator", "discriminator"):
        r = info[role]
        ins = ", ".join(f"{k} [{', '.join(map(str, v))}]" for k, v in r["inputs"].items())
        console.print(f"{role} {r['class']}: {r['parameters']:,} parameters; {ins} -> "
                      f"[{', '.join(map(str, r['output']))}]")


@plugins_group.command("check")
@click.argument("names", nargs=-1, required=True)
def check_cmd(names: tuple[str, ...]) -> None:
    """Run the conformance checks (usgan.core.testing) on each registered network NAME.

    Stage-I networks are also stacked under the built-in Stage-II. Exit status 1 when any
    check fails: usable in a plugin's CI.
    """
    from usgan.core.stage import Stage
    from usgan.core.testing import check_stage1, check_stage2

    registry = get_registry()
    specs = [registry.get(name) for name in names]  # unknown names: one error line
    failed = 0
    for spec in specs:
        check = check_stage1 if spec.kind == Stage.ONE else check_stage2
        try:
            check(spec.name, registry=registry)
        except Exception as err:  # a failing check or a network that raises
            failed += 1
            reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
            click.echo(f"FAIL {spec.name} ({spec.kind.label}, plugin {spec.plugin}): "
                       f"{type(err).__name__}: {reason}")
        else:
            click.echo(f"ok   {spec.name} ({spec.kind.label}, plugin {spec.plugin})")
    if failed:
        raise click.exceptions.Exit(1)

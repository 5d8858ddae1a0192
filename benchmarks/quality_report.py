"""The result of ``usgan bench quality`` as a rich table and as Markdown: one generated
section per dataset and class in docs/benchmarks.md ("Time to quality"), between markers that
name them, so results for several data sets sit side by side."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean
from typing import Any

from rich.console import Console
from rich.table import Table

from usgan.core.io import write_markdown_section

from .quality import PLAIN, data_label

COLUMNS = ("form", "seed", "steps", "s/step", "KID", "FID", "KID / plain")


def _kid(point: dict[str, Any]) -> str:
    std = point.get("kid_std")
    return f"{point['kid']:.3f}" + (f" ± {std:.3f}" if std is not None else "")


def _plain_kid(result: dict[str, Any], seed: int | None) -> float | None:
    """The plain DCGAN's final KID for ``seed`` (None: the mean over its seeds)."""
    kids = [r["points"][-1]["kid"] for r in result["rows"]
            if r["form"] == PLAIN and (seed is None or r["seed"] == seed)]
    return mean(kids) if kids else None


def _ratio(kid: float, plain: float | None) -> str:
    return f"{kid / plain:.2f}" if plain and plain > 0 else "-"


def ordered(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows by seed, then in the bench's order of forms (a row trained again, after a
    stop or a new recipe, takes its place)."""
    forms = [*result["settings"].get("nets", ()), PLAIN]
    return sorted(result["rows"], key=lambda r: (
        r["seed"], forms.index(r["form"]) if r["form"] in forms else len(forms)))


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """One line per form and seed (its final point), then a mean line per form when there
    are several seeds."""
    lines = []
    for r in ordered(result):
        p = r["points"][-1]
        lines.append([r["form"], str(r["seed"]), str(p["steps"]),
                      f"{p['minutes'] * 60 / max(p['steps'], 1):.2f}", _kid(p),
                      f"{p['fid']:.1f}", _ratio(p["kid"], _plain_kid(result, r["seed"]))])
    for form in dict.fromkeys(r["form"] for r in ordered(result)):
        finals = [r["points"][-1] for r in result["rows"] if r["form"] == form]
        if len(finals) > 1:
            kid = mean(p["kid"] for p in finals)
            lines.append([form, "mean", f"{mean(p['steps'] for p in finals):.0f}", "",
                          f"{kid:.3f}", f"{mean(p['fid'] for p in finals):.1f}",
                          _ratio(kid, _plain_kid(result, None))])
    return lines


def curve_rows(result: dict[str, Any]) -> list[list[str]]:
    """KID against minutes: one line per form and seed, ``minutes: KID (steps)``."""
    return [[r["form"], str(r["seed"]),
             ", ".join(f"{p['minutes']:.1f} min: {p['kid']:.3f} ({p['steps']})"
                       for p in r["points"])] for r in ordered(result)]


def floor_line(result: dict[str, Any]) -> str:
    """What the training images themselves score (empty for a result made before it was)."""
    p = result.get("train_images")
    if not p:
        return ""
    return (f"The {result['n_train']} training images themselves, at 64 px and upsampled "
            f"alike, score KID {_kid(p)} (FID {p['fid']:.1f}) against the held-out ones: what "
            "a generator that reproduced its training set would get.")


def title(result: dict[str, Any]) -> str:
    s = result["settings"]
    bins = f" (--bins {s['bins']})" if s.get("bins") else ""
    return (f"{s['data']} class {s['cls']}{bins}{_levers(s)}: {s['minutes']:g} min per form, "
            f"{s['samples']} samples against {result['n_held_out']} held-out images "
            f"({result['n_train']} train), {result['size']} px")


def _levers(settings: dict[str, Any]) -> str:
    """`` with k=v, ... on NET, ...`` for a bench run with ``--set`` options (one lever on
    other networks is another section), else empty."""
    options = settings.get("options") or {}
    if not options:
        return ""
    sets = ", ".join(f"{k}={json.dumps(v)}" for k, v in options.items())
    return f" with {sets} on {', '.join(settings['nets'])}"


def print_table(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=title(result))
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "form" else "right")
    for line in table_rows(result):
        table.add_row(*line)
    console.print(table)
    if floor := floor_line(result):
        console.print(floor)
    curve = Table(title="KID against minutes of training (steps)")
    for col in ("form", "seed", "points"):
        curve.add_column(col)
    for line in curve_rows(result):
        curve.add_row(*line)
    console.print(curve)


def markers(result: dict[str, Any]) -> tuple[str, str]:
    """The begin and end lines of this data set's and class's section."""
    s = result["settings"]
    key = f"{data_label(s['data'])}/{s['cls']}{_levers(s)}"
    return (f"<!-- usgan bench quality {key}: begin (generated by `usgan bench quality "
            "--markdown`; edits here are lost) -->",
            f"<!-- usgan bench quality {key}: end -->")


def markdown(result: dict[str, Any]) -> str:
    """The generated section (without the markers)."""
    m = result["machine"]
    lines = [f"#### {title(result)}", "",
             f"Measured {result['date']}: `{result['command']}`; {m['cpu']}, "
             f"{m['cores']} cores ({result['threads']} torch threads).", "",
             "| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 1)]
    lines += ["| " + " | ".join(line) + " |" for line in table_rows(result)]
    lines += ["", floor] if (floor := floor_line(result)) else []
    lines += ["", "KID against minutes of training (steps):", "", "| form | seed | points |",
              "|---|---:|---|"]
    lines += ["| " + " | ".join(line) + " |" for line in curve_rows(result)]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, result: dict[str, Any]) -> Path:
    begin, end = markers(result)
    return write_markdown_section(path, markdown(result), begin, end, "# Benchmarks")

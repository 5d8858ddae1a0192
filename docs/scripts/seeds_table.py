"""KID×100 of one dataset's `usgan reproduce` folders side by side (docs/results.md, "A second
seed"): each folder's Table 1 rows (its summary.json), each column one folder (a seed), then
their mean, and per folder how many Stage-I -> Stage-II pairs lowered KID.

    .venv/bin/python docs/scripts/seeds_table.py runs/results/busi runs/results/busi-seed1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean
from typing import Any


def load(folder: Path) -> dict[str, Any]:
    """A reproduce folder's summary.json (written by every `usgan reproduce` run)."""
    path = folder / "summary.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: write it with `usgan reproduce ... --out {folder} "
                         "--report-only` (the folder's own command)")
    return json.loads(path.read_text())


def rows(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Row name -> class -> KID: the configurations in the folder's order, then the floor's
    reference rows."""
    t1 = doc["table1"]
    out = {key: {c: r["kid"] for c, r in t1[key].items()} for key in doc["configs"] if key in t1}
    for key, per in (doc.get("floor") or {}).items():
        out[key] = {c: r["kid"] for c, r in per.items()}
    return out


def pairs_lowered(doc: dict[str, Any]) -> tuple[int, int]:
    """(pairs whose Stage-II KID is below its Stage-I's, pairs scored): claim 1's pairs as
    the folder's summary lists them."""
    pairs = [p for p in doc["claims"]["stage2_lowers_fid"] if p["stage2_kid"] is not None]
    return sum(p["stage2_kid"] < p["stage1_kid"] for p in pairs), len(pairs)


def markdown(folders: list[Path]) -> list[str]:
    docs = [load(f) for f in folders]
    tables = [rows(d) for d in docs]
    seeds = [str(d["settings"]["seed"]) for d in docs]
    lines = ["| row | class | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
             "|---|---|" + "---|" * (len(seeds) + 1)]
    for key, per in tables[0].items():
        for cls in per:
            kids = [t.get(key, {}).get(cls) for t in tables]
            got = [k for k in kids if k is not None]
            cells = " | ".join("-" if k is None else f"{100 * k:.2f}" for k in kids)
            avg = f"{100 * mean(got):.2f}" if len(got) == len(kids) else "-"
            lines.append(f"| `{key}` | {cls} | {cells} | {avg} |")
    lowered = ", ".join(f"seed {s}: {a} of {b}" for s, (a, b) in
                        zip(seeds, map(pairs_lowered, docs), strict=True))
    return [*lines, "", f"Stage-II below its Stage-I in KID: {lowered}."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="usgan reproduce --out folders")
    print("\n".join(markdown(ap.parse_args().folders)))


if __name__ == "__main__":
    main()

"""One class of a split file (`usgan data split`), as a split file of its own: the same
training and held-out images of that class, repeat 0 only. For training one class on the
held-out split of a `usgan reproduce` folder (docs/scripts/stage2_levers.sh):

    .venv/bin/python docs/scripts/class_split.py runs/results/busi/split.json malignant OUT.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from usgan.core.data import read_split, write_split


def one_class(split: dict, cls: str) -> dict:
    """``split`` with only ``cls``'s items (ids ``CLASS/FILE``, as a folder of class
    folders names them), repeat 0."""
    repeat = {part: [i for i in split["repeats"][0][part] if i.split("/")[0] == cls]
              for part in ("train", "test")}
    repeat["counts"] = {part: {cls: len(repeat[part])} for part in ("train", "test")}
    kept = {k: v for k, v in split.items() if k not in ("repeats", "fingerprint")}
    return {**kept, "classes": [cls], "n_items": len(repeat["train"]) + len(repeat["test"]),
            "repeats": [repeat]}


if __name__ == "__main__":
    src, cls, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if out.exists():
        sys.exit(f"{out} exists; not overwritten")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_split(one_class(read_split(src), cls), out)

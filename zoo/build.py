"""``usgan zoo build``: train every selected zoo entry, optionally push it, write the index.

Each entry becomes ``OUT/<name>`` (a normal run directory, resumed if it is there but not
finished, kept as it is if finished) and, with a Hub organisation, ``ORG/<name>`` on the Hub.
``OUT/index.json`` lists the entries with their revisions and the sha256 of every weight
file; point ``USGAN_ZOO_INDEX`` at it to pull them by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from usgan.core.run import RunDir
from usgan.core.train.options import TrainOptions
from usgan.core.train.trainer import Trainer

from .card import write_card
from .hub import HubSettings, push, weight_digests
from .index import ZooEntry, write_index

INDEX_FILE = "index.json"


def build(entries: Sequence[ZooEntry], out: Path, options: dict[str, Any],
          push_org: str | None = None, settings: HubSettings | None = None,
          echo: Callable[[str], None] = print) -> list[ZooEntry]:
    """Train (and push) ``entries`` with ``options`` (TrainOptions fields; the entry sets
    stage1 and stage2); returns the updated entries, also written to OUT/index.json."""
    built = []
    for entry in entries:
        run = RunDir(out / entry.name)
        opts = TrainOptions(**{**options, "stage1": entry.stage1, "stage2": entry.stage2})
        if not run.is_finished():
            echo(f"zoo build: training {entry.name} into {run.root}")
            Trainer(opts, run.root, resume=run.exists(), echo=echo,
                    on_finish=[write_card]).train()
        config = run.read_config()
        updated = replace(entry, classes=run.classes, sha256=weight_digests(run),
                          data=(config.get("data") or {}).get("spec", ""), revision=None)
        if push_org:
            result = push(run, f"{push_org}/{entry.name}", settings or HubSettings.resolve())
            updated = replace(updated, repo=result.repo, revision=result.revision,
                              sha256=result.sha256)
            echo(f"zoo build: pushed {entry.name} to {result.url} at {result.revision}")
        built.append(updated)
    write_index(out / INDEX_FILE, [e.index_row() for e in built])
    return built

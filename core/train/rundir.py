"""The run directory: a self-describing folder, laid out as the Hub repository it will become.

    RUN/
      config.json                     every resolved option, data spec + fingerprint, versions
      README.md                       model card
      progress.json                   phases done; "finished": true at the end
      metrics.jsonl                   a line per log step
      <class>/stage1/generator.safetensors      (+ discriminator, generator_ema)
      <class>/stage2/generator.safetensors
      samples/<class>-stage1-step000100.png      fixed-noise grids during training
      checkpoints/<class>/stage1/step-00000100.safetensors
      curves.png                      losses (needs matplotlib)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usgan.core.errors import UsganError

from .checkpoint import write_atomic

CONFIG = "config.json"
PROGRESS = "progress.json"


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG

    @property
    def progress_path(self) -> Path:
        return self.root / PROGRESS

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def weights(self, cls: str, stage: int, role: str = "generator") -> Path:
        """``<class>/stage<N>/<role>.safetensors``."""
        return self.root / cls / f"stage{stage}" / f"{role}.safetensors"

    def checkpoints(self, cls: str, stage: int) -> Path:
        return self.root / "checkpoints" / cls / f"stage{stage}"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def read_config(self) -> dict[str, Any]:
        """config.json; a clear error when it is missing or damaged."""
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError:
            raise UsganError(f"{self.root} is not a usgan run (no {CONFIG})") from None
        except json.JSONDecodeError as err:
            raise UsganError(f"{self.config_path} is damaged: {err}") from None

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

    def progress(self) -> dict[str, Any]:
        try:
            return json.loads(self.progress_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"done": [], "finished": False}

    def mark_done(self, phase: str) -> None:
        prog = self.progress()
        if phase not in prog["done"]:
            prog["done"].append(phase)
        self.write_json(self.progress_path, prog)

    def mark_finished(self) -> None:
        prog = self.progress()
        prog["finished"] = True
        prog["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.write_json(self.progress_path, prog)

    def is_finished(self) -> bool:
        return bool(self.progress().get("finished"))

    def log_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

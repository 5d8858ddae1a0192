"""The run directory: the one reader and writer of a run, laid out as the Hub repo it becomes.

    RUN/
      config.json                     options, classes, data, provenance of both networks, versions
      README.md                       model card (written by usgan.zoo.card)
      progress.json                   phases done; "finished": true at the end
      metrics.jsonl                   a line per log step
      curves.png                      losses (needs matplotlib)
      <class>/stage1/generator.safetensors      (+ discriminator, generator_ema)
      <class>/stage2/generator.safetensors      (+ discriminator, generator_ema)
      samples/<class>-stage1-step000100.png      fixed-noise grids during training
      checkpoints/<class>/stage1/step-00000100.safetensors   (not published)

Training, sampling, the zoo and evaluation all go through `RunDir`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsganError
from .io import FileFormatError, read_json, write_json
from .names import safe_name
from .stage import Stage

CONFIG = "config.json"
PROGRESS = "progress.json"
METRICS = "metrics.jsonl"
CARD = "README.md"
EVAL = "eval.json"  # the latest `usgan eval` of the run's final model (its card's metrics)
CURVES = "curves.png"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
ROLES = ("generator", "discriminator", "generator_ema")
FORMAT = 1  # config.json "usgan_run"
_UPDATES = threading.RLock()  # classes training at once (--jobs) update the same files


def fresh_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... : a folder name no run uses yet."""
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


@dataclass(frozen=True)
class RunDir:
    """Paths, config and progress of one run directory."""

    root: Path

    # ------------------------------------------------------------------ paths
    @property
    def config_path(self) -> Path:
        return self.root / CONFIG

    @property
    def progress_path(self) -> Path:
        return self.root / PROGRESS

    @property
    def metrics_path(self) -> Path:
        return self.root / METRICS

    @property
    def card_path(self) -> Path:
        return self.root / CARD

    @property
    def eval_path(self) -> Path:
        return self.root / EVAL

    def read_eval(self) -> dict[str, Any] | None:
        """The run's eval.json, or None when there is none or it is damaged (a damaged one
        costs the metrics on the card, not the card)."""
        if not self.eval_path.is_file():
            return None
        try:
            got = read_json(self.eval_path, "evaluation")
        except UsganError:
            return None
        return got if isinstance(got, dict) else None

    @property
    def curves_path(self) -> Path:
        return self.root / CURVES

    @property
    def samples(self) -> Path:
        return self.root / SAMPLES

    def weights(self, cls: str, stage: Stage | int | str, role: str = "generator") -> Path:
        """``<class>/stage<N>/<role>.safetensors`` (a class name that would leave the run
        directory is refused)."""
        return self.root / safe_name(cls, "class") / str(Stage.parse(stage)) / \
            f"{safe_name(role, 'role')}.safetensors"

    def checkpoints(self, cls: str, stage: Stage | int | str) -> Path:
        """``checkpoints/<class>/stage<N>/``."""
        return self.root / CHECKPOINTS / safe_name(cls, "class") / str(Stage.parse(stage))

    def generator_path(self, cls: str, stage: Stage | int | str, ema: bool = True) -> Path:
        """The generator to sample from: the EMA copy when ``ema`` and it exists, else the
        plain one; a clear error when neither is there."""
        plain = self.weights(cls, stage, "generator")
        averaged = self.weights(cls, stage, "generator_ema")
        if ema and averaged.is_file():
            return averaged
        if plain.is_file():
            return plain
        raise UsganError(f"{self.root} has no {Stage.parse(stage).label} generator for class "
                         f"{cls!r} ({plain}); is the run finished?")

    # ----------------------------------------------------------------- config
    def exists(self) -> bool:
        return self.config_path.is_file()

    def read_config(self) -> dict[str, Any]:
        """config.json, checked to be a usgan run config (its layout; the values of its
        ``options`` are `TrainOptions.from_json`'s to check, where they are used)."""
        if not self.root.is_dir():
            raise UsganError(f"{self.root}: no such run directory")
        if not self.exists():
            raise UsganError(f"{self.root} is not a usgan run (no {CONFIG})")
        config = read_json(self.config_path, "run config")
        if not isinstance(config, dict) or not isinstance(config.get("options"), dict):
            raise FileFormatError(f"{self.config_path} is not a usgan run config "
                                  "(expected a JSON object with 'options')")
        fmt = config.get("usgan_run", FORMAT)
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt > FORMAT:
            made_by = (config.get("versions") or {}).get("usgan", "a newer usgan")
            raise FileFormatError(f"{self.root} was written by usgan {made_by} (run format "
                                  f"{fmt!r}); this usgan reads format {FORMAT}: upgrade usgan")
        for stage in ("stage1", "stage2"):
            entry = config.get(stage)
            if (stage == "stage1" or entry is not None) and not (
                    isinstance(entry, dict) and isinstance(entry.get("name"), str)):
                raise FileFormatError(f"{self.config_path}: {stage!r} must be an object with "
                                      "the network's 'name'")
        return config

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.config_path, {"usgan_run": FORMAT, **config})

    def update_config(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Read config.json, ``change`` it in place and write it, as one update (threads
        training classes at once do not lose each other's)."""
        with _UPDATES:
            config = self.read_config()
            change(config)
            self.write_config(config)

    @property
    def classes(self) -> list[str]:
        """The classes the run trained, in order."""
        classes = self.read_config().get("classes") or []
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise FileFormatError(f"{self.config_path}: 'classes' is not a list of names")
        for c in classes:
            try:
                safe_name(c, "class")
            except UsganError as err:
                raise FileFormatError(f"{self.config_path}: {err}") from None
        return classes

    def stages(self) -> list[Stage]:
        """Stage-I, plus Stage-II when the run has one."""
        return [Stage.ONE, Stage.TWO] if self.read_config().get("stage2") else [Stage.ONE]

    # --------------------------------------------------------------- progress
    def progress(self) -> dict[str, Any]:
        try:
            prog = read_json(self.progress_path, "progress file")
        except FileFormatError:
            return {"done": [], "finished": False}
        return prog if isinstance(prog, dict) and isinstance(prog.get("done"), list) \
            else {"done": [], "finished": False}

    def mark_done(self, phase: str) -> None:
        with _UPDATES:
            prog = self.progress()
            if phase not in prog["done"]:
                prog["done"].append(phase)
            write_json(self.progress_path, prog)

    def mark_finished(self) -> None:
        prog = self.progress()
        prog["finished"] = True
        prog["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json(self.progress_path, prog)

    def is_finished(self) -> bool:
        return bool(self.progress().get("finished"))

    # ---------------------------------------------------------------- metrics
    def log_metrics(self, record: dict[str, Any]) -> None:
        with _UPDATES, open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every record of metrics.jsonl (a damaged line is skipped)."""
        if not self.metrics_path.is_file():
            return []
        out = []
        for line in self.metrics_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

"""Checkpoints without pickle: tensors in safetensors, everything else as JSON metadata.

A checkpoint is any nested structure of dicts, lists, tuples, tensors and JSON scalars (what
goes in is `usgan.core.train.state`'s business). It is written atomically (`usgan.core.io`)
and the last K are kept.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from usgan.core.errors import UsganError
from usgan.core.io import FileFormatError, metadata_json, read_safetensors, save_safetensors

SKELETON_KEY = "usgan_checkpoint"
PATTERN = re.compile(r"^step-(\d{8})\.safetensors$")
# What a write killed before its rename leaves (core.io.write_atomic's temporary file).
LEFTOVER = re.compile(r"^\.step-\d{8}\.safetensors\.tmp-(\d+)(?:-\d+)?$")  # PID[-thread]


class CheckpointError(UsganError):
    """A checkpoint could not be read or written."""


def flatten(obj: Any, tensors: dict[str, torch.Tensor], path: str = "t") -> Any:
    """Move tensors out of ``obj`` into ``tensors``; return a JSON-able skeleton."""
    if isinstance(obj, torch.Tensor):
        key = f"{path}"
        tensors[key] = obj  # copied to contiguous CPU memory by save_safetensors
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [
            [flatten(k, tensors, f"{path}.k{i}"), flatten(v, tensors, f"{path}.{i}")]
            for i, (k, v) in enumerate(obj.items())
        ]}
    if isinstance(obj, (list, tuple)):
        items = [flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {path}")


def unflatten(skel: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `flatten`."""
    if isinstance(skel, dict):
        if "__tensor__" in skel:
            return tensors[skel["__tensor__"]]
        if "__dict__" in skel:
            return {unflatten(k, tensors): unflatten(v, tensors) for k, v in skel["__dict__"]}
        if "__tuple__" in skel:
            return tuple(unflatten(v, tensors) for v in skel["__tuple__"])
    if isinstance(skel, list):
        return [unflatten(v, tensors) for v in skel]
    return skel


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int = 3) -> Path:
    """Write ``state`` as ``directory/step-XXXXXXXX.safetensors``; keep the newest ``keep``."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, tensors)
    path = directory / f"step-{step:08d}.safetensors"
    try:
        save_safetensors(path, tensors, {SKELETON_KEY: json.dumps(skeleton)})
    except FileFormatError as err:
        raise CheckpointError(f"{err}; free some disk space (the previous checkpoint is "
                              "intact) and resume") from err
    prune(directory, keep)
    return path


def prune(directory: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints in ``directory`` (``keep <= 0``: none),
    and the half-written temporary files of a process killed while writing one."""
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    if directory.is_dir():
        for p in directory.iterdir():
            m = LEFTOVER.match(p.name)
            if m and int(m.group(1)) != os.getpid():
                p.unlink(missing_ok=True)


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if PATTERN.match(p.name))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read one checkpoint; a damaged file raises `CheckpointError`."""
    try:
        tensors, meta = read_safetensors(path)
        return unflatten(metadata_json(path, meta, SKELETON_KEY, "checkpoint"), tensors)
    except (FileFormatError, KeyError, TypeError) as err:
        raise CheckpointError(f"checkpoint {path} is damaged ({type(err).__name__}: {err})") \
            from None


def load_latest(directory: Path, warn: Any = print) -> dict[str, Any] | None:
    """The newest readable checkpoint in ``directory`` (falling back past damaged ones)."""
    for path in reversed(list_checkpoints(directory)):
        try:
            return load_checkpoint(path)
        except CheckpointError as err:
            warn(f"warning: {err}; falling back to the previous checkpoint")
    return None

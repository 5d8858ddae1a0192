"""Checkpoints without pickle: tensors in safetensors, everything else as JSON metadata.

A checkpoint is any nested structure of dicts, lists, tuples, tensors and JSON scalars (model
and optimizer state_dicts, RNG states, step counters). It is written atomically (temp file,
fsync, rename) and the last K are kept.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from usgan.core.errors import UsganError

SKELETON_KEY = "usgan_checkpoint"
PATTERN = re.compile(r"^step-(\d{8})\.safetensors$")


class CheckpointError(UsganError):
    """A checkpoint could not be read or written."""


def flatten(obj: Any, tensors: dict[str, torch.Tensor], path: str = "t") -> Any:
    """Move tensors out of ``obj`` into ``tensors``; return a JSON-able skeleton."""
    if isinstance(obj, torch.Tensor):
        key = f"{path}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
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


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file + fsync + rename; no partial file stays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write {path}: {err.strerror or err}; free some disk "
                              "space (the previous checkpoint is intact) and resume") from err


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int = 3) -> Path:
    """Write ``state`` as ``directory/step-XXXXXXXX.safetensors``; keep the newest ``keep``."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, tensors)
    blob = save(tensors, metadata={SKELETON_KEY: json.dumps(skeleton)})
    path = directory / f"step-{step:08d}.safetensors"
    write_atomic(path, blob)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if PATTERN.match(p.name))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read one checkpoint; a damaged file raises `CheckpointError`."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        return unflatten(json.loads(meta[SKELETON_KEY]), tensors)
    except (SafetensorError, OSError, ValueError, KeyError) as err:
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

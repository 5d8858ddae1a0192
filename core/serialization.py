"""Saving and loading networks as safetensors that describe themselves.

Each file holds the state_dict and, in its metadata, the architecture name, kind, role and
config, so `load_network` rebuilds the module from the registry with no pickle involved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .errors import UsganError
from .registry import Registry, build

META_KEY = "usgan_arch"


def arch_of(module: nn.Module) -> dict[str, Any]:
    """How ``module`` was built (set by the registry); an error if it was built by hand."""
    arch = getattr(module, "usgan_arch", None)
    if arch is None:
        raise UsganError(
            f"{type(module).__name__} was not built through the usgan registry; cannot save it"
        )
    return arch


def state_dict_for_saving(module: nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous, de-aliased CPU copies of the state_dict (what safetensors needs)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_network(module: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``module`` to ``path`` (safetensors) atomically, with its architecture metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(state_dict_for_saving(module), str(tmp), metadata={
            META_KEY: json.dumps(arch_of(module), sort_keys=True)
        })
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_arch(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The architecture metadata of a saved network."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise UsganError(f"{path}: no such file") from None
    except (SafetensorError, OSError, ValueError) as err:
        raise UsganError(f"{path}: not a readable safetensors file ({err})") from None
    if META_KEY not in meta:
        raise UsganError(f"{path}: safetensors file has no usgan architecture metadata")
    return json.loads(meta[META_KEY])


def load_network(
    path: str | os.PathLike[str], registry: Registry | None = None, map_location: str = "cpu"
) -> nn.Module:
    """Rebuild the network saved at ``path`` and load its weights (strictly)."""
    from safetensors.torch import load_file

    if registry is None:
        from .plugin_manager import get_registry

        registry = get_registry()
    arch = read_arch(path)
    module = build(registry, arch["name"], arch["role"], arch["config"])
    try:
        state = load_file(str(path), device=map_location)
        module.load_state_dict(state, strict=True)
    except (RuntimeError, SafetensorError) as err:
        first = str(err).strip().splitlines()[0]
        raise UsganError(f"{path}: weights do not fit {arch['name']} {arch['role']}: {first}") \
            from None
    return module

"""Saving and loading networks as safetensors that describe themselves.

Each file holds the state_dict and, in its metadata, the architecture name, kind, role and
config, so `load_network` rebuilds the module from the registry with no pickle involved.
Before any weight is read, the network is built on the ``meta`` device (no memory) and the
file's tensor names, shapes and dtypes are checked against it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ConfigError, UnknownNameError, UsganError
from .io import (
    FileFormatError,
    metadata_json,
    read_safetensors,
    read_safetensors_metadata,
    save_safetensors,
)
from .registry import Registry, build

META_KEY = "usgan_arch"
ARCH_KEYS = ("name", "role", "config")


def arch_of(module: nn.Module) -> dict[str, Any]:
    """How ``module`` was built (set by the registry); an error if it was built by hand."""
    arch = getattr(module, "usgan_arch", None)
    if arch is None:
        raise UsganError(
            f"{type(module).__name__} was not built through the usgan registry; cannot save it"
        )
    return arch


def save_network(module: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``module`` to ``path`` (safetensors) atomically, with its architecture metadata."""
    meta = {META_KEY: json.dumps(arch_of(module), sort_keys=True)}
    return save_safetensors(path, module.state_dict(), meta)


def read_arch(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The architecture metadata of a saved network, checked for its keys."""
    arch = metadata_json(path, read_safetensors_metadata(path), META_KEY,
                         "usgan architecture")
    if not isinstance(arch, dict) or any(k not in arch for k in ARCH_KEYS) \
            or not isinstance(arch["config"], dict) \
            or arch["role"] not in ("generator", "discriminator"):
        raise FileFormatError(f"{path}: its usgan architecture metadata lacks "
                              f"{', '.join(ARCH_KEYS)} or has the wrong types")
    return arch


def _expected(module: nn.Module) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}


def load_network(
    path: str | os.PathLike[str], registry: Registry | None = None, map_location: str = "cpu"
) -> nn.Module:
    """Rebuild the network saved at ``path`` and load its weights (strictly)."""
    if registry is None:
        from .plugin_manager import get_registry

        registry = get_registry()
    arch = read_arch(path)
    try:
        with torch.device("meta"):  # shapes only: a huge config costs nothing here
            skeleton = build(registry, arch["name"], arch["role"], arch["config"])
    except UnknownNameError as err:
        raise UsganError(f"{path}: these weights are for {err.name!r}, which is not installed "
                         f"({err}); install the plugin that provides it ('usgan plugins "
                         "list' shows what is)") from None
    except ConfigError as err:
        raise UsganError(f"{path}: its network config does not build: {err}") from None
    try:
        state, _ = read_safetensors(path, expect=_expected(skeleton), device=map_location)
    except FileFormatError as err:
        raise UsganError(f"weights do not fit {arch['name']} {arch['role']}: {err}") from None
    module = build(registry, arch["name"], arch["role"], arch["config"])
    module.load_state_dict(state, strict=True)  # copies into the CPU-built parameters
    return module.to(map_location)

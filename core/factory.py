"""Build networks by name from the process-wide registry (like ``timm.create_model``)."""

from __future__ import annotations

from typing import Any

from torch import nn

from .plugin_manager import get_registry
from .registry import GANSpec, build
from .stage import Stage


def get_spec(name: str, kind: Stage | str | None = None) -> GANSpec:
    """The registered `GANSpec` called ``name``."""
    return get_registry().get(name, kind)


def list_models(kind: Stage | str | None = None) -> list[str]:
    """Registered names, optionally of one kind (``"stage1"`` or ``"stage2"``)."""
    return get_registry().names(kind)


def create_generator(name: str, kind: Stage | str | None = None, **config: Any) -> nn.Module:
    """The generator of ``name`` with ``config`` overriding its defaults."""
    return build(get_registry(), name, "generator", config, kind)


def create_discriminator(name: str, kind: Stage | str | None = None, **config: Any) -> nn.Module:
    """The discriminator of ``name`` with ``config`` overriding its defaults."""
    return build(get_registry(), name, "discriminator", config, kind)

"""The plugin hooks.

Every hook is callback style (as in simonw/llm): the hook receives a ``register`` function
and calls it once per thing it provides. An implementation may accept fewer arguments than
the spec names, so new arguments can be added without breaking existing plugins.
Built-in networks are registered through exactly these hooks, like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "usgan"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_stage1(register: Callable[[Any], None]) -> None:
    """Register Stage-I GANs: call ``register(GANSpec(...))`` for each.

    A Stage-I generator maps noise ``z [B, z_dim]`` to an image ``[B, C, h, w]`` in [-1, 1];
    its discriminator maps such an image to logits ``[B]``.
    """


@hookspec
def register_stage2(register: Callable[[Any], None]) -> None:
    """Register Stage-II GANs: call ``register(GANSpec(...))`` for each.

    A Stage-II generator maps a Stage-I image and noise to ``[B, C, 256, 256]``; its
    discriminator maps such an image to logits ``[B]``.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add CLI commands: ``cli`` is the root ``click.Group`` of ``usgan``."""


@hookspec
def register_zoo_entries(register: Callable[[Any], None]) -> None:
    """Add pretrained models to the zoo: call ``register(usgan.zoo.ZooEntry(...))`` for each.

    An entry names a Hub repo laid out as a usgan run, pinned to a revision with the sha256 of
    every weight file, so that ``usgan zoo pull NAME`` and ``usgan.load(NAME)`` find it.
    """

"""The registry of GAN architectures, filled by plugins through the hooks.

Like timm's registry and factory: a name maps to a `GANSpec`; `create_generator` and
`create_discriminator` build modules from a name and a JSON-able config, so that a saved
``(name, config)`` plus a state_dict rebuilds a network exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from torch import nn

from .errors import ConfigError, DuplicateNameError, PluginError, UnknownNameError

Kind = Literal["stage1", "stage2"]
Role = Literal["generator", "discriminator"]
KINDS: tuple[Kind, ...] = ("stage1", "stage2")


@dataclass(frozen=True)
class GANSpec:
    """One registered GAN: a generator and a discriminator built from one config dict.

    ``generator(**config)`` and ``discriminator(**config)`` must accept every key of
    ``defaults`` (and ignore the ones they do not use, e.g. through ``**_``).
    """

    name: str
    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    # Filled in by the registry from the hook that registered it:
    kind: Kind | str = ""
    plugin: str = ""
    version: str = ""

    def resolve(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults updated with ``overrides``; unknown keys are an error."""
        config = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in config:
                raise UnknownNameError(f"config key for {self.name!r}", key, config)
            config[key] = value
        try:
            json.dumps(config)
        except TypeError as err:
            raise ConfigError(f"config of {self.name!r} is not JSON-able: {err}") from None
        return config


class Registry:
    """Names -> `GANSpec`, per kind."""

    def __init__(self) -> None:
        self._specs: dict[str, GANSpec] = {}

    def add(self, spec: GANSpec) -> None:
        """Add ``spec``; a name already taken is an error naming both providers."""
        if not isinstance(spec, GANSpec):
            raise PluginError(
                f"plugin {spec!r} registered a {type(spec).__name__}; expected usgan.core.GANSpec"
            )
        if spec.kind not in KINDS:
            raise PluginError(f"{spec.name!r} has kind {spec.kind!r}; expected one of {KINDS}")
        old = self._specs.get(spec.name)
        if old is not None:
            raise DuplicateNameError(
                f"name {spec.name!r} is registered twice: by plugin {old.plugin!r} and by plugin "
                f"{spec.plugin!r}; uninstall one or exclude it with USGAN_LOAD_PLUGINS"
            )
        self._specs[spec.name] = spec

    def get(self, name: str, kind: Kind | None = None) -> GANSpec:
        """The spec called ``name`` (of ``kind`` if given); unknown names list the known ones."""
        spec = self._specs.get(name)
        if spec is None or (kind is not None and spec.kind != kind):
            what = {"stage1": "Stage-I model", "stage2": "Stage-II model"}.get(kind or "", "model")
            raise UnknownNameError(what, name, self.names(kind))
        return spec

    def names(self, kind: Kind | None = None) -> list[str]:
        """Registered names, sorted, optionally of one kind."""
        return sorted(n for n, s in self._specs.items() if kind is None or s.kind == kind)

    def __iter__(self) -> Iterator[GANSpec]:
        return iter(self._specs[n] for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def registrar(self, kind: Kind, plugin: str, version: str) -> Callable[[GANSpec], None]:
        """The ``register`` callback handed to one plugin's hook."""

        def register(spec: GANSpec) -> None:
            if not isinstance(spec, GANSpec):
                raise PluginError(f"plugin {plugin!r} registered {spec!r}; expected a GANSpec")
            self.add(replace(spec, kind=kind, plugin=plugin, version=version))

        return register


def tag(module: nn.Module, spec: GANSpec, role: Role, config: Mapping[str, Any]) -> nn.Module:
    """Record on ``module`` how it was built, so it can be saved and rebuilt."""
    module.usgan_arch = {  # type: ignore[assignment]
        "name": spec.name,
        "kind": spec.kind,
        "role": role,
        "config": dict(config),
    }
    return module


def build(
    registry: Registry, name: str, role: Role, config: Mapping[str, Any] | None = None,
    kind: Kind | None = None,
) -> nn.Module:
    """Build the ``role`` network of ``name`` from ``config`` (defaults filled in)."""
    spec = registry.get(name, kind)
    resolved = spec.resolve(config)
    factory = spec.generator if role == "generator" else spec.discriminator
    return tag(factory(**resolved), spec, role, resolved)

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

from .contract import check_spec
from .errors import ConfigError, DuplicateNameError, PluginError, UnknownNameError
from .stage import Stage

Role = Literal["generator", "discriminator"]


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
    # Training options measured to suit this network better, per recipe name, over what the
    # recipe sets for every network (core/train/recipes.py), as timm keeps a pretrained
    # config beside the model: ``{"default": {"diffaugment": []}}``.
    recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Filled in by the registry from the hook that registered it:
    kind: Stage | str = ""
    plugin: str = ""
    version: str = ""
    dist: str = ""

    def provenance(self) -> dict[str, str]:
        """Where this network comes from: name, stage, plugin, distribution and version."""
        return {"name": self.name, "stage": str(self.kind), "plugin": self.plugin,
                "distribution": self.dist, "version": self.version}

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
        check_spec(spec.name, spec.kind, spec.plugin, spec.defaults)
        old = self._specs.get(spec.name)
        if old is not None:
            raise DuplicateNameError(
                f"name {spec.name!r} is registered twice: by plugin {old.plugin!r} and by plugin "
                f"{spec.plugin!r}; uninstall one or exclude it with USGAN_LOAD_PLUGINS"
            )
        self._specs[spec.name] = spec

    def get(self, name: str, kind: Stage | str | None = None) -> GANSpec:
        """The spec called ``name`` (of ``kind`` if given); unknown names list the known ones."""
        stage = Stage.parse(kind) if kind is not None else None
        spec = self._specs.get(name)
        if spec is None or (stage is not None and spec.kind != stage):
            what = f"{stage.label} model" if stage is not None else "model"
            raise UnknownNameError(what, name, self.names(stage))
        return spec

    def names(self, kind: Stage | str | None = None) -> list[str]:
        """Registered names, sorted, optionally of one stage."""
        stage = Stage.parse(kind) if kind is not None else None
        return sorted(n for n, s in self._specs.items() if stage is None or s.kind == stage)

    def __iter__(self) -> Iterator[GANSpec]:
        return iter(self._specs[n] for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def registrar(
        self, kind: Stage, plugin: str, version: str, dist: str = ""
    ) -> Callable[[GANSpec], None]:
        """The ``register`` callback handed to one plugin's hook."""

        def register(spec: GANSpec) -> None:
            if not isinstance(spec, GANSpec):
                raise PluginError(f"plugin {plugin!r} registered {spec!r}; expected a GANSpec")
            self.add(replace(spec, kind=Stage.parse(kind), plugin=plugin, version=version,
                             dist=dist))

        return register


def tag(module: nn.Module, spec: GANSpec, role: Role, config: Mapping[str, Any]) -> nn.Module:
    """Record on ``module`` how it was built, so it can be saved and rebuilt."""
    module.usgan_arch = {  # type: ignore[assignment]
        "name": spec.name,
        "kind": str(spec.kind),
        "role": role,
        "config": dict(config),
    }
    return module


def build(
    registry: Registry, name: str, role: Role, config: Mapping[str, Any] | None = None,
    kind: Stage | str | None = None,
) -> nn.Module:
    """Build the ``role`` network of ``name`` from ``config`` (defaults filled in)."""
    spec = registry.get(name, kind)
    resolved = spec.resolve(config)
    factory = spec.generator if role == "generator" else spec.discriminator
    return tag(factory(**resolved), spec, role, resolved)


def parse_kv(text: str | None, what: str) -> dict[str, Any]:
    """A network config given as text (``--stage1-config``): ``"size=32,attention=true"`` ->
    ``{"size": 32, "attention": True}`` (JSON values, else strings); ``what`` names the
    option in the `ConfigError`."""
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what}: expected key=value[,key=value], got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
        except RecursionError:
            raise ConfigError(f"{what}: the value of {key.strip()!r} is nested too "
                              "deeply") from None
    return out

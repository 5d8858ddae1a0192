"""Plugin discovery and loading.

Plugins are modules named in the ``usgan`` entry-point group. The built-in networks are
entry points of the ``usgan`` distribution itself, so they go through exactly the same path
as third-party plugins; they are loaded first, then the external ones.

Environment:
- ``USGAN_STRICT_PLUGINS=1``: a plugin that fails to import or raises in a hook is an error
  (default: one warning line naming it, everything else keeps working).
- ``USGAN_LOAD_PLUGINS=a,b``: load only these external plugins (entry-point or
  distribution names); an empty string loads none. Built-ins always load.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import DuplicateNameError, PluginError
from .registry import Registry
from .stage import STAGES

GROUP = "usgan"
BUILTIN_DIST = "usgan"


@dataclass
class PluginInfo:
    """One loaded plugin: its entry-point name, distribution and version."""

    name: str
    dist: str
    version: str
    builtin: bool


@dataclass
class PluginSet:
    """The loaded plugin manager, what each plugin is, and what went wrong."""

    pm: pluggy.PluginManager
    info: dict[str, PluginInfo] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _strict() -> bool:
    return os.environ.get("USGAN_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes"}


def _allowlist() -> set[str] | None:
    raw = os.environ.get("USGAN_LOAD_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _problem(plugins: PluginSet, message: str, err: BaseException | None = None) -> None:
    line = message if err is None else f"{message}: {type(err).__name__}: {err}"
    line = line.replace("\n", " ")
    if _strict():
        raise PluginError(line) from err
    plugins.problems.append(line)
    print(f"usgan: warning: {line} (skipped; USGAN_STRICT_PLUGINS=1 makes this an error)",
          file=sys.stderr)


def _entry_points() -> list[EntryPoint]:
    eps = list(entry_points(group=GROUP))
    # Built-ins first, then external plugins; stable by name within each.
    return sorted(eps, key=lambda ep: (_dist_name(ep) != BUILTIN_DIST, ep.name))


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else ""


def load_plugins(extra: list[tuple[str, Any]] | None = None) -> PluginSet:
    """Discover, import and register every plugin; ``extra`` adds in-process plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    plugins = PluginSet(pm)
    allow = _allowlist()
    eps = _entry_points()
    for ep in eps:
        dist = _dist_name(ep)
        builtin = dist == BUILTIN_DIST
        if not builtin and allow is not None and not ({ep.name, dist} & allow):
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except (Exception, SystemExit) as err:  # a plugin calling sys.exit() must not end usgan
            _problem(plugins, f"plugin {ep.name!r} (from {dist or ep.value}) failed to load", err)
            continue
        version = ep.dist.version if getattr(ep, "dist", None) is not None else ""
        plugins.info[ep.name] = PluginInfo(ep.name, dist, version, builtin)
    _check_allowlist(plugins, allow, eps)
    for name, module in extra or []:
        pm.register(module, name=name)
        plugins.info[name] = PluginInfo(name, "", "", False)
    return plugins


def _check_allowlist(plugins: PluginSet, allow: set[str] | None, eps: list[EntryPoint]) -> None:
    """A name in USGAN_LOAD_PLUGINS that no installed plugin has is a problem, not silence."""
    installed = {ep.name for ep in eps} | {_dist_name(ep) for ep in eps}
    for name in sorted((allow or set()) - installed):
        known = sorted(ep.name for ep in eps if _dist_name(ep) != BUILTIN_DIST)
        _problem(plugins, f"USGAN_LOAD_PLUGINS names {name!r}, but no installed plugin is called "
                          f"that (installed: {', '.join(known) or 'none'})")


def call_each(
    plugins: PluginSet, hook: str, make_kwargs: Callable[[str, PluginInfo], dict[str, Any]]
) -> None:
    """Call ``hook`` once per implementing plugin, isolating failures to that plugin.

    Each implementation receives only the arguments it names (so specs can grow).
    """
    caller = getattr(plugins.pm.hook, hook)
    for impl in reversed(caller.get_hookimpls()):  # pluggy keeps them last-registered-first
        info = plugins.info.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "", "", False)
        kwargs = make_kwargs(impl.plugin_name, info)
        try:
            impl.function(**{k: kwargs[k] for k in impl.argnames})
        except DuplicateNameError:
            raise
        except (Exception, SystemExit) as err:
            _problem(plugins, f"plugin {impl.plugin_name!r} raised in {hook}", err)


def build_registry(plugins: PluginSet) -> Registry:
    """Fill a `Registry` from every plugin's ``register_stage1`` / ``register_stage2``."""
    registry = Registry()
    for stage in STAGES:
        call_each(
            plugins,
            f"register_{stage}",
            lambda name, info, stage=stage: {
                "register": registry.registrar(stage, name, info.version, info.dist)
            },
        )
    return registry


_STATE: dict[str, Any] = {}


def get_plugins() -> PluginSet:
    """The process-wide plugin set (loaded on first use)."""
    if "plugins" not in _STATE:
        _STATE["plugins"] = load_plugins()
    return _STATE["plugins"]


def get_registry() -> Registry:
    """The process-wide registry (built on first use)."""
    if "registry" not in _STATE:
        _STATE["registry"] = build_registry(get_plugins())
    return _STATE["registry"]


def reset() -> None:
    """Forget the loaded plugins and registry (the next use loads them again)."""
    _STATE.clear()

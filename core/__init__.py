"""usgan.core: interfaces, registry, plugin hooks, stacking, serialization, runs, training.

The bottom layer: it imports no plugin and nothing above it (zoo, cli). Plugins (built-in or
third-party) import from here; building blocks for networks are in `usgan.core.layers`.
"""

from .errors import ConfigError, PluginError, ShapeMismatchError, UnknownNameError, UsganError
from .hookspecs import hookimpl
from .interfaces import Discriminator, Stage1Generator, Stage2Generator
from .registry import GANSpec, Registry
from .stage import Stage

__all__ = [
    "ConfigError",
    "Discriminator",
    "GANSpec",
    "PluginError",
    "Registry",
    "ShapeMismatchError",
    "Stage",
    "Stage1Generator",
    "Stage2Generator",
    "UnknownNameError",
    "UsganError",
    "hookimpl",
]

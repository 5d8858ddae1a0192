"""usgan.core: interfaces, registry, plugin hooks, stacking and serialization.

The bottom layer: it imports no plugin. Plugins (built-in or third-party) import from here.
"""

from .errors import ConfigError, PluginError, ShapeMismatchError, UnknownNameError, UsganError
from .hookspecs import hookimpl
from .interfaces import Discriminator, Stage1Generator, Stage2Generator
from .registry import GANSpec, Registry

__all__ = [
    "ConfigError",
    "Discriminator",
    "GANSpec",
    "PluginError",
    "Registry",
    "ShapeMismatchError",
    "Stage1Generator",
    "Stage2Generator",
    "UnknownNameError",
    "UsganError",
    "hookimpl",
]

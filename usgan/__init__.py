"""usgan: a plugin-based GAN model zoo for realistic ultrasound image synthesis."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("usgan")
except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
    __version__ = "0.0.0"

__all__ = ["__version__"]

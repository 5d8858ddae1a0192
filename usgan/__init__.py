"""usgan: a plugin-based GAN model zoo for realistic ultrasound image synthesis."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("usgan")
except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from usgan.core.synth import Synthesizer


def load(source: Any, device: str = "cpu") -> Synthesizer:
    """Open a trained run for sampling: ``usgan.load(RUN_DIR).sample(16, cls="healthy")``."""
    from usgan.core.synth import load as _load

    return _load(source, device=device)


__all__ = ["__version__", "load"]

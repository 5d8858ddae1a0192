"""usgan: a plugin-based GAN model zoo for realistic ultrasound image synthesis."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from usgan.core.runtime import usgan_version

__version__ = usgan_version()

if TYPE_CHECKING:
    from usgan.core.synth import Synthesizer


def load(source: str | Path, device: str = "cpu", precision: str = "auto") -> Synthesizer:
    """Open a trained model for sampling: ``usgan.load(SOURCE).sample(16, cls="healthy")``.

    SOURCE is a run directory, a zoo name or ``hf-hub:owner/name[@revision]``
    (see `usgan.zoo.source`). ``precision``: ``auto`` (bf16 where the hardware computes it
    natively, else fp32), ``fp32`` or ``bf16``.
    """
    from usgan.core.synth import Synthesizer
    from usgan.zoo.source import resolve

    return Synthesizer(resolve(source), device=device, precision=precision)


__all__ = ["__version__", "load"]

"""Texture by scale: how much power generated images carry at each spatial period, relative
to real images of the same size.

A generator that draws blurred shapes lacks power at the fine scales (speckle, edges); one
that adds grain overshoots there. The mean power spectrum of each set (grayscale in [0, 1],
each image's mean removed, a Hann window so that the image border adds no false detail) is
summed over octave bands of period, 2-4 px up to 32-64 px, and the report is the generated
set's power over the real set's in each band: 1 as real, 0.1 a tenth of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .errors import DataError

PERIODS = (2, 4, 8, 16, 32)  # each band: periods from p up to 2p pixels


@dataclass
class SpectrumReport:
    """Generated / real power per band of period, finest first (lists: their order is kept
    in JSON)."""

    periods: list[str]  # "2-4 px", "4-8 px", ...
    ratios: list[float]

    @property
    def bands(self) -> dict[str, float]:
        """Period -> ratio."""
        return dict(zip(self.periods, self.ratios, strict=True))

    @property
    def fine(self) -> float:
        """The ratio in the finest band (2-4 px): speckle and edges."""
        return self.ratios[0]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def mean_power(images: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """The mean power spectrum ``[H, W]`` (float64, zero frequency at ``[0, 0]``) of
    ``[N, C, H, W]`` images in [0, 255], each made gray, centred on its mean and Hann-windowed."""
    if images.shape[0] < 1:
        raise DataError("the spectrum needs at least 1 image")
    h, w = images.shape[-2:]
    window = (torch.hann_window(h, periodic=False, dtype=torch.float64)[:, None]
              * torch.hann_window(w, periodic=False, dtype=torch.float64)[None, :])
    total = torch.zeros(h, w, dtype=torch.float64)
    for part in images.split(chunk):
        x = part.double().mean(dim=1) / 255.0
        x = (x - x.mean(dim=(1, 2), keepdim=True)) * window
        total += torch.fft.fft2(x).abs().square().sum(dim=0)
    return total / images.shape[0]


def band_of(h: int, w: int) -> torch.Tensor:
    """Each frequency bin's band: ``i`` for periods in ``[PERIODS[i], 2 * PERIODS[i])``
    pixels, ``-1`` outside every band (the image's mean, coarser than the largest band, and
    the corners past the Nyquist radius)."""
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(w, dtype=torch.float64)[None, :]
    radius = (fy.square() + fx.square()).sqrt()  # cycles per pixel; the period is 1 / radius
    band = torch.full((h, w), -1, dtype=torch.long)
    for i, p in enumerate(PERIODS):
        band[(radius <= 1 / p) & (radius > 1 / (2 * p))] = i
    return band


def spectrum(fake: torch.Tensor, real: torch.Tensor) -> SpectrumReport:
    """Band power of uint8 ``fake`` over uint8 ``real`` images (``[N, C, H, W]``; real images
    of another size are resized to the generated ones', antialiased); bands whose periods do
    not fit the image are left out."""
    if real.shape[-2:] != fake.shape[-2:]:
        real = F.interpolate(real.float(), size=tuple(fake.shape[-2:]), mode="bilinear",
                             antialias=True, align_corners=False).round().clamp(0, 255)
    pf, pr = mean_power(fake), mean_power(real)
    band = band_of(*fake.shape[-2:])
    report = SpectrumReport([], [])
    for i, p in enumerate(PERIODS):
        inside = band == i
        if 2 * p <= min(fake.shape[-2:]) and inside.any():
            real_power = float(pr[inside].sum())
            report.periods.append(f"{p}-{2 * p} px")
            report.ratios.append(float(pf[inside].sum()) / real_power if real_power > 0
                                 else float("nan"))
    return report

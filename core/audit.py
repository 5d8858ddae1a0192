"""Memorization audit: are generated images copies of training images?

For each generated image, the nearest training image and its distance, in pixel space at a
small size (default 64, the Stage-I size) and optionally in a feature space (e.g. Inception
features from `usgan.core.evaluation`). A generated image counts as a copy when it is closer
to a training image than ``quantile`` (default 5%) of the training images are to their own
nearest *other* training image: the threshold is calibrated on the data, not guessed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .errors import DataError


@dataclass
class SpaceReport:
    """The audit in one space (pixels or features)."""

    space: str
    threshold: float
    copy_rate: float
    median_distance: float
    real_median_distance: float
    closest: list[tuple[int, int, float]] = field(default_factory=list)  # (fake, real, distance)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def pixels(images: torch.Tensor, size: int = 64) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` -> ``[N, C*size*size]`` floats in [0, 1] (area-resized)."""
    x = images.float() / 255.0
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.flatten(1)


def nearest(a: torch.Tensor, b: torch.Tensor, exclude_self: bool = False,
            chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance to and index of the nearest row of ``b`` for each row of ``a`` (Euclidean);
    with ``exclude_self`` (``a`` is ``b``) a row is not its own neighbour."""
    dists, idxs = [], []
    for start in range(0, a.shape[0], chunk):
        d = torch.cdist(a[start:start + chunk].double(), b.double())
        if exclude_self:
            rows = torch.arange(start, min(start + chunk, a.shape[0]))
            d[rows - start, rows] = float("inf")
        best = d.min(dim=1)
        dists.append(best.values)
        idxs.append(best.indices)
    return torch.cat(dists), torch.cat(idxs)


def audit_space(fake: torch.Tensor, real: torch.Tensor, space: str, quantile: float = 0.05,
                keep: int = 8) -> SpaceReport:
    """Copy rate of ``fake`` rows against ``real`` rows (both ``[N, D]``) in one space."""
    if real.shape[0] < 2 or fake.shape[0] < 1:
        raise DataError(f"the audit needs at least 2 training images and 1 generated image; got "
                        f"{real.shape[0]} and {fake.shape[0]}")
    real_nn, _ = nearest(real, real, exclude_self=True)
    threshold = float(torch.quantile(real_nn, quantile))
    d, idx = nearest(fake, real)
    order = torch.argsort(d)[:keep]
    return SpaceReport(
        space=space, threshold=threshold, copy_rate=float((d < threshold).double().mean()),
        median_distance=float(d.median()), real_median_distance=float(real_nn.median()),
        closest=[(int(i), int(idx[i]), float(d[i])) for i in order],
    )


def audit_images(fake: torch.Tensor, real: torch.Tensor, size: int = 64,
                 features: tuple[torch.Tensor, torch.Tensor, str] | None = None,
                 ) -> list[SpaceReport]:
    """The audit of uint8 ``fake`` against uint8 ``real`` images in pixel space at ``size``,
    and in a feature space when ``features`` gives (fake rows, real rows, its name)."""
    reports = [audit_space(pixels(fake, size), pixels(real, size), f"pixels {size}x{size}")]
    if features is not None:
        reports.append(audit_space(*features))
    return reports


def pairs_image(fake: torch.Tensor, real: torch.Tensor, report: SpaceReport) -> torch.Tensor:
    """The closest pairs side by side: a uint8 grid, one row per pair (generated | training)."""
    from torchvision.utils import make_grid

    size = min(int(fake.shape[-1]), int(real.shape[-1]), 128)
    tiles = []
    for i, j, _ in report.closest:
        for img in (fake[i], real[j]):
            tiles.append(F.interpolate(img[None].float(), size=(size, size), mode="area")[0])
    return make_grid(torch.stack(tiles), nrow=2, padding=2, pad_value=255).to(torch.uint8)

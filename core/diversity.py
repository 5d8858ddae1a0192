"""Sample diversity: how spread out a set of images is, relative to real images.

Mode collapse shows up as generated images that are close to each other. The mean pairwise
Euclidean distance within the generated set, divided by the same within a real set, is 1 when
the generator is as varied as the data and near 0 when it collapsed. Measured in pixel space
(at a small size, values in [0, 1]) and in a feature space (e.g. Inception features).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from .errors import DataError


@dataclass
class DiversityReport:
    """Mean pairwise distances in one space, and their ratio (generated / real)."""

    space: str
    fake: float
    real: float
    ratio: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def mean_pairwise_distance(rows: torch.Tensor, chunk: int = 512) -> float:
    """Mean Euclidean distance over all pairs of distinct rows of ``[N, D]``."""
    n = rows.shape[0]
    if n < 2:
        raise DataError(f"diversity needs at least 2 images, got {n}")
    x = rows.double()
    total = 0.0
    for start in range(0, n, chunk):
        total += float(torch.cdist(x[start:start + chunk], x).sum())
    return total / (n * (n - 1))  # the diagonal is 0


def diversity(fake: torch.Tensor, real: torch.Tensor, space: str) -> DiversityReport:
    """Diversity of ``fake`` rows relative to ``real`` rows (both ``[N, D]``)."""
    f, r = mean_pairwise_distance(fake), mean_pairwise_distance(real)
    return DiversityReport(space, f, r, f / r if r > 0 else float("nan"))

"""Intensity and speckle statistics of B-mode images (phantom vs real comparison)."""

from __future__ import annotations

import numpy as np
import torch

from .preprocess import sector_mask

RAYLEIGH_SNR = 1.913  # mean/std of a Rayleigh-distributed envelope: sqrt(pi / (4 - pi))


def image_stats(gray: np.ndarray, patch: int = 12) -> dict[str, float]:
    """Statistics of one grayscale uint8 image inside its (eroded) scan sector.

    ``mean``/``std``: grey level; ``snr``: median over ``patch x patch`` tiles inside the sector
    of mean/std (the speckle SNR of the displayed, log-compressed grey levels: about 6-8 for
    the real frames here; a linear Rayleigh envelope would give 1.91); ``near``: mean grey of
    the top third of the sector; ``depth_slope``: mean grey of the deepest third minus the top
    third (attenuation); ``sector``: fraction of the image inside the sector.
    """
    mask = sector_mask(gray)
    g = gray.astype(np.float64)
    vals = g[mask]
    if vals.size == 0:
        return {"mean": 0.0, "std": 0.0, "snr": 0.0, "near": 0.0, "depth_slope": 0.0, "sector": 0.0}
    snrs = []
    h, w = g.shape
    for y in range(0, h - patch + 1, patch):
        for x in range(0, w - patch + 1, patch):
            if mask[y : y + patch, x : x + patch].all():
                t = g[y : y + patch, x : x + patch]
                if t.std() > 0:
                    snrs.append(t.mean() / t.std())
    rows = np.nonzero(mask.any(axis=1))[0]
    top, bottom = rows.min(), rows.max()
    third = max(1, (bottom - top) // 3)
    upper = g[top : top + third][mask[top : top + third]]
    lower = g[bottom - third : bottom][mask[bottom - third : bottom]]
    return {
        "mean": float(vals.mean()),
        "std": float(vals.std()),
        "snr": float(np.median(snrs)) if snrs else 0.0,
        "near": float(upper.mean()) if upper.size else 0.0,
        "depth_slope": float(lower.mean() - upper.mean()) if upper.size and lower.size else 0.0,
        "sector": float(mask.mean()),
    }


def summarize(images: torch.Tensor | list[np.ndarray]) -> dict[str, tuple[float, float]]:
    """(mean, std) over images of every `image_stats` value."""
    rows = [image_stats(im[0].numpy() if isinstance(im, torch.Tensor) else im) for im in images]
    return {
        k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows])))
        for k in rows[0]
    }

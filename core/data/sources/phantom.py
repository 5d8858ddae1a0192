"""Phantom source: the built-in simulator (`usgan.core.data.phantom`) as a data spec.

``phantom[:n=,seed=,size=,frames=,grade=,classes=]``; no files, so the fingerprint is the
simulator version and parameters, and pixels come from the simulator (already sector-cropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ...errors import DataError, UnknownNameError
from .. import phantom as simulator
from ..preprocess import MIN_SIZE
from .base import DataSpec, Item, Listing, SourceIndex, SourceKind


def _params(opts: dict[str, str]) -> dict[str, Any]:
    try:
        params: dict[str, Any] = {
            "n": int(opts.get("n", 100)),
            "seed": int(opts.get("seed", 0)),
            "size": int(opts.get("size", 256)),
            "frames": int(opts.get("frames", 10)),
            "grade": float(opts.get("grade", 1.0)),
        }
    except ValueError as err:
        raise DataError(f"phantom option is not a number: {err}") from None
    if params["n"] < 1 or params["frames"] < 1 or params["size"] < MIN_SIZE:
        raise DataError(f"phantom needs n >= 1, frames >= 1 and size >= {MIN_SIZE}")
    if not 0.0 <= params["grade"] <= 1.0:
        raise DataError("phantom grade must be between 0 (healthy) and 1")
    return params


def list_phantom(spec: DataSpec, skip_bad: bool = False) -> Listing:
    """``n`` items per class, grouped into subjects of ``frames``; classes in the given order."""
    opts = spec.options
    params = _params(opts)
    names = opts.get("classes", "healthy+steatosis").split("+")
    for name in names:
        if name not in simulator.PHANTOM_CLASSES:
            raise UnknownNameError("phantom class", name, simulator.PHANTOM_CLASSES)
    grades = {"healthy": 0.0, "steatosis": params["grade"]}
    items = [
        Item(id=i, label=c, subject=s, meta=dict(m))
        for i, c, s, m in simulator.phantom_items(params["n"], names, grades, params["frames"])
    ]
    params["grades"] = grades
    return Listing(
        items=items,
        class_order=names,
        fingerprint=[f"phantom-v{simulator.VERSION}", repr(sorted(params.items()))],
    )


def phantom_pixels(index: SourceIndex) -> Sequence[np.ndarray]:
    """The simulated images of ``index`` (``n`` per selected class), uint8 ``[N, H, W]``."""
    p = _params(index.spec.options)
    parts = []
    for cls in index.class_names:
        grade = index.items[[it.label for it in index.items].index(cls)].meta["grade"]
        parts.append(
            simulator.simulate(
                p["n"], grade=grade, seed=p["seed"], size=p["size"], frames=p["frames"]
            )
        )
    return torch.cat(parts)[:, 0].numpy()


KIND = SourceKind(
    name="phantom",
    what="'phantom'",
    what_long="'phantom'",
    list_items=list_phantom,
    options={
        "n": "images per class (default 100)",
        "seed": "random seed (default 0)",
        "size": "simulated image side in pixels (default 256)",
        "frames": "frames per simulated subject (default 10)",
        "grade": "steatosis grade of the 'steatosis' class, 0..1 (default 1)",
        "classes": "'+'-separated subset of healthy+steatosis",
    },
    takes_path=False,
    pixels=phantom_pixels,
    detect_sector=False,
)

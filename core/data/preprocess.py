"""Preprocessing: grayscale conversion, scan-sector detection, crop and resize.

Sector detection (the default crop): a pixel is *lit* when brighter than ``LIT``; a pixel is in
the *solid* mask when at least half of its ``k x k`` neighbourhood is lit (``k`` about 2% of the
image side). Text, depth ticks, ECG traces and cursor lines are thin, so fewer than half of any
window around them is lit and they vanish; speckle is dense, so the scan stays. The largest
connected solid region (holes filled) is the sector, and its bounding box is the crop. When no
region covers at least ``MIN_SECTOR_FRACTION`` of the image, the whole image is used. Images
above ``DETECT_PIXELS`` are detected on a block-averaged copy (memory stays bounded).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from ..errors import DataError

LIT = 10  # grey level above which a pixel counts as part of the scan
MIN_SECTOR_FRACTION = 0.05
MIN_SIZE = 64  # smallest accepted image side (the Stage-I size)
MAX_PIXELS = 40_000_000  # largest accepted image (width x height); env USGAN_MAX_IMAGE_PIXELS
MAX_PIXELS_ENV = "USGAN_MAX_IMAGE_PIXELS"
DETECT_PIXELS = 16_000_000  # above this, sector detection runs on a downscaled copy
VERSION = 2  # bump when the output changes, so cached datasets are remade

# What `to_gray` did, as counted by `usgan data info` ("converted").
NOTE_16BIT = "16-bit scaled to 8-bit"
NOTE_COLOUR = "RGBA/colour to gray"
NOTE_PALETTE = "palette to gray"
NOTE_BILEVEL = "1-bit to gray"
NOTE_FLOAT = "float to 8-bit"

Box = tuple[int, int, int, int]  # x, y, w, h


def max_pixels() -> int:
    """The largest accepted image, width x height: ``$USGAN_MAX_IMAGE_PIXELS`` or `MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < MIN_SIZE * MIN_SIZE:
        raise DataError(
            f"{MAX_PIXELS_ENV}={text!r} is not a pixel count of at least {MIN_SIZE * MIN_SIZE}"
        )
    return value


def to_gray(img: Image.Image, notes: list[str] | None = None) -> np.ndarray:
    """``img`` as a 2-D uint8 array: luminance (ITU-R 601) for colour, 16-bit scaled by 1/257.

    Alpha is ignored. Float images are clipped to 0..255 when they fit, else min-max scaled.
    What was converted is appended to ``notes`` (the ``NOTE_*`` texts).
    """
    note = None
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img).astype(np.float32)  # float32 is exact here and half of float64
        if img.mode != "I" or a.max() > 255:
            a /= 257.0
            note = NOTE_16BIT
        np.rint(a, out=a)
        gray = np.clip(a, 0, 255).astype(np.uint8)
    elif img.mode == "F":
        a = np.nan_to_num(np.asarray(img).astype(np.float64))
        if a.min() < 0 or a.max() > 255:
            a = (a - a.min()) / max(float(a.max() - a.min()), 1e-12) * 255
        gray = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        note = NOTE_FLOAT
    elif img.mode == "L":
        gray = np.asarray(img, dtype=np.uint8)
    else:
        note = {"P": NOTE_PALETTE, "PA": NOTE_PALETTE, "1": NOTE_BILEVEL}.get(img.mode, NOTE_COLOUR)
        if img.mode not in ("RGB", "RGBA", "LA"):
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        if img.mode == "LA":
            gray = np.asarray(img.getchannel(0), dtype=np.uint8)
        else:
            gray = np.asarray(img.convert("RGB").convert("L"), dtype=np.uint8)
    if note is not None and notes is not None:
        notes.append(note)
    return gray


def _largest_box(lit: np.ndarray, k: int) -> tuple[Box, int] | None:
    """Bounding box and area (pixels) of the largest solid region of a lit (fraction) map."""
    solid = ndimage.uniform_filter(lit, size=k, mode="constant") > 0.5
    labels, n = ndimage.label(solid)
    del solid
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    best = int(np.argmax(sizes))
    ys, xs = ndimage.find_objects(labels, max_label=best + 1)[best]
    return (xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start), int(sizes[best])


def detect_sector(gray: np.ndarray) -> Box | None:
    """Bounding box ``(x, y, w, h)`` of the scan sector of ``gray``, or None if not found.

    Above `DETECT_PIXELS` the lit fraction is block-averaged by an integer factor first, and
    the box is mapped back (memory about 10 bytes per detected pixel, under 1 GB at any size).
    """
    h, w = gray.shape
    f = max(1, math.ceil(math.sqrt(h * w / DETECT_PIXELS)))
    if f == 1:
        lit = (gray > LIT).astype(np.float32)
    else:
        hs, ws = h // f, w // f
        lit = np.empty((hs, ws), np.float32)
        for r in range(hs):  # row blocks: no full-size temporary
            block = gray[r * f : (r + 1) * f, : ws * f] > LIT
            lit[r] = block.reshape(f, ws, f).mean(axis=(0, 2))
    sh, sw = lit.shape
    k = max(3, round(min(sh, sw) / 50) | 1)
    found = _largest_box(lit, k)
    if found is None:
        return None
    (x, y, bw, bh), area = found
    if area < MIN_SECTOR_FRACTION * sh * sw:
        return None
    if f == 1:
        return x, y, bw, bh
    x0, y0 = x * f, y * f
    x1 = w if x + bw == sw else (x + bw) * f
    y1 = h if y + bh == sh else (y + bh) * f
    return x0, y0, x1 - x0, y1 - y0


def parse_crop(text: str) -> Box:
    """``"x,y,w,h"`` -> a box; raises ValueError with a readable message."""
    parts = [p.strip() for p in text.split(",")]
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"crop {text!r} is not x,y,w,h (four integers)") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ValueError(f"crop {text!r}: x and y must be >= 0, w and h > 0")
    return x, y, w, h


def crop_and_resize(gray: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Crop ``gray`` to ``box`` and resize to ``size x size`` (bicubic, antialiased), uint8."""
    x, y, w, h = box
    part = Image.fromarray(np.ascontiguousarray(gray[y : y + h, x : x + w]))
    if part.size != (size, size):
        part = part.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=None)
    return np.array(part, dtype=np.uint8)


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[N, 1, H, W]`` -> uint8 ``[N, 1, size, size]`` (bilinear, antialiased)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images.clone()
    out = []
    for chunk in images.split(256):
        r = F.interpolate(
            chunk.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        out.append(r.round().clamp(0, 255).to(torch.uint8))
    if not out:
        return torch.zeros(0, 1, size, size, dtype=torch.uint8)
    return torch.cat(out)


def sector_mask(gray: np.ndarray) -> np.ndarray:
    """Boolean mask of the largest solid lit region (the scan), holes filled."""
    h, w = gray.shape
    k = max(3, round(min(h, w) / 50) | 1)
    solid = ndimage.uniform_filter((gray > LIT).astype(np.float32), size=k, mode="constant") > 0.5
    labels, n = ndimage.label(solid)
    if n == 0:
        return np.zeros_like(solid)
    best = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    mask = ndimage.binary_fill_holes(labels == best)
    return ndimage.binary_erosion(mask, iterations=k)

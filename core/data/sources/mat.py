"""Byra et al. (2018) ``.mat`` source: struct array ``data`` with id, class, fat and images.

MATLAB v5/v7 files are read with scipy, v7.3 (HDF5) files with h5py (optional dependency). A
v7.3 file's image sizes are checked from its header before any pixel is read: each frame at
most `max_pixels`, all frames together at most `TOTAL_PIXELS_FACTOR` times that. ``images``
may be a numeric array (frames x height x width, or one height x width frame) or a cell array
of frames; a 1x1 struct (fields stored directly in v7.3) is one subject.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ..preprocess import max_pixels
from .base import DataSpec, Item, Listing, SourceKind
from .images import too_large

MAT_FIELDS = ("id", "class", "fat", "images")
MAT_CLASSES = {0: "healthy", 1: "nafld"}
TOTAL_PIXELS_FACTOR = 32  # all frames of a file together: at most 32 x max_pixels() values
def check_fields(path: Path, fields: Any) -> None:
    """Every field of the Byra layout is present in struct 'data' (``fields``: its names)."""
    for name in MAT_FIELDS:
        if name not in fields:
            raise DataError(
                f"{path}: struct 'data' has no field {name!r} (fields: "
                f"{', '.join(fields) or 'none'}); expected {', '.join(MAT_FIELDS)}"
            )


LAYOUT = "expected the Byra et al. layout: struct array data with fields " + ", ".join(MAT_FIELDS)

Subject = dict[str, Any]  # id/class/fat: arrays; images: a list of 2-D frames


def _describe(a: np.ndarray) -> str:
    """What a MATLAB value is, for messages."""
    if a.dtype.kind in "US":
        return f"text {str(a.ravel()[0]) if a.size else ''!r}"
    if a.dtype.kind == "O" or a.dtype.names:
        return "a cell array or struct"
    if a.size == 0:
        return "empty"
    return f"a {a.dtype} array of shape {a.shape}"


def _number(where: str, name: str, value: Any) -> float:
    """A field that must hold one finite number."""
    a = np.asarray(value)
    if a.dtype.kind not in "biuf" or a.size != 1:
        raise DataError(f"{where}: field {name!r} is {_describe(a)}; expected a number")
    v = float(a.ravel()[0])
    if not math.isfinite(v) or (name in ("id", "class") and v != int(v)):
        raise DataError(f"{where}: field {name!r} is {v}; expected a whole number")
    return v


def _check_frame(where: str, shape: tuple[int, ...], kind: str, limit: int) -> int:
    """Pixels of one frame of ``shape`` (height, width), after checking it."""
    if kind not in "biuf":
        what = "text" if kind in "US" else "cells or structs" if kind in "OV" else f"{kind!r} data"
        raise DataError(f"{where}: images are {what}, not numbers")
    if len(shape) != 2:
        raise DataError(
            f"{where}: images have shape {shape}; expected frames x height x width "
            "(or height x width)"
        )
    h, w = shape
    if h * w > limit:
        raise too_large(where, w, h, limit)
    return h * w


def _frames(where: str, value: Any, limit: int) -> list[np.ndarray]:
    """The 2-D frames of a v5 ``images`` value (a numeric array or a cell array of them)."""
    a = np.asarray(value)
    cells = [np.asarray(c) for c in a.ravel()] if a.dtype.kind == "O" else [a]
    frames: list[np.ndarray] = []
    for c in cells:
        if c.dtype.kind == "O":
            raise DataError(f"{where}: images hold nested cell arrays; expected numeric frames")
        frames.extend(list(c) if c.ndim == 3 else [c])
    if not frames or any(f.size == 0 for f in frames):
        raise DataError(f"{where}: images are empty")
    for f in frames:
        _check_frame(where, f.shape, f.dtype.kind, limit)
    return frames


def _struct_scipy(path: Path, limit: int) -> list[Subject] | None:
    import scipy.io

    try:
        raw = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=True)
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        return None
    except MemoryError:
        raise DataError(f"{path} is too large to read in memory") from None
    except Exception as err:  # scipy raises many types on files that are not MATLAB
        raise DataError(f"{path} is not a readable MATLAB file ({err})") from None
    names = [k for k in raw if not k.startswith("__")]
    if "data" not in raw:
        raise DataError(
            f"{path} has no variable 'data' (found: {', '.join(names) or 'none'}); {LAYOUT}"
        )
    data = np.asarray(raw["data"])
    fields = data.dtype.names or ()
    if not fields:
        raise DataError(f"{path}: variable 'data' is {_describe(data)}, not a struct; {LAYOUT}")
    if data.size == 0:
        raise DataError(f"{path}: struct 'data' is empty")
    check_fields(path, fields)
    out = []
    for i in range(data.size):
        rec = data.flat[i]
        where = f"{path}: entry {i + 1} of struct 'data'"
        subject: Subject = {f: rec[f] for f in MAT_FIELDS[:3]}
        subject["images"] = _frames(where, rec["images"], limit)
        out.append(subject)
    return out


def _struct_h5(path: Path, limit: int) -> list[Subject]:
    try:
        import h5py
    except ImportError:
        raise DataError(
            f"{path} is a MATLAB v7.3 (HDF5) file; install h5py "
            "(pip install 'usgan[hdf5]') or save it as v7 (-v7)"
        ) from None
    from . import mat_h5

    try:
        with h5py.File(path, "r") as f:
            return mat_h5.read_struct(f, path, limit)
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{path} is too large to read in memory") from None
    except Exception as err:  # h5py: OSError (truncated), KeyError, TypeError, ...
        raise DataError(f"{path} is a damaged MATLAB v7.3 (HDF5) file ({err})") from None


def _is_hdf5(path: Path) -> bool:
    sig = b"\x89HDF\r\n\x1a\n"
    try:
        with open(path, "rb") as f:
            head = f.read(1032)
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror or err})") from None
    return any(head[o : o + 8] == sig for o in (0, 512, 1024))


def list_mat(spec: DataSpec, skip_bad: bool = False) -> Listing:
    """One item per frame: ids ``"<id>/<frame>"``, subject = ``id``, pixels held in memory."""
    path = spec.path
    assert path is not None
    limit = max_pixels()
    structs = None if _is_hdf5(path) else _struct_scipy(path, limit)
    if structs is None:
        structs = _struct_h5(path, limit)
    if not structs:
        raise DataError(f"{path}: struct 'data' is empty")
    total = sum(fr.size for s in structs for fr in s["images"])
    if total > TOTAL_PIXELS_FACTOR * limit:
        raise DataError(
            f"{path} holds {total:,} pixels, more than {TOTAL_PIXELS_FACTOR} x {limit:,}"
        )
    items = []
    first: dict[int, int] = {}
    for i, s in enumerate(structs):
        where = f"{path}: entry {i + 1} of struct 'data'"
        sid = int(_number(where, "id", s["id"]))
        if sid in first:
            raise DataError(f"{where}: id {sid} was already used by entry {first[sid]}")
        first[sid] = i + 1
        cls = int(_number(where, "class", s["class"]))
        fat = _number(where, "fat", s["fat"])
        label = MAT_CLASSES.get(cls, str(cls))
        for k, frame in enumerate(s["images"]):
            items.append(
                Item(
                    id=f"{sid}/{k + 1}",
                    label=label,
                    subject=str(sid),
                    meta={"subject_id": sid, "class": cls, "fat": fat, "frame": k + 1},
                    array=frame,
                    origin=f"{path}, subject {sid} frame {k + 1}",
                )
            )
    return Listing(items=items, files=[path])


KIND = SourceKind(
    name="mat",
    what="a .mat file",
    what_long="a .mat file",
    list_items=list_mat,
    suffixes=frozenset({".mat"}),
)

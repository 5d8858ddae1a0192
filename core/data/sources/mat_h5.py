"""Reading the Byra struct from a MATLAB v7.3 (HDF5) file, sizes checked before pixels.

MATLAB stores arrays column-major, so an HDF5 dataset of shape ``(w, h, frames)`` is read
and transposed to ``(frames, h, w)``. A struct array's fields are datasets of object
references (one per entry); a 1x1 struct stores its fields directly; a cell array is a
dataset of references too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ...errors import DataError
from .mat import LAYOUT, MAT_FIELDS, TOTAL_PIXELS_FACTOR, Subject, _check_frame, check_fields


def _is_refs(obj: Any) -> bool:
    return isinstance(obj, h5py.Dataset) and h5py.check_ref_dtype(obj.dtype) is not None


def _matlab_class(obj: h5py.Dataset) -> str:
    cls = obj.attrs.get("MATLAB_class", b"")
    return cls.decode() if isinstance(cls, bytes) else str(cls)


def _entries(f: h5py.File, obj: Any, where: str) -> list[Any]:
    """The objects a reference dataset points to."""
    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{where} is a group, not a MATLAB array")
    return [f[r] for r in np.asarray(obj[()]).ravel()]


def _frame_datasets(f: h5py.File, obj: Any, where: str, limit: int) -> list[h5py.Dataset]:
    """The datasets holding one entry's frames, their shapes checked (nothing read yet)."""
    parts = _entries(f, obj, where) if _is_refs(obj) else [obj]  # a cell array: one per cell
    out = []
    for d in parts:
        if not isinstance(d, h5py.Dataset) or _is_refs(d):
            raise DataError(f"{where}: images hold nested cells or structs; expected frames")
        if d.attrs.get("MATLAB_empty", 0) or d.size == 0:
            raise DataError(f"{where}: images are empty")
        shape = tuple(reversed(d.shape))
        kind = "U" if _matlab_class(d) == "char" else d.dtype.kind
        _check_frame(where, shape[1:] if len(shape) == 3 else shape, kind, limit)
        out.append(d)
    return out


def _value(obj: Any, where: str, name: str) -> np.ndarray:
    """A small numeric field (id, class, fat); text stays text for the message."""
    if not isinstance(obj, h5py.Dataset) or _is_refs(obj):
        raise DataError(f"{where}: field {name!r} is a cell array or struct; expected a number")
    if obj.size > 16:  # a number, not an array: do not read a big one
        shape = tuple(reversed(obj.shape))
        raise DataError(
            f"{where}: field {name!r} is a {obj.dtype} array of shape {shape}; expected a number"
        )
    a = np.asarray(obj[()])
    if _matlab_class(obj) == "char":
        return np.array(["".join(chr(c) for c in a.ravel())])
    return a


def read_struct(f: h5py.File, path: Path, limit: int) -> list[Subject]:
    """The entries of struct ``data``; frames are read only after every size was checked."""
    if "data" not in f:
        found = ", ".join(f) or "none"
        raise DataError(f"{path} has no variable 'data' (found: {found}); {LAYOUT}")
    group = f["data"]
    if not isinstance(group, h5py.Group):
        raise DataError(f"{path}: variable 'data' is not a struct; {LAYOUT}")
    check_fields(path, list(group))
    if _is_refs(group["id"]):  # a struct array: each field lists one reference per entry
        cols = {n: _entries(f, group[n], f"{path}: field {n!r}") for n in MAT_FIELDS}
    else:  # a 1x1 struct: the fields themselves
        cols = {n: [group[n]] for n in MAT_FIELDS}
    count = len(cols["id"])
    if any(len(v) != count for v in cols.values()):
        sizes = ", ".join(f"{n} {len(v)}" for n, v in cols.items())
        raise DataError(f"{path}: the fields of struct 'data' have different lengths ({sizes})")
    frames = []
    for i in range(count):
        where = f"{path}: entry {i + 1} of struct 'data'"
        frames.append(_frame_datasets(f, cols["images"][i], where, limit))
    total = sum(d.size for ds in frames for d in ds)
    if total > TOTAL_PIXELS_FACTOR * limit:
        raise DataError(
            f"{path} declares {total:,} pixels, more than {TOTAL_PIXELS_FACTOR} x {limit:,}; "
            "refused before reading"
        )
    out = []
    for i in range(count):
        where = f"{path}: entry {i + 1} of struct 'data'"
        subject: Subject = {n: _value(cols[n][i], where, n) for n in MAT_FIELDS[:3]}
        images = []
        for d in frames[i]:
            a = np.asarray(d[()]).T
            images.extend(list(a) if a.ndim == 3 else [a])
        subject["images"] = images
        out.append(subject)
    return out

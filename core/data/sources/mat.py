"""Byra et al. (2018) ``.mat`` source: struct array ``data`` with id, class, fat and images.

MATLAB v5/v7 files are read with scipy, v7.3 (HDF5) files with h5py (optional dependency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from .base import DataSpec, Item, Listing, SourceKind

MAT_FIELDS = ("id", "class", "fat", "images")
MAT_CLASSES = {0: "healthy", 1: "nafld"}


def _struct_scipy(path: Path) -> list[dict[str, Any]] | None:
    import scipy.io

    try:
        raw = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=True)
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        return None
    except (ValueError, TypeError, OSError) as err:
        raise DataError(f"{path} is not a readable MATLAB file ({err})") from None
    names = [k for k in raw if not k.startswith("__")]
    if "data" not in raw:
        raise DataError(
            f"{path} has no variable 'data' (found: {', '.join(names) or 'none'}); "
            "expected the Byra et al. layout: struct array data with fields "
            + ", ".join(MAT_FIELDS)
        )
    data = raw["data"]
    fields = data.dtype.names or ()
    for f in MAT_FIELDS:
        if f not in fields:
            raise DataError(
                f"{path}: struct 'data' has no field {f!r} (fields: "
                f"{', '.join(fields) or 'none'}); expected {', '.join(MAT_FIELDS)}"
            )
    return [{f: data.flat[i][f] for f in MAT_FIELDS} for i in range(data.size)]


def _struct_h5(path: Path) -> list[dict[str, Any]]:
    try:
        import h5py
    except ImportError:
        raise DataError(
            f"{path} is a MATLAB v7.3 (HDF5) file; install h5py "
            "(pip install 'usgan[hdf5]') or save it as v7 (-v7)"
        ) from None
    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise DataError(
                f"{path} has no variable 'data' (found: {', '.join(f) or 'none'}); "
                "expected the Byra et al. layout"
            )
        group = f["data"]
        for name in MAT_FIELDS:
            if name not in group:
                raise DataError(
                    f"{path}: struct 'data' has no field {name!r} (fields: "
                    f"{', '.join(group)}); expected {', '.join(MAT_FIELDS)}"
                )
        refs = {name: np.asarray(group[name]).ravel() for name in MAT_FIELDS}
        n = len(refs["id"])
        # MATLAB stores arrays column-major: transpose to get (frames, rows, cols).
        return [{name: np.asarray(f[refs[name][i]]).T for name in MAT_FIELDS} for i in range(n)]


def _is_hdf5(path: Path) -> bool:
    sig = b"\x89HDF\r\n\x1a\n"
    with open(path, "rb") as f:
        head = f.read(1032)
    return any(head[o : o + 8] == sig for o in (0, 512, 1024))


def list_mat(spec: DataSpec, skip_bad: bool = False) -> Listing:
    """One item per frame: ids ``"<id>/<frame>"``, subject = ``id``, pixels held in memory."""
    path = spec.path
    assert path is not None
    structs = None if _is_hdf5(path) else _struct_scipy(path)
    if structs is None:
        structs = _struct_h5(path)
    items = []
    for s in structs:
        try:
            sid = int(np.asarray(s["id"]).ravel()[0])
            cls = int(np.asarray(s["class"]).ravel()[0])
            fat = float(np.asarray(s["fat"]).ravel()[0])
        except (IndexError, ValueError, TypeError):
            raise DataError(f"{path}: id, class and fat of each subject must be numbers") from None
        frames = np.asarray(s["images"])
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3:
            raise DataError(
                f"{path}: images of subject {sid} have shape {frames.shape}; "
                "expected frames x height x width"
            )
        label = MAT_CLASSES.get(cls, str(cls))
        for k, frame in enumerate(frames):
            items.append(
                Item(
                    id=f"{sid}/{k + 1}",
                    label=label,
                    subject=str(sid),
                    meta={"subject_id": sid, "class": cls, "fat": fat, "frame": k + 1},
                    array=frame,
                )
            )
    if not items:
        raise DataError(f"{path}: struct 'data' is empty")
    return Listing(items=items, files=[path])


KIND = SourceKind(
    name="mat",
    what="a .mat file",
    what_long="a .mat file",
    list_items=list_mat,
    suffixes=frozenset({".mat"}),
)

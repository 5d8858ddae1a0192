"""Data sources: list the items of a spec (ids, labels, subjects) without decoding pixels.

`load_index` is cheap (it reads manifests and directory listings, and hashes the files for the
fingerprint), so splitting works on any source; `decode` reads one item's pixels.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError, UnknownNameError
from . import phantom
from .preprocess import MIN_SIZE, to_gray
from .spec import IMAGE_SUFFIXES, DataSpec, parse_spec

MAT_FIELDS = ("id", "class", "fat", "images")
MAT_CLASSES = {0: "healthy", 1: "nafld"}
CSV_COLUMNS = {
    "path": ("path", "file", "filename", "image"),
    "label": ("label", "class"),
    "subject": ("subject", "subject_id", "patient", "patient_id"),
}

Bins = list[tuple[str, float]]  # (class name, lower bound), sorted by bound


@dataclass
class Item:
    """One image of a source: its id, class, subject, metadata and where its pixels are."""

    id: str
    label: str
    subject: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    array: np.ndarray | None = None


@dataclass
class SourceIndex:
    """The items of a data spec, before decoding."""

    spec: DataSpec
    items: list[Item]
    class_names: list[str]
    skipped: list[tuple[str, str]]
    fingerprint: str
    has_subjects: bool


# -- bins ---------------------------------------------------------------------------------------


def parse_bins(bins: str | Sequence[float] | Sequence[tuple[str, float]] | None) -> Bins | None:
    """Class bins for numeric grades.

    ``"1.0"`` -> lt1.0/ge1.0; ``"1,2"`` -> lt1/1-2/ge2; ``"f0:0,f1:1.0"`` -> named lower bounds.
    """
    if bins is None or bins == "":
        return None
    if isinstance(bins, str):
        parts = [p.strip() for p in bins.split(",") if p.strip()]
    else:
        parts = list(bins)  # type: ignore[arg-type]
    named = [p for p in parts if isinstance(p, tuple) or (isinstance(p, str) and ":" in p)]
    try:
        if named:
            if len(named) != len(parts):
                raise ValueError
            out = []
            for p in parts:
                name, bound = p if isinstance(p, tuple) else p.split(":", 1)
                out.append((str(name).strip(), float(bound)))
        else:
            pairs = sorted((float(p), p if isinstance(p, str) else f"{p:g}") for p in parts)
            cuts = [c for c, _ in pairs]
            texts = [t for _, t in pairs]
            if len(cuts) == 1:
                out = [(f"lt{texts[0]}", -math.inf), (f"ge{texts[0]}", cuts[0])]
            else:
                out = [(f"lt{texts[0]}", -math.inf)]
                out += [(f"{a}-{b}", c) for a, b, c in zip(texts, texts[1:], cuts, strict=False)]
                out.append((f"ge{texts[-1]}", cuts[-1]))
    except ValueError:
        raise DataError(
            f"--bins {bins!r} is not understood; give thresholds like '1.0' or '1,2', or named "
            "lower bounds like 'f0:0,f1:1.0'"
        ) from None
    out.sort(key=lambda t: t[1])
    if len({n for n, _ in out}) != len(out) or len({b for _, b in out}) != len(out):
        raise DataError(f"--bins {bins!r} repeats a name or a bound")
    return out


def _apply_bins(items: list[Item], bins: Bins, skipped: list[tuple[str, str]]) -> list[Item]:
    kept = []
    for it in items:
        try:
            grade = float(it.label)
        except ValueError:
            raise DataError(
                f"--bins needs numeric class names (grades); {it.label!r} (of {it.id!r}) is not a "
                "number"
            ) from None
        name = None
        for bin_name, lower in bins:
            if grade >= lower:
                name = bin_name
        if name is None:
            skipped.append((it.id, f"grade {grade:g} below the lowest bin"))
            continue
        it.meta["grade"] = grade
        it.label = name
        kept.append(it)
    return kept


# -- hashing ------------------------------------------------------------------------------------


def _file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fingerprint(parts: Sequence[str]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


# -- sources ------------------------------------------------------------------------------------


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _folder(root: Path, skipped: list[tuple[str, str]]) -> list[Item]:
    items: list[Item] = []
    class_dirs = []
    loose_images = 0
    for entry in sorted(root.iterdir()):
        rel = entry.relative_to(root).as_posix()
        if entry.name.startswith("."):
            skipped.append((rel, "hidden"))
        elif entry.is_dir():
            class_dirs.append(entry)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            loose_images += 1
            skipped.append((rel, "image outside the class subfolders"))
        else:
            skipped.append((rel, "not an image"))
    if not class_dirs:
        if loose_images:
            raise DataError(
                f"folder {root} has images but no class subfolders; put them in one subfolder per "
                f"class ({root}/healthy/..., {root}/nafld/...) or list them in a CSV manifest"
            )
        raise DataError(f"folder {root} is empty: no class subfolders with images")
    for cdir in class_dirs:
        for path in sorted(cdir.rglob("*")):
            rel = path.relative_to(root)
            if _hidden(path.relative_to(cdir)):
                if path.is_file():
                    skipped.append((rel.as_posix(), "hidden"))
                continue
            if not path.is_file():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append((rel.as_posix(), "not an image"))
                continue
            items.append(Item(id=rel.as_posix(), label=cdir.name, path=path))
    if not items:
        raise DataError(
            f"folder {root} has no images (PNG, JPEG, BMP, TIFF) in its class subfolders "
            f"({', '.join(d.name for d in class_dirs)})"
        )
    return items


def _pick_column(columns: list[str], role: str, given: str | None, csv_path: Path) -> str | None:
    if given is not None:
        if given not in columns:
            raise DataError(
                f"{csv_path}: no column {given!r} for {role} (columns: {', '.join(columns)})"
            )
        return given
    lower = {c.lower().strip(): c for c in columns}
    for name in CSV_COLUMNS[role]:
        if name in lower:
            return lower[name]
    return None


def _csv(
    path: Path, options: dict[str, str], skip_bad: bool, skipped: list[tuple[str, str]]
) -> tuple[list[Item], bool]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    if not columns:
        raise DataError(
            f"{path} is empty; expected a header path,label[,subject] and one row per image"
        )
    cols = {role: _pick_column(columns, role, options.get(role), path) for role in CSV_COLUMNS}
    for role in ("path", "label"):
        if cols[role] is None:
            raise DataError(
                f"{path}: no {role} column (columns: {', '.join(columns)}); expected "
                f"path,label[,subject], or name them: {path.name}:path=COL,label=COL,subject=COL"
            )
    if not rows:
        raise DataError(f"{path} lists no images")
    used = {c for c in cols.values() if c}
    items, missing, seen = [], [], set()
    for n, row in enumerate(rows, start=2):
        rel = (row.get(cols["path"]) or "").strip()  # type: ignore[arg-type]
        label = (row.get(cols["label"]) or "").strip()  # type: ignore[arg-type]
        if not rel or not label:
            raise DataError(f"{path}: line {n} has an empty {'path' if not rel else 'label'}")
        file = (path.parent / rel) if not Path(rel).is_absolute() else Path(rel)
        if not file.is_file():
            missing.append((n, rel))
            if skip_bad:
                skipped.append((rel, "listed in the CSV but missing"))
            continue
        if rel in seen:
            raise DataError(f"{path}: line {n} lists {rel!r} a second time")
        seen.add(rel)
        subject = (row.get(cols["subject"]) or "").strip() if cols["subject"] else ""
        meta = {k: v for k, v in row.items() if k not in used and k is not None}
        items.append(Item(id=rel, label=label, subject=subject or None, meta=meta, path=file))
    if missing and not skip_bad:
        n, rel = missing[0]
        raise DataError(
            f"{path}: {len(missing)} listed file(s) do not exist (first: line {n}, {rel!r}); "
            "fix the paths (relative to the CSV) or pass --skip-bad"
        )
    return items, cols["subject"] is not None


def _mat_struct_scipy(path: Path) -> list[dict[str, Any]] | None:
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


def _mat_struct_h5(path: Path) -> list[dict[str, Any]]:
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


def _mat(path: Path) -> list[Item]:
    structs = None if _is_hdf5(path) else _mat_struct_scipy(path)
    if structs is None:
        structs = _mat_struct_h5(path)
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
    return items


def _phantom(opts: dict[str, str]) -> tuple[list[Item], list[str], dict[str, Any]]:
    try:
        params = {
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
    names = opts.get("classes", "healthy+steatosis").split("+")
    for name in names:
        if name not in phantom.PHANTOM_CLASSES:
            raise UnknownNameError("phantom class", name, phantom.PHANTOM_CLASSES)
    grades = {"healthy": 0.0, "steatosis": params["grade"]}
    items = [
        Item(id=i, label=c, subject=s, meta=dict(m))
        for i, c, s, m in phantom.phantom_items(params["n"], names, grades, params["frames"])
    ]
    return items, names, {**params, "grades": grades}


def load_index(
    spec: str | DataSpec = "phantom",
    classes: Sequence[str] | None = None,
    bins: str | Sequence[Any] | None = None,
    skip_bad: bool = False,
    min_classes: int = 2,
) -> SourceIndex:
    """The items of ``spec``: labels (binned if ``bins``), selected and ordered by ``classes``."""
    ds = spec if isinstance(spec, DataSpec) else parse_spec(spec)
    skipped: list[tuple[str, str]] = []
    has_subjects = True
    files: list[Path] = []
    order: list[str] | None = None
    if ds.kind == "phantom":
        items, order, params = _phantom(ds.options)
        fp_parts = [f"phantom-v{phantom.VERSION}", repr(sorted(params.items()))]
    elif ds.kind == "folder":
        items = _folder(ds.path, skipped)  # type: ignore[arg-type]
        has_subjects = False
        fp_parts = []
    elif ds.kind == "csv":
        items, has_subjects = _csv(ds.path, ds.options, skip_bad, skipped)  # type: ignore[arg-type]
        files.append(ds.path)  # type: ignore[arg-type]
        fp_parts = []
    else:
        files.append(ds.path)  # type: ignore[arg-type]
        items = _mat(ds.path)  # type: ignore[arg-type]
        fp_parts = []

    bin_list = parse_bins(bins)
    if bin_list is not None:
        items = _apply_bins(items, bin_list, skipped)
        order = [n for n, _ in bin_list]
        fp_parts.append(f"bins={bin_list}")
    found = sorted({it.label for it in items})
    if order is not None:
        found = [c for c in order if c in found]
    if len(found) < min_classes:
        hint = ""
        if ds.kind == "folder" and len(found) == 1:
            hint = f"; did you mean {ds.path / found[0]}?"
        raise DataError(
            f"{ds.text} has {len(found)} class ({', '.join(found) or 'none'}); at least "
            f"{min_classes} are needed (one subfolder or label per class){hint}"
        )
    if classes:
        wanted = [c.strip() for c in classes if c.strip()]
        for c in wanted:
            if c not in found:
                raise UnknownNameError(f"class in {ds.text}", c, found)
        found = wanted
        keep = set(wanted)
        items = [it for it in items if it.label in keep]
    rank = {c: i for i, c in enumerate(found)}
    items.sort(key=lambda it: rank[it.label])  # stable: source order within a class
    for it in items:
        if it.subject is None:
            it.subject = it.id
        if it.path is not None:
            files.append(it.path)
    if ds.kind != "phantom":
        root = ds.path.parent if ds.path.is_file() else ds.path  # type: ignore[union-attr]
        for f in sorted(set(files)):
            try:
                rel = f.relative_to(root).as_posix()
            except ValueError:
                rel = str(f)
            fp_parts.append(f"{rel}:{_file_digest(f)}")
    fp_parts.append(f"classes={found}")
    return SourceIndex(
        spec=ds,
        items=items,
        class_names=found,
        skipped=skipped,
        fingerprint=_fingerprint(fp_parts),
        has_subjects=has_subjects,
    )


def decode(item: Item) -> np.ndarray:
    """The item's pixels as a 2-D uint8 array; a bad file is a `DataError` naming it."""
    if item.array is not None:
        a = np.asarray(item.array)
        if a.dtype != np.uint8:
            a = np.clip(a, 0, 255).astype(np.uint8)
        gray = a
    else:
        path = item.path
        assert path is not None
        if path.stat().st_size == 0:
            raise DataError(f"{path} is empty (0 bytes)")
        try:
            with Image.open(path) as img:
                img.load()
                gray = to_gray(img)
        except UnidentifiedImageError:
            raise DataError(f"{path} is not a readable image (corrupt or not an image)") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise DataError(f"{path} is truncated or corrupt ({err})") from None
    h, w = gray.shape[:2]
    if min(h, w) < MIN_SIZE:
        where = item.path if item.path is not None else item.id
        raise DataError(f"{where} is {w}x{h}; images must be at least {MIN_SIZE} px on each side")
    return gray

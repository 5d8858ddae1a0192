"""CSV manifest source: a header ``path,label[,subject]`` and one row per image."""

from __future__ import annotations

import csv
from pathlib import Path

from ...errors import DataError
from .base import DataSpec, Item, Listing, Skipped, SourceKind

COLUMNS = {
    "path": ("path", "file", "filename", "image"),
    "label": ("label", "class"),
    "subject": ("subject", "subject_id", "patient", "patient_id"),
}


def _pick_column(columns: list[str], role: str, given: str | None, csv_path: Path) -> str | None:
    if given is not None:
        if given not in columns:
            raise DataError(
                f"{csv_path}: no column {given!r} for {role} (columns: {', '.join(columns)})"
            )
        return given
    lower = {c.lower().strip(): c for c in columns}
    for name in COLUMNS[role]:
        if name in lower:
            return lower[name]
    return None


def list_manifest(spec: DataSpec, skip_bad: bool = False) -> Listing:
    """Items of a CSV manifest (paths relative to it); extra columns go to ``meta``."""
    path, options = spec.path, spec.options
    assert path is not None
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    if not columns:
        raise DataError(
            f"{path} is empty; expected a header path,label[,subject] and one row per image"
        )
    cols = {role: _pick_column(columns, role, options.get(role), path) for role in COLUMNS}
    for role in ("path", "label"):
        if cols[role] is None:
            raise DataError(
                f"{path}: no {role} column (columns: {', '.join(columns)}); expected "
                f"path,label[,subject], or name them: {path.name}:path=COL,label=COL,subject=COL"
            )
    if not rows:
        raise DataError(f"{path} lists no images")
    used = {c for c in cols.values() if c}
    skipped: Skipped = []
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
    return Listing(
        items=items, skipped=skipped, has_subjects=cols["subject"] is not None, files=[path]
    )


KIND = SourceKind(
    name="csv",
    what="a CSV manifest",
    what_long="a CSV manifest (.csv)",
    list_items=list_manifest,
    options={
        "path": "column holding image paths (default: path, file or filename)",
        "label": "column holding labels (default: label or class)",
        "subject": "column holding subject ids (default: subject, subject_id or patient)",
    },
    suffixes=frozenset({".csv"}),
)

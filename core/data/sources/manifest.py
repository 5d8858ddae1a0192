"""CSV manifest source: a header ``path,label[,subject]`` and one row per image.

UTF-8 (a BOM is fine); the delimiter (``,``, ``;`` or tab) is taken from the header line.
Paths are relative to the CSV's folder (``../images/x.png`` is fine: a labels folder beside
an images folder) or absolute (a cluster's shared storage). Reading anywhere is safe: what
usgan writes never takes its path from a manifest (class labels are checked names).
"""

from __future__ import annotations

import csv
import io
import os
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


DELIMITERS = (",", ";", "\t")


def _read_text(path: Path) -> str:
    """The CSV's text (UTF-8, BOM allowed); bad bytes are an error naming the line."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read the CSV ({err.strerror or err})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line} is not UTF-8 text (byte 0x{raw[err.start]:02x}); save the CSV "
            "as UTF-8"
        ) from None


def _delimiter(text: str) -> str:
    """``,``, ``;`` or tab: the one the header line uses most (``,`` on a tie or none)."""
    header = text.split("\n", 1)[0]
    return max(DELIMITERS, key=lambda d: (header.count(d), d == ","))


def _locate(root: Path, rel: str) -> Path:
    """``rel`` as written: relative to ``root`` (the CSV's folder), or absolute."""
    return Path(rel) if Path(rel).is_absolute() else root / rel


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name too long for the file system
        return False


def _rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(line, row)`` pairs; malformed CSV is a `DataError` naming the line."""
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        columns = list(reader.fieldnames or [])
        rows = [(reader.reader.line_num, row) for row in reader]
    except csv.Error as err:  # the underlying reader counts the line that failed
        raise DataError(f"{path}: line {reader.reader.line_num} is not valid CSV ({err})") from None
    return columns, rows


def list_manifest(spec: DataSpec, skip_bad: bool = False) -> Listing:
    """Items of a CSV manifest (paths relative to its folder, or absolute); extra columns to
    meta."""
    path, options = spec.path, spec.options
    assert path is not None
    columns, rows = _rows(path)
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
    items, missing = [], []
    seen: dict[str, int] = {}
    for n, row in rows:
        rel = (row.get(cols["path"]) or "").strip()  # type: ignore[arg-type]
        label = (row.get(cols["label"]) or "").strip()  # type: ignore[arg-type]
        if not rel or not label:
            raise DataError(f"{path}: line {n} has an empty {'path' if not rel else 'label'}")
        file = _locate(path.parent, rel)
        if not _is_file(file):
            missing.append((n, rel))
            if skip_bad:
                skipped.append((rel, "listed in the CSV but missing"))
            continue
        key = os.path.normpath(os.path.abspath(file))
        if key in seen:
            raise DataError(
                f"{path}: line {n} lists {rel!r} a second time (first on line {seen[key]})"
            )
        seen[key] = n
        subject = (row.get(cols["subject"]) or "").strip() if cols["subject"] else ""
        meta = {k: v for k, v in row.items() if k not in used and k is not None}
        items.append(
            Item(
                id=rel,
                label=label,
                subject=subject or None,
                meta=meta,
                path=file,
                origin=f"{path}, line {n}",
            )
        )
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

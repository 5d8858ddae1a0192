"""Data specs: one string naming a data source, ``SOURCE[:key=value,...]``.

``phantom`` (or ``phantom:n=200,seed=3``), a folder of class subfolders, a CSV manifest
(``labels.csv`` or ``labels.csv:subject=byra_id``), or a Byra et al. ``.mat`` file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError, UnknownNameError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
_OPTIONS = re.compile(r"^[A-Za-z_]\w*=[^,=]*(,[A-Za-z_]\w*=[^,=]*)*$")

KNOWN_OPTIONS: dict[str, dict[str, str]] = {
    "phantom": {
        "n": "images per class (default 100)",
        "seed": "random seed (default 0)",
        "size": "simulated image side in pixels (default 256)",
        "frames": "frames per simulated subject (default 10)",
        "grade": "steatosis grade of the 'steatosis' class, 0..1 (default 1)",
        "classes": "'+'-separated subset of healthy+steatosis",
    },
    "folder": {},
    "csv": {
        "path": "column holding image paths (default: path, file or filename)",
        "label": "column holding labels (default: label or class)",
        "subject": "column holding subject ids (default: subject, subject_id or patient)",
    },
    "mat": {},
}


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: ``kind`` in phantom/folder/csv/mat, a path and options."""

    text: str
    kind: str
    path: Path | None = None
    options: dict[str, str] = field(default_factory=dict)


def _split_options(text: str) -> tuple[str, dict[str, str]]:
    head, sep, tail = text.rpartition(":")
    if not sep or not _OPTIONS.match(tail) or not head or re.fullmatch(r"[A-Za-z]", head):
        return text, {}
    opts = {}
    for part in tail.split(","):
        key, _, value = part.partition("=")
        opts[key.strip()] = value.strip()
    return head, opts


def parse_spec(spec: str) -> DataSpec:
    """Parse a data spec; a missing path or an unknown option is a `DataError`."""
    text = spec.strip()
    if not text:
        raise DataError("empty data spec; give 'phantom', a folder, a CSV manifest or a .mat file")
    source, options = _split_options(text)
    if source == "phantom":
        kind, path = "phantom", None
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(
                f"data source {source!r} does not exist; give 'phantom', a folder with one "
                "subfolder per class, a CSV manifest (.csv) or a .mat file"
            )
        if path.is_dir():
            kind = "folder"
        elif path.suffix.lower() == ".csv":
            kind = "csv"
        elif path.suffix.lower() == ".mat":
            kind = "mat"
        else:
            raise DataError(
                f"data source {source!r} is a {path.suffix or 'extensionless'} file; expected a "
                "folder with one subfolder per class, a CSV manifest (.csv) or a .mat file"
            )
    known = KNOWN_OPTIONS[kind]
    for key in options:
        if key not in known:
            raise UnknownNameError(f"option of a {kind} data spec", key, known)
    return DataSpec(text=text, kind=kind, path=path, options=options)

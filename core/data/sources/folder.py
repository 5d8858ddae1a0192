"""Folder source: one subfolder per class (nested folders allowed), images anywhere below.

Symlinked folders are followed, except one that points back to a folder above it (a loop: the
link is skipped and reported); broken links are reported too. Files beside the class folders
that are plainly not data (README, LICENSE, checksums, provenance notes, ``*.txt``, ``*.md``,
``*.json``, ``*.csv``, ...) are ignored without a report.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ...errors import DataError
from .base import IMAGE_SUFFIXES, DataSpec, Item, Listing, Skipped, SourceKind

# Top-level files that are documentation or bookkeeping, not data (matched case-insensitively).
NOT_DATA_NAMES = frozenset(
    {"readme", "license", "licence", "copying", "notice", "authors", "citation", "provenance",
     "changelog", "sha256sums", "sha1sums", "md5sums", "checksums", "manifest"}
)
NOT_DATA_SUFFIXES = frozenset(
    {".txt", ".md", ".rst", ".json", ".csv", ".tsv", ".yaml", ".yml", ".cff", ".sha256",
     ".md5", ".html", ".pdf"}
)


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def not_data(name: str) -> bool:
    """Whether a top-level file name is documentation or bookkeeping (README, SHA256SUMS, ...)."""
    lower = name.lower()
    return lower.split(".", 1)[0] in NOT_DATA_NAMES or os.path.splitext(lower)[1] in (
        NOT_DATA_SUFFIXES
    )


def _dead_link(path: Path) -> str | None:
    """``"symlink loop"`` / ``"broken symlink"`` for a link that leads nowhere, else None."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as err:
        return "symlink loop" if err.errno == errno.ELOOP else "broken symlink"
    return None


def _loops(target: str, here: str, chain: frozenset[str]) -> bool:
    """Whether a folder link to real path ``target``, seen in ``here``, leads back up."""
    return target in chain or here == target or here.startswith(target.rstrip(os.sep) + os.sep)


def _walk(cdir: Path, root: Path, skipped: Skipped, skip_bad: bool) -> list[Path]:
    """Every file below ``cdir``, following symlinked folders that do not loop."""
    files: list[Path] = []
    start = os.path.realpath(cdir)
    stack: list[tuple[Path, str, frozenset[str]]] = [(cdir, start, frozenset({start}))]
    while stack:
        folder, here, chain = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as err:
            msg = f"{folder}: cannot list the folder ({err.strerror or err})"
            if not skip_bad:
                raise DataError(msg + "; fix its permissions or pass --skip-bad") from None
            skipped.append((folder.relative_to(root).as_posix(), f"bad: {msg}"))
            continue
        for entry in entries:
            path = Path(entry.path)
            rel = path.relative_to(root).as_posix()
            dead = _dead_link(path) if entry.is_symlink() else None
            if dead is not None:
                skipped.append((rel, dead))
            elif entry.is_dir():
                real = os.path.realpath(path)
                if entry.is_symlink() and _loops(real, here, chain):
                    skipped.append((rel, "symlink loop"))
                else:
                    stack.append((path, real, chain | {real}))
            elif entry.is_file():
                files.append(path)
            else:
                skipped.append((rel, "not a regular file"))
    return sorted(files)


def list_folder(spec: DataSpec, skip_bad: bool = False) -> Listing:
    """Items of a folder: the class is the top-level subfolder; no subject ids."""
    root = spec.path
    assert root is not None
    skipped: Skipped = []
    items: list[Item] = []
    class_dirs = []
    loose_images = 0
    try:
        entries = sorted(root.iterdir())
    except OSError as err:
        raise DataError(f"{root}: cannot list the folder ({err.strerror or err})") from None
    for entry in entries:
        rel = entry.relative_to(root).as_posix()
        dead = _dead_link(entry)
        if entry.name.startswith("."):
            skipped.append((rel, "hidden"))
        elif dead is not None:
            skipped.append((rel, dead))
        elif entry.is_dir():
            class_dirs.append(entry)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            loose_images += 1
            skipped.append((rel, "image outside the class subfolders"))
        elif not not_data(entry.name):
            skipped.append((rel, "not an image"))
    if not class_dirs:
        if loose_images:
            raise DataError(
                f"folder {root} has images but no class subfolders; put them in one subfolder per "
                f"class ({root}/healthy/..., {root}/nafld/...) or list them in a CSV manifest"
            )
        raise DataError(f"folder {root} is empty: no class subfolders with images")
    for cdir in class_dirs:
        for path in _walk(cdir, root, skipped, skip_bad):
            rel_path = path.relative_to(root)
            if _hidden(path.relative_to(cdir)):
                skipped.append((rel_path.as_posix(), "hidden"))
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append((rel_path.as_posix(), "not an image"))
            else:
                items.append(
                    Item(id=rel_path.as_posix(), label=cdir.name, path=path, origin=str(cdir))
                )
    if not items:
        raise DataError(
            f"folder {root} has no images (PNG, JPEG, BMP, TIFF) in its class subfolders "
            f"({', '.join(d.name for d in class_dirs)})"
        )
    return Listing(items=items, skipped=skipped, has_subjects=False)


def _one_class_hint(spec: DataSpec, found: str) -> str:
    assert spec.path is not None
    return f"; did you mean {spec.path / found}?"


KIND = SourceKind(
    name="folder",
    what="a folder",
    what_long="a folder with one subfolder per class",
    list_items=list_folder,
    is_dir=True,
    one_class_hint=_one_class_hint,
)

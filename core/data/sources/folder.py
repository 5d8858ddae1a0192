"""Folder source: one subfolder per class (nested folders allowed), images anywhere below."""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from .base import IMAGE_SUFFIXES, DataSpec, Item, Listing, Skipped, SourceKind


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def list_folder(spec: DataSpec, skip_bad: bool = False) -> Listing:
    """Items of a folder: the class is the top-level subfolder; no subject ids."""
    root = spec.path
    assert root is not None
    skipped: Skipped = []
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
            rel_path = path.relative_to(root)
            if _hidden(path.relative_to(cdir)):
                if path.is_file():
                    skipped.append((rel_path.as_posix(), "hidden"))
                continue
            if not path.is_file():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append((rel_path.as_posix(), "not an image"))
                continue
            items.append(Item(id=rel_path.as_posix(), label=cdir.name, path=path))
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

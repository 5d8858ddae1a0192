"""Data sources: list the items of a spec (ids, labels, subjects) without decoding pixels.

`load_index` is cheap (it reads manifests and directory listings, and hashes the files for the
fingerprint), so splitting works on any source; `decode` reads one item's pixels.

One module per source kind; each declares a `SourceKind` as ``KIND``. Adding a kind is adding
a module and one line in `KINDS`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ...errors import ConfigError, DataError, UnknownNameError
from ...names import printable, safe_name
from . import folder, manifest, mat, phantom
from .base import (
    IMAGE_SUFFIXES,
    Bins,
    DataSpec,
    Item,
    Listing,
    Skipped,
    SourceIndex,
    SourceKind,
    apply_bins,
    decode,
    decode_noted,
    file_digest,
    fingerprint,
    parse_bins,
)

# The source kinds, in the order a spec is matched against them and error messages list them.
KINDS: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (
        phantom.KIND,
        folder.KIND,
        manifest.KIND,
        mat.KIND,
    )
}

__all__ = [
    "IMAGE_SUFFIXES",
    "KINDS",
    "Bins",
    "DataSpec",
    "Item",
    "Listing",
    "SourceIndex",
    "SourceKind",
    "decode",
    "decode_noted",
    "kind_of",
    "load_index",
    "one_line_errors",
    "parse_bins",
]

F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(fn: F) -> F:
    """Re-raise a `DataError` whose message is not one printable line as one that is.

    Messages quote paths (which may hold non-UTF-8 bytes) and library errors (which may hold
    newlines); the CLI prints the message as one line.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DataError as err:
            text = str(err)
            clean = printable(text)
            if clean == text:
                raise
            raise DataError(clean) from None

    return wrapper  # type: ignore[return-value]


def kind_of(spec: DataSpec) -> SourceKind:
    """The `SourceKind` of a parsed spec."""
    return KINDS[spec.kind]


def _check_labels(items: list[Item], ds: DataSpec) -> None:
    """Every class label must be a safe folder name (`usgan.core.names.safe_name`)."""
    seen: set[str] = set()
    for it in items:
        if it.label in seen:
            continue
        seen.add(it.label)
        try:
            safe_name(it.label, "class label")
        except ConfigError as err:
            raise DataError(f"{it.origin or ds.text}: {err}") from None


def _digests(
    items: list[Item], skip_bad: bool, skipped: Skipped
) -> tuple[list[Item], dict[Path, str]]:
    """The items whose file can be read, and each file's digest; unreadable: error or skip."""
    digests: dict[Path, str] = {}
    kept = []
    for it in items:
        if it.path is not None and it.path not in digests:
            try:
                digests[it.path] = file_digest(it.path)
            except OSError as err:
                msg = f"{it.path}: cannot read the file ({err.strerror or err})"
                if not skip_bad:
                    raise DataError(msg + "; fix its permissions or pass --skip-bad") from None
                skipped.append((it.id, f"bad: {msg}"))
                continue
        kept.append(it)
    return kept, digests


@one_line_errors
def load_index(
    spec: str | DataSpec = "phantom",
    classes: Sequence[str] | None = None,
    bins: str | Sequence[Any] | None = None,
    skip_bad: bool = False,
    min_classes: int = 2,
) -> SourceIndex:
    """The items of ``spec``: labels (binned if ``bins``), selected and ordered by ``classes``."""
    # spec.py imports this package (for KINDS), so parse_spec is imported when called.
    from ..spec import parse_spec

    ds = spec if isinstance(spec, DataSpec) else parse_spec(spec)
    kind = kind_of(ds)
    listing: Listing = kind.list_items(ds, skip_bad)
    items, skipped = listing.items, list(listing.skipped)
    order = listing.class_order
    fp_parts = list(listing.fingerprint)
    files: list[Path] = list(listing.files)

    bin_list = parse_bins(bins)
    if bin_list is not None:
        items = apply_bins(items, bin_list, skipped)
        order = [n for n, _ in bin_list]
        fp_parts.append(f"bins={bin_list}")
    _check_labels(items, ds)
    found = sorted({it.label for it in items})
    if order is not None:
        found = [c for c in order if c in found]
    if len(found) < min_classes:
        hint = ""
        if kind.one_class_hint is not None and len(found) == 1:
            hint = kind.one_class_hint(ds, found[0])
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
    items, digests = _digests(items, skip_bad, skipped)
    for it in items:
        if it.subject is None:
            it.subject = it.id
    if ds.path is not None:
        root = ds.path.parent if ds.path.is_file() else ds.path
        for f in files:
            digests.setdefault(f, file_digest(f))
        for f in sorted(digests):
            try:
                rel = f.relative_to(root).as_posix()
            except ValueError:
                rel = str(f)
            fp_parts.append(f"{rel}:{digests[f]}")
    fp_parts.append(f"classes={found}")
    return SourceIndex(
        spec=ds,
        items=items,
        class_names=found,
        skipped=skipped,
        fingerprint=fingerprint(fp_parts),
        has_subjects=listing.has_subjects,
    )

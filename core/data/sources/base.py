"""What every source kind shares: specs, items, the kind record, bins and hashing.

A source kind is a `SourceKind` record (name, options, how a spec names it, how it lists its
items); the table of kinds is `usgan.core.data.sources.KINDS`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, DataError
from ...names import safe_name
from .images import decode, decode_noted  # noqa: F401  (decoding lives in images.py)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})

Bins = list[tuple[str, float]]  # (class name, lower bound), sorted by bound
Skipped = list[tuple[str, str]]  # (item id or path, reason)


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: ``kind`` (a name in `KINDS`), a path and options."""

    text: str
    kind: str
    path: Path | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class Item:
    """One image of a source: its id, class, subject, metadata and where its pixels are."""

    id: str
    label: str
    subject: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    array: np.ndarray | None = None
    origin: str | None = None  # where it is listed, for messages ("labels.csv, line 5")


@dataclass
class SourceIndex:
    """The items of a data spec, before decoding."""

    spec: DataSpec
    items: list[Item]
    class_names: list[str]
    skipped: Skipped
    fingerprint: str
    has_subjects: bool


@dataclass
class Listing:
    """What a kind's lister returns: items in source order, plus what `load_index` needs.

    ``files`` are hashed into the fingerprint besides the items' own paths (a manifest, a .mat
    file); ``fingerprint`` are extra leading fingerprint parts (generator parameters);
    ``class_order`` fixes the class order instead of sorting by name.
    """

    items: list[Item]
    skipped: Skipped = field(default_factory=list)
    has_subjects: bool = True
    files: list[Path] = field(default_factory=list)
    fingerprint: list[str] = field(default_factory=list)
    class_order: list[str] | None = None


@dataclass(frozen=True)
class SourceKind:
    """One kind of data source, as a row of the `KINDS` table.

    A spec names the kind by being the word ``name`` (``takes_path=False``), or by a path that
    is a directory (``is_dir``) or a file with one of ``suffixes``. ``what``/``what_long`` name
    it in error messages ("a CSV manifest" / "a CSV manifest (.csv)").
    """

    name: str
    what: str
    what_long: str
    list_items: Callable[[DataSpec, bool], Listing]  # (spec, skip_bad) -> Listing
    options: dict[str, str] = field(default_factory=dict)  # option -> help text
    takes_path: bool = True
    is_dir: bool = False
    suffixes: frozenset[str] = frozenset()
    # All pixels at once, 2-D uint8 per item in index order (else `decode` per item).
    pixels: Callable[[SourceIndex], Sequence[np.ndarray]] | None = None
    detect_sector: bool = True  # False: images are already cropped to the sector
    # Extra text for "has 1 class" errors, given the spec and the one class found.
    one_class_hint: Callable[[DataSpec, str], str] | None = None

    def matches(self, path: Path) -> bool:
        """Whether an existing ``path`` is a source of this kind."""
        if not self.takes_path:
            return False
        if path.is_dir():
            return self.is_dir
        return path.suffix.lower() in self.suffixes


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
    for name, _ in out:
        try:
            safe_name(name, "class name")
        except ConfigError as err:
            raise DataError(f"--bins {bins!r}: {err}") from None
    if len({n for n, _ in out}) != len(out) or len({b for _, b in out}) != len(out):
        raise DataError(f"--bins {bins!r} repeats a name or a bound")
    return out


def apply_bins(items: list[Item], bins: Bins, skipped: Skipped) -> list[Item]:
    """Relabel items by grade bin (grade kept in ``meta``); grades below every bin are skipped."""
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


def file_digest(path: Path) -> str:
    """blake2b (16 bytes) of a file's contents, hex."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(parts: Sequence[str]) -> str:
    """blake2b (16 bytes) of NUL-separated ``parts``, hex."""
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode("utf-8", "surrogateescape"))  # file names need not be UTF-8
        h.update(b"\0")
    return h.hexdigest()

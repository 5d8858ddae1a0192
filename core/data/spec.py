"""Data specs: one string naming a data source, ``SOURCE[:key=value,...]``.

``phantom`` (or ``phantom:n=200,seed=3``), a folder of class subfolders, a CSV manifest
(``labels.csv`` or ``labels.csv:subject=byra_id``), or a Byra et al. ``.mat`` file. The kinds,
their options and how a path is recognised come from the table `sources.KINDS`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import DataError, UnknownNameError
from ..io import FileFormatError, user_path
from .sources import KINDS
from .sources.base import IMAGE_SUFFIXES, DataSpec

__all__ = ["IMAGE_SUFFIXES", "KNOWN_OPTIONS", "DataSpec", "parse_spec"]

_OPTIONS = re.compile(r"^[A-Za-z_]\w*=[^,=]*(,[A-Za-z_]\w*=[^,=]*)*$")

# kind -> option -> help text (a view of the table).
KNOWN_OPTIONS: dict[str, dict[str, str]] = {name: dict(k.options) for name, k in KINDS.items()}


def _either(names: Sequence[str]) -> str:
    """``a, b, c or d``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


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
        raise DataError(f"empty data spec; give {_either([k.what for k in KINDS.values()])}")
    source, options = _split_options(text)
    named = [k for k in KINDS.values() if not k.takes_path and k.name == source]
    path: Path | None = None
    if named:
        kind = named[0]
    else:
        try:
            path = user_path(source, "data source")
        except FileFormatError as err:
            raise DataError(str(err)) from None
        if not path.exists():
            raise DataError(
                f"data source {source!r} does not exist; give "
                f"{_either([k.what_long for k in KINDS.values()])}"
            )
        found = [k for k in KINDS.values() if k.matches(path)]
        if not found:
            expected = _either([k.what_long for k in KINDS.values() if k.takes_path])
            raise DataError(
                f"data source {source!r} is a {path.suffix or 'extensionless'} file; "
                f"expected {expected}"
            )
        kind = found[0]
    for key in options:
        if key not in kind.options:
            raise UnknownNameError(f"option of a {kind.name} data spec", key, kind.options)
    return DataSpec(text=text, kind=kind.name, path=path, options=options)

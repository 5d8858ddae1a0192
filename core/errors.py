"""Error types: every user-facing failure is a `UsganError` with a one-line message."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UsganError(Exception):
    """A failure the user can act on; the CLI prints `str(err)` as one line, no traceback."""


class UnknownNameError(UsganError, KeyError):
    """A name (model, class, option) that is not known."""

    def __init__(self, what: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        msg = f"unknown {what} {name!r}; known: {', '.join(known) or '(none)'}"
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        super().__init__(msg)
        self.name = name
        self.known = known

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class PluginError(UsganError):
    """A plugin failed to load or register, or two plugins claim the same name."""


class DuplicateNameError(PluginError):
    """Two plugins register the same name."""


class ShapeMismatchError(UsganError, ValueError):
    """Two networks cannot be composed: sizes or channels do not match."""


class ConfigError(UsganError, ValueError):
    """A network or run configuration is invalid."""


class DataError(UsganError, ValueError):
    """A data source, image, manifest or split file cannot be used as given."""

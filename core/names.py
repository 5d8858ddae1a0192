"""Names that become folder and file names (class labels, run names), and printable text.

`safe_name` refuses what would break or escape a path component; `printable` turns any text
(paths with non-UTF-8 bytes, messages quoting a file's contents) into one printable line.
"""

from __future__ import annotations

import unicodedata

from .errors import ConfigError

MAX_NAME_LENGTH = 64
RULE = (
    f"names become folder and file names: at most {MAX_NAME_LENGTH} characters, no '/', '\\', "
    "NUL or control characters, not '.', '..' or starting with '.' (letters, digits, spaces and "
    "- _ . + ( ) , are fine)"
)
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})  # control characters, line/paragraph separators


def _problem(text: object) -> str | None:
    """Why ``text`` is not a safe path component, or None."""
    if not isinstance(text, str):
        return f"it is {type(text).__name__}, not text"
    if text == "":
        return "it is empty"
    if not text.strip():
        return "it is only spaces"
    if text in (".", ".."):
        return "'.' and '..' are not names"
    for ch in text:
        if ch in "/\\":
            return f"it contains {ch!r}"
        if ch == "\0":
            return "it contains NUL"
        cat = unicodedata.category(ch)
        if cat in _LINE_BREAKING:
            return f"it contains a control character ({ch!r})"
        if cat == "Cs":
            return "it contains bytes that are not UTF-8 text"
    if text.startswith("."):
        return "it starts with '.'"
    if len(text) > MAX_NAME_LENGTH:
        return f"it is {len(text)} characters long"
    return None


def safe_name(text: str, what: str) -> str:
    """``text`` unchanged if it is safe as one path component, else a `ConfigError`.

    ``what`` names it in the message ("class label", "run name"). Refused: empty or blank,
    ``.``/``..``, ``/``, ``\\``, NUL, control characters, non-UTF-8 bytes (surrogate escapes),
    a leading ``.``, more than `MAX_NAME_LENGTH` characters.
    """
    problem = _problem(text)
    if problem is not None:
        raise ConfigError(f"{what} {text!r} is not allowed ({problem}); {RULE}")
    return text


def printable(text: object) -> str:
    """``text`` as one printable line: non-UTF-8 bytes as ``\\xff``, control characters escaped.

    Paths from the file system may hold bytes that are not UTF-8 (Python keeps them as
    surrogate escapes, which cannot be printed); messages may quote a file's contents.
    """
    raw = str(text)
    try:
        s = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        s = raw.encode("utf-8", "backslashreplace").decode("utf-8")
    if s.isprintable():
        return s
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in s
    )

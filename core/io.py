"""File plumbing shared by every module that reads or writes: one place for each.

- `write_atomic` / `write_json` / `write_png`: a temporary file in the same folder, fsync,
  rename; a failed write leaves the old file (if any) as it was and no partial file behind.
- `write_image` / `write_grid`: the one way a grayscale image tensor (uint8, or float in
  [-1, 1]) or a grid of them becomes a PNG, through `write_png`.
- `read_json`: a JSON document with one clear error line for a missing, non-UTF-8 or invalid
  file.
- `save_safetensors` / `read_safetensors`: tensors plus string metadata, never pickle. The
  reader checks the header (keys, dtypes, shapes) against what the caller expects *before*
  any tensor is allocated, and refuses anything that is not safetensors; `metadata_json`
  reads a JSON value from the metadata.
- `write_markdown_section`: the generated part of a Markdown page between two marker lines
  (`usgan bench --markdown`, `usgan reproduce --report`), the text around it kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .errors import UsganError

PathLike = str | os.PathLike[str]

# safetensors dtype names -> torch dtypes (the ones usgan writes or accepts).
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


class FileFormatError(UsganError):
    """A file is missing, unreadable, or not what it should be."""


def user_path(text: str, what: str) -> Path:
    """A path typed by a user: ``~`` expanded where it names a home directory; control
    characters (NUL included, which no file system takes) are a `FileFormatError`."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise FileFormatError(f"{what} {text!r} contains control characters")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~user of no such user
        return Path(text)


def write_atomic(path: PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename."""
    path = Path(path)
    blob = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise FileFormatError(f"could not write {path}: {err.strerror or err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return path


def splice_markdown(text: str | None, section: str, begin: str, end: str,
                    title: str) -> str:
    """``text`` with the generated section between the ``begin`` and ``end`` marker lines
    replaced (appended when it has no markers); a new page under ``title`` without text."""
    block = f"{begin}\n{section}{end}\n"
    if not text:
        return f"{title}\n\n{block}"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        return text.rstrip("\n") + "\n\n" + block
    rest = text[stop + len(end):]
    return text[:start] + block + (rest[1:] if rest.startswith("\n") else rest)


def write_markdown_section(path: PathLike, section: str, begin: str, end: str,
                           title: str) -> Path:
    """Rewrite the generated section of the Markdown page ``path`` (`splice_markdown`),
    keeping the text around it."""
    path = Path(path)
    old = path.read_text() if path.is_file() else None
    return write_atomic(path, splice_markdown(old, section, begin, end, title))


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: PathLike, data: Any) -> Path:
    """``data`` as indented, key-sorted JSON, written atomically."""
    return write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_png(path: PathLike, image: Any, optimize: bool = False) -> Path:
    """A PIL image as a PNG, written atomically (a failed write leaves no partial PNG);
    ``optimize``: smaller files, slower (figures kept in git)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=optimize)
    return write_atomic(path, buffer.getvalue())


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images as uint8: unchanged when they are, else from [-1, 1] (clamped, rounded)."""
    if images.dtype == torch.uint8:
        return images
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def write_image(path: PathLike, image: torch.Tensor) -> Path:
    """One grayscale image ``[1, H, W]`` (uint8, or float in [-1, 1]) as a PNG."""
    from PIL import Image

    return write_png(path, Image.fromarray(as_uint8(image)[0].cpu().numpy()))


def write_grid(path: PathLike, images: torch.Tensor, nrow: int, padding: int = 2,
               pad_value: int = 255) -> Path:
    """Grayscale images ``[N, 1, H, W]`` (uint8, or float in [-1, 1]) as one PNG grid of
    ``nrow`` images a row, ``padding`` pixels of ``pad_value`` (0-255) between them."""
    from torchvision.utils import make_grid

    grid = make_grid(as_uint8(images).cpu(), nrow=nrow, padding=padding, pad_value=pad_value)
    return write_image(path, grid[:1])


def read_json(path: PathLike, what: str = "JSON file") -> Any:
    """The JSON document at ``path``; any problem is one `FileFormatError` line naming it."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such {what}") from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{path}: {what} is not UTF-8 text") from None
    except OSError as err:
        raise FileFormatError(f"{path}: cannot read {what} ({err.strerror or err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise FileFormatError(f"{path}: {what} is not valid JSON ({err})") from None
    except RecursionError:
        raise FileFormatError(f"{path}: {what} is nested too deeply to be one usgan "
                              "wrote; restore it or start over") from None


def save_safetensors(
    path: PathLike, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write ``tensors`` (copied to contiguous CPU memory) and ``metadata`` atomically."""
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return write_atomic(path, save(plain, metadata=dict(metadata or {})))


def metadata_json(path: PathLike, metadata: Mapping[str, str], key: str, what: str) -> Any:
    """The JSON value stored under ``key`` in a safetensors file's metadata."""
    if key not in metadata:
        raise FileFormatError(f"{path}: safetensors file has no {what} metadata")
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError:
        raise FileFormatError(f"{path}: its {what} metadata is not JSON") from None
    except RecursionError:
        raise FileFormatError(f"{path}: its {what} metadata is nested too deeply to be "
                              "usgan's") from None


PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
_NO_PICKLE = ("usgan loads only safetensors, because unpickling a file can run any code in "
              "it; convert it to safetensors where you trust it")


def refuse_pickle(path: PathLike) -> None:
    """A `FileFormatError` for a file whose name says it is a pickle (.pt, .pth, .bin, ...)."""
    if Path(path).suffix.lower() in PICKLE_SUFFIXES:
        raise FileFormatError(f"{path} is a PyTorch/pickle file; {_NO_PICKLE}")


def _open(path: Path) -> Any:
    refuse_pickle(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        return safe_open(str(path), framework="pt")
    except (SafetensorError, OSError, ValueError) as err:
        with open(path, "rb") as f:
            head = f.read(2)
        if head in (b"PK", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
            raise FileFormatError(f"{path} holds a PyTorch/pickle file, not safetensors; "
                                  f"{_NO_PICKLE}") from None
        raise FileFormatError(f"{path}: not a readable safetensors file ({err})") from None


def read_safetensors_metadata(path: PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file, reading no tensor."""
    path = Path(path)
    with _open(path) as f:
        return dict(f.metadata() or {})


def read_safetensors(
    path: PathLike,
    expect: Mapping[str, tuple[tuple[int, ...], torch.dtype]] | None = None,
    device: str = "cpu",
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file.

    With ``expect`` (name -> (shape, dtype)), the header must list exactly those tensors with
    those shapes and dtypes; that is checked before any tensor is read.
    """
    path = Path(path)
    with _open(path) as f:
        keys = list(f.keys())
        if expect is not None:
            _check_header(path, f, keys, expect)
        try:
            tensors = {k: f.get_tensor(k).to(device) for k in keys}
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise FileFormatError(f"{path}: damaged safetensors file ({err})") from None
        return tensors, dict(f.metadata() or {})


def _check_header(
    path: Path, f: Any, keys: list[str],
    expect: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
) -> None:
    missing = sorted(set(expect) - set(keys))
    extra = sorted(set(keys) - set(expect))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]!r})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[0]!r})")
        raise FileFormatError(f"{path}: tensors do not match: {', '.join(parts)}")
    for key in keys:
        piece = f.get_slice(key)
        shape, dtype = tuple(piece.get_shape()), _DTYPES.get(piece.get_dtype())
        want_shape, want_dtype = expect[key]
        if shape != tuple(want_shape):
            raise FileFormatError(
                f"{path}: tensor {key!r} has shape {list(shape)}, expected {list(want_shape)}"
            )
        if dtype is None or (dtype.is_floating_point != want_dtype.is_floating_point):
            raise FileFormatError(
                f"{path}: tensor {key!r} has dtype {piece.get_dtype()}, expected {want_dtype}"
            )

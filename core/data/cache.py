"""On-disk cache of preprocessed datasets: one safetensors file per (source, options) key.

The key hashes the source's contents (every file), the spec options and the preprocessing
options, so a changed file or option misses the cache. Files are written atomically
(`usgan.core.io.save_safetensors`); a cache file that cannot be read, or cannot be written, is
ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..io import FileFormatError, metadata_json, read_safetensors, save_safetensors

META_KEY = "usgan_data"


def default_cache_dir() -> Path:
    """``$USGAN_CACHE/data`` if set, else ``~/.cache/usgan/data``."""
    root = os.environ.get("USGAN_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "usgan") / "data"


def cache_path(cache_dir: Path, key: str) -> Path:
    """Where the dataset with ``key`` is cached."""
    return Path(cache_dir) / f"{key}.safetensors"


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Tensors and JSON metadata of a cache file, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        tensors, metadata = read_safetensors(path)
        meta = metadata_json(path, metadata, META_KEY, "data cache")
    except FileFormatError:
        return None
    return tensors, meta


def write(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write a cache file atomically; failures (e.g. a read-only cache) are ignored."""
    try:
        save_safetensors(path, tensors, {META_KEY: json.dumps(meta)})
    except FileFormatError:
        pass

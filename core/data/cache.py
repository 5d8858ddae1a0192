"""On-disk cache of preprocessed datasets: one safetensors file per (source, options) key.

The key hashes the source's contents (every file), the spec options and the preprocessing
options, so a changed file or option misses the cache. Files are written atomically (a temporary
file in the same folder, then a rename); a cache file that cannot be read is ignored.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

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
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[META_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, KeyError, ValueError):
        return None
    return tensors, meta


def write(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write a cache file atomically; failures (e.g. a read-only cache) are ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
        os.close(fd)
        try:
            save_file(
                {k: v.contiguous() for k, v in tensors.items()},
                tmp,
                metadata={META_KEY: json.dumps(meta)},
            )
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass

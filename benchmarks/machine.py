"""What the numbers were measured on: CPU, cores, GPU, native bf16, software versions."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from usgan.core.runtime import bf16_native, cpu_name, versions


def cpu_flags() -> list[str]:
    """The CPU features that decide the fast paths (AVX-512, AVX512-BF16, AMX)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return [f for f in wanted if f in flags]


def machine_info(device: torch.device) -> dict[str, Any]:
    return {
        "cpu": cpu_name(), "cores": os.cpu_count(), "cpu_flags": cpu_flags(),
        "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "bf16_native": bf16_native(device),
    }


def software_versions() -> dict[str, str]:
    out = versions()
    if torch.cuda.is_available():
        out["cuda"] = str(torch.version.cuda)
    return out

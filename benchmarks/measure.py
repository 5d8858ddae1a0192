"""How things are measured: step times (median, min, max), peak memory, FLOPs, matmul peaks.

Every timed call is bracketed by a device synchronisation, so CUDA kernels still queued do not
leak into the next step's time. FLOPs are counted once, outside the timed steps, with
`torch.utils.flop_counter.FlopCounterMode` (matmuls and convolutions, forward and backward);
operators likewise, with `OpCounter`.
"""

from __future__ import annotations

import contextlib
import gc
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class Summary:
    """Median, min and max of ``n`` measurements (seconds)."""

    median: float
    min: float
    max: float
    n: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def summarise(values: Sequence[float]) -> Summary:
    """The `Summary` of ``values`` (at least one)."""
    if not values:
        raise ValueError("nothing was measured")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds ``fn()`` takes, the device synchronised before and after."""
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one ``fn()`` (which runs, once, under the counter)."""
    return int(counted(fn, flops=True, ops=False)[0] or 0)


class OpCounter(TorchDispatchMode):
    """Counts the operators that reach a kernel, forward and backward, on the calling thread;
    views (which compute nothing) are left out. On a GPU nearly every one is a kernel launch,
    so the count says how launch-bound a small step is, measured on any device."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        if not func.is_view:
            self.total += 1
        return func(*args, **(kwargs or {}))


def counted(fn: Callable[[], Any], flops: bool, ops: bool) -> tuple[int | None, int | None]:
    """Run ``fn()`` once; its FLOPs and its `OpCounter` operators, each None if not asked."""
    with contextlib.ExitStack() as stack:
        fc = stack.enter_context(FlopCounterMode(display=False)) if flops else None
        oc = stack.enter_context(OpCounter()) if ops else None
        fn()
    return (None if fc is None else int(fc.get_total_flops()),
            None if oc is None else oc.total)


def reset_peaks(device: torch.device) -> bool:
    """Start new peak-memory readings; False when the process's peak RSS cannot be reset
    (then `peak_rss_mb` is the peak of the whole process so far)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:  # Linux: "5" resets the peak RSS (VmHWM, ru_maxrss) to the current RSS
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (ru_maxrss: kB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def cuda_peak_mb(device: torch.device) -> float | None:
    """Peak memory torch allocated on the GPU since `reset_peaks`, in MB (None on the CPU)."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def matmul_seconds(n: int, dtype: torch.dtype, device: torch.device, repeats: int) -> float:
    """The best of ``repeats`` timings of one ``n`` x ``n`` matmul, after a warm-up."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    timed(lambda: a @ b, device)
    return min(timed(lambda: a @ b, device) for _ in range(repeats))


def matmul_peak(dtype: torch.dtype, device: torch.device, max_size: int = 2048,
                repeats: int = 3, enough_s: float = 0.25) -> dict[str, Any]:
    """The best GFLOP/s of square ``dtype`` matmuls: sizes double from 256 up to ``max_size``,
    stopping early once one matmul takes ``enough_s`` (so a precision the hardware only
    emulates, e.g. bf16 on a CPU without AVX512-BF16/AMX, costs a second, not minutes)."""
    best, size, n = 0.0, 0, 256
    while n <= max_size:
        seconds = matmul_seconds(n, dtype, device, repeats)
        if 2 * n**3 / seconds / 1e9 > best:
            best, size = 2 * n**3 / seconds / 1e9, n
        if seconds >= enough_s:
            break
        n *= 2
    return {"gflops": best, "size": size, "dtype": str(dtype).removeprefix("torch.")}

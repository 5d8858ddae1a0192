"""Where the time goes: a few calls of a unit of work under `torch.profiler`, after timing.

Operators are ranked by self time, the time spent in the operator itself and not in the
operators it calls: CPU time on the CPU; on a GPU, the time of the CUDA kernels each operator
launched (its share is of all kernel time). The profiled calls are never the timed ones.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from .measure import sync

TOP = 8
# Kineto's log lines (profiler_start, "gpuGetDeviceCount failed" on a CPU-only machine) go to
# stderr at every profile; 6 silences them, unless the user set a level.
QUIET_KINETO = ("KINETO_LOG_LEVEL", "6")
# Some torch versions warn of profiling "cycles" even without a schedule (pytorch#180387).
CYCLES_WARNING = "Warning: Profiler clears events"
# Kineto's own CPU-side event; older torch gives it the kernels of an operator too.
KINETO_OVERHEAD = frozenset({"Activity Buffer Request"})


def profile_unit(unit: Callable[[], Any], device: torch.device, calls: int = 2,
                 top: int = TOP) -> list[dict[str, Any]]:
    """The ``top`` operators of ``calls`` calls of ``unit`` by self time (`top_operators`)."""
    os.environ.setdefault(*QUIET_KINETO)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    sync(device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CYCLES_WARNING)
        with profile(activities=activities) as prof:
            for _ in range(calls):
                unit()
            sync(device)
    return top_operators(prof.key_averages(), device.type == "cuda", calls, top)


def top_operators(events: Iterable[Any], gpu: bool, calls: int, top: int = TOP
                  ) -> list[dict[str, Any]]:
    """The ``top`` operators of profiler ``events`` (averaged per name) by self time (CUDA
    kernel time when ``gpu``), largest first: name, self ms and calls per unit of work (of
    ``calls`` profiled), % of all self time."""
    events = list(events)
    if gpu:  # kernels count for the operator that launched them and once in the total
        ops = [(e.key, e.self_device_time_total, e.count) for e in events
               if e.device_type == DeviceType.CPU and e.key not in KINETO_OVERHEAD]
        total = max(sum(e.self_device_time_total for e in events
                        if e.device_type != DeviceType.CPU and not e.is_user_annotation),
                    sum(us for _, us, _ in ops))
    else:
        ops = [(e.key, e.self_cpu_time_total, e.count) for e in events
               if e.device_type == DeviceType.CPU]
        total = sum(us for _, us, _ in ops)
    ops = sorted((op for op in ops if op[1] > 0), key=lambda op: op[1], reverse=True)
    return [{"name": name, "self_ms": us / 1e3 / calls, "percent": 100 * us / total,
             "calls": count / calls} for name, us, count in ops[:top]]

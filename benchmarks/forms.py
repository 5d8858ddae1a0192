"""A workload in two forms, and how one form is measured.

A `Form` is one way of running a workload (the plain reference or usgan's); its ``build()``
sets it up (networks, optimizers, inputs) and returns the unit of work: one training step,
one batch of samples, one whole FID+KID computation. Its FLOPs are counted on the first
warm-up call and its operators (`measure.OpCounter`) on the last, once any lazy state (an
optimizer's moments) exists. Each form is built just before it is
measured and dropped after, so the peak-memory readings are its own. With ``--profile`` a few
more calls run under `torch.profiler` after the timing and the memory readings.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .measure import counted, cuda_peak_mb, peak_rss_mb, reset_peaks, summarise, timed
from .profile import profile_unit

REFERENCE, USGAN = "reference", "usgan"


@dataclass(frozen=True)
class Plan:
    """Untimed warm-up calls (the first one also counts the FLOPs), then timed calls, then
    ``profile`` calls under the profiler (none: not profiled)."""

    warmup: int
    steps: int
    profile: int = 0


@dataclass
class Form:
    """One way of running a workload; ``flops`` counts one unit of work where the first
    warm-up call cannot (a workload timed without warm-up). ``counted``: the unit runs on
    the calling thread, where FLOPs and operators are counted (a unit that works in threads
    of its own is not: its counts would miss them; nor is a compiled one, whose operators are
    not the eager ones the counters see)."""

    name: str
    precision: str
    layout: str
    images: int
    build: Callable[[], Callable[[], Any]]
    flops: Callable[[], int] | None = None
    counted: bool = True


@dataclass
class Workload:
    """A row: what is measured, its unit of work, how often, and its two forms."""

    key: str
    title: str
    unit: str
    plan: Plan
    forms: list[Form] = field(default_factory=list)


def measure(form: Form, plan: Plan, device: torch.device, peaks: dict[str, Any]
            ) -> dict[str, Any]:
    """Build ``form``, warm it up, time ``plan.steps`` calls, read the memory peaks, then
    profile ``plan.profile`` calls; its JSON numbers."""
    own_peak = reset_peaks(device)
    unit = form.build()
    flops, ops = form.flops() if form.flops else None, None
    for i in range(plan.warmup):
        f, o = counted(unit, form.counted and i == 0 and flops is None,
                       form.counted and i == plan.warmup - 1)
        flops, ops = flops if f is None else f, ops if o is None else o
    times = summarise([timed(unit, device) for _ in range(plan.steps)])
    rss, gpu = peak_rss_mb(), cuda_peak_mb(device)
    profiled = profile_unit(unit, device, plan.profile) if plan.profile else None
    del unit
    gc.collect()
    return {**result(form, times, flops, peaks, rss, gpu, own_peak), "ops": ops,
            "profile": profiled}


def result(form: Form, times: Any, flops: int | None, peaks: dict[str, Any], rss: float,
           gpu: float | None, own_peak: bool) -> dict[str, Any]:
    """The JSON of one measured form."""
    gflops_s = flops / times.median / 1e9 if flops else None
    peak = peaks.get(form.precision, {}).get("gflops")
    return {
        "precision": form.precision, "layout": form.layout, "images": form.images,
        "seconds": times.as_json(), "ms": times.median * 1e3,
        "images_per_s": form.images / times.median,
        "peak_rss_mb": rss, "peak_rss_is_own": own_peak, "cuda_peak_mb": gpu,
        "flops": flops, "gflops_per_s": gflops_s,
        "peak_percent": 100 * gflops_s / peak if gflops_s and peak else None,
    }


def run_workload(work: Workload, device: torch.device, peaks: dict[str, Any],
                 echo: Callable[[str], None]) -> dict[str, Any]:
    """Measure both forms of ``work``; the row's JSON, speed-up = reference / usgan time."""
    forms: dict[str, Any] = {}
    for form in work.forms:
        profiled = f" + {work.plan.profile} profiled" if work.plan.profile else ""
        echo(f"{work.title}: {form.name} ({form.precision}, {form.layout}), "
             f"{work.plan.warmup} warm-up + {work.plan.steps} timed{profiled}")
        forms[form.name] = measure(form, work.plan, device, peaks)
    ref, ours = forms.get(REFERENCE), forms.get(USGAN)
    speedup = ref["seconds"]["median"] / ours["seconds"]["median"] if ref and ours else None
    return {"key": work.key, "title": work.title, "unit": work.unit,
            "warmup": work.plan.warmup, "profiled": work.plan.profile, "forms": forms,
            "speedup": speedup}

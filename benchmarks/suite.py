"""The suite: which workloads run, how often, and the whole result of one ``usgan bench``.

Everything runs in one process: the matmul peaks first, then each selected workload in its
reference and usgan forms, one after the other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from usgan.core.errors import ConfigError
from usgan.core.runtime import Runtime, compile_failure, set_threads

from .forms import Plan, Workload, run_workload
from .machine import machine_info, software_versions
from .measure import matmul_peak
from .metrics import NO_WEIGHTS, find_weights, metrics_workload
from .sampling import sampling_workload
from .training import STAGE1_NETS, STAGE2_NET, classes_workload, train_workload

WORKLOADS = ("stage1", "stage2", "classes", "sampling", "metrics")
KEYS = (*WORKLOADS, *(f"stage1:{n}" for n in STAGE1_NETS), f"stage2:{STAGE2_NET}")
# (warm-up, timed) per workload; the first warm-up call also counts the FLOPs.
FULL = {"stage1": Plan(5, 20), "stage2": Plan(2, 20), "classes": Plan(1, 5),
        "sampling": Plan(2, 20), "metrics": Plan(0, 3)}
QUICK = {"stage1": Plan(1, 2), "stage2": Plan(1, 1), "classes": Plan(1, 1),
         "sampling": Plan(1, 2), "metrics": Plan(0, 1)}
# --quick checks that the suite works (CI runs it), it measures nothing worth quoting: small
# batches and few images keep it around a minute on a 2-core CPU.
FID_IMAGES = {False: 400, True: 20}
SAMPLE_BATCH = {False: 64, True: 16}
TRAIN_BATCH = {False: 16, True: 4}
PROFILE_CALLS = {False: 2, True: 1}  # calls profiled after the timed ones, with --profile


@dataclass(frozen=True)
class Settings:
    """What ``usgan bench`` was asked to do."""

    quick: bool = False
    only: tuple[str, ...] = ()
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    steps: int | None = None
    warmup: int | None = None
    inception_weights: str | None = None
    profile: bool = False
    profile_calls: int | None = None
    batch: int | None = None  # training rows' batch (default TRAIN_BATCH)
    compile: str | None = None  # usgan's training forms through torch.compile in this mode


def parse_only(items: Sequence[str]) -> tuple[str, ...]:
    """``--only`` values (repeated or comma-separated) checked against `KEYS`."""
    keys = tuple(k.strip() for item in items for k in item.split(",") if k.strip())
    unknown = [k for k in keys if k not in KEYS]
    if unknown:
        raise ConfigError(f"--only {unknown[0]!r}: choose from {', '.join(KEYS)}")
    return keys


def selected(key: str, only: Sequence[str]) -> bool:
    """Whether the row ``key`` (e.g. ``stage1:dcgan``) is picked by ``only`` (empty: all)."""
    return not only or key in only or key.split(":")[0] in only


def profile_calls(settings: Settings) -> int:
    """How many calls of each form are profiled (0: no ``--profile``)."""
    if not settings.profile:
        return 0
    calls = settings.profile_calls
    return PROFILE_CALLS[settings.quick] if calls is None else calls


def train_batch(settings: Settings) -> int:
    """The training rows' batch: ``--batch``, else 16 (4 with ``--quick``)."""
    return settings.batch if settings.batch is not None else TRAIN_BATCH[settings.quick]


def plan_for(workload: str, settings: Settings) -> Plan:
    base = replace((QUICK if settings.quick else FULL)[workload],
                   profile=profile_calls(settings))
    if workload == "metrics":  # a whole FID run per call: --steps/--warmup do not apply
        return base
    return replace(base, warmup=base.warmup if settings.warmup is None else settings.warmup,
                   steps=base.steps if settings.steps is None else settings.steps)


def workloads(settings: Settings, rt: Runtime) -> tuple[list[Workload], list[dict[str, str]]]:
    """The selected workloads, and the rows skipped with the reason."""
    only, out, skipped = settings.only, [], []
    for name in STAGE1_NETS:
        if selected(f"stage1:{name}", only):
            out.append(train_workload(name, 1, plan_for("stage1", settings), rt,
                                      train_batch(settings)))
    if selected(f"stage2:{STAGE2_NET}", only):
        out.append(train_workload(STAGE2_NET, 2, plan_for("stage2", settings), rt,
                                  train_batch(settings)))
    if selected("classes", only) and settings.compile:
        skipped.append({"key": "classes", "reason": "--compile: usgan train compiles one class "
                        "at a time (it refuses --jobs with --compile)"})
    elif selected("classes", only):
        out.append(classes_workload(plan_for("classes", settings), rt, train_batch(settings),
                                    settings.quick))
    if selected("sampling", only):
        out.append(sampling_workload(plan_for("sampling", settings), rt,
                                     SAMPLE_BATCH[settings.quick]))
    if selected("metrics", only):
        weights = find_weights(settings.inception_weights)
        if weights is None:
            skipped.append({"key": "metrics", "reason": NO_WEIGHTS})
        else:
            out.append(metrics_workload(FID_IMAGES[settings.quick], weights,
                                        plan_for("metrics", settings)))
    return out, skipped


def peaks(device: torch.device, quick: bool) -> dict[str, Any]:
    """The measured fp32 and bf16 matmul peaks (GFLOP/s)."""
    size = 1024 if quick else 8192 if device.type == "cuda" else 2048
    repeats = 2 if quick else 3
    return {"fp32": matmul_peak(torch.float32, device, size, repeats),
            "bf16": matmul_peak(torch.bfloat16, device, size, repeats)}


def check(settings: Settings) -> None:
    if settings.steps is not None and settings.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {settings.steps}")
    if settings.warmup is not None and settings.warmup < 1:
        raise ConfigError(f"--warmup must be at least 1 (it counts the FLOPs), got "
                          f"{settings.warmup}")
    if settings.batch is not None and settings.batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {settings.batch}")
    if settings.profile_calls is not None and settings.profile_calls < 1:
        raise ConfigError(f"profile_calls must be at least 1, got {settings.profile_calls}")


def run(settings: Settings, command: str, echo: Callable[[str], None] = print
        ) -> dict[str, Any]:
    """Run the suite; the JSON-able result (rows, skipped rows, peaks, machine, versions)."""
    check(settings)
    set_threads(settings.threads)
    rt = Runtime.create(settings.device, settings.precision, compile=settings.compile)
    todo, skipped = workloads(settings, rt)  # a bad weights path fails before any timing
    started = dt.datetime.now(dt.timezone.utc).astimezone()
    echo(f"matmul peaks on {rt.device} (fp32, bf16)")
    measured = peaks(rt.device, settings.quick)
    try:
        rows = [run_workload(w, rt.device, measured, echo) for w in todo]
    except Exception as err:
        if settings.compile and (plain := compile_failure(err, "bench")) is not None:
            raise plain from err
        raise
    return {
        "command": command, "date": started.isoformat(timespec="seconds"),
        "settings": asdict(settings), "quick": settings.quick,
        "device": str(rt.device), "precision": rt.precision, "precision_why": rt.why,
        "layout": "channels_last" if rt.memory_format == torch.channels_last else "NCHW",
        "threads": torch.get_num_threads(), "machine": machine_info(rt.device),
        "versions": software_versions(), "peaks": measured, "rows": rows, "skipped": skipped,
    }

"""Several classes at once (``usgan train --jobs N``): one GAN per class, each class's phases
in its own thread, and on a GPU in its own CUDA stream.

A small GAN on a GPU is launch-bound (docs/benchmarks.md): its kernels leave the device idle
between launches, and a second class's launches fill those gaps. On a CPU the threads split
the cores (`split_threads`). Each class draws from its own seeded generators, so a class
trains the same GAN alone or beside others (at the same threads per operator). The one random
state threads share, torch's global RNG, is only drawn from while networks are built and set
while a checkpoint is restored: both happen under `GLOBAL_RNG`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

import torch
from rich.progress import Progress

from usgan.core.errors import ConfigError

from .progress import ProgressReporter

GLOBAL_RNG = threading.RLock()  # held while torch's global RNG is seeded, drawn from or set


def by_class(phases: Sequence[Any]) -> list[list[Any]]:
    """``phases`` grouped by class, in order of first appearance (a class's stages in order)."""
    groups: dict[str, list[Any]] = {}
    for phase in phases:
        groups.setdefault(phase.cls, []).append(phase)
    return list(groups.values())


@contextlib.contextmanager
def split_threads(jobs: int, classes: int) -> Iterator[None]:
    """While inside: the process's intra-op threads split between the ``min(jobs, classes)``
    classes training at once (at least one each); as they were afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // max(1, min(jobs, classes))))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def classes_at_once(phases: Sequence[Any], opts: Any, dist: Any) -> Iterator[Progress | None]:
    """Ready the classes of ``phases`` to train ``opts.jobs`` at once: the CPU threads split
    between them, and one set of progress bars they share (None: one class at a time, or
    ``--quiet``)."""
    at_once = min(opts.jobs, len(by_class(phases)))
    if at_once <= 1:
        yield None
        return
    if dist.enabled:
        raise ConfigError("--jobs trains classes at once in one process; under torchrun, "
                          "drop --jobs (the processes share each class instead)")
    bars = None if opts.quiet or not dist.is_main else ProgressReporter.shared_bars()
    with split_threads(opts.jobs, at_once), bars or contextlib.nullcontext():
        yield bars


def run_by_class(phases: Sequence[Any], run_phase: Callable[[Any], None], jobs: int,
                 device: torch.device, stop_others: Callable[[], None]) -> None:
    """Run every phase with ``run_phase``, up to ``jobs`` classes at once.

    A class's phases run in order in one thread. When one class fails, ``stop_others`` asks
    the running ones to checkpoint and stop, classes not yet started do not start, and the
    failure is raised once every thread has ended (another class's failure if the first is
    only the stop it caused: see `first_error`).
    """
    groups = by_class(phases)
    if jobs <= 1 or len(groups) <= 1:
        for phase in phases:
            run_phase(phase)
        return
    failed = threading.Event()

    def one_class(group: list[Any]) -> None:
        with _own_stream(device):
            for phase in group:
                if failed.is_set():
                    return
                run_phase(phase)

    with ThreadPoolExecutor(min(jobs, len(groups)), thread_name_prefix="usgan-class") as pool:
        futures = [pool.submit(one_class, group) for group in groups]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            failed.set()
            stop_others()
        wait(futures)
    if (err := first_error(futures)) is not None:
        raise err


def first_error(futures: Sequence[Future[None]]) -> BaseException | None:
    """The error to report: the first that is not a stop (exit code 130) caused by another,
    else the first."""
    errors = [e for f in futures if not f.cancelled() and (e := f.exception()) is not None]
    real = [e for e in errors if getattr(e, "exit_code", None) != 130]
    return (real or errors or [None])[0]


@contextlib.contextmanager
def _own_stream(device: torch.device) -> Iterator[None]:
    """On a CUDA device: this thread's current device and a stream of its own."""
    with contextlib.ExitStack() as stack:
        if device.type == "cuda":
            stack.enter_context(torch.cuda.device(device))
            stack.enter_context(torch.cuda.stream(torch.cuda.Stream(device)))
        yield

"""Progress display: a rich bar per stage and class, or plain log lines with ``--quiet``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressReporter:
    """Shows step, epoch, losses, D(x), D(G(z)), images/s and ETA for one phase."""

    def __init__(self, title: str, total: int | None, quiet: bool = False,
                 echo: Callable[[str], None] | None = None, shared: Progress | None = None
                 ) -> None:
        """``shared``: bars started by the caller (`shared_bars`), for phases that train at
        once; this phase adds its bar there."""
        self.title, self.total, self.quiet = title, total, quiet
        self.echo = echo or (lambda m: print(m, file=sys.stderr))
        self.ips = 0.0
        self._own = shared is None
        self._progress: Progress | None = None if quiet else shared or self.shared_bars()
        self._task: Any = None

    @staticmethod
    def shared_bars() -> Progress:
        """A set of bars (one per phase added to it); start and stop it with ``with``."""
        return Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True),
        )

    def __enter__(self) -> ProgressReporter:
        if self._progress is not None:
            if self._own:
                self._progress.start()
            self._task = self._progress.add_task(self.title, total=self.total, stats="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None and self._own:
            self._progress.stop()

    def advance_to(self, step: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step)

    def update(self, step: int, epoch: int, stats: dict[str, float] | None,
               ips: float | None) -> None:
        """The bar at ``step``; with ``stats`` (log steps) also the numbers."""
        if ips is not None:
            self.ips = ips
        if stats is None:
            if self._progress is not None:
                self._progress.update(self._task, completed=step)
            return
        text = (f"ep {epoch} D {stats['loss_d']:.3f} G {stats['loss_g']:.3f} "
                f"D(x) {stats['d_real']:.2f} D(G(z)) {stats['d_fake']:.2f} {self.ips:.1f} img/s")
        if self._progress is not None:
            self._progress.update(self._task, completed=step, stats=text)
        elif ips is not None:
            of = f"/{self.total}" if self.total is not None else ""  # None: a time budget
            self.echo(f"{self.title} step {step}{of} {text}")


class RateClock:
    """Images per second between two log lines."""

    def __init__(self) -> None:
        self.t0, self.steps = time.perf_counter(), 0

    def rate(self, batch_size: int) -> float:
        dt = time.perf_counter() - self.t0
        ips = self.steps * batch_size / dt if dt > 0 else 0.0
        self.t0, self.steps = time.perf_counter(), 0
        return ips

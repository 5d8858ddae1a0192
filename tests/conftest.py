"""Shared test fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("USGAN_SHARED", REPO.parent / "shared"))
BIN = Path(sys.executable).parent
# The features-only Inception weights of ../shared/weights (FID, KID; no IS).
WEIGHTS = SHARED / "weights" / "inception-fid-2015-12-05-features-only.pth"
needs_weights = pytest.mark.skipif(not WEIGHTS.is_file(),
                                   reason=f"shared Inception weights absent: {WEIGHTS}")


class FakeClock:
    """One second per reading; ``trainer`` is interrupted at reading ``stop_at`` (as by
    Ctrl-C: it saves a checkpoint and raises `Interrupted`)."""

    def __init__(self, trainer: Any = None, stop_at: int | None = None) -> None:
        self.t, self.trainer, self.stop_at = 0.0, trainer, stop_at

    def __call__(self) -> float:
        self.t += 1.0
        if self.trainer is not None and self.t == self.stop_at:
            self.trainer._interrupted.set()
        return self.t


def train_until(out: Path, opts: Any, stop_at: int | None = None, resume: bool = False) -> Any:
    """Train ``opts`` into ``out`` on a `FakeClock` (interrupted at reading ``stop_at``)."""
    from usgan.core.train.trainer import Trainer

    trainer = Trainer(opts, out, resume=resume, echo=lambda m: None)
    trainer.clock = FakeClock(trainer, stop_at)
    trainer.train()
    return trainer


class CompileRecorder:
    """``torch.compile`` through a chosen dynamo backend (``eager`` by default: it spares the
    suite inductor's C++ build), recording each compiled module's type and ``mode``, and each
    ``torch.compiler.cudagraph_mark_step_begin`` call."""

    def __init__(self, real_compile: Any) -> None:
        self.real_compile = real_compile
        self.backend: Any = "eager"
        self.models: list[str] = []
        self.modes: list[object] = []
        self.marks = 0

    def compile(self, model: Any, **kw: Any) -> Any:
        self.models.append(type(model).__name__)
        self.modes.append(kw.get("mode"))
        return self.real_compile(model, backend=self.backend, **kw)

    def mark(self) -> None:
        self.marks += 1

    def clear(self) -> None:
        self.models.clear()
        self.modes.clear()
        self.marks = 0


def failing_backend(gm: Any, example_inputs: Any, **_: Any) -> Any:
    """A dynamo backend that fails as a missing compiler would."""
    raise RuntimeError("no compiler here")


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> CompileRecorder:
    """Route ``torch.compile`` and CUDA-graph step marks through a `CompileRecorder`."""
    import torch

    rec = CompileRecorder(torch.compile)
    monkeypatch.setattr(torch, "compile", rec.compile)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", rec.mark)
    return rec


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``, or skip with the reason when it is absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"real data not available: {path} is absent (it lives beside the repo)")
    return path


def run_usgan(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the installed ``usgan`` command in a subprocess; returns the completed process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(BIN / "usgan"), *args], capture_output=True, text=True, env=full_env,
        cwd=cwd, timeout=timeout,
    )


@pytest.fixture
def usgan_cli():
    """The `run_usgan` helper as a fixture."""
    return run_usgan

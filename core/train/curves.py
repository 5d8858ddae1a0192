"""Curves of a run (curves.png), drawn from its metrics.jsonl: the losses per phase and, when
the run was trained with ``--eval-every``, KID per phase with its best step marked."""

from __future__ import annotations

import math
from typing import Any

from usgan.core.run import RunDir


def best_eval(records: list[dict[str, Any]], cls: str, stage: int) -> dict[str, Any] | None:
    """The ``--eval-every`` record of a phase with the lowest KID, the first of equals: the
    step ``--keep-best`` keeps (None: no finite KID)."""
    rows = [r for r in _kid_rows(records, cls, stage) if math.isfinite(r["kid"])]
    return min(rows, key=lambda r: r["kid"]) if rows else None


def _kid_rows(records: list[dict[str, Any]], cls: str, stage: int) -> list[dict[str, Any]]:
    return [r for r in records if r.get("class") == cls and r.get("stage") == stage
            and r.get("kid") is not None]


def write_curves(run: RunDir) -> str | None:
    """Plot losses (and KID) per phase to curves.png; returns a note when matplotlib is
    missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "note: matplotlib is not installed, so curves.png was not written " \
               "(pip install 'usgan[plots]')"
    records = [r for r in run.read_metrics() if {"class", "stage", "step"} <= r.keys()]
    losses = [r for r in records if "loss_d" in r]
    evals = [r for r in records if "kid" in r]
    phases = sorted({(r["class"], r["stage"]) for r in records})
    if not phases:
        return None
    n_rows = 2 if evals else 1
    fig, axes = plt.subplots(n_rows, len(phases), figsize=(4 * len(phases), 3 * n_rows),
                             squeeze=False)
    for col, (cls, stage) in enumerate(phases):
        ax = axes[0][col]
        rows = [r for r in losses if r["class"] == cls and r["stage"] == stage]
        ax.plot([r["step"] for r in rows], [r["loss_d"] for r in rows], label="D")
        ax.plot([r["step"] for r in rows], [r["loss_g"] for r in rows], label="G")
        ax.set_title(f"{cls} stage {stage}")
        ax.set_xlabel("step")
        ax.legend()
        if evals:
            _plot_kid(axes[1][col], evals, cls, stage)
    fig.tight_layout()
    fig.savefig(run.curves_path, dpi=80)
    plt.close(fig)
    return None


def _plot_kid(ax: Any, evals: list[dict[str, Any]], cls: str, stage: int) -> None:
    rows = _kid_rows(evals, cls, stage)
    ax.plot([r["step"] for r in rows], [r["kid"] for r in rows], marker=".", label="KID")
    best = best_eval(evals, cls, stage)
    if best is not None:
        ax.scatter([best["step"]], [best["kid"]], marker="*", s=150, color="red", zorder=3,
                   label=f"best {best['kid']:.4f} @ {best['step']}")
    ax.set_xlabel("step")
    ax.set_ylabel("KID (training images)")
    ax.legend()

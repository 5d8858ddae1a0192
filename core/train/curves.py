"""Curves of a run (curves.png), drawn from its metrics.jsonl: the losses per phase and, when
the run was trained with ``--eval-every``, FID per phase with its best step marked."""

from __future__ import annotations

from typing import Any

from usgan.core.run import RunDir


def best_eval(records: list[dict[str, Any]], cls: str, stage: int) -> dict[str, Any] | None:
    """The ``--eval-every`` record of a phase with the lowest FID (None: not evaluated)."""
    rows = [r for r in records if r.get("class") == cls and r.get("stage") == stage
            and r.get("fid") is not None]
    return min(rows, key=lambda r: r["fid"]) if rows else None


def write_curves(run: RunDir) -> str | None:
    """Plot losses (and FID) per phase to curves.png; returns a note when matplotlib is
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
    evals = [r for r in records if "fid" in r]
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
            _plot_fid(axes[1][col], evals, cls, stage)
    fig.tight_layout()
    fig.savefig(run.curves_path, dpi=80)
    plt.close(fig)
    return None


def _plot_fid(ax: Any, evals: list[dict[str, Any]], cls: str, stage: int) -> None:
    rows = [r for r in evals if r["class"] == cls and r["stage"] == stage
            and r.get("fid") is not None]
    ax.plot([r["step"] for r in rows], [r["fid"] for r in rows], marker=".", label="FID")
    best = best_eval(evals, cls, stage)
    if best is not None:
        ax.scatter([best["step"]], [best["fid"]], marker="*", s=150, color="red", zorder=3,
                   label=f"best {best['fid']:.1f} @ {best['step']}")
    ax.set_xlabel("step")
    ax.set_ylabel("FID (training images)")
    ax.legend()

"""Loss curves of a run (curves.png), drawn from its metrics.jsonl."""

from __future__ import annotations

from usgan.core.run import RunDir


def write_curves(run: RunDir) -> str | None:
    """Plot losses per phase to curves.png; returns a note when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "note: matplotlib is not installed, so curves.png was not written " \
               "(pip install 'usgan[plots]')"
    records = [r for r in run.read_metrics() if {"class", "stage", "step"} <= r.keys()]
    phases = sorted({(r["class"], r["stage"]) for r in records})
    if not phases:
        return None
    fig, axes = plt.subplots(1, len(phases), figsize=(4 * len(phases), 3), squeeze=False)
    for ax, (cls, stage) in zip(axes[0], phases, strict=True):
        rows = [r for r in records if r["class"] == cls and r["stage"] == stage]
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r.get("loss_d") for r in rows], label="D")
        ax.plot(steps, [r.get("loss_g") for r in rows], label="G")
        ax.set_title(f"{cls} stage {stage}")
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(run.curves_path, dpi=80)
    plt.close(fig)
    return None

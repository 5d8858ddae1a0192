"""Metrics, statistics and the Markdown report of the classification experiment (Table 2)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

METRICS = ("accuracy", "precision", "recall", "f1")


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           n_classes: int) -> dict[str, float]:
    """Accuracy and support-weighted precision, recall and F1 (as sklearn's ``'weighted'``).

    A class that is never predicted has precision 0 (sklearn's ``zero_division=0``).
    """
    t = np.asarray(y_true, dtype=int)
    p = np.asarray(y_pred, dtype=int)
    if t.size == 0:
        raise ValueError("no test images")
    cm = np.zeros((n_classes, n_classes), dtype=float)
    np.add.at(cm, (t, p), 1)
    tp = np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    prec = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    rec = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    den = prec + rec
    f1 = np.divide(2 * prec * rec, den, out=np.zeros_like(tp), where=den > 0)
    w = support / support.sum()
    return {
        "accuracy": float(tp.sum() / t.size),
        "precision": float((prec * w).sum()),
        "recall": float((rec * w).sum()),
        "f1": float((f1 * w).sum()),
    }


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def paired_p(values: Sequence[float], baseline: Sequence[float]) -> float:
    """Two-sided paired t-test p-value of ``values`` vs ``baseline`` (NaN with < 2 pairs or
    identical pairs)."""
    if len(values) < 2 or len(values) != len(baseline):
        return math.nan
    diff = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    if np.allclose(diff, 0):
        return math.nan
    from scipy.stats import ttest_rel

    return float(ttest_rel(values, baseline).pvalue)


def summarize(per_split: Mapping[str, list[dict[str, float]]],
              baseline: str) -> dict[str, dict[str, Any]]:
    """Per configuration: every metric's mean and std over splits, and the accuracy p-value
    against ``baseline`` (None where the baseline was not run)."""
    base_acc = [s["accuracy"] for s in per_split.get(baseline, [])]
    out: dict[str, dict[str, Any]] = {}
    for name, splits in per_split.items():
        row: dict[str, Any] = {}
        for m in METRICS:
            row[m] = dict(zip(("mean", "std"), mean_std([s[m] for s in splits]), strict=True))
        acc = [s["accuracy"] for s in splits]
        row["p_value"] = (None if name == baseline or not base_acc
                          else _json_float(paired_p(acc, base_acc)))
        out[name] = row
    return out


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else x


def format_p(p: float | None) -> str:
    """A p-value for the table: "n/a" when undefined, "<0.001" when tiny."""
    if p is None or math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def table_rows(summary: Mapping[str, Mapping[str, Any]], baseline: str) -> list[list[str]]:
    """The table as strings: configuration, four "mean ± std" (in %), p vs baseline."""
    rows = []
    for name, row in summary.items():
        cells = [f"{100 * row[m]['mean']:.1f} ± {100 * row[m]['std']:.1f}" for m in METRICS]
        p = "—" if name == baseline else format_p(row["p_value"])
        rows.append([name, *cells, p])
    return rows


HEADER = ["Configuration", "Accuracy (%)", "Precision (%)", "Recall (%)", "F1 (%)",
          "p vs real only"]


def render_markdown(header: Mapping[str, str], summary: Mapping[str, Mapping[str, Any]],
                    baseline: str, notes: Sequence[str] = ()) -> str:
    """report.md: a header of settings, the Table 2 layout, then notes."""
    lines = ["# Classification experiment (Table 2 of Che et al.)", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(summary, baseline)]
    lines += ["", "Mean ± sample std over splits; p: two-sided paired t-test of accuracy "
              "against real only across splits (n/a with one split or identical results)."]
    if notes:
        lines += ["", "Notes:", "", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def report_header(res: Mapping[str, Any]) -> dict[str, str]:
    """The settings block of report.md from a results document."""
    sp, pr = res["splits"], res["preset"]
    tpc = ", ".join(f"{c} {n}" for c, n in zip(res["classes"], sp["test_images_per_class"],
                                                strict=True))
    if "test_data" in sp:
        made = f"trained on all of the data, tested on the separate set `{sp['test_data']}`"
    elif "from" in sp:
        made = f"from {sp['from']} (cycled, with a new seed, when it has fewer splits)"
    else:
        made = (f"made with seed {sp['seed']}, {sp['test_per_class']} test images per class "
                "(the paper's 70, or 20% of the smallest class when that is less)")
    per_class = (f"{pr['per_class']} per class" if pr["per_class"] else
                 "2x the largest real training class, per class")
    sizes = ", ".join(f"{k}: {_mean_int(v, 'train_images')}" for k, v in res["per_split"].items())
    return {
        "Data": f"`{res['data']}`",
        "Classes": ", ".join(f"{c} ({n} images)" for c, n in res["classes"].items()),
        "Splits": f"{sp['count']} repeats, {sp['level']}-level, {made}; test images "
                  f"per class in split 1: {tpc}",
        "Preset": f"{pr['name']}: {pr['size']} px, {_length(pr)}, batch {pr['batch']}, "
                  f"Adam lr {pr['lr']}, cross-entropy; synthetic top-up / synthetic-only "
                  f"sets: {per_class}; {_balance(pr)}",
        "Training images (mean over splits)": sizes,
        "Backbone": f"timm `{res['backbone']}`, 1 input channel, {res['init']}",
        "Seed": str(res["seed"]),
    }


def _balance(pr: Mapping[str, Any]) -> str:
    """How the real-only sets were drawn (results written before `balance` were unbalanced)."""
    if pr.get("balance", False):
        return "real-only sets class-balanced (the smaller classes' images repeated)"
    return "real-only sets as they are (not class-balanced)"


def _length(pr: Mapping[str, Any]) -> str:
    if pr.get("steps"):
        return f"{pr['steps']} optimizer steps per configuration (not epochs)"
    return f"{pr['epochs']} epochs"


def _mean_int(splits: Sequence[Mapping[str, Any]], key: str) -> int:
    return round(sum(s[key] for s in splits) / len(splits))

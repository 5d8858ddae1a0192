"""The tables of a reproduction, read back from its output folder: Table 1 (FID/KID per class),
Table 2 (the classifier, merged from its pieces), the memorization audit, what each of the
paper's two claims came to, and the wall time of every kind of step."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from usgan.core.experiment.classify import AUG, REAL
from usgan.core.experiment.report import METRICS, format_p, summarize
from usgan.core.io import read_json
from usgan.core.spectrum import SpectrumReport

from .plan import FLOOR, Config, Layout, Preset, Settings, score_size

# Che et al., Table 1 (NAFLD liver, classes abnormal / normal) and Table 2 (accuracy, %).
PAPER_FID = {"dcgan": (113.87, 161.76), "dcgan-stage2": (100.05, 99.53),
             "dcgan-sn": (170.68, 247.76), "dcgan-sn-stage2": (156.55, 110.17),
             "dcgan-sn-sa": (160.19, 259.19), "dcgan-sn-sa-stage2": (108.39, 103.07)}
PAPER_ACCURACY = {REAL: 82.14, "dcgan": 84.29, "dcgan-stage2": 85.71, "dcgan-sn": 74.29,
                  "dcgan-sn-stage2": 78.57, "dcgan-sn-sa": 80.71, "dcgan-sn-sa-stage2": 82.86}
NOT_AVAILABLE = "n/a"


def synthetic_row(c: Config) -> str:
    return f"real + synthetic ({c.key})"


def table1(lay: Layout, chosen: Sequence[Config]) -> dict[str, dict[str, dict[str, Any]]]:
    """Config key -> class -> {fid, kid, kid_std, diversity, copy rates} (evaluated ones)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for c in chosen:
        path = lay.eval(c.key)
        if not path.is_file():
            continue
        rows = next(iter(read_json(path)["results"].values()))
        out[c.key] = {cls: _row(r) for cls, r in rows.items()}
    return out


def floor(lay: Layout) -> dict[str, dict[str, dict[str, Any]]] | None:
    """Table 1's reference rows (`plan.floor_step`), None before it ran: row name -> class
    -> numbers; the training images at the scoring size first (`FLOOR_ROW`), then at the
    Stage-I's size, upsampled."""
    path = lay.eval(FLOOR)
    if not path.is_file():
        return None
    results = read_json(path)["results"]
    return {(FLOOR_ROW if i == 0 else f"{source} (a Stage-I's best)"):
            {cls: _row(r) for cls, r in rows.items()}
            for i, (source, rows) in enumerate(results.items())}


def scored_against(lay: Layout, chosen: Sequence[Config]) -> str | None:
    """What Table 1's real images were: ``held-out`` (the split's test images, `usgan eval
    --split`), ``all`` (every image of the class, as the paper; evaluations before
    2026-12-05), ``mixed``, or None before any evaluation."""
    kinds = {"held-out" if read_json(lay.eval(c.key)).get("split") else "all"
             for c in chosen if lay.eval(c.key).is_file()}
    return None if not kinds else kinds.pop() if len(kinds) == 1 else "mixed"


def _row(r: dict[str, Any]) -> dict[str, Any]:
    div = {d["space"].split()[0]: d["ratio"] for d in r.get("diversity", [])}
    audit = {a["space"].split()[0]: a["copy_rate"] for a in r.get("audit", [])}
    nn = {a["space"].split()[0]: a["median_distance"] / a["real_median_distance"]
          for a in r.get("audit", []) if a["real_median_distance"]}
    isc = r.get("is") or {"value": None, "std": None, "unavailable": "not computed"}
    return {"fid": r["fid"]["value"], "kid": r["kid"]["value"], "kid_std": r["kid"]["std"],
            "is": isc["value"], "is_std": isc["std"], "is_unavailable": isc["unavailable"],
            "n_fake": r["n_fake"], "n_real": r["n_real"], "diversity": div,
            "copy_rate": audit, "nn_ratio": nn, "spectrum": _bands(r.get("spectrum"))}


def _bands(spectrum: dict[str, Any] | None) -> dict[str, float] | None:
    """Period band -> generated / real power (`usgan.core.spectrum`); None in evaluations
    made before it was measured."""
    return None if spectrum is None else SpectrumReport(**spectrum).bands


def table2(lay: Layout, chosen: Sequence[Config]) -> dict[str, Any] | None:
    """The classifier's summary over the pieces that finished (None before the baselines)."""
    base = lay.classify("baselines") / "results.json"
    if not base.is_file():
        return None
    first = read_json(base)
    per_split = dict(first["per_split"])
    for c in chosen:  # each piece names its source by path: name it by configuration
        path = lay.classify(c.key) / "results.json"
        if path.is_file():
            for label, rows in read_json(path)["per_split"].items():
                synth = label.startswith("real + synthetic")
                per_split[synthetic_row(c) if synth else label] = rows
    return {"per_split": per_split, "summary": summarize(per_split, REAL),
            "splits": first["splits"], "preset": first["preset"], "init": first["init"],
            "classes": first["classes"], "backbone": first["backbone"]}


def claims(t1: dict[str, Any], t2: dict[str, Any] | None,
           chosen: Sequence[Config]) -> dict[str, Any]:
    """Claim 1: Stage-II lowers FID (per Stage-I, recipe, class); claim 2: real + synthetic
    beats real only (per configuration, with the paired p-value)."""
    stage2 = []
    for c in chosen:
        if c.entry.stage2 is None or c.key not in t1 or c.stage1_key not in t1:
            continue
        for cls, row in t1[c.key].items():
            first = t1[c.stage1_key].get(cls, {})
            if first.get("fid") is not None:
                stage2.append({"config": c.key, "class": cls, "stage1_fid": first["fid"],
                               "stage2_fid": row["fid"], "stage1_kid": first.get("kid"),
                               "stage2_kid": row.get("kid"),
                               "held": row["fid"] < first["fid"]})
    synth = []
    if t2 is not None:
        real = t2["summary"][REAL]["accuracy"]["mean"]
        for c in chosen:
            row = t2["summary"].get(synthetic_row(c))
            if row is not None:
                synth.append({"config": c.key, "accuracy": row["accuracy"]["mean"],
                              "real_only": real, "p_value": row["p_value"],
                              "held": significant_gain(row["accuracy"]["mean"], real,
                                                       row["p_value"])})
    return {"stage2_lowers_fid": stage2, "synthetic_beats_real": synth}


def significant_gain(accuracy: float, real: float, p_value: float | None) -> bool:
    """Claim 2 holds for a configuration: higher mean accuracy than real only, with a paired
    p-value below 0.05 (p = 0 counts; None, no test, does not)."""
    return accuracy > real and p_value is not None and p_value < 0.05


def wall_time(lay: Layout) -> dict[str, float]:
    """Seconds spent per kind of step (train, eval, classify, push, split), from steps.jsonl.
    A step stopped and resumed counts every attempt; one run again after it had finished (its
    output removed to redo it) counts from that run on."""
    spent: dict[str, float] = {}
    finished: set[str] = set()
    if lay.steps.is_file():
        for line in lay.steps.read_text().splitlines():
            row = json.loads(line)
            step = row["step"]
            spent[step] = row["seconds"] + (0.0 if step in finished else spent.get(step, 0.0))
            finished.discard(step)
            if row.get("exit") == 0:
                finished.add(step)
    total: dict[str, float] = {}
    for step, seconds in spent.items():
        kind = step.split()[0]
        total[kind] = total.get(kind, 0.0) + seconds
    return total


def summary(s: Settings, p: Preset, lay: Layout, chosen: Sequence[Config],
            classes: Sequence[str]) -> dict[str, Any]:
    """Everything the report shows, as JSON (OUT/summary.json)."""
    t1, t2 = table1(lay, chosen), table2(lay, chosen)
    return {"settings": asdict(s), "preset": asdict(p), "classes": list(classes),
            "configs": [c.key for c in chosen], "score_size": score_size(s), "table1": t1,
            "floor": floor(lay),
            "scored_against": scored_against(lay, chosen),
            "table2": None if t2 is None else {k: t2[k] for k in t2 if k != "per_split"},
            "claims": claims(t1, t2, chosen), "wall_seconds": wall_time(lay)}


# ------------------------------------------------------------------------------ Markdown


def _num(x: float | None, fmt: str = "{:.1f}") -> str:
    return NOT_AVAILABLE if x is None else fmt.format(x)


def table1_markdown(doc: dict[str, Any], chosen: Sequence[Config]) -> list[str]:
    """Rows: the six entries; columns: the paper's FID, then per recipe FID, KID and IS per
    class, every row scored at one size (`plan.score_size`)."""
    classes, t1 = doc["classes"], doc["table1"]
    recipes = [r for r in ("paper", "default") if any(c.recipe == r for c in chosen)]
    per = " / ".join(classes)
    head = ["Configuration", "paper FID (NAFLD: abnormal / normal)"]
    for r in recipes:
        head += [f"FID, {r} recipe ({per})", f"KID×100, {r} recipe ({per})",
                 f"IS, {r} recipe ({per})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in dict.fromkeys(c.entry.name for c in chosen):
        paper = PAPER_FID.get(name)
        cells = [f"`{name}`", " / ".join(f"{v:.2f}" for v in paper) if paper else "-"]
        for r in recipes:
            rows = t1.get(f"{r}/{name}", {})
            cells.append(" / ".join(_num(rows.get(k, {}).get("fid")) for k in classes))
            cells.append(" / ".join(_kid(rows.get(k)) for k in classes))
            cells.append(" / ".join(_is(rows.get(k)) for k in classes))
        lines.append("| " + " | ".join(cells) + " |")
    for name, fl in (doc.get("floor") or {}).items():  # the same in every recipe's columns
        per_recipe = [" / ".join(_num(fl.get(k, {}).get("fid")) for k in classes),
                      " / ".join(_kid(fl.get(k)) for k in classes), "-"]
        lines.append("| " + " | ".join([name, "-", *per_recipe * len(recipes)]) + " |")
    return lines


FLOOR_ROW = "training images (the floor)"


def _is(row: dict[str, Any] | None) -> str:
    if not row or row.get("is") is None:
        return NOT_AVAILABLE
    std = row.get("is_std")
    return f"{row['is']:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def is_unavailable(doc: dict[str, Any]) -> list[str]:
    """Why IS is n/a, each reason once (empty when every evaluated row has it)."""
    return list(dict.fromkeys(row["is_unavailable"] for rows in doc["table1"].values()
                              for row in rows.values()
                              if row.get("is") is None and row.get("is_unavailable")))


def _kid(row: dict[str, Any] | None) -> str:
    if not row or row.get("kid") is None:
        return NOT_AVAILABLE
    std = row.get("kid_std")
    return f"{100 * row['kid']:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def table2_markdown(doc: dict[str, Any], chosen: Sequence[Config]) -> list[str]:
    """The paper's Table 2 layout with our mean ± std over repeats and the paper's accuracy."""
    t2 = doc["table2"]
    if t2 is None:
        return ["Not run yet (the classifier runs after the GANs)."]
    head = ["Configuration", "Accuracy (%)", "Precision (%)", "Recall (%)", "F1 (%)",
            "p vs real only", "paper accuracy (%)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [(REAL, PAPER_ACCURACY[REAL]), (AUG, None)] + [
        (synthetic_row(c), PAPER_ACCURACY.get(c.entry.name) if c.recipe == "paper" else None)
        for c in chosen]
    for label, paper in rows:
        row = t2["summary"].get(label)
        if row is None:
            continue
        cells = [label] + [f"{100 * row[m]['mean']:.1f} ± {100 * row[m]['std']:.1f}"
                           for m in METRICS]
        cells.append("—" if label == REAL else format_p(row["p_value"]))
        cells.append(f"{paper:.2f}" if paper is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def audit_markdown(doc: dict[str, Any]) -> list[str]:
    """Per configuration and class: copy rate and nearest-neighbour distance ratio, in pixels
    and in Inception features."""
    head = ["Configuration", "class", "copy rate, pixels", "copy rate, Inception",
            "NN distance / real NN distance, pixels", "pixel diversity / real"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, per_class in doc["table1"].items():
        for cls, r in per_class.items():
            cr, nn, div = r["copy_rate"], r["nn_ratio"], r["diversity"]
            lines.append(f"| `{key}` | {cls} | {_pct(cr.get('pixels'))} | "
                         f"{_pct(cr.get('inception-v3-compat'))} | "
                         f"{_num(nn.get('pixels'), '{:.2f}')} | "
                         f"{_num(div.get('pixels'), '{:.2f}')} |")
    return lines


def texture_markdown(doc: dict[str, Any]) -> list[str]:
    """Per configuration and class, the reference rows first: generated / real power in each
    band of period (`usgan.core.spectrum`), finest first; "n/a" for an evaluation made
    before the spectrum was measured."""
    rows = [*(doc.get("floor") or {}).items(), *((f"`{k}`", v) for k, v in doc["table1"].items())]
    periods = next((list(r["spectrum"]) for _, per_class in rows
                    for r in per_class.values() if r.get("spectrum")), [])
    if not periods:
        return []
    head = ["Configuration", "class", *(f"power {p} / real" for p in periods)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, per_class in rows:
        for cls, r in per_class.items():
            bands = r.get("spectrum") or {}
            lines.append(f"| {name} | {cls} | "
                         + " | ".join(_ratio(bands.get(p)) for p in periods) + " |")
    return lines


def _ratio(x: float | None) -> str:
    """Two decimals, two significant digits below 0.1 (0.0042, not 0.00)."""
    return _num(x, "{:.2f}" if x is None or x >= 0.1 else "{:.2g}")


def _pct(x: float | None) -> str:
    return NOT_AVAILABLE if x is None else f"{100 * x:.1f}%"


def claims_markdown(doc: dict[str, Any]) -> list[str]:
    """What the two claims came to, counted."""
    c1, c2 = doc["claims"]["stage2_lowers_fid"], doc["claims"]["synthetic_beats_real"]
    out = []
    if c1:
        held = sum(r["held"] for r in c1)
        out.append(f"- **Stage-II lowers FID** (claim 1): in {held} of {len(c1)} pairs "
                   "(Stage-I, recipe, class; FID, then KID×100, Stage-I → Stage-II, both at "
                   "one size): " + "; ".join(
                       f"`{r['config']}` {r['class']} {r['stage1_fid']:.1f} → "
                       f"{r['stage2_fid']:.1f}{_kids(r)}" for r in c1) + ".")
    if c2:
        passed = [r for r in c2 if r["held"]]
        line = (f"- **Real + synthetic beats real only** (claim 2, higher mean accuracy with "
                f"paired p < 0.05): {len(passed)} of {len(c2)} configurations")
        if passed:
            line += ": " + "; ".join(_claim2(r) for r in passed) + "."
        else:
            best = max(c2, key=lambda r: r["accuracy"])
            verdict = ("is not a significant gain" if best["accuracy"] > best["real_only"]
                       else "is not above real only's")
            line += f"; the highest mean accuracy, {_claim2(best)}, {verdict}."
        out.append(line)
    return out or ["- Not evaluated yet."]


def _kids(r: dict[str, Any]) -> str:
    kids = (r.get("stage1_kid"), r.get("stage2_kid"))
    return "" if None in kids else f" ({100 * kids[0]:.2f} → {100 * kids[1]:.2f})"


def _claim2(r: dict[str, Any]) -> str:
    return (f"`{r['config']}` {100 * r['accuracy']:.1f}% against {100 * r['real_only']:.1f}% "
            f"(p {format_p(r['p_value'])})")


def wall_markdown(doc: dict[str, Any]) -> str:
    w = doc["wall_seconds"]
    parts = [f"{k} {v / 3600:.2f} h" if v >= 3600 else f"{k} {v / 60:.1f} min"
             for k, v in sorted(w.items(), key=lambda kv: -kv[1])]
    return ", ".join(parts) or "nothing run yet"

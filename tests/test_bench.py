"""``usgan bench``: the suite runs and its JSON holds what docs/benchmarks.md promises.

Speed is never judged here (CI machines are noisy): only structure and arithmetic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run_usgan

from usgan.benchmarks import metrics
from usgan.benchmarks.measure import count_flops, matmul_peak, summarise
from usgan.benchmarks.report import BEGIN, END, splice
from usgan.benchmarks.suite import Settings, parse_only, selected, workloads
from usgan.core.errors import ConfigError
from usgan.core.evaluation import WEIGHTS_ENV
from usgan.core.runtime import Runtime


def test_summarise_median_min_max() -> None:
    s = summarise([3.0, 1.0, 2.0])
    assert (s.median, s.min, s.max, s.n) == (2.0, 1.0, 3.0, 3)
    assert summarise([4.0, 1.0, 2.0, 3.0]).median == 2.5
    with pytest.raises(ValueError):
        summarise([])


def test_only_selects_workloads_and_rows() -> None:
    only = parse_only(["stage1:dcgan,sampling"])
    assert only == ("stage1:dcgan", "sampling")
    assert selected("stage1:dcgan", only) and selected("sampling", only)
    assert not selected("stage1:dcgan-sn", only) and not selected("metrics", only)
    assert selected("stage1:dcgan-sn", parse_only(["stage1"]))
    assert selected("metrics", ())
    with pytest.raises(ConfigError, match="stage3"):
        parse_only(["stage3"])


def test_metrics_row_is_skipped_without_weights(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(metrics, "DEFAULT_WEIGHTS", (tmp_path / "absent.pth",))
    rt = Runtime(torch.device("cpu"), "fp32")
    todo, skipped = workloads(Settings(quick=True, only=("metrics",)), rt)
    assert todo == [] and skipped[0]["key"] == "metrics"
    assert "--inception-weights" in skipped[0]["reason"]


def test_splice_keeps_the_text_around_the_generated_section() -> None:
    page = f"# Benchmarks\n\nintro\n\n{BEGIN}\nold\n{END}\n\nafter\n"
    out = splice(page, "new\n")
    assert out == f"# Benchmarks\n\nintro\n\n{BEGIN}\nnew\n{END}\n\nafter\n"
    assert splice(out, "newer\n").count(BEGIN) == 1
    assert splice("# Other\n", "x\n") == f"# Other\n\n{BEGIN}\nx\n{END}\n"
    assert splice(None, "x\n").startswith("# Benchmarks\n")


def test_flops_and_peak_are_counted() -> None:
    a, b = torch.randn(64, 32), torch.randn(32, 16)
    assert count_flops(lambda: a @ b) == 2 * 64 * 32 * 16
    peak = matmul_peak(torch.float32, torch.device("cpu"), max_size=256, repeats=1)
    assert peak["gflops"] > 0 and peak["size"] == 256


@pytest.mark.slow
def test_bench_quick_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = run_usgan("bench", "--quick", "--only", "stage1:dcgan", "--steps", "2",
                     "--json", str(out), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stage1:dcgan" in proc.stdout and "speed-up" in proc.stdout
    result = json.loads(out.read_text())
    assert result["quick"] is True and result["command"].startswith("usgan bench --quick")
    assert {"cpu", "cores"} <= set(result["machine"]) and "torch" in result["versions"]
    assert result["peaks"]["fp32"]["gflops"] > 0 and result["peaks"]["bf16"]["gflops"] > 0
    (row,) = result["rows"]
    assert row["key"] == "stage1:dcgan" and set(row["forms"]) == {"reference", "usgan"}
    ref, ours = row["forms"]["reference"], row["forms"]["usgan"]
    assert (ref["precision"], ref["layout"]) == ("fp32", "NCHW")
    for form in (ref, ours):
        s = form["seconds"]
        assert s["n"] >= 2 and 0 < s["min"] <= s["median"] <= s["max"]
        for key in ("images_per_s", "peak_rss_mb", "flops", "gflops_per_s", "peak_percent"):
            assert form[key] > 0, key
        assert form["images"] == 4  # --quick trains at batch 4
        assert form["images_per_s"] == pytest.approx(4 / s["median"])
    assert ref["flops"] == ours["flops"]  # the same networks, the same arithmetic
    assert row["speedup"] == pytest.approx(ref["seconds"]["median"] / ours["seconds"]["median"])

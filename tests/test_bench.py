"""``usgan bench``: the suite runs and its JSON holds what docs/benchmarks.md promises.

Speed is never judged here (CI machines are noisy): only structure and arithmetic.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import CompileRecorder, failing_backend, run_usgan
from rich.console import Console
from torch.autograd import DeviceType

from usgan.benchmarks import metrics
from usgan.benchmarks.machine import machine_info
from usgan.benchmarks.measure import count_flops, counted, matmul_peak, summarise
from usgan.benchmarks.profile import profile_unit, top_operators
from usgan.benchmarks.report import BEGIN, END, markdown, print_profiles, splice
from usgan.benchmarks.suite import (
    Settings,
    check,
    parse_only,
    plan_for,
    run,
    selected,
    train_batch,
    workloads,
)
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
    assert selected("classes", parse_only(["classes"])) and not selected("classes", only)
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
    assert counted(lambda: a @ b, flops=True, ops=False) == (2 * 64 * 32 * 16, None)
    peak = matmul_peak(torch.float32, torch.device("cpu"), max_size=256, repeats=1)
    assert peak["gflops"] > 0 and peak["size"] == 256


@pytest.mark.slow
def test_operators_are_counted_forward_and_backward_without_views() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    assert counted(lambda: x.view(12).t, flops=False, ops=True) == (None, 0)
    assert counted(lambda: (x * 2).relu(), flops=False, ops=True) == (None, 2)
    y = (x * 2).sum()  # backward: the seed (ones_like), sum's (expand: a view), mul's (mul)
    assert counted(y.backward, flops=False, ops=True) == (None, 2) and x.grad is not None


def test_bench_quick_json_and_profile(tmp_path: Path) -> None:
    """One quick run (the suite runs the bench once): the JSON's rows and forms, and with
    --profile each form's top operators, the profiled calls kept out of the timed ones."""
    out = tmp_path / "bench.json"
    proc = run_usgan("bench", "--quick", "--only", "stage1:dcgan", "--steps", "2",
                     "--profile", "--json", str(out), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stage1:dcgan" in proc.stdout and "speed-up" in proc.stdout
    assert "self CPU ms" in proc.stdout and "gpuGetDeviceCount" not in proc.stderr
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
        assert s["n"] == 2 and 0 < s["min"] <= s["median"] <= s["max"]  # profiled: not timed
        for key in ("images_per_s", "peak_rss_mb", "flops", "gflops_per_s", "peak_percent",
                    "ops"):
            assert form[key] > 0, key
        assert form["images"] == 4  # --quick trains at batch 4
        assert form["images_per_s"] == pytest.approx(4 / s["median"])
        check_profile(form["profile"])
    assert ref["flops"] == ours["flops"]  # the same networks, the same arithmetic
    assert row["speedup"] == pytest.approx(ref["seconds"]["median"] / ours["seconds"]["median"])
    assert result["settings"]["profile"] is True and row["profiled"] == 1
    assert "### Where the time goes: Stage-I step dcgan" in markdown(result)


def test_classes_row_times_two_classes_one_after_the_other_and_at_once(tmp_path: Path
                                                                       ) -> None:
    """The `classes` row: two classes' usgan steps with --jobs 1 (reference) and --jobs 2."""
    out = tmp_path / "classes.json"
    proc = run_usgan("bench", "--quick", "--only", "classes", "--json", str(out), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = json.loads(out.read_text())["rows"]
    assert row["key"] == "classes" and "--jobs 2 (usgan)" in row["title"]
    for form in row["forms"].values():
        assert form["images"] == 2 * 2 * 4  # two classes, 2 steps each (--quick), batch 4
        assert form["seconds"]["n"] == 1 and form["seconds"]["median"] > 0
        assert form["ops"] is None  # threads of its own: not counted on the calling thread
    assert row["speedup"] > 0


def test_compile_times_usgan_compiled_as_the_trainer_compiles(
        compiled: CompileRecorder) -> None:
    """--compile MODE: usgan's form trains with G and D through torch.compile in MODE (the
    trainer's `Runtime.compiled`), each step marked for CUDA graph trees as the trainer marks
    it; its operators are not counted (they would be eager ones); the plain script stays eager;
    the classes row is skipped (usgan train compiles one class at a time)."""
    settings = Settings(quick=True, only=("stage1:dcgan", "classes"), device="cpu",
                        compile="reduce-overhead")
    result = run(settings, "usgan bench --compile reduce-overhead", echo=lambda _: None)
    (row,) = result["rows"]
    ref, ours = row["forms"]["reference"], row["forms"]["usgan"]
    assert ours["layout"].endswith(", compiled reduce-overhead") and ref["layout"] == "NCHW"
    assert ours["ops"] is None and ours["flops"] is None and ref["ops"] > 0
    plan = plan_for("stage1", settings)
    assert compiled.modes == ["reduce-overhead"] * 2
    assert compiled.marks == plan.warmup + plan.steps
    assert [s["key"] for s in result["skipped"]] == ["classes"]
    assert result["settings"]["compile"] == "reduce-overhead"

    compiled.backend = failing_backend
    with pytest.raises(ConfigError, match=r"^--compile: torch.compile failed .*no compiler "
                       r"here.*; bench without --compile$"):
        run(replace(settings, only=("stage1:dcgan",)), "usgan bench", echo=lambda _: None)


def check_profile(ops: list[dict[str, Any]]) -> None:
    """Top operators: named, largest self time first, positive, shares of at most 100%."""
    assert ops and all(op["name"] for op in ops)
    times = [op["self_ms"] for op in ops]
    assert times == sorted(times, reverse=True) and times[-1] > 0
    assert all(op["percent"] > 0 and op["calls"] > 0 for op in ops)
    assert sum(op["percent"] for op in ops) <= 100 + 1e-9


def test_profile_finds_the_matmuls() -> None:
    a = torch.randn(96, 96)

    def unit() -> torch.Tensor:
        x = a
        for _ in range(3):
            x = torch.tanh(x @ a)
        return x

    ops = profile_unit(unit, torch.device("cpu"), calls=2, top=4)
    check_profile(ops)
    assert len(ops) <= 4
    mm = [op for op in ops if op["name"] in ("aten::mm", "aten::matmul", "aten::addmm")]
    assert mm and mm[0]["calls"] == 3  # per call of the unit, not per profile


def test_gpu_profile_ranks_operators_by_their_kernels() -> None:
    def event(key: str, device: DeviceType, cpu: float, gpu: float, count: int = 2,
              annotation: bool = False) -> SimpleNamespace:
        return SimpleNamespace(key=key, device_type=device, self_cpu_time_total=cpu,
                               self_device_time_total=gpu, count=count,
                               is_user_annotation=annotation)

    cpu, cuda = DeviceType.CPU, DeviceType.CUDA
    events = [event("aten::mm", cpu, 10, 600), event("aten::add", cpu, 50, 200),
              event("cudaLaunchKernel", cpu, 90, 0), event("gemm_kernel", cuda, 0, 600),
              event("Activity Buffer Request", cpu, 80, 600),  # older torch's double count
              event("add_kernel", cuda, 0, 200), event("idle_kernel", cuda, 0, 200),
              event("Optimizer.step", cuda, 0, 800, annotation=True)]
    ops = top_operators(events, gpu=True, calls=2)
    assert [op["name"] for op in ops] == ["aten::mm", "aten::add"]
    assert ops[0]["self_ms"] == pytest.approx(0.3) and ops[0]["percent"] == pytest.approx(60)
    assert ops[0]["calls"] == 1
    assert top_operators(events, gpu=False, calls=1)[0]["name"] == "cudaLaunchKernel"
    lost = [event("aten::mm", cpu, 10, 600), event("aten::add", cpu, 50, 200)]  # no kernels
    assert sum(op["percent"] for op in top_operators(lost, gpu=True, calls=1)) == 100


def test_profile_calls_follow_the_settings() -> None:
    assert plan_for("stage1", Settings()).profile == 0
    assert plan_for("stage1", Settings(profile=True)).profile == 2
    assert plan_for("metrics", Settings(quick=True, profile=True)).profile == 1
    assert plan_for("sampling", Settings(profile=True, profile_calls=3, steps=4)).profile == 3
    with pytest.raises(ConfigError, match="profile_calls"):
        check(Settings(profile=True, profile_calls=0))


def test_training_batch_follows_the_settings() -> None:
    assert train_batch(Settings()) == 16 and train_batch(Settings(quick=True)) == 4
    assert train_batch(Settings(quick=True, batch=64)) == 64
    with pytest.raises(ConfigError, match="--batch"):
        check(Settings(batch=0))


def fake_result(profile: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A one-row result as `usgan.benchmarks.suite.run` returns it."""
    seconds = {"median": 0.5, "min": 0.4, "max": 0.6, "n": 3}
    form = {"precision": "fp32", "layout": "NCHW", "images": 4, "seconds": seconds, "ms": 500,
            "images_per_s": 8.0, "peak_rss_mb": 900.0, "peak_rss_is_own": True,
            "cuda_peak_mb": None, "flops": 10**10, "gflops_per_s": 20.0,
            "peak_percent": 25.0, "profile": profile}
    row = {"key": "stage1:dcgan", "title": "Stage-I step dcgan", "unit": "step", "warmup": 1,
           "profiled": 2, "forms": {"reference": form, "usgan": form}, "speedup": 1.0}
    return {"command": "usgan bench", "date": "2026-01-01T00:00:00", "quick": False,
            "device": "cpu", "precision": "fp32", "layout": "channels_last", "threads": 2,
            "machine": {"cpu": "x", "cores": 2, "torch_threads": 2, "gpu": None,
                        "cpu_flags": [], "platform": "linux"},
            "versions": {"torch": "2"}, "peaks": {p: {"gflops": 80.0, "size": 512}
                                                  for p in ("fp32", "bf16")},
            "rows": [row], "skipped": []}


def test_machine_says_native_bf16_apart_from_what_auto_chose(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU that computes bf16 natively but measured fp32 faster (a 2-core Xeon with
    AVX512-BF16 and no AMX did), the record says bf16 is native and the page says why the
    form runs in fp32."""
    from usgan.core import runtime

    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: True)
    monkeypatch.setattr(runtime, "measured_step_seconds", lambda: {"fp32": 1.0, "bf16": 2.0})
    rt = runtime.Runtime.create("cpu", "auto")
    assert rt.precision == "fp32" and machine_info(rt.device)["bf16_native"] is True
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: False)
    assert machine_info(rt.device)["bf16_native"] is False
    page = markdown({**fake_result(None), "precision_why": rt.why})
    assert ("usgan's form: precision fp32 (measured on this CPU: a convolution step takes "
            "1000.0 ms in fp32 and 2000.0 ms in bf16), channels_last") in page


def test_profiles_are_printed_and_written_as_markdown() -> None:
    ops = [{"name": "aten::convolution_backward", "self_ms": 240.8, "percent": 40.6,
            "calls": 20.0}, {"name": "aten::copy_", "self_ms": 11.7, "percent": 2.0,
                             "calls": 122.0}]
    page = markdown(fake_result(ops))
    assert page.count("### Where the time goes: Stage-I step dcgan") == 1
    assert "2 profiled calls per form" in page and "self CPU time" in page
    assert page.count("| `aten::convolution_backward` | 240.80 | 40.6 | 20 |") == 2
    assert page.index("| reference (fp32, NCHW) |") < page.index("| usgan (fp32, NCHW) |")
    assert "Where the time goes" not in markdown(fake_result(None))
    out = io.StringIO()
    print_profiles(fake_result(ops), Console(file=out, width=120))
    text = out.getvalue()
    assert text.count("stage1:dcgan") == 2 and "self CPU ms" in text
    assert text.count("aten::copy_") == 2 and "122" in text

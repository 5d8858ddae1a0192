"""Stage-I levers of issue 22: DiffAugment's probability and its adaptive form (ADA), LeCam
regularisation, resize-convolution in the DCGAN generator, and ``usgan bench quality --set``.

Whether a lever helps is the benchmark's business (docs/benchmarks.md); here only that each
does what it says, reaches the step, and resumes bit-identically.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run_usgan, train_until
from safetensors.torch import load_file
from torch import nn

from usgan.benchmarks.quality import QualitySettings, _load_or_start, parse_sets
from usgan.benchmarks.quality_report import markers
from usgan.core.errors import ConfigError
from usgan.core.factory import create_generator
from usgan.core.stage import Stage
from usgan.core.testing import check_stage1
from usgan.core.train.checkpoint import load_checkpoint, save_checkpoint
from usgan.core.train.diffaugment import AdaptiveP, diff_augment
from usgan.core.train.losses import LeCam
from usgan.core.train.options import TrainOptions
from usgan.core.train.state import STREAMS, TrainState
from usgan.core.train.step import GANStep
from usgan.core.train.trainer import Interrupted

TINY = {"stage1_config": {"g_width": 8, "d_width": 8}}


def _images(n: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_probability_one_draws_only_the_ops_parameters() -> None:
    """At p = 1 (a float) nothing more is drawn than the ops' own two numbers per image."""
    x, g = _images(), torch.Generator().manual_seed(3)
    diff_augment(x, ["translation", "cutout"], g)
    after = torch.Generator().manual_seed(3)
    torch.rand(8, 2, 2, generator=after)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=after))


def test_probability_zero_is_the_identity_and_a_half_mixes_per_image() -> None:
    x = _images(64)
    assert torch.equal(diff_augment(x, ["cutout"], torch.Generator().manual_seed(0), 0.0), x)
    half = diff_augment(x, ["cutout"], torch.Generator().manual_seed(0), 0.5)
    changed = (half != x).flatten(1).any(1)
    assert 10 < int(changed.sum()) < 54  # some images cut, some untouched
    assert torch.equal(half[~changed], x[~changed])


def test_adaptive_p_moves_with_the_sign_of_real_logits_and_resumes() -> None:
    ada = AdaptiveP(0.0, target=0.6, images=64, batch=4, interval=2)
    sure = torch.full((4,), 3.0)  # D calls every real image real: r = 1 > 0.6
    for _ in range(4):
        ada.observe(sure)
    assert float(ada.p) == pytest.approx(2 * 2 * 4 / 64)  # two intervals, 8/64 each
    unsure = torch.tensor([1.0, -1.0, 1.0, -1.0])  # r = 0 < 0.6
    for _ in range(20):
        ada.observe(unsure)
    assert float(ada.p) == 0.0  # clamped at 0
    ada.observe(sure)  # half an interval
    again = AdaptiveP(0.5, target=0.6, images=64, batch=4, interval=2)
    again.load_state_dict(json.loads(json.dumps(ada.state_dict())))
    for a in (ada, again):
        a.observe(sure)
    assert float(again.p) == float(ada.p) == pytest.approx(0.125)


def test_lecam_pulls_real_logits_towards_the_fake_average() -> None:
    lecam = LeCam(weight=2.0, decay=0.5)
    real = lecam.real(torch.tensor([4.0, 0.0]))  # a_real: 0 -> 1; a_fake is 0
    assert float(lecam.a_real) == 1.0
    assert float(real) == pytest.approx(2.0 * (16 + 0) / 2)  # relu(x - 0)^2, mean
    fake = lecam.fake(torch.tensor([-2.0, 2.0]))  # a_fake stays 0; a_real is 1
    assert float(fake) == pytest.approx(2.0 * (9 + 0) / 2)  # relu(1 - x)^2, mean
    copy = LeCam(weight=2.0, decay=0.5)
    copy.load_state_dict(lecam.state_dict())
    assert (float(copy.a_real), float(copy.a_fake)) == (1.0, 0.0)


def test_the_levers_reach_the_step() -> None:
    """--diffaugment-p and --lecam change D's update; an AdaptiveP sees every step."""
    def d_after(**opts: object) -> torch.Tensor:
        torch.manual_seed(0)
        d = nn.Sequential(nn.Flatten(), nn.Linear(256, 1), nn.Flatten(0))
        opt = torch.optim.SGD(d.parameters(), lr=0.1)
        options = TrainOptions(diffaugment=["cutout"], **opts)  # type: ignore[arg-type]
        parts = options.step_parts(Stage.ONE, "cpu")
        step = GANStep.for_options(options, lambda z: z[0], d, opt, opt,
                                   aug=torch.Generator().manual_seed(0), **parts)
        step(_images(4), [_images(4) * 0.5])
        if "ada" in parts:
            assert parts["ada"].count == 1
        return d[1].weight.detach().clone()

    base = d_after(diffaugment_p=1.0, ada_target=0)  # a fixed probability
    assert not torch.equal(base, d_after(diffaugment_p=0.0, ada_target=0))
    assert not torch.equal(base, d_after(diffaugment_p=1.0, ada_target=0, lecam=1.0))
    d_after(ada_target=0.6)  # counts the step (inside)
    assert TrainOptions(recipe="paper", ada_target=0.6).step_parts(Stage.ONE, "cpu") == {}


def test_recipes_set_the_augmentation_probability_and_ada_target_0_is_off() -> None:
    """dcgan's default: p = 0.5, fixed (benchmarks.md, Levers); the paper's: p = 1; ADA is
    there when asked for, and ``--ada-target 0`` (the CLI's way to say none) turns it off."""
    default = TrainOptions()
    assert (default.diffaugment_p, default.ada_target) == (0.5, None)
    assert default.step_parts(Stage.ONE, "cpu") == {}
    paper = TrainOptions(recipe="paper")
    assert (paper.diffaugment_p, paper.ada_target) == (1.0, None)
    assert "ada" in TrainOptions(ada_target=0.6).step_parts(Stage.ONE, "cpu")
    assert TrainOptions(ada_target=0).ada_target is None


@pytest.mark.parametrize("given, flag", [({"diffaugment_p": 1.5}, "--diffaugment-p"),
                                         ({"ada_target": 1.0}, "--ada-target"),
                                         ({"ada_images": 0}, "--ada-images"),
                                         ({"lecam": -1.0}, "--lecam")])
def test_bad_lever_values_are_refused(given: dict, flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        TrainOptions(**given)


def test_a_run_with_ada_and_lecam_resumes_bit_identically(tmp_path: Path) -> None:
    opts = TrainOptions(data="phantom:n=8", classes=["healthy"], batch_size=4, quiet=True,
                        checkpoint_every=1, stage2=None, max_minutes=0.1, diffaugment=["cutout"],
                        diffaugment_p=0.5, ada_target=0.6, ada_images=16, lecam=0.5, **TINY)
    train_until(tmp_path / "whole", opts)
    with pytest.raises(Interrupted):
        train_until(tmp_path / "cut", opts, stop_at=4)
    train_until(tmp_path / "cut", opts, resume=True)
    runtime = json.loads((tmp_path / "cut/config.json").read_text())["runtime"]
    assert runtime["precision"] in ("fp32", "bf16") and runtime["why"]  # said, and recorded
    for role in ("generator", "discriminator"):
        a = load_file(tmp_path / f"whole/healthy/stage1/{role}.safetensors")
        b = load_file(tmp_path / f"cut/healthy/stage1/{role}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_each_process_resumes_its_own_ada_statistics(tmp_path: Path) -> None:
    """Under torchrun ADA sums each process's own real logits between its updates of p; a
    checkpoint keeps every rank's sum, not rank 0's for all."""
    def rank_state() -> TrainState:
        net = nn.Linear(1, 1)
        opt = torch.optim.Adam(net.parameters())
        streams = {name: torch.Generator().manual_seed(0) for name in STREAMS}
        return TrainState(net, net, opt, opt, None, streams, 8,
                          {"ada": AdaptiveP(0.5, 0.6, 16, batch=4)})

    ranks = [rank_state(), rank_state()]
    ranks[0].parts["ada"].observe(torch.tensor([-1.0, 2.0, 3.0, 4.0]))
    ranks[1].parts["ada"].observe(torch.tensor([-1.0, -2.0, -3.0, 4.0]))
    save_checkpoint(tmp_path, 1, ranks[0].snapshot([r.rank_state() for r in ranks]))
    for rank, before in enumerate(ranks):
        after = rank_state()
        after.restore(load_checkpoint(tmp_path / "step-00000001.safetensors"), rank)
        assert after.parts["ada"].state_dict() == before.parts["ada"].state_dict()


def test_resize_convolution_generator() -> None:
    """upsample=bilinear: no transposed convolution after the 4x4 projection; the default
    keeps the paper's layers (and their state_dict keys)."""
    rc = create_generator("dcgan", g_width=8, upsample="bilinear")
    convt = [m for m in rc.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(convt) == 1 and convt[0].kernel_size == (4, 4) and convt[0].stride == (1, 1)
    assert rc(torch.randn(2, 100)).shape == (2, 1, 64, 64)
    check_stage1("dcgan", {"g_width": 8, "d_width": 8, "upsample": "bilinear"})
    paper = create_generator("dcgan", g_width=8)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in paper.modules()) == 5
    assert list(paper.state_dict())[-1] == "net.12.weight"  # the last ConvTranspose


def test_an_unknown_upsampling_mode_is_named() -> None:
    got = run_usgan("train", "--stage1-config", "upsample=cubic", "--max-steps", "1",
                    "--data", "phantom:n=8", "--batch-size", "4", "--stage2", "off")
    assert got.returncode != 0 and "cubic" in got.stderr and "Traceback" not in got.stderr


def test_bench_set_parses_levers_and_keeps_them_apart(tmp_path: Path) -> None:
    sets = parse_sets(["diffaugment_p=0.5", "stage1_config.upsample=bilinear",
                       'diffaugment=["cutout"]', "ema=true"])
    assert sets == {"diffaugment_p": 0.5, "stage1_config": {"upsample": "bilinear"},
                    "diffaugment": ["cutout"], "ema": True}
    for bad, message in (("seed=3", "bench lets you set"), ("nope=1", "'nope'"),
                         ("diffaugment_p", "KEY=VALUE")):
        with pytest.raises(ConfigError, match=message):
            parse_sets([bad])
    with pytest.raises(ConfigError, match="diffaugment_p"):
        QualitySettings("phantom", "healthy", tmp_path, options={"diffaugment_p": "x"}).check()
    lever = QualitySettings("phantom", "healthy", tmp_path, options=sets)
    result = _load_or_start(lever, "usgan bench quality ...", 10, 4)
    result["machine"] = {}
    assert "upsample" in markers(result)[0]  # its own section, beside the default's
    (tmp_path / "quality.json").write_text(json.dumps(result))
    plain = QualitySettings("phantom", "healthy", tmp_path)
    with pytest.raises(ConfigError, match="--set"):
        _load_or_start(plain, "usgan bench quality ...", 10, 4)


def test_auto_precision_is_the_one_measured_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    from usgan.core import runtime

    cpu = torch.device("cpu")
    assert runtime.precision_choice("bf16", cpu) == ("bf16", "asked for")
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: False)
    pick, why = runtime.precision_choice("auto", cpu)
    assert pick == "fp32" and "emulated" in why
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: True)
    for secs, want in (({"fp32": 2.0, "bf16": 1.0}, "bf16"), ({"fp32": 1.0, "bf16": 3.0}, "fp32")):
        pick, why = runtime.precision_choice("auto", cpu, measure=lambda s=secs: s)
        assert pick == want and why.startswith("measured on this CPU: a convolution step")


def test_ranks_take_rank_0s_choice_and_resume_keeps_the_started_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from usgan.core import runtime

    def measure_not(name: str, dev: torch.device) -> tuple[str, str]:
        raise AssertionError("measured again")

    class Rank1(runtime.Dist):
        def broadcast(self, obj: object) -> object:
            assert obj is None  # rank 1 measures nothing of its own
            return ("bf16", "rank 0 measured")

    monkeypatch.setattr(runtime, "precision_choice", measure_not)
    rt = runtime.Runtime.create("cpu", "auto", Rank1(rank=1, world=2))
    assert (rt.precision, rt.why) == ("bf16", "rank 0 measured")
    rt = runtime.Runtime.create("cpu", "auto", started={"device": "cpu", "precision": "bf16"})
    assert rt.precision == "bf16" and "started" in rt.why
    monkeypatch.setattr(runtime, "precision_choice", lambda name, dev: ("fp32", "measured"))
    for started in ({"device": "cuda:0", "precision": "bf16"}, {"precision": "fp16"}, None):
        assert runtime.Runtime.create("cpu", "auto", started=started).why == "measured"


def test_a_resumed_run_trains_in_the_precision_it_started_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from usgan.core import runtime

    opts = TrainOptions(data="phantom:n=8", classes=["healthy"], batch_size=4, quiet=True,
                        checkpoint_every=1, stage2=None, max_minutes=0.1, **TINY)
    monkeypatch.setattr(runtime, "precision_choice", lambda name, dev: ("fp32", "measured"))
    with pytest.raises(Interrupted):
        train_until(tmp_path / "cut", opts, stop_at=4)
    monkeypatch.setattr(runtime, "precision_choice", lambda name, dev: ("bf16", "measured"))
    train_until(tmp_path / "cut", opts, resume=True)  # the measurement came out otherwise
    recorded = json.loads((tmp_path / "cut/config.json").read_text())["runtime"]
    assert recorded["precision"] == "fp32" and "started" in recorded["why"]


def test_the_measurement_is_cached_and_leaves_the_random_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from usgan.core import runtime

    monkeypatch.setenv("USGAN_CACHE", str(tmp_path))
    calls: list[str] = []
    monkeypatch.setattr(runtime, "_step_seconds",
                        lambda net, x, p: calls.append(p) or {"fp32": 0.2, "bf16": 0.1}[p])
    state = torch.get_rng_state()
    assert runtime.measured_step_seconds() == {"fp32": 0.2, "bf16": 0.1}
    assert torch.equal(torch.get_rng_state(), state)
    assert runtime.measured_step_seconds() == {"fp32": 0.2, "bf16": 0.1}
    assert calls == ["fp32", "bf16"]  # once; then from $USGAN_CACHE/precision.json
    assert (tmp_path / "precision.json").is_file()


def test_the_model_card_says_how_often_and_where_diffaugment_applied() -> None:
    from usgan.zoo.card import _augmentation

    both = [Stage.ONE, Stage.TWO]

    def line(stages: list[Stage] = both, **given: object) -> str:
        return _augmentation(TrainOptions(stage1="dcgan", **given), stages)  # type: ignore[arg-type]

    assert line(diffaugment_p=1.0) == ", DiffAugment translation,cutout in Stage-I and Stage-II"
    assert line([Stage.ONE]) == ", DiffAugment translation,cutout (p 0.5) in Stage-I"
    assert line(diffaugment_p=0.0, ada_target=0.6).endswith(
        "(ADA from p 0, target 0.6) in Stage-I and Stage-II")
    assert line(stage2_diffaugment=["translation"]) == (
        ", DiffAugment translation,cutout (p 0.5) in Stage-I"
        ", DiffAugment translation (p 0.5) in Stage-II")
    assert line(diffaugment=[], stage2_diffaugment=[]) == ""

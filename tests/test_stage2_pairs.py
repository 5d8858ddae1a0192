"""Stage-II from real pairs (degradation, crops, the feed) and wall-clock budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import run_usgan, train_until
from safetensors.torch import load_file

from usgan.core.errors import ConfigError
from usgan.core.factory import create_generator
from usgan.core.stage import Stage
from usgan.core.train.options import TrainOptions
from usgan.core.train.pairs import (
    Degradation,
    RefineFeed,
    crop_at,
    gaussian_blur,
    random_crops,
    reconstruction,
)
from usgan.core.train.trainer import Interrupted

TINY = {"stage1_config": {"g_width": 8, "d_width": 8},
        "stage2_config": {"width": 8, "d_width": 8, "max_width": 32, "residual": True}}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------- degradation
def test_plain_degradation_is_an_area_downsample() -> None:
    hr = torch.rand(3, 1, 32, 32, generator=_gen()) * 2 - 1
    low = Degradation(4)(hr, _gen())
    assert low.shape == (3, 1, 8, 8)
    assert torch.allclose(low, hr.view(3, 1, 8, 4, 8, 4).mean((3, 5)), atol=1e-6)


def test_blur_keeps_flat_images_and_smooths_edges() -> None:
    flat = torch.full((2, 1, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, torch.tensor([0.0, 1.5])), flat, atol=1e-6)
    edge = torch.zeros(2, 1, 16, 16)
    edge[..., 8:] = 1.0
    out = gaussian_blur(edge, torch.tensor([0.0, 1.5]))
    assert torch.allclose(out[0], edge[0], atol=1e-6)  # sigma 0: as it is
    assert 0.1 < float(out[1, 0, 0, 7]) < 0.5 and 0.5 < float(out[1, 0, 0, 8]) < 0.9


def test_degradation_draws_from_its_generator_only() -> None:
    hr = torch.rand(4, 1, 32, 32, generator=_gen(1)) * 2 - 1
    deg = Degradation(2, blur=1.0, noise=0.1)
    a, b, c = deg(hr, _gen(5)), deg(hr, _gen(5)), deg(hr, _gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1
    with pytest.raises(ConfigError):
        Degradation(2, blur=-1.0)


def test_crops_are_cut_where_they_say() -> None:
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16)
    crops, corners = random_crops(x, 8, _gen(), step=4)
    assert crops.shape == (2, 1, 8, 8) and (corners % 4 == 0).all()
    for i, (y, z) in enumerate(corners.tolist()):
        assert torch.equal(crops[i], x[i, :, y:y + 8, z:z + 8])
    assert torch.equal(crop_at(x, corners, 8), crops)
    with pytest.raises(ConfigError, match="larger"):
        random_crops(x, 32, _gen())


def test_reconstruction_compares_at_the_targets_size() -> None:
    fake = torch.zeros(1, 1, 8, 8)
    fake[..., ::2, ::2] = 4.0  # mean 1 per 2x2 block
    assert float(reconstruction(fake, torch.ones(1, 1, 4, 4))) == pytest.approx(0.0)
    assert float(reconstruction(fake, torch.zeros(1, 1, 8, 8))) == pytest.approx(1.0)


# ------------------------------------------------------------------- the feed
def _feed(crop: int | None) -> RefineFeed:
    g1 = create_generator("dcgan", g_width=8).eval().requires_grad_(False)
    return RefineFeed(g1, Degradation(4, blur=0.5, noise=0.02), crop)


def test_pretrain_pairs_restore_the_real_crop() -> None:
    real = torch.rand(2, 1, 256, 256, generator=_gen()) * 2 - 1
    noise = (torch.randn(2, 100), torch.randn(2, 100))
    d_real, (low, z2), target = _feed(128).pretrain(real, noise, _gen())
    assert d_real.shape == (2, 1, 128, 128) and low.shape == (2, 1, 32, 32)
    assert target is d_real and z2 is noise[1]
    # the low-resolution input is the degraded real crop, not another place
    assert (F.avg_pool2d(target, 4) - low).abs().mean() < 0.05


def test_finetune_refines_stage1_images_with_consistency() -> None:
    real = torch.rand(2, 1, 256, 256, generator=_gen()) * 2 - 1
    noise = (torch.randn(2, 100), torch.randn(2, 100))
    d_real, (low, _), target = _feed(None).finetune(real, noise, _gen())
    assert d_real is real and low.shape == (2, 1, 64, 64)
    assert torch.allclose(target, F.avg_pool2d(low, 4))  # the layout, at 16 px
    _, (low_c, _), _ = _feed(128).finetune(real, noise, _gen())
    assert low_c.shape == (2, 1, 32, 32)


def test_builtin_stage2_is_fully_convolutional() -> None:
    g2 = create_generator("stack", width=8, max_width=32, residual=True).eval()
    z = torch.randn(2, 100)
    assert g2(torch.zeros(2, 1, 32, 32), z).shape == (2, 1, 128, 128)
    assert g2(torch.zeros(2, 1, 64, 64), z).shape == (2, 1, 256, 256)


# --------------------------------------------------------------- the trainer
def _opts(**kw: object) -> TrainOptions:
    return TrainOptions(data="phantom:n=8", classes=["healthy"], batch_size=4, quiet=True,
                        checkpoint_every=1, **{**TINY, **kw})


def test_a_time_budget_stops_and_finishes_the_phase(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_until(out, _opts(stage2=None, max_minutes=0.1))  # 6 s: six steps of the fake clock
    config = json.loads((out / "config.json").read_text())
    phase = config["phases"]["healthy/stage1"]
    assert phase["steps"] == 6 and phase["stopped_by"] == "minutes"
    assert phase["max_minutes"] == 0.1 and phase["max_steps"] is None
    assert (out / "healthy/stage1/generator.safetensors").is_file()
    assert [p.name for p in (out / "checkpoints/healthy/stage1").glob("step-*")] == [
        "step-00000006.safetensors"]
    assert list((out / "samples").glob("healthy-stage1-step000006.png"))
    assert json.loads((out / "progress.json").read_text())["finished"] is True


def test_steps_and_minutes_whichever_comes_first(tmp_path: Path) -> None:
    train_until(tmp_path / "a", _opts(stage2=None, max_minutes=0.1, max_steps=3))
    a = json.loads((tmp_path / "a/config.json").read_text())["phases"]["healthy/stage1"]
    assert (a["steps"], a["stopped_by"]) == (3, "steps")


def test_resume_continues_the_budget_bit_identically(tmp_path: Path) -> None:
    opts = _opts(stage2=None, max_minutes=0.1)
    train_until(tmp_path / "whole", opts)
    with pytest.raises(Interrupted):
        train_until(tmp_path / "cut", opts, stop_at=4)  # after step 3
    train_until(tmp_path / "cut", opts, resume=True)
    phases = json.loads((tmp_path / "cut/config.json").read_text())["phases"]
    assert phases["healthy/stage1"]["steps"] == 6  # 3 before the stop, 3 after
    for role in ("generator", "discriminator"):
        a = load_file(tmp_path / f"whole/healthy/stage1/{role}.safetensors")
        b = load_file(tmp_path / f"cut/healthy/stage1/{role}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_stage2_pairs_then_stage1_is_recorded(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_until(out, _opts(max_steps=2, stage2_max_steps=4, stage2_pretrain=0.5,
                           stage2_recon=5.0, stage2_crop=128, stage2_blur=1.0,
                           stage2_noise=0.05))
    phases = json.loads((out / "config.json").read_text())["phases"]
    assert phases["healthy/stage2"]["pretrain_steps"] == 2
    assert phases["healthy/stage2"]["steps"] == 4
    d = load_file(out / "healthy/stage2/discriminator.safetensors")
    assert d  # the crop-sized discriminator is saved and loads back
    from usgan import load

    images = load(out).sample(2, cls="healthy", seed=0)
    assert images.shape == (2, 1, 256, 256)


def test_the_l1_term_reaches_stage2_only(tmp_path: Path) -> None:
    """--stage2-recon changes what Stage-II learns, and nothing of Stage-I."""
    def weights(recon: float, role: str) -> dict[str, torch.Tensor]:
        out = tmp_path / f"r{recon}"
        if not out.exists():
            train_until(out, _opts(max_steps=1, stage2_pretrain=1.0, stage2_recon=recon,
                                   stage2_crop=64))
        return load_file(out / f"healthy/{role}/generator.safetensors")

    for role, same in (("stage1", True), ("stage2", False)):
        a, b = weights(0.0, role), weights(100.0, role)
        assert all(torch.equal(a[k], b[k]) for k in a) is same, role


@pytest.mark.parametrize("share,switch_at", [(0.5, 2), (1.0, None)])
def test_pairs_end_at_their_share_or_never(share: float, switch_at: int | None) -> None:
    """A share of 1 keeps the real pairs to the end: Stage-I's images are never trained on."""
    from types import SimpleNamespace

    from usgan.core.train.pairs import Refinement
    from usgan.core.train.state import Schedule

    schedule = Schedule(n=8, per_rank=4, steps_per_epoch=2, total=4)
    ref = Refinement(_feed(64), share, "healthy/stage2", lambda _m: None, finetune_lr=0.1)
    opts = [torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=2e-4) for _ in "gd"]
    state = SimpleNamespace(step=0, elapsed=0.0, pretrain_end=None, opt_g=opts[0],
                            opt_d=opts[1])
    for _ in range(4):
        state.step += 1
        ref.advance(schedule, state, lambda x: x)  # type: ignore[arg-type]
    assert state.pretrain_end == switch_at
    assert ref.pretraining(state) is (switch_at is None)
    want = 2e-5 if switch_at else 2e-4  # --stage2-finetune-lr 0.1, once, at the switch
    assert [o.param_groups[0]["lr"] for o in opts] == pytest.approx([want, want])


@pytest.mark.parametrize("kw,needle", [
    ({"stage2_pretrain": 1.5}, "--stage2-pretrain"),
    ({"max_minutes": 0}, "--max-minutes"),
    ({"stage2_crop": 4}, "--stage2-crop"),
    ({"stage2_recon": -1.0}, "--stage2-recon"),
    ({"stage2_finetune_lr": 0}, "--stage2-finetune-lr"),
])
def test_option_errors(kw: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        _opts(**kw)


@pytest.mark.parametrize("crop,needle", [("102", "multiple of 4"), ("96", "does not train")])
def test_bad_crop_is_one_line(tmp_path: Path, crop: str, needle: str) -> None:
    r = run_usgan("train", "--data", "phantom:n=8", "--max-steps", "1", "--stage2-crop", crop,
                  "--out", str(tmp_path / "run"))
    assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_without_out_a_new_run_folder_is_picked(tmp_path: Path) -> None:
    args = ["train", "--data", "phantom:n=8", "--classes", "healthy", "--batch-size", "4",
            "--max-steps", "1", "--stage2", "off", "--stage1-config", "g_width=8,d_width=8"]
    for name in ("dcgan-stage1", "dcgan-stage1-2"):
        r = run_usgan(*args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert f"training into runs/{name}" in r.stderr
        assert (tmp_path / "runs" / name / "config.json").is_file()
    r = run_usgan("train", "--resume", cwd=tmp_path)
    assert r.returncode != 0 and "--resume RUN_DIR" in r.stderr


def test_budget_flags_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = run_usgan("train", "--stage1", "dcgan", "--stage2", "on", "--data", "phantom:n=8",
                  "--classes", "healthy", "--batch-size", "4", "--max-minutes", "0.02",
                  "--stage2-max-minutes", "0.03", "--stage1-config", "g_width=8,d_width=8",
                  "--stage2-config", "width=8,d_width=8,max_width=32", "--quiet",
                  "--out", str(out))
    assert r.returncode == 0, r.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["options"]["max_minutes"], config["options"]["stage2_max_minutes"]) == (
        0.02, 0.03)
    for stage, minutes in ((1, 0.02), (2, 0.03)):
        phase = config["phases"][f"healthy/stage{stage}"]
        assert phase["stopped_by"] == "minutes" and phase["max_minutes"] == minutes
        assert phase["seconds"] >= minutes * 60 and phase["steps"] >= 1
    assert config["phases"]["healthy/stage2"]["pretrain_steps"] is not None
    assert (out / "healthy/stage2/generator.safetensors").is_file()


@pytest.mark.parametrize("ema, stage2_ema, averaged", [(True, False, {"stage1"}),
                                                      (False, True, {"stage2"}),
                                                      (True, None, {"stage1", "stage2"})])
def test_each_stage_keeps_an_ema_of_g_as_asked_and_samples_from_it(
        tmp_path: Path, ema: bool, stage2_ema: bool | None, averaged: set[str]) -> None:
    """--stage2-ema apart from --ema (the default recipe: Stage-I only); sampling uses a
    stage's EMA copy exactly where that stage kept one."""
    import usgan
    from usgan.core.run import RunDir

    opts = TrainOptions(data="phantom:n=8", classes=["healthy"], batch_size=4, max_steps=2,
                        quiet=True, ema=ema, stage2_ema=stage2_ema, **TINY)  # type: ignore[arg-type]
    train_until(tmp_path / "run", opts)
    run = RunDir(tmp_path / "run")
    kept = {s for s in ("stage1", "stage2")
            if run.weights("healthy", s, "generator_ema").is_file()}
    assert kept == averaged
    synth = usgan.load(tmp_path / "run", precision="fp32")
    for stage, net in zip((Stage.ONE, Stage.TWO), synth.chain("healthy", 2), strict=True):
        role = "generator_ema" if str(stage) in averaged else "generator"
        saved = load_file(run.weights("healthy", stage, role))
        used = net.state_dict()
        assert saved and all(torch.equal(used[k].float(), v.float()) for k, v in saved.items())

"""Sampling: `usgan sample` and `usgan.load(...).sample`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import usgan
from usgan.cli.main import cli
from usgan.core.errors import UnknownNameError, UsganError
from usgan.core.train.options import TrainOptions
from usgan.core.train.trainer import Trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished two-stage run with EMA, hinge loss and DiffAugment on both classes."""
    out = tmp_path_factory.mktemp("sample") / "run"
    opts = TrainOptions(  # the paper recipe: with the default one 3 seeds gave one uint8 image
        recipe="paper", data="phantom:n=8", batch_size=4, max_steps=2, quiet=True, ema=True,
        loss="hinge",
        diffaugment=["color", "translation", "cutout"],
        stage1_config={"g_width": 8, "d_width": 8},
        stage2_config={"width": 8, "d_width": 8, "max_width": 32},
    )
    import os

    os.environ.setdefault("USGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    Trainer(opts, out).train()
    return out


def test_api_sample_is_uint8_deterministic_and_batch_independent(run: Path) -> None:
    synth = usgan.load(run)
    assert synth.classes == ["healthy", "steatosis"]
    a = synth.sample(5, cls="healthy", seed=3, batch_size=2)
    b = synth.sample(5, cls="healthy", seed=3, batch_size=5)
    c = synth.sample(5, cls="healthy", seed=4)
    assert a.dtype == torch.uint8 and a.shape == (5, 1, 256, 256)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert synth.sample(2, cls="steatosis", stage=1).shape == (2, 1, 64, 64)
    assert (run / "healthy/stage1/generator_ema.safetensors").is_file()


def test_sample_reports_progress_per_batch_and_runs_the_fast_path(run: Path) -> None:
    synth = usgan.load(run)
    calls: list[int] = []
    a = synth.sample(5, cls="healthy", seed=3, batch_size=2, progress=calls.append)
    assert calls == [2, 2, 1]
    g = synth.chain("healthy")[-1]
    conv = next(p for p in g.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    fp32 = usgan.load(run, precision="fp32").sample(5, cls="healthy", seed=3)
    bf16 = usgan.load(run, precision="bf16").sample(5, cls="healthy", seed=3)
    assert torch.equal(a, fp32 if synth.runtime.precision == "fp32" else bf16)  # auto: either
    diff = (fp32.float() - bf16.float()).abs()
    assert diff.mean() < 4 and not torch.equal(fp32, bf16)  # autocast ran, same images


def test_api_errors(run: Path, tmp_path: Path) -> None:
    synth = usgan.load(run)
    with pytest.raises(UnknownNameError, match="did you mean 'healthy'"):
        synth.sample(1, cls="healthy2")
    with pytest.raises(UsganError, match="say which class"):
        synth.sample(1)
    with pytest.raises(UsganError, match="no such run directory"):
        usgan.load(tmp_path / "missing")


def test_cli_sample_writes_stable_names_and_never_overwrites(run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "synth"
    args = ["sample", str(run), "--class", "steatosis", "-n", "3", "--out", str(out),
            "--seed", "7", "--grid"]
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png", "steatosis-7-00000.png", "steatosis-7-00001.png",
                     "steatosis-7-00002.png"]
    img = Image.open(out / "steatosis-7-00000.png")
    assert img.mode == "L" and img.size == (256, 256)
    expected = usgan.load(run).sample(3, cls="steatosis", seed=7)
    assert np.array_equal(np.asarray(img), expected[0, 0].numpy())
    before = (out / "grid.png").read_bytes()
    r = runner.invoke(cli, args)
    assert r.exit_code == 2 and "exists" in r.output
    assert (out / "grid.png").read_bytes() == before
    r = runner.invoke(cli, [*args, "--force"])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["sample", str(run), "--class", "steatosis", "-n", "1", "--out",
                            str(tmp_path / "s1"), "--stage", "1"])
    assert r.exit_code == 0
    assert Image.open(tmp_path / "s1" / "steatosis-0-00000.png").size == (64, 64)

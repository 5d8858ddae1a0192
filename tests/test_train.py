"""The trainer: runs, resume (SIGKILL and SIGINT), divergence, bad input."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import BIN, CompileRecorder, failing_backend, run_usgan
from safetensors.torch import load_file

from usgan.core import io as io_mod
from usgan.core.errors import ConfigError, ShapeMismatchError, UnknownNameError, UsganError
from usgan.core.plugin_manager import get_registry
from usgan.core.registry import GANSpec, Registry
from usgan.core.train import checkpoint as ckpt_mod
from usgan.core.train.checkpoint import CheckpointError
from usgan.core.train.options import TrainOptions
from usgan.core.train.setup import validate_networks
from usgan.core.train.trainer import Trainer, TrainingDiverged

TINY = ["--stage1-config", "g_width=8,d_width=8",
        "--stage2-config", "width=8,d_width=8,max_width=32,noise=true"]
TINY_OPTS = {"stage1_config": {"g_width": 8, "d_width": 8},
             "stage2_config": {"width": 8, "d_width": 8, "max_width": 32, "noise": True}}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# The yardstick run: the default recipe (DiffAugment) plus EMA with warm-up and every
# regularizer, so that resume is proven bit-identical with all of them.
REF = ("--max-steps", "6", "--r1-gamma", "0.5", "--instance-noise", "0.05",
       "--label-smoothing", "0.1", "--lr-d", "3e-4", "--ema", "--ema-warmup")


def _train_args(out: Path, *extra: str) -> list[str]:
    return ["train", "--data", "phantom:n=12", "--classes", "healthy", "--out", str(out),
            "--batch-size", "4", "--checkpoint-every", "1", "--quiet", *TINY, *extra]


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    files = sorted(run.glob("*/stage*/*.safetensors"))
    return {str(p.relative_to(run)): load_file(p) for p in files}


def _assert_identical(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa and wa.keys() == wb.keys()
    for name in wa:
        for key in wa[name]:
            assert torch.equal(wa[name][key], wb[name][key]), f"{name}:{key} differs"


def _wait_for(pattern: str, root: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if list(root.glob(pattern)):
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended before {pattern} appeared: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"{pattern} never appeared")


def _popen(args: list[str], cmd: list[str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd or [str(BIN / "usgan"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ})


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted two-stage run, the yardstick for the resume tests."""
    out = tmp_path_factory.mktemp("ref") / "run"
    r = run_usgan(*_train_args(out, *REF),
                  env={"USGAN_CACHE": str(tmp_path_factory.getbasetemp() / "cache")})
    assert r.returncode == 0, r.stderr
    return out


def test_run_directory_is_self_describing(reference_run: Path) -> None:
    config = json.loads((reference_run / "config.json").read_text())
    assert config["classes"] == ["healthy"]
    assert config["options"]["lr"] == 2e-4 and config["options"]["betas"] == [0.5, 0.999]
    assert config["data"]["fingerprint"] and config["versions"]["torch"]
    for stage in (1, 2):
        for role in ("generator", "discriminator"):
            assert (reference_run / "healthy" / f"stage{stage}" / f"{role}.safetensors").is_file()
    assert json.loads((reference_run / "progress.json").read_text())["finished"] is True
    assert list((reference_run / "samples").glob("healthy-stage2-*.png"))
    assert (reference_run / "README.md").read_text().startswith("---")
    lines = (reference_run / "metrics.jsonl").read_text().splitlines()
    assert {"loss_d", "loss_g", "d_real", "d_fake", "img_per_s"} <= json.loads(lines[0]).keys()
    # A finished stage keeps only its last checkpoint (the last K are kept while it trains).
    for stage in (1, 2):
        kept = sorted((reference_run / f"checkpoints/healthy/stage{stage}").glob("step-*"))
        assert [p.name for p in kept] == ["step-00000006.safetensors"]
    assert not list(reference_run.rglob(".*.tmp-*"))


def test_sigkill_and_resume_is_bit_identical(reference_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = _train_args(out, *REF)
    rng = random.Random()
    for pattern in ("checkpoints/healthy/stage1/step-*", "checkpoints/healthy/stage2/step-*"):
        proc = _popen(args if not out.exists() else [*args, "--resume"])
        _wait_for(pattern, out, proc)
        time.sleep(rng.uniform(0, 0.5))  # at any moment after that
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    r = run_usgan(*args, "--resume")
    assert r.returncode == 0, r.stderr
    _assert_identical(reference_run, out)


# Runs usgan with os.replace wrapped: at the N-th rename of a checkpoint file the process
# SIGKILLs itself, before or after the rename (inside core.io.write_atomic).
_KILL_IN_WRITE = """
import os, signal, sys
real, seen = os.replace, []
def replace(src, dst):
    if os.path.basename(str(dst)).startswith("step-"):
        seen.append(dst)
        if len(seen) == {n}:
            if "{when}" == "after":
                real(src, dst)
            os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst)
os.replace = replace
sys.argv = ["usgan", *{args!r}]
from usgan.cli.main import main
main()
"""


@pytest.mark.parametrize("when, n", [("before", 3), ("after", 9)],
                         ids=["stage1-before-rename", "stage2-after-rename"])
def test_a_kill_inside_the_checkpoint_write_resumes_exactly(
        reference_run: Path, tmp_path: Path, when: str, n: int) -> None:
    """Deterministic fault injection: killed with the N-th checkpoint half-written (its
    temporary file complete, not yet renamed) or just renamed, the run resumes from the
    newest whole checkpoint and ends bit-identical to one never stopped."""
    out = tmp_path / "run"
    args = _train_args(out, *REF)
    script = _KILL_IN_WRITE.format(n=n, when=when, args=args)
    proc = subprocess.run([str(BIN / "python"), "-c", script], capture_output=True, text=True,
                          env={**os.environ}, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    stage = "stage1" if n <= 6 else "stage2"
    left = list((out / f"checkpoints/healthy/{stage}").glob(".step-*.tmp-*"))
    assert bool(left) == (when == "before")  # the half-written file, as a kill leaves it
    r = run_usgan(*args, "--resume")
    assert r.returncode == 0, r.stderr
    _assert_identical(reference_run, out)
    assert not list(out.rglob(".step-*.tmp-*"))  # cleared once the phase saves again


def test_corrupt_checkpoint_falls_back_to_previous(reference_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = _train_args(out, *REF)
    proc = _popen(args)
    _wait_for("checkpoints/healthy/stage2/step-*", out, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stage2 = sorted((out / "checkpoints/healthy/stage2").glob("step-*"))
    newest = stage2[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    r = run_usgan(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert f"checkpoint {newest} is damaged" in r.stderr
    _assert_identical(reference_run, out)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_saves_and_says_how_to_resume(tmp_path: Path, signum: int) -> None:
    """Ctrl-C and SIGTERM (``kill``, a scheduler's time limit) alike save a checkpoint."""
    out = tmp_path / "run"
    proc = _popen(_train_args(out, "--max-steps", "400", "--stage2", "off",
                              "--checkpoint-every", "1000"))
    _wait_for("metrics.jsonl", out, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"usgan train --resume {out}" in err and "Traceback" not in err
    assert list((out / "checkpoints/healthy/stage1").glob("step-*"))


def test_a_checkpoint_that_no_longer_fits_the_network_is_one_clear_line(
        tmp_path: Path) -> None:
    """A run resumed after its network changed (here by hand; in life a new version's
    defaults) says which checkpoint and what to do, not load_state_dict's traceback."""
    out = tmp_path / "run"

    def train(attn_res: int, *extra: str) -> subprocess.CompletedProcess[str]:
        return run_usgan("train", "--data", "phantom:n=12", "--classes", "healthy", "--out",
                         str(out), "--batch-size", "4", "--quiet", "--stage2", "off",
                         "--stage1", "dcgan-sn-sa", "--max-steps", "2", "--checkpoint-every", "1",
                         "--stage1-config",
                         f"g_width=8,d_width=8,attn_res={attn_res}", *extra)

    assert train(8).returncode == 0
    (out / "progress.json").unlink()  # as if stopped before the phase ended
    r = train(4, "--resume", "--force")
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "checkpoints/healthy/stage1: its generator does not fit" in r.stderr
    assert "--stage1-config" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_torchrun_two_processes_and_resume(tmp_path: Path) -> None:
    torchrun = str(BIN / "torchrun")
    env_cache = os.environ["USGAN_CACHE"]

    def cmd(out: Path, *extra: str) -> list[str]:
        return [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "usgan",
                *_train_args(out, "--max-steps", "4", "--device", "cpu", *extra)]

    ref = tmp_path / "ref"
    r = subprocess.run(cmd(ref), capture_output=True, text=True, timeout=300,
                       env={**os.environ, "USGAN_CACHE": env_cache})
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((ref / "progress.json").read_text())["finished"]

    out = tmp_path / "killed"
    proc = _popen([], cmd(out))
    _wait_for("checkpoints/healthy/stage1/step-00000002.safetensors", out, proc, timeout=300)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    r = subprocess.run(cmd(out, "--resume"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    _assert_identical(ref, out)


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize(("extra", "needle"), [
    (["--stage1", "dcgann"], "did you mean 'dcgan'"),
    (["--stage2-config", "in_size=32"], "Stage-I gives 1x64x64 images but Stage-II takes 1x32x32"),
    (["--stage1-config", "size=512,g_width=8,d_width=8"], "in_size <= out_size"),
    (["--batch-size", "64"], "--batch-size 64 is larger than the 12 images of class 'healthy'"),
    (["--stage2-batch-size", "64"],
     "--stage2-batch-size 64 is larger than the 12 images of class 'healthy'"),
    (["--diffaugment", "colour"], "unknown DiffAugment policy 'colour'"),
])
def test_bad_train_input_is_one_line(tmp_path: Path, extra: list[str], needle: str) -> None:
    r = run_usgan(*_train_args(tmp_path / "run", "--max-steps", "1"), *extra)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_existing_run_is_never_overwritten(reference_run: Path, tmp_path: Path) -> None:
    before = _weights(reference_run)
    r = run_usgan(*_train_args(reference_run, *REF))
    assert r.returncode == 2 and "holds a finished run" in r.stderr
    r = run_usgan("train", "--resume", str(reference_run), "--lr", "0.001")
    assert r.returncode == 2 and "lr: 0.0002 -> 0.001" in r.stderr
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("keep me")
    r = run_usgan(*_train_args(user_dir, "--max-steps", "1"), "--force")
    assert r.returncode == 2 and "is not a usgan run" in r.stderr
    assert (user_dir / "notes.txt").read_text() == "keep me"
    _assert_identical_dicts(before, _weights(reference_run))


def _assert_identical_dicts(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert all(torch.equal(a[k][t], b[k][t]) for t in a[k])


def _opts(**kw: object) -> TrainOptions:
    return TrainOptions(data="phantom:n=8", classes=["healthy"], batch_size=4, quiet=True,
                        **{**TINY_OPTS, **kw})


def test_force_moves_a_finished_run_aside(tmp_path: Path) -> None:
    out = tmp_path / "run"
    Trainer(_opts(max_steps=1, stage2=None), out).train()
    Trainer(_opts(max_steps=1, stage2=None), out, force=True).train()
    aside = list(tmp_path.glob("run.replaced-*"))
    assert len(aside) == 1 and (aside[0] / "healthy/stage1/generator.safetensors").is_file()


def test_out_of_disk_space_keeps_the_last_checkpoint(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up while step 3's checkpoint is written
        if ".step-00000003" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(io_mod.os, "fsync", fsync)
    with pytest.raises(CheckpointError, match="No space left on device"):
        Trainer(_opts(max_steps=5, stage2=None, checkpoint_every=1), out).train()
    ckpts = sorted((out / "checkpoints/healthy/stage1").iterdir())
    assert [p.name for p in ckpts] == ["step-00000001.safetensors", "step-00000002.safetensors"]
    assert ckpt_mod.load_checkpoint(ckpts[-1])["step"] == 2
    assert not (out / "healthy/stage1/generator.safetensors").exists()
    assert not list(out.rglob(".*.tmp-*"))


class _NaNGenerator(torch.nn.Module):
    z_dim, out_channels, out_size = 4, 1, 64

    def __init__(self, **_: object) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full((z.shape[0], 1, 64, 64), float("nan")) * self.w


def test_divergence_names_stage_class_and_step(tmp_path: Path) -> None:
    reg = Registry()
    for spec in get_registry():
        reg.add(spec)
    dcgan = get_registry().get("dcgan")
    reg.add(replace(GANSpec("nan-gan", _NaNGenerator, dcgan.discriminator, dict(dcgan.defaults)),
                    kind="stage1", plugin="test"))
    trainer = Trainer(_opts(max_steps=3, stage1="nan-gan", stage2=None,
                            stage1_config={"d_width": 8}), tmp_path / "run", registry=reg)
    with pytest.raises(TrainingDiverged, match=r"stage 1, class 'healthy', a step in 1-3"):
        trainer.train()  # found by the lazy check at the last step (no per-step host sync)


def test_option_errors() -> None:
    with pytest.raises(ConfigError):
        TrainOptions(batch_size=0)
    with pytest.raises(UnknownNameError):
        validate_networks(get_registry(), _opts(stage1="nope"))
    with pytest.raises(ShapeMismatchError):
        validate_networks(get_registry(), _opts(stage2_config={"in_channels": 3}))
    with pytest.raises(UsganError, match="nothing to resume"):
        Trainer(_opts(), Path("/nonexistent/run"), resume=True).train()


def test_compile_mode_reduce_overhead_starts_a_graph_generation_each_step(
        tmp_path: Path, compiled: CompileRecorder) -> None:
    """--compile-mode reduce-overhead compiles G and D in that mode and marks the beginning
    of every step for CUDA graph trees (what makes a step's D passes keep their outputs on a
    GPU; a recording backend here, not inductor); the default mode marks nothing. Every graph
    has static shapes: D sees 2B images (real and generated as one batch, in slices), then
    B, and torch's automatic dynamic shapes made inductor fail on self-attention."""
    batches: set[int] = set()

    def static_only(gm: torch.fx.GraphModule, inputs: list[object], **_: object) -> object:
        values = [n.meta.get("example_value") for n in gm.graph.nodes if n.op == "placeholder"]
        shapes = [v.shape for v in values if isinstance(v, torch.Tensor)]
        assert all(isinstance(n, int) for shape in shapes for n in shape), shapes
        assert not any(isinstance(v, torch.SymInt) for v in values), values
        batches.update(shape[0] for shape in shapes if len(shape) == 4)
        return gm.forward

    compiled.backend = static_only
    opts = _opts(max_steps=3, stage2=None, stage1="dcgan-sn", compile=True,
                 compile_mode="reduce-overhead")
    run = Trainer(opts, tmp_path / "graphs").train()
    assert compiled.modes == ["reduce-overhead"] * 2 and compiled.marks == 3
    assert {4, 8} <= batches  # D's joint batch and G's batch: a graph each
    options = json.loads((run.root / "config.json").read_text())["options"]
    assert options["compile_mode"] == "reduce-overhead"
    compiled.backend = "eager"
    compiled.clear()
    Trainer(_opts(max_steps=2, stage2=None, compile=True), tmp_path / "default").train()
    assert compiled.modes == ["default"] * 2 and compiled.marks == 0


def test_compile_mode_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"^--compile-mode must be one of default, "
                       r"reduce-overhead, got 'fast'$"):
        TrainOptions(compile=True, compile_mode="fast")
    with pytest.raises(ConfigError, match=r"^--compile-mode reduce-overhead needs --compile$"):
        TrainOptions(compile_mode="reduce-overhead")


def test_compile_trains_the_same_networks_and_saves_plain_weights(
        tmp_path: Path, compiled: CompileRecorder) -> None:
    """--compile goes through torch.compile (dynamo with its eager backend here, to spare the
    suite inductor's C++ build): the step runs compiled, the saved weights have the plain
    network's names, and the run records the option."""
    run = Trainer(_opts(max_steps=2, stage2=None, compile=True), tmp_path / "run").train()
    assert len(compiled.models) == 2  # G and D
    plain = Trainer(_opts(max_steps=2, stage2=None), tmp_path / "plain").train()
    assert _weights(run.root).keys() == _weights(plain.root).keys()
    assert json.loads((run.root / "config.json").read_text())["options"]["compile"] is True

    compiled.backend = failing_backend
    with pytest.raises(ConfigError, match=r"^--compile: torch.compile failed .*no compiler here"
                       r".*train without --compile$"):
        Trainer(_opts(max_steps=1, stage2=None, compile=True), tmp_path / "broken").train()

"""``usgan train --jobs N``: classes trained at once, each in its own thread."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import run_usgan
from safetensors.torch import load_file

from usgan.core.errors import ConfigError
from usgan.core.run import RunDir
from usgan.core.train.options import TrainOptions
from usgan.core.train.together import by_class, first_error
from usgan.core.train.trainer import Interrupted, Trainer, TrainingDiverged

TINY = {"stage1_config": {"g_width": 8, "d_width": 8},
        "stage2_config": {"width": 8, "d_width": 8, "max_width": 32, "noise": True}}


@pytest.fixture(autouse=True)
def _cache_and_threads(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("USGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # --threads 1 below must not slow the tests after these


def _opts(**kw: Any) -> TrainOptions:
    """Both phantom classes (healthy, steatosis), tiny networks, one thread per operator."""
    return TrainOptions(**{"data": "phantom:n=8", "batch_size": 4, "quiet": True, "threads": 1,
                           **TINY, **kw})


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {str(p.relative_to(run)): load_file(p) for p in sorted(run.glob("*/stage*/*.sa*"))}


def test_two_classes_at_once_train_what_one_at_a_time_trains(tmp_path: Path) -> None:
    opts = {"max_steps": 3, "stage2_max_steps": 2, "checkpoint_every": 1}
    Trainer(_opts(**opts), tmp_path / "seq").train()
    before = torch.get_num_threads()
    run = Trainer(_opts(jobs=2, quiet=False, **opts), tmp_path / "par").train()  # shared bars
    assert torch.get_num_threads() == before  # the threads split for --jobs are given back
    seq, par = _weights(tmp_path / "seq"), _weights(tmp_path / "par")
    assert len(par) == 10 and par.keys() == seq.keys()  # 2 classes x (3 + 2) files
    for name in seq:
        assert all(torch.equal(seq[name][t], par[name][t]) for t in seq[name]), name
    # every phase's updates of the shared files survived the other thread's
    assert sorted(run.progress()["done"]) == ["healthy/stage1", "healthy/stage2",
                                              "steatosis/stage1", "steatosis/stage2"]
    assert run.read_config()["phases"].keys() == set(run.progress()["done"])
    assert {(m["class"], m["stage"]) for m in run.read_metrics()} == {
        (c, s) for c in ("healthy", "steatosis") for s in (1, 2)}


def test_a_failing_class_stops_the_others_with_a_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    other = out / "checkpoints" / "steatosis" / "stage1"
    real = Trainer._train_phase

    def train_phase(self: Trainer, phase: Any, images: Any, rt: Any) -> None:
        if phase.cls != "healthy":
            return real(self, phase, images, rt)
        deadline = time.monotonic() + 120
        while not list(other.glob("step-*")) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the other class has trained a step
        raise TrainingDiverged("training diverged: healthy's loss is nan")

    opts = _opts(jobs=2, max_steps=200, stage2=None, checkpoint_every=1)
    monkeypatch.setattr(Trainer, "_train_phase", train_phase)
    with pytest.raises(TrainingDiverged, match="healthy's loss is nan"):
        Trainer(opts, out).train()
    run = RunDir(out)
    assert run.progress()["done"] == [] and not run.is_finished()
    assert list(other.glob("step-*")), "the other class saved where it stopped"
    assert not (out / "steatosis" / "stage1" / "generator.safetensors").exists()
    # --resume continues both classes and ends where a run never stopped ends
    monkeypatch.setattr(Trainer, "_train_phase", real)
    Trainer(opts, out, resume=True).train()
    Trainer(opts, tmp_path / "whole").train()
    resumed, whole = _weights(out), _weights(tmp_path / "whole")
    assert len(whole) == 6 and resumed.keys() == whole.keys()
    for name in whole:
        assert all(torch.equal(whole[name][t], resumed[name][t]) for t in whole[name]), name


def test_one_error_reported_and_classes_grouped_in_order() -> None:
    def failed(err: BaseException) -> Future[None]:
        f: Future[None] = Future()
        f.set_exception(err)
        return f

    done: Future[None] = Future()
    done.set_result(None)
    stop, real = Interrupted("interrupted at steatosis/stage1"), TrainingDiverged("nan")
    assert first_error([failed(stop), done, failed(real)]) is real
    assert first_error([failed(stop), done]) is stop
    assert first_error([done]) is None

    class P:
        def __init__(self, key: str) -> None:
            self.cls, self.key = key.split("/")[0], key

    groups = by_class([P("b/1"), P("a/1"), P("b/2"), P("a/2")])
    assert [[p.key for p in g] for g in groups] == [["b/1", "b/2"], ["a/1", "a/2"]]


def test_config_updates_from_threads_at_once_are_all_kept(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.write_config({"options": {}, "stage1": {"name": "dcgan"}})

    def update(i: int) -> None:
        for j in range(15):
            run.update_config(lambda c, k=f"{i}/{j}": c.setdefault("phases", {}).update({k: 1}))
            run.mark_done(f"{i}/{j}")

    threads = [threading.Thread(target=update, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(run.read_config()["phases"]) == 90 and len(run.progress()["done"]) == 90
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_jobs_option_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--jobs must be at least 1"):
        TrainOptions(jobs=0)
    r = run_usgan("train", "--jobs", "2", "--compile", "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "usgan: error: --compile trains one class at a time: drop --jobs or --compile"]
    assert not (tmp_path / "r").exists()

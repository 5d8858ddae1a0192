"""The shared rooms: file I/O, the Stage type, sources, the run directory, provenance, and
stacking under Stage-I networks of any native size."""

from __future__ import annotations

import errno
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import run_usgan

import usgan
from usgan.core import io as io_mod
from usgan.core.errors import UsganError
from usgan.core.io import (
    FileFormatError,
    read_json,
    read_safetensors,
    save_safetensors,
    write_atomic,
    write_json,
)
from usgan.core.plugin_manager import get_registry
from usgan.core.registry import GANSpec, Registry
from usgan.core.run import RunDir
from usgan.core.serialization import META_KEY, load_network
from usgan.core.stage import Stage
from usgan.core.synth import Synthesizer
from usgan.core.train.checkpoint import list_checkpoints, save_checkpoint
from usgan.core.train.options import TrainOptions
from usgan.core.train.trainer import Trainer
from usgan.plugins.dcgan import DCGANDiscriminator, DCGANGenerator
from usgan.zoo.source import SourceError, parse_source, resolve

TINY_STACK = {"width": 8, "d_width": 8, "max_width": 16}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# --- core/io.py ----------------------------------------------------------------------------


def test_write_atomic_replaces_whole_files_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "a" / "x.json"
    write_json(path, {"b": 1, "a": [1, 2]})
    assert read_json(path) == {"a": [1, 2], "b": 1}
    write_atomic(path, "{}")
    assert read_json(path) == {}
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]


def test_one_image_writer_for_uint8_and_float_images(tmp_path: Path) -> None:
    from PIL import Image

    from usgan.core.io import write_grid, write_image

    x = torch.tensor([-1.0, -0.5, 0.0, 1.0, 3.0]).view(1, 1, 5)
    with Image.open(write_image(tmp_path / "a.png", x)) as img:
        assert img.mode == "L"
        assert [img.getpixel((i, 0)) for i in range(5)] == [0, 64, 128, 255, 255]
    u8 = torch.full((3, 1, 4, 4), 7, dtype=torch.uint8)
    with Image.open(write_grid(tmp_path / "g.png", u8, nrow=2, padding=1, pad_value=200)) as g:
        assert g.size == (11, 11) and g.getpixel((0, 0)) == 200 and g.getpixel((1, 1)) == 7


def test_write_atomic_failure_keeps_the_old_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.txt"
    path.write_text("old")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_mod.os, "fsync", full_disk)
    with pytest.raises(FileFormatError, match=f"could not write {path}: No space left"):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


@pytest.mark.parametrize("content, needle", [
    (None, "no such run config"),
    (b"\xff\xfe{", "not UTF-8"),
    (b"{not json", "not valid JSON"),
])
def test_read_json_errors_are_one_line(tmp_path: Path, content: bytes | None, needle: str
                                       ) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FileFormatError) as err:
        read_json(path, "run config")
    assert needle in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_read_safetensors_checks_the_header_first(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_safetensors(path, {"w": torch.ones(2, 3)}, {"k": "v"})
    tensors, meta = read_safetensors(path, expect={"w": ((2, 3), torch.float32)})
    assert torch.equal(tensors["w"], torch.ones(2, 3)) and meta == {"k": "v"}
    with pytest.raises(FileFormatError, match=r"'w' has shape \[2, 3\], expected \[3, 2\]"):
        read_safetensors(path, expect={"w": ((3, 2), torch.float32)})
    with pytest.raises(FileFormatError, match="1 missing"):
        read_safetensors(path, expect={"w": ((2, 3), torch.float32), "b": ((1,), torch.float32)})
    pickle = tmp_path / "model.pt"
    torch.save({"w": torch.ones(1)}, pickle)
    with pytest.raises(FileFormatError, match="is a PyTorch/pickle file"):
        read_safetensors(pickle)


def test_load_network_refuses_a_huge_config_before_allocating(tmp_path: Path) -> None:
    """Weights metadata asking for a 34 GB network: checked on the meta device, refused."""
    arch = {"name": "dcgan", "kind": "stage1", "role": "generator",
            "config": {**get_registry().get("dcgan").defaults, "g_width": 4096}}
    path = tmp_path / "huge.safetensors"
    save_safetensors(path, {"net.0.weight": torch.zeros(1)}, {META_KEY: json.dumps(arch)})
    with pytest.raises(UsganError, match="weights do not fit dcgan generator"):
        load_network(path)


@pytest.mark.parametrize("meta, needle", [
    ({}, "no usgan architecture metadata"),
    ({META_KEY: "{oops"}, "not JSON"),
    ({META_KEY: json.dumps({"name": "dcgan"})}, "lacks name, role, config"),
])
def test_bad_weights_metadata_is_one_line(tmp_path: Path, meta: dict[str, str], needle: str
                                          ) -> None:
    path = tmp_path / "w.safetensors"
    save_safetensors(path, {"x": torch.zeros(1)}, meta)
    with pytest.raises(UsganError, match=needle):
        load_network(path)


def test_checkpoints_keep_the_newest_k(tmp_path: Path) -> None:
    for step in range(1, 6):
        save_checkpoint(tmp_path, step, {"step": step, "t": torch.ones(2)}, keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        f"step-{s:08d}.safetensors" for s in (3, 4, 5)]


# --- Stage and SOURCE ----------------------------------------------------------------------


@pytest.mark.parametrize("text", [1, "1", "stage1", "Stage-I", "I", "STAGE_1", Stage.ONE])
def test_stage_spellings(text: object) -> None:
    stage = Stage.parse(text)  # type: ignore[arg-type]
    assert stage is Stage.ONE and stage == "stage1" and f"{stage}" == "stage1"
    assert (stage.number, stage.label) == (1, "Stage-I")
    assert Stage.parse("II") is Stage.TWO and json.dumps(Stage.TWO) == '"stage2"'


def test_stage_unknown() -> None:
    with pytest.raises(UsganError, match="unknown stage '3'"):
        Stage.parse("3")


def test_parse_source_kinds(tmp_path: Path) -> None:
    assert parse_source(tmp_path).kind == "path"
    zoo = parse_source("dcgan-sn-stage2.busi")
    assert (zoo.kind, zoo.name, zoo.tag) == ("zoo", "dcgan-sn-stage2", "busi")
    hub = parse_source("hf-hub:someone/liver-gan@abc123")
    assert (hub.kind, hub.repo, hub.revision) == ("hub", "someone/liver-gan", "abc123")
    assert parse_source("runs/x/y").kind == "path"
    with pytest.raises(SourceError, match="not a Hub source"):
        parse_source("hf-hub:no-owner")


@pytest.mark.parametrize("source, needle", [
    ("dcgan-sn-stage2", "zoo entry 'dcgan-sn-stage2' has not been published yet"),
    ("dcgan-sn-stage3", "unknown zoo name 'dcgan-sn-stage3'"),
    ("hf-hub:owner/name", "cannot reach the Hub at http://127.0.0.1:9"),
    ("runs/nope/x", "runs/nope/x: no such run directory"),
])
def test_resolve_errors(source: str, needle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(UsganError) as err:
        resolve(source)
    assert needle in str(err.value)


def test_resolve_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is not a usgan run"):
        usgan.load(tmp_path)


def test_cli_sample_of_a_zoo_name_is_one_line(tmp_path: Path) -> None:
    r = run_usgan("sample", "dcgan-sn-stage2", "--class", "healthy", "--out", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.startswith("usgan: error: zoo entry 'dcgan-sn-stage2' has not been published")
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_stage2_choice() -> None:
    from usgan.cli.train_cmd import stage2_choice

    assert stage2_choice("on", None) == "stack"
    assert stage2_choice("off", None) is None
    assert stage2_choice("upconv-refiner", None) == "upconv-refiner"
    assert stage2_choice("on", "upconv-refiner") == "upconv-refiner"  # the old spelling
    with pytest.raises(UsganError, match="contradict"):
        stage2_choice("off", "stack")


# --- a third-party Stage-II, provenance ----------------------------------------------------


def test_train_with_a_third_party_stage2_records_provenance(tmp_path: Path) -> None:
    """`usgan train --stage1 dcgan --stage2 NAME` with NAME from the separately installed
    example plugin; config.json says which distribution and version made each network."""
    from importlib.metadata import version

    out = tmp_path / "run"
    r = run_usgan("train", "--stage1", "dcgan", "--stage2", "upconv-refiner",
                  "--data", "phantom:n=8", "--classes", "healthy", "--out", str(out),
                  "--batch-size", "4", "--max-steps", "2", "--quiet",
                  "--stage1-config", "g_width=8,d_width=8",
                  "--stage2-config", "width=8,d_width=8")
    assert r.returncode == 0, r.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["stage2"] == {
        "name": "upconv-refiner", "stage": "stage2", "plugin": "example",
        "distribution": "usgan-example-plugin", "version": version("usgan-example-plugin"),
    }
    assert config["stage1"]["plugin"] == "usgan-dcgan"
    assert config["stage1"]["distribution"] == "usgan"
    assert config["versions"]["usgan"] == usgan.__version__
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: usgan" in card
    assert "`upconv-refiner` (from usgan-example-plugin" in card
    images = usgan.load(out).sample(2, cls="healthy")
    assert images.shape == (2, 1, 256, 256) and images.dtype == torch.uint8


# --- any Stage-I output size stacks --------------------------------------------------------


def _native(size: int) -> GANSpec:
    """A Stage-I whose native output is ``size`` (its config has no way to say otherwise)."""

    def generator(**cfg: object) -> DCGANGenerator:
        return DCGANGenerator(size=size, **{k: v for k, v in cfg.items() if k != "size"})

    def discriminator(**cfg: object) -> DCGANDiscriminator:
        return DCGANDiscriminator(size=size, **{k: v for k, v in cfg.items() if k != "size"})

    return GANSpec(f"native{size}", generator, discriminator,
                   {"z_dim": 8, "channels": 1, "g_width": 4, "d_width": 4})


@pytest.mark.parametrize("size", [32, 128])
def test_any_stage1_size_stacks_under_the_builtin_stage2(tmp_path: Path, size: int) -> None:
    registry = Registry()
    for spec in get_registry():
        registry.add(spec)
    registry.add(replace(_native(size), kind=Stage.ONE, plugin="test-plugin"))
    opts = TrainOptions(stage1=f"native{size}", stage2="stack", data="phantom:n=8",
                        classes=["healthy"], batch_size=4, max_steps=1, quiet=True,
                        stage2_config=TINY_STACK)
    run = Trainer(opts, tmp_path / "run", registry=registry).train()
    config = run.read_config()
    assert config["stage1"]["plugin"] == "test-plugin"
    synth = Synthesizer(run.root, registry=registry)
    assert synth.sample(2, cls="healthy", stage=1).shape == (2, 1, size, size)
    assert synth.sample(2, cls="healthy").shape == (2, 1, 256, 256)


# --- the run directory ---------------------------------------------------------------------


def test_run_dir_ema_fallback_and_errors(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    with pytest.raises(UsganError, match="no Stage-II generator for class 'a'"):
        run.generator_path("a", 2)
    plain = run.weights("a", Stage.ONE)
    plain.parent.mkdir(parents=True)
    plain.write_bytes(b"")
    assert run.generator_path("a", "1") == plain  # no EMA: the plain generator
    ema = run.weights("a", 1, "generator_ema")
    ema.write_bytes(b"")
    assert run.generator_path("a", 1) == ema
    assert run.generator_path("a", 1, ema=False) == plain
    with pytest.raises(UsganError, match="is not a usgan run"):
        run.read_config()
    run.config_path.write_text("[1, 2]")
    with pytest.raises(UsganError, match="not a usgan run config"):
        run.read_config()


def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    """``usgan demo`` (what ``make demo`` runs), with two steps a stage: both classes, both
    stages, a model card and the grid of real, Stage-I and Stage-II rows."""
    from PIL import Image

    out = tmp_path / "demo"
    r = run_usgan("demo", "--out", str(out), "--steps1", "2", "--steps2", "2", "--quiet",
                  env={"USGAN_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    assert "demo finished" in r.stdout and (out / "run" / "README.md").is_file()
    with Image.open(out / "grid.png") as grid:  # 2 classes x 3 rows of 6 tiles of 256 px
        assert grid.mode == "L" and grid.size == (6 * 260 + 4, 6 * 260 + 4)

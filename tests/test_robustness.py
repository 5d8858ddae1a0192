"""Hardening: weights and run directories handed to us, faults during training, and property
tests of every parser. Data-file cases are in test_robustness_data.py; the list of guarantees
is docs/robustness.md.

Every ``BAD_RUNS`` row damages a copy of one small finished run in one way and feeds it to
``usgan sample``: the answer must be one line naming the problem, exit status 2, no traceback,
and the run's files untouched.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import WEIGHTS, needs_weights, run_usgan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usgan.core import io as io_mod
from usgan.core.errors import PluginError, UsganError
from usgan.core.io import FileFormatError, save_safetensors
from usgan.core.plugin_manager import get_registry
from usgan.core.registry import GANSpec, Registry
from usgan.core.run import RunDir
from usgan.core.stage import Stage
from usgan.core.train.options import TrainOptions
from usgan.core.train.trainer import Trainer, TrainingDiverged
from usgan.zoo.source import SourceError, parse_source

TINY = {"g_width": 4, "d_width": 4}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _opts(**kw: object) -> TrainOptions:
    base = {"data": "phantom:n=8", "classes": ["healthy"], "batch_size": 4, "max_steps": 2,
            "stage2": None, "quiet": True, "stage1_config": TINY,
            "ema": False}  # the sampler reads generator.safetensors (G), which tests spoil
    return TrainOptions(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import os

    os.environ.setdefault("USGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    return Trainer(_opts(), tmp_path_factory.mktemp("good") / "run").train().root


# --- weights and run directories -----------------------------------------------------------

G = "healthy/stage1/generator.safetensors"


def _edit_config(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        config = json.loads((run / "config.json").read_text())
        change(config)
        (run / "config.json").write_text(json.dumps(config))
    return apply


def _huge_header(run: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [100000, 100000],
                               "data_offsets": [0, 40_000_000_000]}}).encode()
    (run / G).write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)


def _wrong_shape(run: Path) -> None:
    from usgan.core.serialization import META_KEY, read_arch

    arch = read_arch(run / G)
    save_safetensors(run / G, {"net.0.weight": torch.zeros(3, 3)}, {META_KEY: json.dumps(arch)})


def _wrong_dtype(run: Path) -> None:
    from safetensors.torch import load_file

    from usgan.core.io import read_safetensors_metadata

    meta = read_safetensors_metadata(run / G)
    tensors = {k: v.to(torch.int64) if v.is_floating_point() else v
               for k, v in load_file(run / G).items()}
    save_safetensors(run / G, tensors, meta)


def _weights_of_an_unknown_network(run: Path) -> None:
    from safetensors.torch import load_file

    from usgan.core.io import read_safetensors_metadata
    from usgan.core.serialization import META_KEY

    meta = read_safetensors_metadata(run / G)
    arch = json.loads(meta[META_KEY])
    save_safetensors(run / G, load_file(run / G),
                     {**meta, META_KEY: json.dumps({**arch, "name": "liver-gan"})})


def _unknown_network(config: dict) -> None:
    config["stage1"] = {"name": "liver-gan", "stage": "stage1", "plugin": "acme",
                        "distribution": "acme-usgan-models", "version": "2.1"}


BAD_RUNS: list[tuple[str, Callable[[Path], None], str]] = [
    ("truncated weights", lambda r: (r / G).write_bytes((r / G).read_bytes()[:300]),
     "not a readable safetensors file"),
    ("header claims 40 GB", _huge_header, "not a readable safetensors file"),
    ("pickle under a .safetensors name",
     lambda r: torch.save({"w": torch.ones(1)}, r / G), "holds a PyTorch/pickle file"),
    ("weights of the wrong shape", _wrong_shape, "weights do not fit dcgan generator"),
    ("weights of the wrong dtype", _wrong_dtype, "has dtype I64"),
    ("no generator", lambda r: (r / G).unlink(), "has no Stage-I generator for class 'healthy'"),
    ("no config.json", lambda r: (r / "config.json").unlink(), "is not a usgan run"),
    ("config.json not JSON", lambda r: (r / "config.json").write_text("{oops"),
     "run config is not valid JSON"),
    ("config.json not UTF-8", lambda r: (r / "config.json").write_bytes(b"\xff\xfe\x00"),
     "run config is not UTF-8"),
    ("config.json a list", lambda r: (r / "config.json").write_text("[]"),
     "is not a usgan run config"),
    ("option of the wrong type", _edit_config(lambda c: c["options"].update(ema="yes")),
     "option 'ema' is \"yes\", which is not a boolean"),
    ("classes not names", _edit_config(lambda c: c.update(classes=[1, 2])),
     "'classes' is not a list of names"),
    ("class name escaping the run", _edit_config(lambda c: c.update(classes=["../../x"])),
     "'../../x'"),
    ("stage1 entry missing", _edit_config(lambda c: c.pop("stage1")),
     "'stage1' must be an object"),
    ("network no plugin registers", _edit_config(_unknown_network),
     "network 'liver-gan' is not registered by any installed plugin; install "
     "acme-usgan-models 2.1"),
    ("run from a newer usgan", _edit_config(lambda c: c.update(usgan_run=99)),
     "this usgan reads format 1: upgrade usgan"),
    ("config.json nested too deeply",
     lambda r: (r / "config.json").write_text("[" * 100_000 + "]" * 100_000),
     "config.json: run config is nested too deeply"),
    ("weights of a network no plugin registers", _weights_of_an_unknown_network,
     "generator.safetensors: these weights are for 'liver-gan', which is not installed"),
]


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case, damage, needle", BAD_RUNS, ids=[r[0] for r in BAD_RUNS])
def test_bad_run_is_one_line(good_run: Path, tmp_path: Path, case: str,
                             damage: Callable[[Path], None], needle: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    damage(run)
    before = _digests(run)
    out = tmp_path / "out"
    r = run_usgan("sample", str(run), "--class", "healthy", "-n", "2", "--out", str(out))
    assert r.returncode == 2, (case, r.stdout, r.stderr)
    assert r.stderr.startswith("usgan: error: ") and len(r.stderr.strip().splitlines()) == 1, \
        r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert needle in r.stderr, r.stderr
    assert _digests(run) == before  # nothing of the user's changed
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".ckpt"])
def test_pickle_files_are_refused_by_name(tmp_path: Path, suffix: str) -> None:
    from usgan.core.serialization import load_network

    path = tmp_path / f"generator{suffix}"
    path.write_bytes(b"\x80\x04anything")
    with pytest.raises(FileFormatError, match="is a PyTorch/pickle file; usgan loads only "
                                              "safetensors, because unpickling"):
        load_network(path)


def test_no_pickle_anywhere() -> None:
    """No code path can unpickle: no pickle module; torch.load only with its restricted
    loader (weights_only=True, plain tensors), used to check Inception weights."""
    repo = Path(__file__).resolve().parents[1]
    sources = [p for folder in ("core", "plugins", "zoo", "cli", "usgan")
               for p in (repo / folder).rglob("*.py")]
    bad = []
    for p in sources:
        text = p.read_text()
        if "import pickle" in text or "pickle.load" in text:
            bad.append(str(p))
        calls = text.split("torch.load(")[1:]
        bad += [f"{p}: torch.load without weights_only=True" for call in calls
                if "weights_only=True" not in call.split(")")[0]]
    assert not bad, bad


@needs_weights
def test_torch_fidelity_unpickles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch-fidelity's Inception calls torch.load(path, weights_only=False); while usgan
    builds the extractor, torch's TORCH_FORCE_WEIGHTS_ONLY_LOAD is on, so every load is the
    restricted one; the environment is put back after."""
    import os

    from usgan.core.evaluation import Extractor

    calls: list[bool] = []
    original = torch.load

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("weights_only") is True
                     or os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD") == "1")
        return original(*args, **kwargs)

    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)
    monkeypatch.setattr(torch, "load", spy)
    extractor = Extractor.create(["fid"], weights=WEIGHTS)
    assert calls and all(calls)  # no load with pickle's full power
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ  # put back
    ref = original(WEIGHTS, map_location="cpu", weights_only=True)["Conv2d_1a_3x3.conv.weight"]
    assert torch.equal(extractor.module.Conv2d_1a_3x3.conv.weight.float(), ref.float())


# --- networks that do not keep their word --------------------------------------------------


class _LyingGenerator(torch.nn.Module):
    """Declares 64x64 but gives 32x32."""

    z_dim, out_channels, out_size = 4, 1, 64

    def __init__(self, **_: object) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(z.shape[0], 1, 32, 32, device=z.device) * self.w


def _registry_with(spec: GANSpec) -> Registry:
    reg = Registry()
    for known in get_registry():
        reg.add(known)
    reg.add(replace(spec, kind=Stage.ONE, plugin="liar-plugin"))
    return reg


def test_a_network_that_breaks_its_declaration_is_named_before_training(tmp_path: Path) -> None:
    dcgan = get_registry().get("dcgan")
    reg = _registry_with(GANSpec("liar", _LyingGenerator, dcgan.discriminator,
                                 dict(dcgan.defaults)))
    with pytest.raises(PluginError) as err:
        Trainer(_opts(stage1="liar", stage1_config={}), tmp_path / "run", registry=reg).train()
    msg = str(err.value)
    assert "Stage-I 'liar' (plugin 'liar-plugin')" in msg and "[2, 1, 32, 32]" in msg
    assert "usgan plugins check liar" in msg
    assert not (tmp_path / "run").exists()  # refused before anything was written


# --- NaN and inf -----------------------------------------------------------------------------


class _FlakyGenerator(torch.nn.Module):
    """NaN images on the first ``bad`` calls in train mode, then a plain image."""

    z_dim, out_channels, out_size = 4, 1, 64
    calls = 0

    def __init__(self, bad: int = 2, **_: object) -> None:
        super().__init__()
        self.bad = bad
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        real_call = self.training and z.device.type != "meta"  # not the shape check
        if real_call:
            type(self).calls += 1
        base = torch.tanh(self.w).expand(z.shape[0], 1, 64, 64)
        if real_call and type(self).calls <= self.bad:
            return base * float("nan")
        return base


def _flaky(bad: int) -> Registry:
    dcgan = get_registry().get("dcgan")
    _FlakyGenerator.calls = 0
    return _registry_with(GANSpec("flaky", _FlakyGenerator, dcgan.discriminator,
                                  {**dcgan.defaults, "bad": bad}))


def test_on_nan_skip_drops_the_bad_steps(tmp_path: Path) -> None:
    lines: list[str] = []
    opts = _opts(stage1="flaky", stage1_config={"d_width": 4}, on_nonfinite="skip", max_steps=4)
    run = Trainer(opts, tmp_path / "run", registry=_flaky(2), echo=lines.append).train()
    skipped = [line for line in lines if "step skipped" in line]
    assert len(skipped) == 2 and "class 'healthy', step 1" in skipped[0]
    from safetensors.torch import load_file

    g = load_file(run.weights("healthy", 1))
    assert all(torch.isfinite(t).all() for t in g.values())


def test_on_nan_skip_gives_up_after_ten_in_a_row(tmp_path: Path) -> None:
    opts = _opts(stage1="flaky", stage1_config={"d_width": 4}, on_nonfinite="skip", max_steps=20)
    with pytest.raises(TrainingDiverged, match=r"\(10 steps in a row\)"):
        Trainer(opts, tmp_path / "run", registry=_flaky(100), echo=lambda m: None).train()


class _PoisonedGenerator(_FlakyGenerator):
    """Finite images, but a weight that is NaN (unused by forward): never saved as final."""

    def __init__(self, **kw: object) -> None:
        super().__init__(bad=0)
        self.poison = torch.nn.Parameter(torch.full((1,), float("nan")))


def test_nan_weights_are_never_saved_as_the_final_model(tmp_path: Path) -> None:
    dcgan = get_registry().get("dcgan")
    reg = _registry_with(GANSpec("poisoned", _PoisonedGenerator, dcgan.discriminator,
                                 dict(dcgan.defaults)))
    with pytest.raises(TrainingDiverged,  # nor as a checkpoint: the last step's comes first
                       match="step 2 weights of the generator hold NaN or inf; they are not"):
        Trainer(_opts(stage1="poisoned", stage1_config={"d_width": 4}), tmp_path / "run",
                registry=reg).train()
    assert not (tmp_path / "run" / G).exists()


# --- disk full while writing sample grids ---------------------------------------------------


def test_disk_full_during_a_sample_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = io_mod.os.fsync

    def fsync(fd: int) -> None:
        if "-step000002.png" in io_mod.os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(io_mod.os, "fsync", fsync)
    out = tmp_path / "run"
    with pytest.raises(FileFormatError, match=r"could not write .*step000002\.png: No space"):
        Trainer(_opts(max_steps=3, sample_every=2, checkpoint_every=1), out).train()
    samples = sorted(p.name for p in (out / "samples").iterdir())
    assert samples == []  # no partial PNG
    ckpts = sorted(p.name for p in (out / "checkpoints/healthy/stage1").iterdir())
    assert ckpts == ["step-00000001.safetensors"]  # the previous checkpoint is intact


# --- property tests of the parsers ----------------------------------------------------------

PROPS = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])
_key = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
_scalar = st.one_of(st.integers(-10**6, 10**6), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
                    .filter(lambda s: s not in ("true", "false", "null", "nan", "infinity")))


@PROPS
@given(st.dictionaries(_key, _scalar, max_size=6))
def test_config_overrides_round_trip(config: dict) -> None:
    from usgan.cli.train_cmd import parse_kv

    text = ",".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
                    for k, v in config.items())
    assert parse_kv(text, "--stage1-config") == config


@PROPS
@given(st.text(max_size=40))
def test_config_overrides_never_crash(text: str) -> None:
    from usgan.cli.train_cmd import parse_kv

    try:
        assert isinstance(parse_kv(text, "--stage1-config"), dict)
    except UsganError as err:
        assert "\n" not in str(err)


@PROPS
@given(st.text(max_size=40))
def test_data_specs_never_crash(text: str) -> None:
    from usgan.core.data import parse_spec

    try:
        parse_spec(text)
    except UsganError as err:
        assert "\n" not in str(err)


@PROPS
@given(st.text(max_size=40))
def test_sources_never_crash(text: str) -> None:
    try:
        parse_source(text)
    except SourceError as err:
        assert "\n" not in str(err)


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12,
)
_option_values = st.dictionaries(
    st.sampled_from(sorted(TrainOptions().to_json())), _json, max_size=4)


@PROPS
@given(_option_values)
def test_option_json_is_accepted_or_refused_in_one_line(options: dict) -> None:
    try:
        TrainOptions.from_json(options)
    except UsganError as err:
        assert "\n" not in str(err)


@PROPS
@given(document=_json)
def test_run_configs_are_accepted_or_refused_in_one_line(tmp_path: Path, document: object
                                                        ) -> None:
    (tmp_path / "config.json").write_text(json.dumps(document))
    try:
        RunDir(tmp_path).read_config()
    except UsganError as err:
        assert "\n" not in str(err)


@PROPS
@given(st.one_of(st.text(max_size=10), st.integers()))
def test_stage_parse_never_crashes(value: object) -> None:
    try:
        Stage.parse(value)  # type: ignore[arg-type]
    except UsganError as err:
        assert "\n" not in str(err)


@pytest.mark.parametrize(("name", "message"), [
    ("gpu", "must be auto, cpu, cuda or cuda:N"),
    ("cuda:x", "must be auto, cpu, cuda or cuda:N"),
    ("cuda:1", "no CUDA GPU is available" if not torch.cuda.is_available() else "cuda:1"),
])
def test_bad_devices_are_one_line(name: str, message: str) -> None:
    from usgan.core.errors import ConfigError
    from usgan.core.runtime import resolve_device

    if name == "cuda:1" and torch.cuda.device_count() > 1:
        assert resolve_device(name) == torch.device("cuda", 1)
        return
    with pytest.raises(ConfigError, match=message):
        resolve_device(name)


def test_cuda_n_is_refused_under_torchrun() -> None:
    from usgan.core.errors import ConfigError
    from usgan.core.runtime import Dist, resolve_device

    with pytest.raises(ConfigError, match="takes the GPU of its local rank"):
        resolve_device("cuda:0", Dist(rank=1, world=2, local_rank=1))


def test_a_split_file_with_object_ids_is_one_line(tmp_path: Path) -> None:
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"repeats": [{"train": [{"id": 1}], "test": ["a"]}]}))
    r = run_usgan("train", "--data", "phantom:n=8", "--split", str(split), "--max-steps", "1",
                  "--out", str(tmp_path / "run"))
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert f"{split}: repeat 0, train: the ids must be text" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_sigterm_stops_any_command_as_ctrl_c_would() -> None:
    """`kill` (SIGTERM) becomes KeyboardInterrupt inside every usgan command (so `usgan
    sample` stops between whole files, `usgan train` saves a checkpoint: test_train), a
    one-line "interrupted" with exit code 130; the old handler is put back after."""
    import os
    import signal

    import click
    from click.testing import CliRunner

    from usgan.cli.app import UsganGroup

    @click.group(cls=UsganGroup)
    def group() -> None:
        pass

    @group.command("work")
    def work() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the command")

    before = signal.getsignal(signal.SIGTERM)
    r = CliRunner().invoke(group, ["work"])
    assert r.exit_code == 130 and r.output.strip() == "usgan: error: interrupted", r.output
    assert signal.getsignal(signal.SIGTERM) == before

"""Evaluation: torch-fidelity's metrics fed by usgan (a tiny registered feature extractor for
speed, the shared Inception weights for the real path), equality with calculate_metrics,
cached real features, unavailable metrics, bad input."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch_fidelity
from conftest import WEIGHTS, needs_weights, run_usgan
from PIL import Image
from torch_fidelity.datasets import ImagesPathDataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from usgan.core.evaluation import Extractor, Metric, MetricsError, TensorImages, _number, compute
from usgan.core.evaluation import weights_path as check_weights

TINY = "usgan-test-tiny"


class TinyExtractor(FeatureExtractorBase):
    """Average-pooled pixels: 3 x 6 x 6 = 108 features, no weights, fast."""

    def __init__(self, name: str, features_list: list[str], **_: object) -> None:
        super().__init__(name, features_list)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("pooled",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "pooled"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 3, 8, 8, dtype=torch.uint8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        pooled = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255.0, 6)
        return (pooled.flatten(1).double(),)


torch_fidelity.register_feature_extractor(TINY, TinyExtractor)


def _images(n: int, seed: int, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.linspace(0, 255, size).expand(size, size)
    noise = torch.rand(n, 1, size, size, generator=g) * 80
    return (base * 0.6 + noise).clamp(0, 255).to(torch.uint8)


def _folder(path: Path, images: torch.Tensor) -> Path:
    path.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img[0].numpy(), mode="L").save(path / f"{i:03d}.png")
    return path


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_distortion() -> None:
    ex = Extractor.create(["fid", "kid"], name=TINY)
    real = _images(60, 0)
    fids = []
    for amount in (0.0, 20.0, 60.0):
        noisy = (real.float() + amount * torch.randn(real.shape, generator=torch.Generator()
                                                     .manual_seed(1))).clamp(0, 255)
        got = compute(ex, TensorImages(noisy.to(torch.uint8)), TensorImages(real), ["fid", "kid"])
        fids.append(got["fid"].value)
    assert abs(fids[0]) < 1e-6
    assert fids[0] < fids[1] < fids[2]


def test_equal_to_calculate_metrics_on_the_same_folders(tmp_path: Path) -> None:
    fake = _folder(tmp_path / "fake", _images(20, 1))
    real = _folder(tmp_path / "real", _images(24, 2))
    ex = Extractor.create(["fid", "kid", "prc"], name=TINY)
    ours = compute(ex, ImagesPathDataset(sorted(glob.glob(f"{fake}/*.png"))),
                   ImagesPathDataset(sorted(glob.glob(f"{real}/*.png"))), ["fid", "kid", "prc"])
    ref = torch_fidelity.calculate_metrics(
        input1=str(fake), input2=str(real), fid=True, kid=True, prc=True, cuda=False,
        feature_extractor=TINY, kid_subset_size=20, verbose=False, cache=False)
    assert ours["fid"].value == pytest.approx(ref["frechet_inception_distance"], rel=1e-9)
    assert ours["kid"].value == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-9)
    assert ours["kid"].std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-6)
    assert ours["precision"].value == pytest.approx(ref["precision"])
    assert ours["recall"].value == pytest.approx(ref["recall"])


def test_kid_has_no_spread_when_every_subset_is_everything() -> None:
    ex = Extractor.create(["kid"], name=TINY)
    same = compute(ex, TensorImages(_images(12, 1)), TensorImages(_images(12, 2)), ["kid"])
    assert same["kid"].value is not None and same["kid"].std is None
    more = compute(ex, TensorImages(_images(12, 1)), TensorImages(_images(20, 2)), ["kid"])
    assert more["kid"].std is not None and more["kid"].std > 0


def test_real_features_are_cached_as_safetensors(tmp_path: Path) -> None:
    ex = Extractor.create(["fid"], name=TINY)
    real, fake = TensorImages(_images(16, 3)), TensorImages(_images(16, 4))
    first = compute(ex, fake, real, ["fid"], real_key="data|cls", cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*.safetensors")
    second = compute(ex, fake, real, ["fid"], real_key="data|cls", cache_dir=tmp_path)
    assert first["fid"].value == second["fid"].value
    assert list(tmp_path.glob("*.safetensors")) == [cached]


def test_non_finite_results_are_unavailable_with_the_reason() -> None:
    m = _number(float("nan"), None, "no classifier head")
    assert (m.value, m.reason) == (None, "no classifier head") and "n/a" in str(m)
    assert str(Metric(12.5, 0.25)) == "12.5 ± 0.25"


def test_too_few_images_say_the_minimum() -> None:
    ex = Extractor.create(["fid"], name=TINY)
    with pytest.raises(Exception, match="FID needs at least 2 generated images; got 1"):
        compute(ex, TensorImages(_images(1, 0)), TensorImages(_images(8, 1)), ["fid"])


def test_bad_weights_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(MetricsError, match="no such file"):
        check_weights(tmp_path / "missing.pth")
    other = tmp_path / "other.pth"
    torch.save({"w": torch.ones(2)}, other)
    with pytest.raises(MetricsError, match="not an Inception-v3 state dict"):
        check_weights(other)
    pickled = tmp_path / "code.pth"
    torch.save({"w": np.ones(2)}, pickled)  # not a plain tensor: the safe loader refuses
    with pytest.raises(MetricsError, match="not a plain state dict of tensors"):
        check_weights(pickled)


@needs_weights
def test_cli_with_the_shared_inception_weights(tmp_path: Path) -> None:
    """Plain folders are used as they are: the FID equals calculate_metrics on them; the
    audit (asked) finds the fakes that are copies of real images."""
    reals = _images(10, 6)
    fake = _folder(tmp_path / "fake", torch.cat([reals[:4], _images(6, 5)]))  # 4 copies
    real = _folder(tmp_path / "real", reals)
    out = tmp_path / "eval.json"
    r = run_usgan("eval", "--real", str(real), "--fake", str(fake), "--metrics", "fid,kid,is",
                  "--inception-weights", str(WEIGHTS), "--json", str(out), "--audit",
                  env={"USGAN_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    import json

    row = json.loads(out.read_text())["results"][str(fake)]["all"]
    ref = torch_fidelity.calculate_metrics(
        input1=str(fake), input2=str(real), fid=True, kid=True, cuda=False, verbose=False,
        kid_subset_size=10, feature_extractor_weights_path=str(WEIGHTS), cache=False)
    assert row["fid"]["value"] == pytest.approx(ref["frechet_inception_distance"], rel=1e-6)
    assert row["kid"]["value"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-6)
    assert row["is"]["value"] is None and "classifier head" in row["is"]["unavailable"]
    assert "is: unavailable" in r.stdout
    pixel, feature = row["audit"]
    assert pixel["space"] == "pixels 64x64" and "inception" in feature["space"]
    for space in (pixel, feature):
        assert space["copy_rate"] >= 0.4 and space["closest"][0][2] == pytest.approx(0, abs=1e-3)
        assert sorted(pair[:2] for pair in space["closest"][:4]) == [[i, i] for i in range(4)]
    assert "audit, pixels 64x64: copy rate" in r.stdout
    spaces = {d["space"]: d for d in row["diversity"]}
    assert set(spaces) == {"pixels 64x64", "inception-v3-compat 2048"}
    assert all(0.5 < d["ratio"] < 2 for d in spaces.values())  # similar noise images
    assert "diversity, pixels 64x64:" in r.stdout
    power = row["spectrum"]  # the same kind of images: as much power at every scale
    assert power["periods"] == ["2-4 px", "4-8 px", "8-16 px", "16-32 px"]
    assert all(0.5 < v < 2 for v in power["ratios"])
    assert "power by scale, generated / real: 2-4 px" in r.stdout


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    fake = _folder(tmp_path / "fake", _images(4, 5))
    r = run_usgan("eval", "--real", str(fake), "--fake", str(fake),
                  "--inception-weights", str(tmp_path / "nope.pth"))
    assert r.returncode == 2 and "Inception weights" in r.stderr and "no such file" in r.stderr
    r = run_usgan("eval", "--real", "phantom", "--fake", "dcgan-sn-stage2")
    assert r.returncode == 2 and "has not been published yet" in r.stderr


def test_an_evaluated_run_puts_its_metrics_on_the_model_card(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    import json

    from usgan.core.train.options import TrainOptions
    from usgan.core.train.trainer import Trainer
    from usgan.zoo.card import card_for

    monkeypatch.setenv("USGAN_CACHE", str(tmp_path / "cache"))
    run = Trainer(TrainOptions(data="phantom:n=8", classes=["healthy"], stage2=None,
                               max_steps=1, batch_size=4, quiet=True,
                               stage1_config={"g_width": 4, "d_width": 4}),
                  tmp_path / "run").train()
    (run.root / "eval.json").write_text(json.dumps({
        "real": "phantom", "extractor": "inception-v3-compat",
        "results": {"healthy": {"fid": {"value": 87.5, "std": None, "unavailable": None},
                                "is": {"value": None, "std": None, "unavailable": "no head"},
                                "n_fake": 400, "n_real": 80}}}))
    card = str(card_for(run))
    assert "model-index:" in card and "type: fid" in card and "value: 87.5" in card
    assert "type: is" not in card  # unavailable metrics are not numbers on the card
    assert "held-out" not in card
    doc = json.loads((run.root / "eval.json").read_text())
    (run.root / "eval.json").write_text(json.dumps({**doc, "split": "split.json"}))
    assert "FID healthy (N=400, inception-v3-compat, against 80 held-out images)" in str(
        card_for(run))  # usgan eval --split: the card says what the numbers were scored on


def test_bad_fake_folders_say_what_was_found(tmp_path: Path) -> None:
    real = _folder(tmp_path / "real", _images(4, 1))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    r = run_usgan("eval", "--real", str(real), "--fake", str(empty))
    assert r.returncode == 2 and "holds no PNG/JPEG images and no usgan run" in r.stderr
    mixed = _folder(tmp_path / "mixed", _images(3, 2))
    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(mixed / "small.png")
    r = run_usgan("eval", "--real", str(real), "--fake", str(mixed))
    assert r.returncode == 2 and "found 32x32 (3), 16x16 (1)" in r.stderr
    r = run_usgan("eval", "--real", "phantom:n=4", "--fake", str(real), "--class", "nope")
    assert r.returncode == 2 and "unknown class" in r.stderr and "'nope'" in r.stderr


@needs_weights
def test_eval_stage_one_of_a_two_stage_run(tmp_path: Path) -> None:
    """--stage 1 scores the Stage-I images (64 px) and leaves the run's eval.json alone."""
    import json

    env = {"USGAN_CACHE": str(tmp_path / "cache")}
    run = tmp_path / "run"
    r = run_usgan("train", "--data", "phantom:n=8", "--classes", "healthy", "--max-steps", "1",
                  "--batch-size", "4", "--stage1-config", "g_width=4,d_width=4",
                  "--stage2-config", "width=4,d_width=4,max_width=8", "--quiet",
                  "--out", str(run), env=env)
    assert r.returncode == 0, r.stderr
    base = ["eval", "--real", "phantom:n=8", "--fake", str(run), "--n", "4",
            "--inception-weights", str(WEIGHTS)]
    r = run_usgan(*base, "--stage", "1", "--json", str(tmp_path / "s1.json"), env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "s1.json").read_text())["results"][str(run)]["healthy"][
        "size"] == 64
    assert not (run / "eval.json").exists()
    # --size: Stage-I upsampled to its Stage-II's size, against real images at that size
    r = run_usgan(*base, "--stage", "1", "--size", "256", "--json", str(tmp_path / "up.json"),
                  env=env)
    assert r.returncode == 0, r.stderr
    row = json.loads((tmp_path / "up.json").read_text())["results"][str(run)]["healthy"]
    assert row["size"] == 256 and row["fid"]["value"] is not None
    r = run_usgan(*base, "--stage", "1", "--size", "32", env=env)
    assert r.returncode != 0 and "--size 32 is smaller than" in r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    r = run_usgan(*base, env=env)
    assert r.returncode == 0, r.stderr
    assert (run / "eval.json").is_file()


@needs_weights
def test_eval_real_grade_folders_with_bins(tmp_path: Path) -> None:
    """--bins turns grade folders into the classes the run was trained on; without it the
    class is unknown, in one line."""
    import json

    dark, bright = _images(10, 1, 64) // 3, 255 - _images(10, 2, 64) // 3
    _folder(tmp_path / "grades" / "0.5", dark)
    _folder(tmp_path / "grades" / "2.0", bright)
    fake = _folder(tmp_path / "fake", 255 - _images(10, 3, 64) // 3)
    env, out = {"USGAN_CACHE": str(tmp_path / "cache")}, tmp_path / "e.json"
    fids = {}
    for cls in ("lt1.0", "ge1.0"):
        r = run_usgan("eval", "--real", str(tmp_path / "grades"), "--bins", "1.0", "--class",
                      cls, "--fake", str(fake), "--inception-weights", str(WEIGHTS), "--json",
                      str(out), env=env)
        assert r.returncode == 0, r.stderr
        fids[cls] = json.loads(out.read_text())["results"][str(fake)][cls]["fid"]["value"]
    assert fids["ge1.0"] < fids["lt1.0"] / 2  # the fakes look like the bright grade
    r = run_usgan("eval", "--real", str(tmp_path / "grades"), "--class", "ge1.0", "--fake",
                  str(fake), "--inception-weights", str(WEIGHTS), env=env)
    assert r.returncode == 2 and "unknown class" in r.stderr and len(r.stderr.splitlines()) == 1


def _split_and_copies(tmp: Path, env: dict[str, str]) -> tuple[Path, Path, Any, list[int],
                                                                list[int]]:
    """A split of phantom:n=24 (4 held-out images per class) and a folder of its healthy
    training images, what a G that memorised its data would draw: the split file, the
    folder, the dataset, the test indices and the healthy training indices."""
    from usgan.core.data import load_dataset, load_split

    split = tmp / "split.json"
    r = run_usgan("data", "split", "phantom:n=24", "--test-per-class", "4", "--repeats", "1",
                  "--out", str(split), env=env)
    assert r.returncode == 0, r.stderr
    ds = load_dataset("phantom:n=24")
    train, test = load_split(split, ds, 0)
    healthy = ds.class_names.index("healthy")
    seen = [i for i in train if int(ds.labels[i]) == healthy]
    return split, _folder(tmp / "copies", ds.images[seen]), ds, test, seen


@needs_weights
def test_eval_with_a_split_scores_against_the_held_out_images(tmp_path: Path) -> None:
    """--split: FID/KID against the split's test images of the class only, and the audit
    against its training images (fakes that copy them are caught, whichever images score)."""
    import json

    env = {"USGAN_CACHE": str(tmp_path / "cache")}
    split, copies, ds, test, _ = _split_and_copies(tmp_path, env)
    healthy = ds.class_names.index("healthy")
    base = ["eval", "--real", "phantom:n=24", "--fake", str(copies), "--class", "healthy",
            "--metrics", "kid", "--audit", "--inception-weights", str(WEIGHTS)]
    rows = {}
    for name, extra in (("all", []), ("held", ["--split", str(split)])):
        r = run_usgan(*base, *extra, "--json", str(tmp_path / f"{name}.json"), env=env)
        assert r.returncode == 0, r.stderr
        doc = json.loads((tmp_path / f"{name}.json").read_text())
        rows[name] = doc["results"][str(copies)]["healthy"]
        assert doc["split"] == (str(split) if extra else None)
    held = sum(int(ds.labels[i]) == healthy for i in test)
    assert rows["all"]["n_real"] == 24 and rows["held"]["n_real"] == held == 4
    for row in rows.values():  # every copy is found, against the training images
        assert all(a["copy_rate"] == 1.0 for a in row["audit"])
    assert rows["held"]["kid"]["value"] > rows["all"]["kid"]["value"]  # copies are not unseen
    r = run_usgan(*base[:-2], "--split", str(split), "--real", str(copies), env=env)
    assert r.returncode != 0 and "--split needs --real to be a data spec" in r.stderr


@needs_weights
def test_floor_scores_the_split_training_images_against_its_held_out_ones(tmp_path: Path) -> None:
    """--floor: the training images of the split scored as if a generator had made them (the
    row a G that reproduced its training set would get), with or without a --fake; what it
    needs is refused in one line before anything loads."""
    import json

    from usgan.cli.eval_cmd import FLOOR, floor_name
    from usgan.core.evaluation import upsample

    env = {"USGAN_CACHE": str(tmp_path / "cache")}
    split, copies, ds, _, seen = _split_and_copies(tmp_path, env)
    base = ["eval", "--real", "phantom:n=24", "--split", str(split), "--floor", "--metrics",
            "kid", "--inception-weights", str(WEIGHTS)]
    r = run_usgan(*base, "--fake", str(copies), "--class", "healthy", "--json",
                  str(tmp_path / "with.json"), env=env)
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "with.json").read_text())["results"]
    floor, copy = rows[FLOOR]["healthy"], rows[str(copies)]["healthy"]
    assert floor["n_fake"] == copy["n_fake"] == len(seen) and floor["n_real"] == 4
    assert abs(floor["kid"]["value"] - copy["kid"]["value"]) < 1e-6  # the same images
    r = run_usgan(*base, "--size", "32", "--json", str(tmp_path / "alone.json"), env=env)
    assert r.returncode == 0, r.stderr
    alone = json.loads((tmp_path / "alone.json").read_text())["results"]
    assert list(alone) == [FLOOR] and set(alone[FLOOR]) == set(ds.class_names)
    assert all(row["size"] == 32 for row in alone[FLOOR].values())
    # --floor-at 16: the training images at 16 px, upsampled to the 32 px of the --fake
    small = _folder(tmp_path / "small", upsample(ds.subset(seen).at_size(16), 32))
    r = run_usgan(*base, "--floor-at", "16", "--fake", str(small), "--class", "healthy",
                  "--json", str(tmp_path / "at.json"), env=env)
    assert r.returncode == 0, r.stderr
    at = json.loads((tmp_path / "at.json").read_text())["results"]
    low, same = at[floor_name(16)]["healthy"], at[str(small)]["healthy"]
    assert abs(low["kid"]["value"] - same["kid"]["value"]) < 1e-6  # the same images
    assert low["kid"]["value"] > at[FLOOR]["healthy"]["kid"]["value"]  # 16 px lost detail
    for args, said in (((), "give --fake SOURCE"),
                       (("--floor", "--size", "32"), "give --split FILE"),
                       (("--split", str(split), "--floor"), "--floor without --fake needs --size"),
                       (("--split", str(split), "--floor-at", "16", "--size", "32"),
                        "give --floor too"),
                       (("--split", str(split), "--floor", "--floor-at", "64", "--size", "32"),
                        "larger than the 32-px scoring size")):
        r = run_usgan("eval", "--real", "phantom:n=24", *args, env=env)
        assert r.returncode != 0 and said in r.stderr, r.stderr
        assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr

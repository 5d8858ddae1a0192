"""`usgan experiment classify` (Table 2): metrics, t-test wiring, report layout, end to end."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from conftest import run_usgan

from usgan.core.errors import ConfigError, UsganError
from usgan.core.experiment import classification_metrics, paired_p, render_markdown
from usgan.core.experiment.backbone import check_backbone, check_weights
from usgan.core.experiment.classify import REAL, SyntheticSource, augment, check_sources
from usgan.core.experiment.report import format_p, summarize, table_rows


def test_weighted_metrics_by_hand() -> None:
    # class 0: support 3, predicted 0,0,1 ; class 1: support 1, predicted 1; one pred of 2
    y_true = [0, 0, 0, 1, 2]
    y_pred = [0, 0, 1, 1, 1]
    m = classification_metrics(y_true, y_pred, 3)
    # precision: c0 2/2=1, c1 1/3, c2 0 (never predicted); recall: c0 2/3, c1 1, c2 0
    # weights 3/5, 1/5, 1/5
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(3 / 5 * 1 + 1 / 5 * 1 / 3)
    assert m["recall"] == pytest.approx(3 / 5 * 2 / 3 + 1 / 5 * 1)
    f1_0, f1_1 = 2 * 1 * (2 / 3) / (1 + 2 / 3), 2 * (1 / 3) * 1 / (1 / 3 + 1)
    assert m["f1"] == pytest.approx(3 / 5 * f1_0 + 1 / 5 * f1_1)


def test_perfect_and_single_class_predictions() -> None:
    assert classification_metrics([0, 1, 1], [0, 1, 1], 2) == {
        "accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    m = classification_metrics([0, 0, 1, 1], [0, 0, 0, 0], 2)
    assert (m["accuracy"], m["precision"], m["recall"]) == (0.5, 0.25, 0.5)


def test_ttest_wiring() -> None:
    from scipy.stats import ttest_rel

    a, b = [0.8, 0.7, 0.9, 0.85], [0.6, 0.65, 0.7, 0.6]
    assert paired_p(a, b) == pytest.approx(ttest_rel(a, b).pvalue)
    assert math.isnan(paired_p([0.8], [0.7]))  # one split
    assert math.isnan(paired_p(b, b))  # identical
    per_split = {REAL: [{"accuracy": x, "precision": x, "recall": x, "f1": x} for x in b],
                 "other": [{"accuracy": x, "precision": x, "recall": x, "f1": x} for x in a]}
    s = summarize(per_split, REAL)
    assert s[REAL]["p_value"] is None
    assert s["other"]["p_value"] == pytest.approx(ttest_rel(a, b).pvalue)
    assert s["other"]["accuracy"]["mean"] == pytest.approx(sum(a) / 4)
    assert format_p(None) == "n/a" and format_p(0.0001) == "<0.001" and format_p(0.25) == "0.250"


def test_report_layout() -> None:
    row = {m: {"mean": 0.5, "std": 0.1} for m in ("accuracy", "precision", "recall", "f1")}
    summary = {REAL: {**row, "p_value": None}, "synthetic only (x)": {**row, "p_value": None}}
    text = render_markdown({"Data": "`phantom`"}, summary, REAL)
    lines = text.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("| Configuration"))
    assert "Accuracy (%) | Precision (%) | Recall (%) | F1 (%) | p vs real only" in lines[head]
    assert lines[head + 2] == "| real only | 50.0 ± 10.0 | 50.0 ± 10.0 | 50.0 ± 10.0 | " \
                              "50.0 ± 10.0 | — |"
    assert lines[head + 3].endswith("| n/a |")
    assert table_rows(summary, REAL)[1][0] == "synthetic only (x)"


def test_errors_are_one_line() -> None:
    with pytest.raises(ConfigError, match=r"unknown backbone 'efficientnet_zz'.*efficientnet"):
        check_backbone("efficientnet_zz")
    src = SyntheticSource("runs/a", lambda n, c, s: torch.zeros(n, 1, 8, 8), ["healthy"])
    with pytest.raises(ConfigError, match="runs/a has no steatosis class"):
        check_sources([src], ["healthy", "steatosis"])
    with pytest.raises(UsganError, match="pickle") as err:
        check_weights(Path("w.pth"))
    assert "\n" not in str(err.value)


def test_augment_is_seeded_and_bounded() -> None:
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape and a.abs().max() <= 1


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Stage-I-only run (64 px, one step) to draw synthetic images from."""
    from usgan.core.train.options import TrainOptions
    from usgan.core.train.trainer import Trainer

    root = tmp_path_factory.mktemp("synth")
    mp = pytest.MonkeyPatch()
    mp.setenv("USGAN_CACHE", str(root / "cache"))
    out = root / "run"
    Trainer(TrainOptions(data="phantom:n=8", stage2=None, max_steps=1, batch_size=4, quiet=True,
                         stage1_config={"g_width": 4, "d_width": 4}), out).train()
    mp.undo()
    return out


def test_cli_end_to_end(tmp_path: Path, tiny_run: Path) -> None:
    env = {"USGAN_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "exp"
    args = ["experiment", "classify", "--data", "phantom:n=20", "--preset", "fast",
            "--repeats", "2", "--test-per-class", "10", "--epochs", "1",
            "--backbone", "mobilenetv3_small_050", "--synthetic", str(tiny_run),
            "--out", str(out), "--quiet"]
    r = run_usgan(*args, env=env)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    names = [REAL, "real + classic augmentation", f"real + synthetic ({tiny_run})",
             f"synthetic only ({tiny_run})"]
    assert list(res["per_split"]) == names
    assert all(len(v) == 2 for v in res["per_split"].values())
    assert res["splits"]["test_images_per_class"] == [10, 10]
    assert res["per_split"][names[2]][0]["train_images"] == 40  # 2 x 10 real, topped up
    assert res["preset"]["balance"] is True  # the presets' default
    report = (out / "report.md").read_text()
    assert all(f"| {n} |" in report for n in names)
    assert "random init" in report and "subject-level" in report

    again = run_usgan(*args, env=env)
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "--force" in again.stderr


def test_cli_user_errors(tmp_path: Path) -> None:
    env = {"USGAN_CACHE": str(tmp_path / "cache")}
    base = ["experiment", "classify", "--data", "phantom:n=20", "--out", str(tmp_path / "o")]
    r = run_usgan(*base, "--backbone", "nope_net", env=env)
    assert r.returncode == 2 and "unknown backbone 'nope_net'" in r.stderr
    r = run_usgan(*base, "--test-per-class", "4", env=env)
    assert r.returncode == 2 and "no subject fits in --test-per-class 4" in r.stderr
    assert r.stderr.strip().count("\n") == 0
    from click.testing import CliRunner

    from usgan.cli.main import cli

    r = CliRunner().invoke(cli, [*base, "--no-baselines"])  # refused before any work
    assert r.exit_code == 2 and "nothing to train" in r.output
    r = CliRunner().invoke(cli, [*base, "--test-data", "phantom", "--split", str(tmp_path)])
    assert r.exit_code == 2 and "--test-data and --split" in r.output


def test_a_separate_test_set_and_pieces_that_pair_up(tmp_path: Path, tiny_run: Path) -> None:
    """--test-data: every repeat trains on all of --data and tests on the other set; without
    baselines and synthetic-only sets only real + synthetic is trained; a split file with one
    split is cycled for --repeats 2 (pieces of one experiment share splits and seeds)."""
    env = {"USGAN_CACHE": str(tmp_path / "cache")}
    common = ["experiment", "classify", "--data", "phantom:n=20", "--epochs", "1",
              "--repeats", "2", "--backbone", "mobilenetv3_small_050", "--quiet",
              "--no-baselines", "--no-synthetic-only", "--synthetic", str(tiny_run)]
    r = run_usgan(*common, "--test-data", "phantom:n=12,seed=5", "--no-balance", "--out",
                  str(tmp_path / "a"), env=env)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert res["preset"]["balance"] is False
    assert list(res["per_split"]) == [f"real + synthetic ({tiny_run})"]
    assert res["splits"]["test_data"] == "phantom:n=12,seed=5"
    assert res["splits"]["test_images_per_class"] == [12, 12]
    assert [s["test_images"] for s in res["per_split"][f"real + synthetic ({tiny_run})"]] \
        == [24, 24]
    split = tmp_path / "split.json"
    r = run_usgan("data", "split", "phantom:n=20", "--test-per-class", "10", "--repeats", "1",
                  "--out", str(split), env=env)
    assert r.returncode == 0, r.stderr
    r = run_usgan(*common, "--split", str(split), "--out", str(tmp_path / "b"), env=env)
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "b" / "results.json").read_text())["per_split"]
    assert [s["split"] for s in next(iter(rows.values()))] == [0, 1]


def test_a_split_file_from_other_data_is_one_line(tmp_path: Path) -> None:
    env = {"USGAN_CACHE": str(tmp_path / "cache")}
    split = tmp_path / "split.json"
    r = run_usgan("data", "split", "phantom:n=40", "--test-per-class", "10", "--repeats", "2",
                  "--out", str(split), env=env)
    assert r.returncode == 0, r.stderr
    r = run_usgan("experiment", "classify", "--data", "phantom:n=20", "--split", str(split),
                  "--backbone", "mobilenetv3_small_050", "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 2, r.stderr
    assert "does not match the data" in r.stderr and "usgan data split" in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert not (tmp_path / "o" / "report.md").exists()


def test_steps_give_every_training_set_the_same_training() -> None:
    """--steps: a fixed count of optimizer steps across reshuffled passes, whatever the set's
    size; without it, epochs as before (the same batches as a plain loop over passes)."""
    from usgan.core.experiment.classify import (
        PRESETS,
        ClassifyOptions,
        _batches,
        train_classifier,
    )

    fast = PRESETS["fast"]
    for n in (9, 10, 40):
        p = ClassifyOptions(steps=7).settings()
        assert p.steps_for(n) == 7
        assert len(list(_batches(n, p, torch.Generator().manual_seed(0)))) == 7
    by_epochs = ClassifyOptions(epochs=2).settings()
    gen, plain = torch.Generator().manual_seed(3), []
    for _ in range(2):
        order = torch.randperm(9, generator=gen)
        plain += [order[i:i + fast.batch] for i in range(0, 9, fast.batch)]
    got = list(_batches(9, by_epochs, torch.Generator().manual_seed(3)))
    assert all(torch.equal(a, b) for a, b in zip(got, plain, strict=True))
    ticks = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    images = torch.randint(0, 255, (50, 1, 4, 4), dtype=torch.uint8)
    train_classifier(model, images, torch.arange(50) % 2, ClassifyOptions(steps=5).settings(),
                     0, False, lambda: ticks.append(1))
    assert len(ticks) == 5
    for bad, why in (({"steps": 3, "epochs": 2}, "give one"), ({"steps": 0}, "at least 1")):
        with pytest.raises(ConfigError, match=why):
            ClassifyOptions(**bad).settings()
    from usgan.core.experiment.report import report_header

    res = {"splits": {"count": 1, "from": "s.json", "test_images_per_class": [3, 3],
                      "level": "image"}, "classes": {"a": 9, "b": 9}, "data": "d",
           "backbone": "b", "init": "random init", "seed": 0,
           "per_split": {REAL: [{"train_images": 12}]}}
    for p, says in ((ClassifyOptions(steps=7).settings(), "7 optimizer steps per configuration"),
                    (fast, "15 epochs")):
        assert says in report_header({**res, "preset": {"name": "fast", **asdict(p)}})["Preset"]


def test_real_only_sets_are_class_balanced_unless_told_not_to(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """The real-only and augmentation sets repeat the smaller class's images up to the larger
    class's count (as the top-up balances real + synthetic); --no-balance keeps them as they
    are; the report says which, and results written before the option read as unbalanced."""
    from usgan.core.data import load_dataset
    from usgan.core.experiment.classify import AUG, ClassifyOptions, balanced, training_sets
    from usgan.core.experiment.report import report_header

    assert balanced([0, 5, 1, 3], torch.tensor([0, 0, 1, 0, 0, 1])) == [0, 1, 3, 5, 5, 5]
    assert balanced([], torch.tensor([0, 1])) == []
    monkeypatch.setenv("USGAN_CACHE", str(tmp_path / "cache"))
    ds = load_dataset("phantom:n=20")
    train = [i for i in range(len(ds)) if ds.labels[i] == 0][:8] + \
        [i for i in range(len(ds)) if ds.labels[i] == 1][:3]
    x = ds.at_size(64)

    def counts(opts: ClassifyOptions, name: str) -> list[int]:
        p = opts.settings()
        got = training_sets(ds, train, [], p, 0, opts)[name]
        assert all(any(torch.equal(img, x[i]) for i in train) for img in got[0])  # real only
        return torch.bincount(got[1], minlength=2).tolist()

    assert counts(ClassifyOptions(), REAL) == [8, 8] == counts(ClassifyOptions(), AUG)
    assert counts(ClassifyOptions(balance=False), REAL) == [8, 3]
    src = SyntheticSource("s", lambda n, c, s: torch.zeros(n, 1, 8, 8, dtype=torch.uint8))
    for balance in (True, False):  # the topped-up set is balanced by construction
        opts = ClassifyOptions(balance=balance)
        y = training_sets(ds, train, [src], opts.settings(), 0, opts)["real + synthetic (s)"][1]
        assert torch.bincount(y).tolist() == [16, 16]
    res = {"splits": {"count": 1, "from": "s.json", "test_images_per_class": [3, 3],
                      "level": "image"}, "classes": {"a": 9, "b": 9}, "data": "d",
           "backbone": "b", "init": "random init", "seed": 0,
           "per_split": {REAL: [{"train_images": 16}]}}
    preset = {"name": "fast", **asdict(ClassifyOptions().settings())}
    assert "real-only sets class-balanced" in report_header({**res, "preset": preset})["Preset"]
    old = {k: v for k, v in preset.items() if k != "balance"}
    assert "not class-balanced" in report_header({**res, "preset": old})["Preset"]

"""``usgan bench quality``: the time-to-quality benchmark trains, scores on held-out images
only, continues a stopped bench, and reports what docs/benchmarks.md promises.

Quality is never judged here (a few seconds of training): only structure and the rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import WEIGHTS, needs_weights, run_usgan

from usgan.benchmarks.quality import (
    PLAIN,
    QualitySettings,
    data_label,
    recipe_changes,
    set_aside,
    supersede,
    train_plain,
    usgan_options,
)
from usgan.benchmarks.quality_report import markdown, markers, table_rows
from usgan.core.data.splits import read_split
from usgan.core.errors import ConfigError, UnknownNameError
from usgan.core.factory import create_generator, get_spec
from usgan.core.run import RunDir
from usgan.core.serialization import save_network
from usgan.core.train.checkpoint import list_checkpoints


@pytest.mark.parametrize("given, message", [
    ({"minutes": 0}, "--minutes"), ({"samples": 1}, "--samples"),
    ({"held_out": 1.0}, "--held-out"), ({"curve": (8.0,)}, "--curve 8"),
    ({"nets": (), "plain": False}, "nothing to run")])
def test_settings_that_cannot_work_are_refused(tmp_path: Path, given: dict, message: str
                                               ) -> None:
    with pytest.raises(ConfigError, match=message):
        QualitySettings("phantom", "healthy", tmp_path, **given).check()


def test_an_unknown_network_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="dcgan-xl"):
        QualitySettings("phantom", "healthy", tmp_path, nets=("dcgan-xl",)).check()
    got = run_usgan("bench", "quality", "--data", "phantom", "--class", "healthy", "--nets",
                    "dcgan-xl", "--out", str(tmp_path / "q"))
    assert got.returncode == 2 and "dcgan-xl" in got.stderr and "Traceback" not in got.stderr


def test_the_plain_dcgan_copies_g_at_each_curve_minute() -> None:
    s = QualitySettings("phantom", "healthy", Path("unused"), minutes=0.04, curve=(0.01,),
                        samples=4)
    seen: list[torch.Tensor] = []

    def score(fake: torch.Tensor) -> dict:
        seen.append(fake)
        return {"kid": 0.0, "kid_std": None, "fid": 0.0}

    ticks = iter(range(1000))  # a clock that moves 0.3 s a reading, whatever the machine
    train = torch.randint(0, 256, (20, 1, 64, 64), dtype=torch.uint8)
    points = train_plain(s, 0, train, score, clock=lambda: next(ticks) * 0.3)
    assert [(p["minutes"], p["steps"]) for p in points] == [(0.01, 2), (0.04, 8)]
    assert seen[0].shape == (4, 1, 64, 64) and seen[0].dtype == torch.uint8
    assert not torch.equal(seen[0], seen[1])  # the copy is G as it was, not as it ends


@pytest.mark.slow
@needs_weights
def test_quality_bench_end_to_end_and_resume(tmp_path: Path) -> None:
    out, page = tmp_path / "bench", tmp_path / "page.md"
    args = ("bench", "quality", "--data", "phantom:n=40", "--class", "healthy", "--minutes",
            "0.1", "--samples", "12", "--curve", "0.05", "--nets", "dcgan", "--seeds", "1",
            "--out", str(out), "--inception-weights", str(WEIGHTS))
    got = run_usgan(*args, "--markdown", str(page))
    assert got.returncode == 0, got.stderr
    result = json.loads((out / "quality.json").read_text())
    assert [(r["form"], r["seed"]) for r in result["rows"]] == [("dcgan", 1), (PLAIN, 1)]
    split = read_split(out / "split.json")["repeats"][0]
    assert result["n_held_out"] == len(split["test"]) == 10
    assert result["n_train"] == len(split["train"]) == 30
    assert result["train_images"]["kid"] is not None  # the floor, scored once
    for row in result["rows"]:
        final = row["points"][-1]
        assert final["kid"] is not None and final["fid"] > 0 and final["steps"] > 0
    run = RunDir(out / "seed1" / "dcgan")
    config = run.read_config()
    assert config["options"]["recipe"] == "default" and config["options"]["stage2"] is None
    assert config["options"]["data_options"]["split"] == str(out / "split.json")
    assert len(list_checkpoints(run.checkpoints("healthy", 1))) == 1  # pruned after the curve
    begin, end = markers(result)
    text = page.read_text()
    assert begin in text and end in text and "| plain-dcgan | 1 |" in text
    # Run again: every row is there, nothing trains, the same result comes back.
    again = run_usgan(*args)
    assert again.returncode == 0, again.stderr
    assert "training" not in again.stderr
    assert json.loads((out / "quality.json").read_text())["rows"] == result["rows"]
    # A different budget in the same folder would mix results: refused.
    other = run_usgan(*args[:-4], "--minutes", "0.2", "--out", str(out))
    assert other.returncode == 2 and "another --out" in other.stderr


def test_rows_of_another_recipe_train_again(tmp_path: Path) -> None:
    """A row whose run was trained before the default recipe changed is not today's default:
    it is superseded (kept in the result); the plain DCGAN's row and a change to Stage-II's
    options (the bench trains Stage-I only) keep theirs."""
    s = QualitySettings("phantom", "healthy", tmp_path, nets=("dcgan",), seeds=(0,))
    split = tmp_path / "split.json"
    opts = usgan_options(s, "dcgan", 0, split).to_json()
    run = RunDir(tmp_path / "seed0" / "dcgan")
    run.root.mkdir(parents=True)
    row, plain = {"form": "dcgan", "seed": 0}, {"form": PLAIN, "seed": 0}

    def rows_after(options: dict) -> dict:
        run.write_config({"stage1": {"name": "dcgan"}, "stage2": None, "options": options})
        result = {"rows": [row, plain]}
        supersede(s, result, split)
        return result

    assert rows_after(opts) == {"rows": [row, plain]}
    assert rows_after({**opts, "stage2_recon": 1.0}) == {"rows": [row, plain]}
    assert rows_after({**opts, "ema": not opts["ema"]}) == {"rows": [plain],
                                                            "superseded": [row]}
    said: list[str] = []
    set_aside(run, ["ema: False -> True"], said.append)  # before it trains again: kept
    (aside,) = tmp_path.joinpath("seed0").glob("dcgan.superseded-*")
    assert not run.root.exists() and (aside / "config.json").is_file()
    assert str(aside) in said[0] and "ema: False -> True" in said[0]


def test_rows_of_a_network_whose_defaults_changed_train_again(tmp_path: Path) -> None:
    """The options alone do not say what the network was: a generator built with other
    defaults than the network's today (a new version changed them) supersedes its row too."""
    s = QualitySettings("phantom", "healthy", tmp_path, nets=("dcgan-sn-sa",), seeds=(0,))
    split = tmp_path / "split.json"
    opts = usgan_options(s, "dcgan-sn-sa", 0, split)
    run = RunDir(tmp_path / "seed0" / "dcgan-sn-sa")
    run.write_config({"stage1": {"name": "dcgan-sn-sa"}, "stage2": None,
                      "options": opts.to_json()})
    assert recipe_changes(run, opts) == []  # no generator yet: nothing to compare
    today = get_spec("dcgan-sn-sa").defaults["attn_res"]
    other = 16 if today == 32 else 32
    for attn_res, changes in ((today, []), (other, [f"dcgan-sn-sa attn_res: {other} -> {today}"])):
        g = create_generator("dcgan-sn-sa", attn_res=attn_res)
        save_network(g, run.weights("healthy", 1, "generator"))
        assert recipe_changes(run, opts) == changes


def test_report_ratios_are_against_the_plain_dcgan_of_the_same_seed() -> None:
    def row(form: str, seed: int, kid: float) -> dict:
        return {"form": form, "seed": seed, "points": [
            {"minutes": 8.0, "steps": 100, "kid": kid, "kid_std": 0.01, "fid": 100.0}]}

    result = {"settings": {"data": "x/busi-256", "cls": "malignant", "minutes": 8.0,
                           "samples": 400, "bins": None, "nets": ["dcgan"]},
              "n_held_out": 42, "n_train": 168,
              "size": 256, "date": "today", "command": "usgan bench quality",
              "threads": 2, "machine": {"cpu": "cpu", "cores": 2},
              "rows": [row("dcgan", 1, 0.3), row(PLAIN, 0, 0.4), row(PLAIN, 1, 0.3),
                       row("dcgan", 0, 0.2)]}  # as trained again after a stop: in order below
    lines = table_rows(result)
    assert [line[-1] for line in lines] == ["0.50", "1.00", "1.00", "1.00", "0.71", "1.00"]
    assert lines[4][:2] == ["dcgan", "mean"] and lines[4][4] == "0.250"
    assert markers(result)[0].startswith("<!-- usgan bench quality busi-256/malignant: begin")
    assert "| plain-dcgan | 1 | 100 | 4.80 | 0.300 ± 0.010 | 100.0 | 1.00 |" in markdown(result)
    assert "training images themselves" not in markdown(result)  # a result from before it
    result["train_images"] = {"kid": 0.05, "kid_std": 0.002, "fid": 80.0}
    assert ("The 168 training images themselves, at 64 px and upsampled alike, score KID "
            "0.050 ± 0.002 (FID 80.0)") in markdown(result)


def test_one_lever_on_other_networks_is_a_section_of_its_own() -> None:
    """A lever's section is named by its ``--set`` options and its networks: batch 8 on the
    spectral-norm networks does not overwrite batch 8 on dcgan."""
    def lever(nets: list[str]) -> dict:
        return {"settings": {"data": "x/busi-256", "cls": "malignant", "nets": nets,
                             "options": {"batch_size": 8}}}

    on_dcgan, on_sn = markers(lever(["dcgan"])), markers(lever(["dcgan-sn", "dcgan-sn-sa"]))
    assert on_dcgan[0].startswith(
        "<!-- usgan bench quality busi-256/malignant with batch_size=8 on dcgan: begin")
    assert on_sn[1] == ("<!-- usgan bench quality busi-256/malignant with batch_size=8 on "
                        "dcgan-sn, dcgan-sn-sa: end -->")
    assert markers({"settings": {"data": "x/busi-256", "cls": "malignant",
                                 "nets": ["dcgan"]}})[0].startswith(
        "<!-- usgan bench quality busi-256/malignant: begin")  # no lever: the default's


def test_data_labels_name_the_data_set() -> None:
    assert data_label("../shared/data/busi-256") == "busi-256"
    assert data_label("../shared/data/sfibai-liver-fibrosis-us/train") == \
        "sfibai-liver-fibrosis-us-train"
    assert data_label("phantom:n=40") == "phantom:n=40"

"""`usgan reproduce`: which configurations run, the plan a folder keeps, the step runner
(order, skipping, failures) and, end to end on the phantom with tiny networks, the tables,
the report section, the zoo push to a loopback Hub and a second run that has nothing left."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from conftest import WEIGHTS, needs_weights, run_usgan
from hubserver import HubServer

from usgan.core.errors import ConfigError
from usgan.reproduce.plan import PRESETS, Layout, Preset, Settings, Step, configs
from usgan.reproduce.runner import StepFailed, run_all

TINY = ["--stage1-config", "g_width=4,d_width=4",
        "--stage2-config", "width=4,d_width=4,max_width=8"]


def test_configs_are_the_six_entries_times_two_recipes() -> None:
    keys = [c.key for c in configs()]
    assert len(keys) == 12 and "paper/dcgan-sn-sa-stage2" in keys and "default/dcgan" in keys
    # a Stage-II configuration brings the Stage-I it is trained on
    assert [c.key for c in configs(["default/dcgan-sn-stage2"])] == [
        "default/dcgan-sn", "default/dcgan-sn-stage2"]
    assert {c.recipe for c in configs(["dcgan"])} == {"paper", "default"}
    assert len(configs(["paper"])) == 6
    with pytest.raises(ConfigError, match="unknown configuration 'dcgan-xl'"):
        configs(["dcgan-xl"])


def test_a_folder_keeps_its_settings(tmp_path: Path) -> None:
    smoke = PRESETS["smoke"]
    Settings(data="phantom", name="p", preset="smoke").check_against(tmp_path, smoke)
    Settings(data="phantom", name="p", preset="smoke").check_against(tmp_path, smoke)  # fine
    with pytest.raises(ConfigError, match=r"made with preset='smoke', not 'cpu'"):
        Settings(data="phantom", name="p", preset="cpu").check_against(tmp_path, PRESETS["cpu"])
    # The same preset's name with another schedule (a newer usgan's) would mix them: refused.
    longer = dataclasses.replace(smoke, stage2=("steps", 50))
    with pytest.raises(ConfigError, match=r"made with schedule=.*'stage2': \['steps', 5\]"):
        Settings(data="phantom", name="p", preset="smoke").check_against(tmp_path, longer)


def test_one_reproduce_per_folder(tmp_path: Path) -> None:
    lay, lock = Layout(tmp_path), tmp_path / "reproduce.lock"
    with lay.lock():
        assert lock.read_text().strip() == str(os.getpid())
        with pytest.raises(ConfigError, match="another usgan reproduce"), lay.lock():
            pass
    assert not lock.exists()
    lock.write_text("999999999\n")  # left by a process that died: taken over
    with lay.lock():
        pass


def test_presets_say_what_they_are() -> None:
    assert set(PRESETS) == {"smoke", "cpu", "paper"}
    assert PRESETS["paper"].length(2) == ["--stage2-epochs", "200"]
    assert PRESETS["smoke"].length(1) == ["--max-steps", "40"]
    assert PRESETS["cpu"].length(1) == ["--max-minutes", "8"]
    assert PRESETS["cpu"].length(2) == ["--stage2-max-minutes", "12"]
    text = PRESETS["cpu"].describe()
    assert "Stage-I 8 minutes, Stage-II 12 minutes per class" in text
    assert "lowest-KID generator (200 samples every 1000 steps)" in text
    assert "configurations default" in text and "100 optimizer steps for every arm" in text
    # summary.json of a folder made before minutes existed still describes its schedule
    old = {"name": "cpu", "stage1_steps": 200, "stage2_steps": 30, "epochs": None,
           "eval_n": 400, "classify": "fast", "classify_steps": 100, "repeats": 5,
           "checkpoint_every": 25, "what": "x"}
    assert "Stage-I 200 steps, Stage-II 30 steps" in Preset.from_json(old).describe()
    assert Preset.from_json(json.loads(json.dumps(asdict(PRESETS["cpu"])))) == PRESETS["cpu"]


def test_the_cpu_preset_trains_by_the_clock_and_keeps_stage2s_best(tmp_path: Path) -> None:
    """Its own configurations (the default recipe's six); minutes per stage; Stage-II keeps
    its lowest-KID generator, scored with the reproduction's Inception weights."""
    from usgan.reproduce.plan import plan

    p, s = PRESETS["cpu"], Settings("phantom", "x", "cpu", test_per_class=2)
    steps = {st.id: st for st in plan(s, p, configs(p.only), Layout(tmp_path), weights="W")}
    assert [k for k in steps if k.startswith("train")] == [
        f"train default/{e}" for e in ("dcgan", "dcgan-stage2", "dcgan-sn", "dcgan-sn-stage2",
                                       "dcgan-sn-sa", "dcgan-sn-sa-stage2")]
    one, two = steps["train default/dcgan"].argv(), steps["train default/dcgan-stage2"].argv()
    assert one[one.index("--max-minutes") + 1] == "8" and "--keep-best" not in one
    assert two[two.index("--stage2-max-minutes") + 1] == "12"
    assert two[two.index("--eval-every") + 1] == "1000" and "--keep-best" in two
    assert two[two.index("--inception-weights") + 1] == "W"


def test_table2_says_what_its_repeats_measure(tmp_path: Path) -> None:
    """One held-out test set for every repeat, said plainly; every arm the same --steps."""
    from usgan.reproduce import document
    from usgan.reproduce.plan import classify_step

    lay = Layout(tmp_path)
    argv = classify_step("baselines", [], Settings("phantom", "x", "cpu"), PRESETS["cpu"],
                         lay).argv()
    assert argv[argv.index("--steps") + 1] == "100" and "--epochs" not in argv
    text = document._repeats_mean({"splits": {"test_images_per_class": [10, 12]}})
    assert "Every repeat tests on the same held-out set (22 images" in text
    assert "the p-values measure the variance over training seeds on these 22 images" in text
    lines = document._table2({"table2": None}, configs(["default/dcgan"]), "###")
    assert lines == ["### Table 2: classification", "",
                     "Not run yet (the classifier runs after the GANs).", ""]  # and no note


def test_the_paper_accuracy_note_names_the_rows_that_carry_one() -> None:
    """A run of the default recipe only shows the paper's real-only accuracy, and its note
    does not point at paper-recipe rows that are not there."""
    from usgan.reproduce import document

    assert "paper-recipe GANs, not trained here" in document._paper_accuracies(
        configs(["default/dcgan"]))
    assert "real only and the paper-recipe rows" in document._paper_accuracies(
        configs(["default/dcgan", "paper/dcgan"]))


def _step(tmp: Path, name: str, argv: list[str], needs: tuple[str, ...] = ()) -> Step:
    mark = tmp / f"{name}.done"
    return Step(name, lambda: argv, mark.exists, needs, after=lambda out: mark.write_text(out))


def test_runner_orders_skips_and_stops_at_a_failure(tmp_path: Path) -> None:
    lay = Layout(tmp_path)
    a = _step(tmp_path, "a", ["--version"])
    b = _step(tmp_path, "b", ["--version"], needs=("a",))
    (tmp_path / "c.done").write_text("")  # already done: skipped
    c = _step(tmp_path, "c", ["--no-such-option"])
    assert run_all([b, a, c], lay, jobs=2, echo=lambda m: None) == ["a", "b"]
    assert "usgan" in (tmp_path / "a.done").read_text()
    assert run_all([a, b, c], lay, jobs=1, echo=lambda m: None) == []  # nothing left
    rows = [json.loads(x) for x in lay.steps.read_text().splitlines()]
    assert [r["step"] for r in rows] == ["a", "b"] and all(r["exit"] == 0 for r in rows)

    bad = _step(tmp_path, "bad", ["--no-such-option"])
    after = _step(tmp_path, "after", ["--version"], needs=("bad",))
    with pytest.raises(StepFailed, match=r"step 'bad' failed \(exit 2\): Error: No such "
                                         r"option.*--no-such-option.*; log: .*bad\.log"):
        run_all([bad, after], lay, jobs=1, echo=lambda m: None)
    assert not (tmp_path / "after.done").exists()


def _cli(*args: str) -> Any:
    """usgan in this process (the CLI's error handling included)."""
    from click.testing import CliRunner

    from usgan.cli.main import cli

    return CliRunner().invoke(cli, list(args))


def test_cli_dry_run_lists_the_commands(tmp_path: Path) -> None:
    out = tmp_path / "r"
    r = _cli("reproduce", "--data", "phantom:n=20", "--out", str(out), "--preset", "smoke",
             "--only", "paper/dcgan-stage2", "--dry-run")
    assert r.exit_code == 0, r.output
    ids = [line.split(":")[0] for line in r.output.splitlines() if not line.startswith("repro")]
    assert ids == ["split", "train paper/dcgan", "eval paper/dcgan", "train paper/dcgan-stage2",
                   "eval paper/dcgan-stage2", "eval floor", "classify baselines",
                   "classify paper/dcgan", "classify paper/dcgan-stage2"]
    assert "eval floor: usgan eval --real phantom:n=20 --split" in r.output
    assert "--floor --size 256 --floor-at 64" in r.output  # at Table 1's size, at Stage-I's
    assert f"--stage1-from {out}/runs/paper/dcgan" in r.output
    assert not out.exists()  # a dry run writes nothing
    from collections import Counter

    from usgan.core.data import load_index

    index = load_index("phantom:n=20")
    smallest = min(Counter(it.label for it in index.items).values())
    assert f"--test-per-class {int(0.2 * smallest)} " in r.output  # as classify's default
    r = _cli("reproduce", "--data", "phantom:n=20", "--out", str(out), "--preset", "smoke",
             "--only", "paper/dcgan", "--phase", "eval,classify", "--dry-run")
    assert [line.split(":")[0] for line in r.output.splitlines()
            if not line.startswith("repro")] == [
        "eval paper/dcgan", "eval floor", "classify baselines", "classify paper/dcgan"]


def test_the_regenerate_command_keeps_the_seed(tmp_path: Path) -> None:
    """The report's "Regenerate with" command names a seed other than 0 (a folder of one seed
    refuses another)."""
    out = tmp_path / "r"
    args = ["--data", "phantom:n=20", "--out", str(out), "--preset", "smoke", "--only",
            "paper/dcgan"]
    r = _cli("reproduce", *args, "--seed", "3", "--report-only")
    assert r.exit_code == 0, r.output
    command = json.loads((out / "summary.json").read_text())["command"]
    assert "--seed 3 " in command and "--seed 3" in (out / "report.md").read_text()
    r = _cli("reproduce", *args, "--report-only")  # seed 0 on seed 3's folder
    assert r.exit_code != 0 and "seed" in r.output


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    r = _cli("reproduce", "--data", "phantom", "--out", str(tmp_path / "r"), "--only", "nope")
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0
    assert "unknown configuration 'nope'" in r.output
    r = _cli("reproduce", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "r"))
    assert r.exit_code == 2 and "does not exist" in r.output and "Traceback" not in r.output
    r = _cli("reproduce", "--data", "phantom", "--out", str(tmp_path / "r"), "--phase", "x")
    assert r.exit_code == 2 and "--phase: unknown kind 'x'" in r.output


@pytest.mark.slow
@needs_weights
def test_reproduce_end_to_end_on_the_phantom(tmp_path: Path) -> None:
    out, page = tmp_path / "repro", tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    page.write_text("# Results\n\nhand-written intro\n")
    with HubServer(tmp_path / "hub") as hub:
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": str(tmp_path / "hf"),
               "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0",
               "USGAN_CACHE": str(tmp_path / "cache")}
        args = ["reproduce", "--data", "phantom:n=24", "--name", "ph", "--out", str(out),
                "--test-per-class", "8",
                "--preset", "smoke", "--only", "default/dcgan-stage2", "--batch-size", "4",
                "--eval-n", "20",
                *TINY, "--backbone", "mobilenetv3_small_050", "--jobs", "2",
                "--inception-weights", str(WEIGHTS), "--push-org", "testorg",
                "--report", str(page)]
        # the classifier's pieces are tested in test_classify and above; here the GAN side
        r = run_usgan(*args, "--phase", "split,train,eval,push", env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        summary = json.loads((out / "summary.json").read_text())
        t1 = summary["table1"]
        assert set(t1) == {"default/dcgan", "default/dcgan-stage2"}
        for per_class in t1.values():
            assert set(per_class) == set(summary["classes"]) and len(per_class) == 2
            assert all(row["fid"] > 0 and row["n_fake"] == 20 and 0 < row["n_real"] <= 8
                       for row in per_class.values())  # the held-out images only, not 24
        assert summary["scored_against"] == "held-out"
        floors = summary["floor"]  # the training images at 256 px, and at 64 px upsampled
        assert list(floors) == ["training images (the floor)",
                                "training images at 64 px, upsampled (a Stage-I's best)"]
        for rows in floors.values():
            assert set(rows) == set(summary["classes"])
            assert all(0 < row["n_real"] <= 8 and row["kid"] is not None
                       for row in rows.values())
        assert len(summary["claims"]["stage2_lowers_fid"]) == 2
        assert summary["table2"] is None
        assert summary["steps_left"] == ["classify baselines", "classify default/dcgan",
                                         "classify default/dcgan-stage2"]
        index = json.loads((out / "index.json").read_text())
        assert {e["repo"] for e in index} == {"testorg/ph-default-dcgan",
                                              "testorg/ph-default-dcgan-stage2"}
        assert all(len(e["revision"]) == 40 for e in index)
        text = page.read_text()
        assert text.startswith("# Results\n\nhand-written intro\n")
        assert "<!-- usgan reproduce ph: begin" in text and "| `dcgan-stage2` |" in text
        assert (page.parent / "figures" / "results-ph-samples.png").is_file()
        assert "Incomplete**: 3 step(s) left" in text
        assert "FID/KID against those held-out images only" in text
        assert "| training images (the floor) | - |" in text
        assert "| training images at 64 px, upsampled (a Stage-I's best) | - |" in text
        assert "Texture by scale" in text and "| power 2-4 px / real |" in text
        assert all(len(row["spectrum"]) == 5 for per_class in t1.values()
                   for row in per_class.values())
        # again: only what is left; the written tables stay as they were
        r2 = run_usgan(*args, "--phase", "split,train,eval,push", "--dry-run", env=env)
        assert r2.returncode == 0 and r2.stdout == "", r2.stdout + r2.stderr
        r3 = run_usgan(*args, "--report-only", env=env)
        assert r3.returncode == 0, r3.stderr[-2000:]
        assert json.loads((out / "summary.json").read_text())["table1"] == t1
        assert page.read_text().count("usgan reproduce ph: begin") == 1


def _eval_doc(fids: dict[str, float]) -> dict:
    rows = {c: {"fid": {"value": v}, "kid": {"value": v / 1000, "std": 0.001}, "n_fake": 400,
                "n_real": 100, "diversity": [{"space": "pixels 64x64", "ratio": 0.9}],
                "audit": [{"space": "pixels 64x64", "copy_rate": 0.01, "median_distance": 2.0,
                           "real_median_distance": 1.0}]} for c, v in fids.items()}
    return {"results": {"/somewhere/run": rows}}


def _classify_doc(per_split: dict[str, list[float]]) -> dict:
    return {"per_split": {k: [{"accuracy": a, "precision": a, "recall": a, "f1": a}
                              for a in accs] for k, accs in per_split.items()},
            "splits": {"count": 3, "level": "image", "from": "split.json",
                       "test_images_per_class": [10, 10]},
            "preset": {"name": "fast", "size": 64, "epochs": 3, "batch": 32, "per_class": None,
                       "repeats": 5, "lr": 0.001},
            "init": "random init", "classes": {"a": 50, "b": 50}, "backbone": "efficientnet_b0"}


def test_the_tables_pair_the_pieces_and_count_the_claims(tmp_path: Path) -> None:
    """Table 1 and 2 read back from files as the steps write them: a Stage-II row is compared
    with its own Stage-I per class; a classifier piece is renamed after its configuration and
    paired with the baselines for the t-test."""
    from usgan.core.io import write_json
    from usgan.reproduce import report

    lay, chosen = Layout(tmp_path), configs(["paper/dcgan-stage2"])
    write_json(lay.eval("paper/dcgan"), _eval_doc({"a": 200.0, "b": 100.0}))
    write_json(lay.eval("paper/dcgan-stage2"), _eval_doc({"a": 150.0, "b": 120.0}))
    write_json(lay.classify("baselines") / "results.json", _classify_doc(
        {"real only": [0.6, 0.7, 0.65], "real + classic augmentation": [0.6, 0.6, 0.6]}))
    write_json(lay.classify("paper/dcgan-stage2") / "results.json", _classify_doc(
        {"real + synthetic (/elsewhere/runs/paper/dcgan-stage2)": [0.8, 0.95, 0.8]}))
    t1, t2 = report.table1(lay, chosen), report.table2(lay, chosen)
    assert t1["paper/dcgan"]["a"]["nn_ratio"] == {"pixels": 2.0}
    claims = report.claims(t1, t2, chosen)
    assert [(r["class"], r["held"]) for r in claims["stage2_lowers_fid"]] == [
        ("a", True), ("b", False)]
    synth = claims["synthetic_beats_real"]
    assert [r["config"] for r in synth] == ["paper/dcgan-stage2"]  # the Stage-I had no piece
    assert synth[0]["held"] and synth[0]["p_value"] < 0.05
    doc = {"classes": ["a", "b"], "table1": t1, "table2": t2, "claims": claims}
    table = "\n".join(report.table2_markdown(doc, chosen))
    assert "| real + synthetic (paper/dcgan-stage2) | 85.0 ± 8.7 |" in table
    assert table.rstrip().endswith("| 85.71 |")  # the paper's number beside the paper recipe
    assert "in 1 of 2 pairs" in "\n".join(report.claims_markdown(doc))


def test_the_texture_table_has_a_row_per_class_and_says_what_was_not_measured(
        tmp_path: Path) -> None:
    """Power by scale per configuration and class, the floor rows first; an evaluation made
    before the spectrum was measured shows n/a, and none measured at all: no table."""
    from usgan.core.io import write_json
    from usgan.reproduce import report

    lay, chosen = Layout(tmp_path), configs(["paper/dcgan-stage2"])
    write_json(lay.eval("paper/dcgan"), _eval_doc({"a": 200.0}))
    assert report.texture_markdown({"table1": report.table1(lay, chosen)}) == []
    measured = _eval_doc({"a": 150.0})
    measured["results"]["/somewhere/run"]["a"]["spectrum"] = {
        "periods": ["2-4 px", "4-8 px"], "ratios": [0.00417, 1.2]}
    write_json(lay.eval("paper/dcgan-stage2"), measured)
    floor = {"training images (the floor)": {"a": {"spectrum": {"2-4 px": 1.0, "4-8 px": 0.99}}}}
    lines = report.texture_markdown({"table1": report.table1(lay, chosen), "floor": floor})
    assert lines[0] == "| Configuration | class | power 2-4 px / real | power 4-8 px / real |"
    assert lines[2:] == ["| training images (the floor) | a | 1.00 | 0.99 |",
                         "| `paper/dcgan` | a | n/a | n/a |",
                         "| `paper/dcgan-stage2` | a | 0.0042 | 1.20 |"]


def test_wall_time_counts_a_redone_step_once_and_a_resumed_one_whole(tmp_path: Path) -> None:
    """steps.jsonl keeps every run of a step. One stopped (exit 130) and resumed took both
    runs; one run again after it finished (its output removed to redo it) counts its last
    run: the report's wall time is what the results it shows took."""
    from usgan.reproduce import report

    lay = Layout(tmp_path)
    rows = [("train a", 500.0, 130), ("eval floor", 100.0, 0), ("train a", 400.0, 0),
            ("eval b", 60.0, 0), ("eval floor", 130.0, 0)]
    lay.steps.write_text("".join(json.dumps({"step": s, "seconds": t, "exit": e}) + "\n"
                                 for s, t, e in rows))
    assert report.wall_time(lay) == {"train": 900.0, "eval": 190.0}


def test_a_folder_without_its_weights_keeps_its_sample_grid(tmp_path: Path) -> None:
    """Runs trained on another machine come back without weights: --report-only keeps the
    grid drawn there instead of failing to load them, and draws none where there is none."""
    from usgan.core.run import RunDir
    from usgan.core.train.options import TrainOptions
    from usgan.reproduce import figures

    lay, chosen = Layout(tmp_path), configs(["paper/dcgan"])
    run = RunDir(lay.run("paper/dcgan"))
    run.root.mkdir(parents=True)
    run.write_config({"options": TrainOptions().to_json(), "classes": ["a", "b"],
                      "stage1": {"name": "dcgan"}, "stage2": None})
    run.mark_finished()
    assert figures.sample_grid(lay, chosen, ["a", "b"]) is None
    lay.figures.mkdir()
    (lay.figures / "samples.png").write_bytes(b"drawn elsewhere")
    assert figures.sample_grid(lay, chosen, ["a", "b"]) == lay.figures / "samples.png"
    assert (lay.figures / "samples.png").read_bytes() == b"drawn elsewhere"


def test_sigterm_stops_the_steps_as_ctrl_c_would(tmp_path: Path) -> None:
    """`kill` (or a scheduler's time limit) on `usgan reproduce` reaches its steps as Ctrl-C:
    each gets SIGINT (a training run saves a checkpoint), and reproduce waits for them."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    from usgan.reproduce.runner import Children

    ready, saved = tmp_path / "ready", tmp_path / "saved"
    step = ("import sys, time\nopen(sys.argv[1], 'w').close()\ntry:\n    time.sleep(60)\n"
            "except KeyboardInterrupt:\n    open(sys.argv[2], 'w').write('checkpoint')\n"
            "    sys.exit(130)\n")
    children, result = Children(), {}
    worker = threading.Thread(target=lambda: result.update(r=children.run(
        [sys.executable, "-c", step, str(ready), str(saved)], stderr=subprocess.DEVNULL)))
    worker.start()
    for _ in range(200):
        if ready.exists():
            break
        time.sleep(0.05)
    with pytest.raises(KeyboardInterrupt), children.stop_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises before this ends
    worker.join(20)
    assert result["r"][0] == 130 and saved.read_text() == "checkpoint"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is put back


def test_claim_sentences_name_the_rows_that_pass() -> None:
    """Claim 2 names the configurations that passed (p = 0 counts); with none, the highest
    accuracy is named as not significant. Claim 1 shows FID and KID of each pair."""
    from usgan.reproduce import report

    def row(config: str, acc: float, p: float | None) -> dict:
        return {"config": config, "accuracy": acc, "real_only": 0.6, "p_value": p,
                "held": report.significant_gain(acc, 0.6, p)}

    c1 = [{"config": "paper/dcgan-stage2", "class": "a", "stage1_fid": 200.0,
           "stage2_fid": 150.0, "stage1_kid": 0.2, "stage2_kid": 0.1, "held": True}]
    c2 = [row("paper/dcgan-sn", 0.9, 0.2), row("default/dcgan", 0.7, 0.0),
          row("paper/dcgan", 0.65, None)]
    assert [r["held"] for r in c2] == [False, True, False]
    text = "\n".join(report.claims_markdown({"claims": {"stage2_lowers_fid": c1,
                                                        "synthetic_beats_real": c2}}))
    assert "1 of 3 configurations: `default/dcgan` 70.0% against 60.0% (p <0.001)." in text
    assert "paper/dcgan-sn" not in text
    assert "200.0 → 150.0 (20.00 → 10.00)" in text
    none = "\n".join(report.claims_markdown({"claims": {"stage2_lowers_fid": [],
                                                        "synthetic_beats_real": c2[:1]}}))
    assert "0 of 1 configurations; the highest mean accuracy, `paper/dcgan-sn` 90.0%" in none
    assert "is not a significant gain" in none
    below = "\n".join(report.claims_markdown({"claims": {"stage2_lowers_fid": [],
                                                         "synthetic_beats_real": [
                                                             row("default/dcgan", 0.55, 0.3)]}}))
    assert "`default/dcgan` 55.0% against 60.0% (p 0.300), is not above real only's." in below


def test_is_is_shown_when_computed_and_its_reason_only_when_not(tmp_path: Path) -> None:
    from usgan.core.io import write_json
    from usgan.reproduce import document, report

    lay, chosen = Layout(tmp_path), configs(["default/dcgan-stage2"])
    for key, isc in (("default/dcgan", {"value": 2.5, "std": 0.1, "unavailable": None}),
                     ("default/dcgan-stage2", {"value": None, "std": None,
                                               "unavailable": "the head is NaN"})):
        doc = _eval_doc({"a": 100.0})
        doc["results"]["/somewhere/run"]["a"]["is"] = isc
        write_json(lay.eval(key), doc)
    doc = {"classes": ["a"], "table1": report.table1(lay, chosen), "score_size": 256,
           "settings": {"eval_n": 400}, "preset": {"eval_n": 400}}
    text = "\n".join(document._table1(doc, chosen, "##"))
    assert "| `dcgan` | 113.87 / 161.76 | 100.0 | 10.00 ± 0.10 | 2.50 ± 0.10 |" in text
    assert "| `dcgan-stage2` | 100.05 / 99.53 | 100.0 | 10.00 ± 0.10 | n/a |" in text
    assert "IS is n/a: the head is NaN." in text and "at 256 px" in text
    for key in ("default/dcgan", "default/dcgan-stage2"):
        write_json(lay.eval(key), _eval_doc({"a": 100.0}))
    doc["table1"] = report.table1(lay, chosen)
    assert "IS is n/a: not computed." in "\n".join(document._table1(doc, chosen, "##"))


def test_stage1_rows_are_scored_at_the_stage2_size() -> None:
    from usgan.reproduce.plan import eval_step, score_size

    s, lay = Settings("phantom", "x", "smoke"), Layout(Path("out"))
    assert score_size(s) == 256
    assert score_size(Settings("phantom", "x", "smoke", stage2_config="out_size=128")) == 128
    one, two = configs(["default/dcgan-stage2"])
    argv1 = eval_step(one, s, PRESETS["smoke"], lay, None).argv()
    argv2 = eval_step(two, s, PRESETS["smoke"], lay, None).argv()
    assert argv1[argv1.index("--size") + 1] == "256" and "--size" not in argv2
    for argv in (argv1, argv2):  # scored against the held-out images, which no GAN saw
        assert argv[argv.index("--split") + 1] == str(lay.split)
    with_real = Settings("phantom", "x", "smoke", eval_real="phantom:n=8")
    assert "--split" not in eval_step(one, with_real, PRESETS["smoke"], lay, None).argv()
    assert argv1[argv1.index("--metrics") + 1] == "fid,kid,is"


def test_zoo_names_of_the_two_recipes_differ(tmp_path: Path) -> None:
    from usgan.zoo.index import write_index

    names = {c.key: c.zoo_name for c in configs(["dcgan-stage2"])}
    assert names["default/dcgan-stage2"] == "dcgan-stage2"
    assert names["paper/dcgan-stage2"] == "dcgan-stage2-paper"
    assert len(set(c.zoo_name for c in configs())) == 12
    row = {"name": "dcgan", "stage1": "dcgan", "repo": "o/a"}
    write_index(tmp_path / "ok.json", [row, {**row, "name": "dcgan-paper"}])
    with pytest.raises(ConfigError, match="two entries are named 'dcgan'"):
        write_index(tmp_path / "bad.json", [row, {**row, "repo": "o/b"}])
    assert not (tmp_path / "bad.json").exists()

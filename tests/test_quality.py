"""Quality options: recipes, the regularizers of the D step, --eval-every, curves and card."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from conftest import WEIGHTS, needs_weights, run_usgan
from safetensors.torch import load_file
from torch import nn

from usgan.core.errors import ConfigError, UnknownNameError
from usgan.core.stage import Stage
from usgan.core.train import losses
from usgan.core.train.options import FROM_RECIPE, TrainOptions
from usgan.core.train.recipes import RECIPES, get_recipe
from usgan.core.train.step import GANStep, Regularizers, make_optimizers

TINY = {"stage1_config": {"g_width": 8, "d_width": 8}}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_paper_recipe_is_the_papers_hyper_parameters() -> None:
    paper = TrainOptions(recipe="paper").to_json()
    assert TrainOptions.from_json({"recipe": "paper"}).to_json() == paper
    # An option missing from a saved run is older than the run: it was off (the paper's
    # value), whatever its recipe says now.
    assert TrainOptions.from_json({"recipe": "default"}).diffaugment == []
    assert (paper["loss"], paper["lr"], paper["betas"], paper["batch_size"]) == (
        "bce", 2e-4, [0.5, 0.999], 16)
    assert not paper["ema"] and not paper["diffaugment"] and not paper["r1_gamma"]
    default = TrainOptions(max_steps=3)
    assert default.recipe == "default" and default.max_steps == 3 and default.diffaugment
    from_recipe = {f.name for f in fields(TrainOptions) if f.default is FROM_RECIPE}
    assert set(get_recipe("default").options) == set(get_recipe("paper").options) == from_recipe
    with pytest.raises(UnknownNameError, match=r"unknown recipe 'papr'.*did you mean 'paper'"):
        get_recipe("papr")
    assert set(RECIPES) == {"paper", "default"}


def test_default_recipe_per_stage1_network() -> None:
    """DiffAugment in the default recipe's Stage-I and in every Stage-II (measured in
    docs/quality.md and docs/benchmarks.md); the step of each stage uses its own policy."""
    tc = ["translation", "cutout"]
    for stage1, want in [("dcgan", (tc, tc)), ("dcgan-sn", (tc, tc)), ("dcgan-sn-sa", (tc, tc)),
                         ("a-third-party-net", (tc, tc))]:
        opts = TrainOptions(stage1=stage1)
        assert (opts.policy(Stage.ONE), opts.policy(Stage.TWO)) == want, stage1
    paper = TrainOptions(recipe="paper", stage1="dcgan-sn")
    assert paper.policy(Stage.ONE) == paper.policy(Stage.TWO) == []
    d = nn.Sequential(nn.Flatten(), nn.Linear(16, 1), nn.Flatten(0))
    opt = torch.optim.Adam(d.parameters())
    opts = TrainOptions(stage1="dcgan", stage2_diffaugment=["translation"])
    steps = [GANStep.for_options(opts, lambda z: z[0], d, opt, opt, stage=s,
                                 aug=torch.Generator()) for s in (Stage.ONE, Stage.TWO)]
    assert [s.policy for s in steps] == [tc, ["translation"]]


def test_default_recipe_batch_per_network_and_stage() -> None:
    """The Stage-I of the three built-ins at batch 8 in the default recipe (docs/benchmarks.md,
    "Levers"), a third party's Stage-I and every Stage-II at 16; a run saved before
    stage2_batch_size existed trains Stage-II at its --batch-size, as it did."""
    for stage1, recipe, want in [("dcgan", "default", (8, 16)), ("dcgan-sn", "default", (8, 16)),
                                 ("dcgan-sn-sa", "default", (8, 16)),
                                 ("a-third-party-net", "default", (16, 16)),
                                 ("dcgan", "paper", (16, 16))]:
        opts = TrainOptions(stage1=stage1, recipe=recipe)
        assert (opts.batch_in(Stage.ONE), opts.batch_in(Stage.TWO)) == want, (stage1, recipe)
    given = TrainOptions(stage1="dcgan", batch_size=4, stage2_batch_size=2)
    assert (given.batch_in(Stage.ONE), given.batch_in(Stage.TWO)) == (4, 2)
    both = TrainOptions(stage1="dcgan", batch_size=4)  # --batch-size alone: both stages
    assert (both.batch_in(Stage.ONE), both.batch_in(Stage.TWO)) == (4, 4)
    old = TrainOptions.from_json({"recipe": "default", "stage1": "dcgan", "batch_size": 32})
    assert (old.batch_in(Stage.ONE), old.batch_in(Stage.TWO)) == (32, 32)
    with pytest.raises(ConfigError, match="--stage2-batch-size must be at least 1"):
        TrainOptions(stage2_batch_size=0)


def test_cli_trains_each_stage_at_its_batch(tmp_path: Path) -> None:
    """Through `usgan train`: 16 images a class, one epoch per stage, the default recipe:
    Stage-I of dcgan takes 2 steps of 8, Stage-II 1 step of 16; --stage2-batch-size 4 makes
    it 4 steps; --batch-size 4 alone sets both stages."""
    for i, (extra, want) in enumerate([((), {1: 2, 2: 1}),
                                       (("--stage2-batch-size", "4"), {1: 2, 2: 4}),
                                       (("--batch-size", "4"), {1: 4, 2: 4})]):
        out = tmp_path / f"run{i}"
        r = run_usgan("train", "--data", "phantom:n=16", "--classes", "healthy", "--epochs", "1",
                      "--log-every", "1", "--stage1-config", "g_width=8,d_width=8",
                      "--stage2-config", "width=8,d_width=8,max_width=32", "--quiet",
                      "--out", str(out), *extra)
        assert r.returncode == 0, r.stderr
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert {s: max(x["step"] for x in lines if x["stage"] == s) for s in (1, 2)} == want
        card = (out / "README.md").read_text()  # the model card says each stage's batch
        assert ("batch 8 in Stage-I and 16 in Stage-II," if i == 0 else
                "batch 8 in Stage-I and 4 in Stage-II," if i == 1 else "batch 4,") in card


def test_cli_stage2_diffaugment_and_none(tmp_path: Path) -> None:
    """`none` turns DiffAugment off in the stage it names and leaves the other's policy."""
    tc = ["translation", "cutout"]
    for i, (flag, want) in enumerate([("--stage2-diffaugment", (tc, [])),
                                      ("--diffaugment", ([], tc))]):
        out = tmp_path / f"run{i}"
        r = run_usgan("train", "--data", "phantom:n=8", "--classes", "healthy", "--stage1",
                      "dcgan-sn-sa", "--stage2", "off", "--max-steps", "1", "--batch-size", "4",
                      "--stage1-config", "g_width=8,d_width=8", flag, "none",
                      "--quiet", "--out", str(out))
        assert r.returncode == 0, r.stderr
        opts = json.loads((out / "config.json").read_text())["options"]
        assert (opts["diffaugment"], opts["stage2_diffaugment"]) == want, flag
    r = run_usgan("train", "--stage2-diffaugment", "flip", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "unknown DiffAugment policy 'flip'" in r.stderr


def test_cli_recipe_with_explicit_options_on_top(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = run_usgan("train", "--data", "phantom:n=8", "--classes", "healthy", "--stage2", "off",
                  "--max-steps", "1", "--batch-size", "4", "--stage1-config",
                  "g_width=8,d_width=8", "--no-ema", "--r1-gamma", "2", "--quiet",
                  "--out", str(out))
    assert r.returncode == 0, r.stderr
    opts = json.loads((out / "config.json").read_text())["options"]
    assert get_recipe("default").options["ema"] is True
    assert opts["recipe"] == "default" and opts["ema"] is False  # --no-ema beats the recipe
    assert opts["diffaugment"] == get_recipe("default").options["diffaugment"]
    assert opts["r1_gamma"] == 2.0
    assert "recipe `default`" in (out / "README.md").read_text()
    r = run_usgan("train", "--recipe", "nope", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "--recipe" in r.stderr and "nope" in r.stderr


def test_option_checks_are_one_line() -> None:
    with pytest.raises(ConfigError, match="label-smoothing works with --loss bce only"):
        TrainOptions(loss="hinge", label_smoothing=0.1)
    with pytest.raises(ConfigError, match="r1-gamma must not be negative"):
        TrainOptions(r1_gamma=-1)
    with pytest.raises(ConfigError, match=r"label-smoothing must be in \[0, 1\)"):
        TrainOptions(label_smoothing=1.0)
    with pytest.raises(ConfigError, match="--keep-best needs --eval-every"):
        TrainOptions(keep_best=True)


def test_r1_penalty_by_hand() -> None:
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    x = torch.rand(5, 1, 2, 2, requires_grad=True)
    logits = (x[:, 0] * w).sum(dim=(1, 2))  # gradient of each logit is w
    got = losses.r1_penalty(logits, x, gamma=4.0)
    assert float(got) == pytest.approx(0.5 * 4.0 * float(w.pow(2).sum()))
    smooth = losses.d_loss_real(torch.zeros(3), "bce", smoothing=0.2)
    assert float(smooth) == pytest.approx(float(torch.log(torch.tensor(2.0))))  # any target
    big = torch.full((3,), 20.0)
    assert float(losses.d_loss_real(big, "bce", 0.1)) > 1.0  # overconfidence now costs


def test_ttur_and_the_regularized_step() -> None:
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Unflatten(1, (1, 4, 4)))
    d = nn.Sequential(nn.Flatten(), nn.Linear(16, 1), nn.Flatten(0))
    opt_g, opt_d = make_optimizers(g, d, lr=1e-4, lr_d=4e-4)
    assert opt_g.param_groups[0]["lr"] == 1e-4 and opt_d.param_groups[0]["lr"] == 4e-4
    real, noise = torch.rand(8, 1, 4, 4) * 2 - 1, [torch.randn(8, 4)]

    def run(reg: Regularizers, seed: int) -> torch.Tensor:
        torch.manual_seed(0)
        gg = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Unflatten(1, (1, 4, 4)))
        dd = nn.Sequential(nn.Flatten(), nn.Linear(16, 1), nn.Flatten(0))
        step = GANStep(lambda z: gg(z[0]), dd, *make_optimizers(gg, dd), reg=reg,
                       aug=torch.Generator().manual_seed(seed))
        step(real, noise)
        return dd[1].weight.detach().clone()

    plain = run(Regularizers(), 1)
    for reg in (Regularizers(r1_gamma=1.0), Regularizers(instance_noise=0.5),
                Regularizers(label_smoothing=0.2)):
        assert not torch.equal(run(reg, 1), plain), reg  # each one changes D's update
        assert torch.equal(run(reg, 1), run(reg, 1))  # and is seeded
    assert not torch.equal(run(Regularizers(instance_noise=0.5), 2),
                           run(Regularizers(instance_noise=0.5), 1))
    with pytest.raises(ValueError, match=r"own torch\.Generator"):
        GANStep(lambda z: g(z[0]), d, opt_g, opt_d, reg=Regularizers(instance_noise=0.1))


@needs_weights
def test_eval_every_logs_quality_and_leaves_the_weights_alone(tmp_path: Path) -> None:
    from usgan.core.run import RunDir
    from usgan.core.train.trainer import Trainer
    from usgan.zoo.card import card_for

    def train(out: Path, **extra: object) -> Path:
        opts = TrainOptions(data="phantom:n=8", classes=["healthy"], stage2=None,  # type: ignore[arg-type]
                            max_steps=4, batch_size=4, quiet=True, ema=True, ema_warmup=True,
                            **TINY, **extra)
        Trainer(opts, out, echo=lambda m: None).train()
        return out

    plain = train(tmp_path / "plain")
    watched = train(tmp_path / "watched", eval_every=2, eval_n=6,
                    inception_weights=str(WEIGHTS))
    for name in ("generator.safetensors", "generator_ema.safetensors",
                 "discriminator.safetensors"):
        a, b = (load_file(r / "healthy" / "stage1" / name) for r in (plain, watched))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    evals = [r for r in RunDir(watched).read_metrics() if "fid" in r]
    assert [r["step"] for r in evals] == [2, 4] and all(r["eval_n"] == 6 for r in evals)
    assert all(r["fid"] > 0 and 0 <= r["diversity_pixels"] for r in evals)
    card = str(card_for(RunDir(watched)))
    assert "Quality during training" in card and "| healthy | 1 | 4 |" in card
    assert "| lowest-KID step | its FID | its KID |" in card
    assert "Quality during training" not in str(card_for(RunDir(plain)))
    assert (watched / "curves.png").is_file()


def test_the_best_evaluation_is_the_lowest_kid_as_keep_best_keeps_it() -> None:
    """The card and curves.png mark the step `--keep-best` keeps: the lowest KID (not FID),
    the first of equals; NaN or missing KIDs are never best."""
    from usgan.core.train.curves import best_eval

    rows = [{"class": "a", "stage": 2, "step": s, "fid": f, "kid": k} for s, f, k in
            [(1, 100.0, 0.3), (2, 120.0, 0.1), (3, 90.0, float("nan")), (4, 80.0, 0.2),
             (5, 130.0, 0.1)]]
    rows.append({"class": "a", "stage": 2, "step": 6, "fid": 50.0, "kid": None})
    rows.append({"class": "b", "stage": 2, "step": 1, "fid": 10.0, "kid": 0.01})
    assert best_eval(rows, "a", 2)["step"] == 2
    assert best_eval(rows, "a", 1) is None
    assert best_eval([{**rows[2], "step": 7}], "a", 2) is None


def test_best_keeper_keeps_the_lowest_kid_across_a_resume(tmp_path: Path) -> None:
    from usgan.core.factory import create_generator
    from usgan.core.train.watch import BestKeeper

    nets = []
    for seed in range(4):
        torch.manual_seed(seed)
        nets.append(create_generator("dcgan", g_width=8))
    keeper = BestKeeper(tmp_path)
    keeper.offer(1, 0.30, nets[0])
    keeper.offer(2, 0.20, nets[1])
    keeper.offer(3, 0.25, nets[2])  # worse: not kept
    keeper.offer(4, None, nets[3])  # not scored: not kept
    keeper.offer(4, float("nan"), nets[3])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best-step-00000002.safetensors", "best.json"]  # the older best is gone
    again = BestKeeper(tmp_path)  # a resumed run
    assert again.best is not None and again.best["step"] == 2
    again.offer(5, 0.22, nets[3])  # worse than the best before the resume
    final = tmp_path / "generator.safetensors"
    assert again.install(final) == 2
    got, want = load_file(final), nets[1].state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
    assert BestKeeper(tmp_path / "none").install(final) is None


@needs_weights
def test_keep_best_ends_a_stage_with_its_best_evaluated_generator(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from usgan.core.train import watch
    from usgan.core.train.checkpoint import list_checkpoints, load_checkpoint
    from usgan.core.train.trainer import Trainer
    from usgan.zoo.card import card_for

    kids = iter([0.5, 0.2, 0.4, 0.3])  # the evaluations' KIDs at steps 2, 4, 6, 8: best at 4
    real_evaluate = watch.evaluate

    def evaluate(*args: object, **kwargs: object) -> dict:
        row = real_evaluate(*args, **kwargs)  # type: ignore[arg-type]
        row["kid"]["value"] = next(kids)  # real scores are too close to order on any CPU
        return row

    monkeypatch.setattr(watch, "evaluate", evaluate)
    opts = TrainOptions(data="phantom:n=8", classes=["healthy"], stage2=None,  # type: ignore[arg-type]
                        max_steps=8, batch_size=4, quiet=True, ema=True, ema_warmup=True,
                        eval_every=2, eval_n=6, inception_weights=str(WEIGHTS), keep_best=True,
                        checkpoint_every=2, keep_checkpoints=10, prune_checkpoints=False, **TINY)
    run = Trainer(opts, tmp_path / "run", echo=lambda m: None).train()
    assert [r["kid"] for r in run.read_metrics() if "kid" in r] == [0.5, 0.2, 0.4, 0.3]
    assert run.read_config()["phases"]["healthy/stage1"]["best_step"] == 4
    ckpts = {int(c["step"]): c for c in map(load_checkpoint,
                                            list_checkpoints(run.checkpoints("healthy", 1)))}
    sampled = load_file(run.weights("healthy", Stage.ONE, "generator_ema"))
    plain = load_file(run.weights("healthy", Stage.ONE, "generator"))
    assert all(torch.equal(sampled[k], ckpts[4]["ema"][k]) for k in sampled)
    assert not all(torch.equal(sampled[k], ckpts[8]["ema"][k]) for k in sampled)
    assert all(torch.equal(plain[k], ckpts[8]["g"][k]) for k in plain)  # D and G go on
    assert "kept from the lowest-KID step (`--keep-best`): healthy/stage1 step 4." in str(
        card_for(run))


@needs_weights
def test_a_time_budget_keeps_room_for_the_last_evaluation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import FakeClock

    from usgan.core.train import watch
    from usgan.core.train.trainer import Trainer

    clock = FakeClock()  # one second a reading; an evaluation takes 20
    real_evaluate = watch.evaluate

    def evaluate(*args: object, **kwargs: object) -> dict:
        clock.t += 18
        return real_evaluate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(watch, "evaluate", evaluate)
    opts = TrainOptions(data="phantom:n=8", classes=["healthy"], stage2=None,  # type: ignore[arg-type]
                        max_minutes=1.0, batch_size=4, quiet=True, eval_every=5, eval_n=6,
                        inception_weights=str(WEIGHTS), **TINY)
    trainer = Trainer(opts, tmp_path / "run", echo=lambda m: None)
    trainer.clock = clock
    run = trainer.train()
    # step 5 at 5 s, its evaluation to 25 s; step 10 at 30 s: another evaluation now and the
    # final one would end at 70 s, so the stage stops at step 10 with one (at 50 s)
    assert [r["step"] for r in run.read_metrics() if "kid" in r] == [5, 10]
    assert run.read_config()["phases"]["healthy/stage1"]["stopped_by"] == "minutes"
    assert clock.t - 1 <= 60  # the budget held, the final evaluation included


def test_eval_every_with_missing_weights_is_one_line_before_training(tmp_path: Path) -> None:
    r = run_usgan("train", "--data", "phantom:n=8", "--classes", "healthy", "--stage2", "off",
                  "--max-steps", "2", "--batch-size", "4", "--eval-every", "1",
                  "--inception-weights", str(tmp_path / "missing.pth"), "--quiet",
                  "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "Inception weights" in r.stderr and "no such file" in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert not (tmp_path / "run").exists()


def test_ema_warmup_follows_the_schedule_and_resumes() -> None:
    from usgan.core.train.ema import EMA

    net = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(net.weight)
    ema = EMA(net, decay=0.999, warmup=True)
    expected = 0.0
    for n in range(30):
        net.weight.data.fill_(1.0)
        decay = min(0.999, (1 + n) / (10 + n))
        assert ema.current_decay() == pytest.approx(decay)
        ema.update(net)
        expected = decay * expected + (1 - decay) * 1.0
    assert float(ema.shadow.weight) == pytest.approx(expected)
    assert expected > 0.9  # without warm-up: 1 - 0.999**30 = 0.03 of the way
    assert EMA(net, 0.999).current_decay() == 0.999


@pytest.mark.parametrize("argv, api", [
    ([], {}),
    (["--stage1", "dcgan-sn"], {"stage1": "dcgan-sn"}),
    (["--recipe", "paper", "--lr", "1e-4"], {"recipe": "paper", "lr": 1e-4}),
])
def test_usgan_train_trains_what_the_api_defaults_to(argv: list[str], api: dict[str, object]
                                                     ) -> None:
    from usgan.cli.train_cmd import _options_from_cli, train_cmd

    ctx = train_cmd.make_context("train", argv)
    cli = _options_from_cli(ctx, ctx.params, None)
    assert cli.to_json() == TrainOptions(**api).to_json()  # type: ignore[arg-type]


def test_a_networks_own_recipe_values_come_from_its_spec(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from dataclasses import replace

    from usgan.core import plugin_manager
    from usgan.core.registry import Registry

    registry = Registry()
    for spec in plugin_manager.get_registry():
        registry.add(spec if spec.name != "dcgan" else replace(
            spec, recipes={"default": {"lr": 1e-3}, "paper": {"batch_size": 8}}))
    monkeypatch.setattr(plugin_manager, "get_registry", lambda: registry)
    assert TrainOptions().lr == 1e-3 and TrainOptions(lr=5e-4).lr == 5e-4
    assert TrainOptions(recipe="paper").batch_size == 8
    assert TrainOptions(stage1="dcgan-sn").lr == 2e-4
    registry._specs["dcgan"] = replace(registry.get("dcgan"), recipes={"default": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"network 'dcgan' sets lrr for recipe 'default'"):
        TrainOptions()

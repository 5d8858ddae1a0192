"""What `usgan reproduce` runs: the schedule presets, the configurations of Table 1, the
layout of its output folder and every step as a ``usgan`` command line.

Each step is an ordinary command a user could type (the log of each says which); a step is
done when its output exists, so running the same `usgan reproduce` again skips finished work
and resumes unfinished training runs from their last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from usgan.core.errors import ConfigError
from usgan.core.io import read_json, write_json
from usgan.core.run import RunDir
from usgan.core.train.recipes import DEFAULT_RECIPE
from usgan.core.train.recipes import RECIPES as TRAIN_RECIPES
from usgan.zoo.entries import builtin_entries
from usgan.zoo.index import ZooEntry

RECIPES = tuple(TRAIN_RECIPES)  # paper, then default: the order of the tables
PLAN_FILE = "plan.json"


# How long a stage trains, per class: the unit, and ``usgan train``'s option for it in each stage.
LENGTH_FLAGS = {"steps": ("--max-steps", "--stage2-max-steps"),
                "epochs": ("--epochs", "--stage2-epochs"),
                "minutes": ("--max-minutes", "--stage2-max-minutes")}
KEEP_BEST_N = 200  # samples per --keep-best evaluation (Stage-II, `Preset.keep_best`)


@dataclass(frozen=True)
class Preset:
    """A schedule: how long each stage trains per class (steps, epochs or wall-clock
    minutes), samples per evaluation, and the classifier's preset, optimizer steps (the same
    for every arm: real only, real + classic augmentation, real + synthetic) and repeats."""

    name: str
    stage1: tuple[str, float]  # (a unit of LENGTH_FLAGS, how many) per class
    stage2: tuple[str, float]
    eval_n: int
    classify: str  # a `usgan experiment classify --preset`
    classify_steps: int
    repeats: int
    checkpoint_every: int
    what: str
    keep_best: int = 0  # Stage-II: --eval-every N --keep-best (its lowest-KID G); 0: off
    only: tuple[str, ...] = ()  # the configurations it runs when --only is not given

    def length(self, stage: int) -> list[str]:
        """The ``usgan train`` options that set one stage's length."""
        unit, amount = self.stage1 if stage == 1 else self.stage2
        return [LENGTH_FLAGS[unit][stage - 1], f"{amount:g}"]

    def describe(self, batch: int | None = None) -> str:
        (u1, n1), (u2, n2) = self.stage1, self.stage2
        size = f"batch {batch}" if batch else "each recipe's batch size"
        gan = f"Stage-I {n1:g} {u1}, Stage-II {n2:g} {u2} per class"
        best = (f", Stage-II keeping its lowest-KID generator ({KEEP_BEST_N} samples every "
                f"{self.keep_best} steps)" if self.keep_best else "")
        only = f"; configurations {', '.join(self.only)}" if self.only else ""
        return (f"`{self.name}`: {gan} ({size}){best}{only}; {self.eval_n} samples per "
                f"class for FID/KID; classifier preset `{self.classify}`, "
                f"{self.classify_steps} optimizer steps for every arm, {self.repeats} repeats")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preset:
        """A preset as summary.json keeps it (also the form before minutes existed:
        ``stage1_steps``, ``stage2_steps`` and ``epochs``)."""
        data = dict(data)
        if "stage1_steps" in data:
            epochs = data.pop("epochs")
            for stage in ("stage1", "stage2"):
                steps = data.pop(f"{stage}_steps")
                data[stage] = ("steps", steps) if steps is not None else ("epochs", epochs)
        return cls(**{**data, "stage1": tuple(data["stage1"]), "stage2": tuple(data["stage2"]),
                      "only": tuple(data.get("only", ()))})


PRESETS = {p.name: p for p in (
    Preset("smoke", ("steps", 40), ("steps", 5), 50, "fast", 5, 2, 20,
           "checks the whole protocol end to end (35 minutes for BUSI on a 2-core CPU, "
           "measured); its numbers are not worth quoting"),
    Preset("cpu", ("minutes", 8), ("minutes", 12), 400, "fast", 100, 5, 100,
           "the schedule of docs/results.md on a 2-core CPU: the default recipe's six "
           "configurations of one dataset in one 3-hour session with --jobs 2, each stage "
           "trained for wall-clock minutes (docs/results.md, Schedules)",
           keep_best=1000, only=(DEFAULT_RECIPE,)),
    Preset("paper", ("epochs", 200), ("epochs", 200), 400, "paper", 2000, 5, 500,
           "200 epochs per stage (the paper gives no count), the classifier at 224 px: for a GPU"),
)}


@dataclass(frozen=True)
class Settings:
    """What a reproduction folder was made with; a second run on it must agree."""

    data: str
    name: str
    preset: str
    classes: list[str] | None = None
    bins: str | None = None
    eval_real: str | None = None
    test_per_class: int | None = None
    seed: int = 0
    batch_size: int | None = None  # GAN images per step (None: each recipe's and network's)
    stage1_config: str | None = None  # k=v overrides of the networks, as for usgan train
    stage2_config: str | None = None
    backbone: str = "efficientnet_b0"
    eval_n: int | None = None  # samples per class for FID/KID (None: the preset's)

    def check_against(self, out: Path, preset: Preset) -> None:
        """Write OUT/plan.json, or refuse when the one there was made with other settings
        or with another schedule of the same preset's name."""
        path = out / PLAN_FILE
        mine = json.loads(json.dumps({**asdict(self), "schedule": asdict(preset)}))
        if path.is_file():
            theirs = read_json(path, "reproduction plan")
            diff = [k for k in mine if theirs.get(k) != mine[k]]
            if diff:
                k = diff[0]
                raise ConfigError(f"{out} was made with {k}={theirs.get(k)!r}, not {mine[k]!r}; "
                                  "run with the same settings to continue it, or use another "
                                  "--out")
            return
        write_json(path, mine)


@dataclass(frozen=True)
class Config:
    """One row of Table 1: a zoo entry trained with one recipe."""

    recipe: str
    entry: ZooEntry

    @property
    def key(self) -> str:
        return f"{self.recipe}/{self.entry.name}"

    @property
    def zoo_name(self) -> str:
        """Its name in OUT/index.json: the entry's own for the default recipe, with the
        recipe after it for another (``dcgan-stage2-paper``), so the two never collide."""
        if self.recipe == DEFAULT_RECIPE:
            return self.entry.name
        return f"{self.entry.name}-{self.recipe}"

    @property
    def stage1_key(self) -> str:
        return f"{self.recipe}/{self.entry.stage1}"


def configs(only: Sequence[str] = ()) -> list[Config]:
    """The six built-in entries × both recipes, or those ``only`` names: a key
    (``paper/dcgan-stage2``), an entry (both recipes) or a recipe (all its entries). A Stage-II
    configuration brings its Stage-I along (it is trained on top of it)."""
    every = [Config(r, e) for r in RECIPES for e in builtin_entries()]
    if not only:
        return every
    known = {c.key for c in every} | {c.entry.name for c in every} | set(RECIPES)
    for word in only:
        if word not in known:
            raise ConfigError(f"--only: unknown configuration {word!r}; give e.g. "
                              "paper/dcgan-stage2, dcgan-sn or default")
    chosen = {c.key for c in every if {c.key, c.entry.name, c.recipe} & set(only)}
    chosen |= {c.stage1_key for c in every if c.key in chosen}
    return [c for c in every if c.key in chosen]


@dataclass
class Step:
    """One ``usgan`` command of the protocol: done when ``done()``; run after ``needs``."""

    id: str
    argv: Callable[[], list[str]]
    done: Callable[[], bool]
    needs: tuple[str, ...] = ()
    after: Callable[[str], None] | None = None  # given the command's stdout
    info: dict[str, Any] = field(default_factory=dict)


class Layout:
    """Where everything of one reproduction lives under OUT."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.split = out / "split.json"
        self.logs = out / "logs"
        self.steps = out / "steps.jsonl"
        self.figures = out / "figures"
        self.report = out / "report.md"
        self.summary = out / "summary.json"
        self.index = out / "index.json"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """OUT/reproduce.lock holds this process's id while it runs steps: a second
        `usgan reproduce` on the same folder is refused instead of running them twice."""
        path = self.out / "reproduce.lock"
        if path.is_file():
            pid = path.read_text().strip()
            if pid.isdigit() and _alive(int(pid)):
                raise ConfigError(f"another usgan reproduce (process {pid}) is working in "
                                  f"{self.out}; wait for it or stop it (--report-only reads "
                                  "it meanwhile)")
        path.write_text(f"{os.getpid()}\n")
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    def run(self, key: str) -> Path:
        return self.out / "runs" / key

    def eval(self, key: str) -> Path:
        return self.out / "eval" / f"{key}.json"

    def classify(self, key: str) -> Path:
        return self.out / "classify" / key

    def receipt(self, key: str) -> Path:
        return self.out / "hub" / f"{key}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _data_args(s: Settings, split: Path | None) -> list[str]:
    args = ["--data", s.data, *(["--classes", ",".join(s.classes)] if s.classes else []),
            *(["--bins", s.bins] if s.bins else [])]
    return args + (["--split", str(split)] if split is not None else [])


def _finished(path: Path) -> Callable[[], bool]:
    return lambda: RunDir(path).is_finished()


def _exists(path: Path) -> Callable[[], bool]:
    return path.exists


def split_step(s: Settings, lay: Layout) -> Step:
    """The held-out test images (never seen by a GAN), when there is no --eval-real."""
    argv = ["data", "split", s.data, "--test-per-class", str(s.test_per_class),
            "--repeats", "1", "--seed", str(s.seed), "--out", str(lay.split)]
    argv += ["--classes", ",".join(s.classes)] if s.classes else []
    argv += ["--bins", s.bins] if s.bins else []
    return Step("split", lambda: argv, _exists(lay.split))


def train_step(c: Config, s: Settings, p: Preset, lay: Layout, weights: str | None = None
               ) -> Step:
    """Stage-I alone, or Stage-II on top of the finished Stage-I run of the same recipe
    (keeping its lowest-KID generator when the preset says so, scored with ``weights``)."""
    run = lay.run(c.key)
    split = None if s.eval_real else lay.split
    two = c.entry.stage2 is not None

    def argv() -> list[str]:
        if RunDir(run).exists():
            return ["train", "--resume", str(run), "--quiet"]
        args = ["train", *_data_args(s, split), "--stage1", c.entry.stage1,
                "--recipe", c.recipe, "--seed", str(s.seed), "--quiet", "--out", str(run),
                "--checkpoint-every", str(p.checkpoint_every),
                "--sample-every", str(p.checkpoint_every)]
        args += ["--batch-size", str(s.batch_size)] if s.batch_size else []
        for flag, value in (("--stage1-config", s.stage1_config),
                            ("--stage2-config", s.stage2_config)):
            args += [flag, value] if value else []
        if two:
            best = ["--eval-every", str(p.keep_best), "--eval-n", str(KEEP_BEST_N),
                    "--keep-best"] if p.keep_best else []
            best += ["--inception-weights", weights] if best and weights else []
            return [*args, "--stage1-from", str(lay.run(c.stage1_key)), "--stage2",
                    c.entry.stage2 or "on", *p.length(2), *best]
        return [*args, "--stage2", "off", *p.length(1)]

    needs = (f"train {c.stage1_key}",) if two else ()
    needs += () if s.eval_real else ("split",)
    return Step(f"train {c.key}", argv, _finished(run), needs)


def score_size(s: Settings, stage1: bool = False) -> int:
    """The one size Table 1 scores every row at: the Stage-II's output size (its default, or
    ``out_size`` in --stage2-config); a Stage-I row is its samples upsampled to it, against
    the same real images as its Stage-II (docs/results.md). With ``stage1``: the Stage-I's
    size (dcgan's ``size``, or --stage1-config's)."""
    from usgan.core.factory import get_spec
    from usgan.core.registry import parse_kv
    from usgan.core.stacking import DEFAULT_STAGE2

    name, key, flag, given = (("dcgan", "size", "--stage1-config", s.stage1_config) if stage1
                              else (DEFAULT_STAGE2, "out_size", "--stage2-config",
                                    s.stage2_config))
    return int({**get_spec(name).defaults, **parse_kv(given, flag)}[key])


def eval_step(c: Config, s: Settings, p: Preset, lay: Layout, weights: str | None) -> Step:
    """FID, KID and IS (n/a, with the reason, when the weights cannot give it) of ``eval_n``
    samples per class at `score_size` (Inception ``weights``, else usgan eval's default)
    against the held-out images (or --eval-real), with the memorization audit."""
    path = lay.eval(c.key)
    argv = ["eval", "--real", s.eval_real or s.data, "--fake", str(lay.run(c.key)),
            "--n", str(s.eval_n or p.eval_n), "--metrics", "fid,kid,is", "--audit",
            "--seed", str(s.seed), "--json", str(path)]
    argv += ["--size", str(score_size(s))] if c.entry.stage2 is None else []
    argv += [] if s.eval_real else ["--split", str(lay.split)]  # the held-out images only
    argv += ["--bins", s.bins] if s.bins else []
    argv += ["--inception-weights", weights] if weights else []
    return Step(f"eval {c.key}", lambda: argv, _exists(path), (f"train {c.key}",))


FLOOR = "floor"  # Layout.eval(FLOOR): the training images scored as a generator's


def floor_step(s: Settings, lay: Layout, weights: str | None) -> Step:
    """Table 1's reference rows (`usgan eval --floor`): each class's training images against
    its held-out ones at `score_size`, and at the Stage-I's size upsampled to it."""
    path = lay.eval(FLOOR)
    argv = ["eval", "--real", s.data, "--split", str(lay.split), "--floor", "--size",
            str(score_size(s)), "--floor-at", str(score_size(s, stage1=True)), "--metrics",
            "fid,kid", "--json", str(path)]
    argv += ["--bins", s.bins] if s.bins else []
    argv += ["--inception-weights", weights] if weights else []
    return Step(f"eval {FLOOR}", lambda: argv, _exists(path), ("split",))


def classify_step(key: str, sources: Sequence[Config], s: Settings, p: Preset,
                  lay: Layout) -> Step:
    """Table 2 in pieces that resume: the baselines, then real + synthetic per configuration
    (the same splits and seeds, so the accuracies pair up)."""
    out = lay.classify(key)
    argv = ["experiment", "classify", *_data_args(s, None if s.eval_real else lay.split),
            "--preset", p.classify, "--repeats", str(p.repeats), "--seed", str(s.seed),
            "--backbone", s.backbone,
            "--no-synthetic-only", "--quiet", "--out", str(out)]
    argv += ["--test-data", s.eval_real] if s.eval_real else []
    argv += ["--steps", str(p.classify_steps)]  # equal training for every arm
    if sources:
        argv.append("--no-baselines")
        for c in sources:
            argv += ["--synthetic", str(lay.run(c.key))]
    needs = tuple(f"train {c.key}" for c in sources) + (() if s.eval_real else ("split",))
    return Step(f"classify {key}", lambda: argv, _exists(out / "results.json"), needs)


def push_step(c: Config, s: Settings, org: str, endpoint: str | None, lay: Layout) -> Step:
    """Publish the finished run through `usgan zoo push`, which writes its index row (the
    receipt) with --index-row."""
    receipt = lay.receipt(c.key)
    repo = f"{org}/{s.name}-{c.recipe}-{c.entry.name}"
    argv = ["zoo", "push", str(lay.run(c.key)), "--repo", repo, "--name", c.zoo_name,
            "--index-row", str(receipt)]
    argv += ["--endpoint", endpoint] if endpoint else []
    return Step(f"push {c.key}", lambda: argv, _exists(receipt), (f"eval {c.key}",))


def plan(s: Settings, p: Preset, chosen: Sequence[Config], lay: Layout,
         push_org: str | None = None, endpoint: str | None = None,
         weights: str | None = None) -> list[Step]:
    """Every step of the protocol for ``chosen``; the runner starts ready steps in this
    order."""
    steps = [] if s.eval_real else [split_step(s, lay)]
    for c in chosen:  # a configuration's steps together: whole rows of Table 1 come first
        steps += [train_step(c, s, p, lay, weights), eval_step(c, s, p, lay, weights)]
        steps += [push_step(c, s, push_org, endpoint, lay)] if push_org else []
    steps += [] if s.eval_real else [floor_step(s, lay, weights)]  # it needs the split
    steps.append(classify_step("baselines", [], s, p, lay))
    steps += [classify_step(c.key, [c], s, p, lay) for c in chosen]
    return steps


PHASES = ("split", "train", "eval", "classify", "push")


def select_phases(steps: Sequence[Step], phases: str | None) -> list[Step]:
    """The steps of the kinds ``phases`` names (comma-separated; None: all). A step whose
    ``needs`` fall outside waits for them to be done by an earlier run."""
    if not phases:
        return list(steps)
    kinds = [k.strip() for k in phases.split(",") if k.strip()]
    bad = [k for k in kinds if k not in PHASES]
    if bad:
        raise ConfigError(f"--phase: unknown kind {bad[0]!r}; one of {', '.join(PHASES)}")
    return [st for st in steps if st.id.split()[0] in kinds]

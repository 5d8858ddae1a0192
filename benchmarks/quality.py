"""Time to quality (``usgan bench quality``): at one wall-clock budget, usgan's default Stage-I
of each built-in network against the plain DCGAN a user would write, both scored on held-out
images of the class (docs/benchmarks.md, "Time to quality").

- held-out images: a subject-level share of the class (`split_document`, seed 0), written
  once to ``OUT/split.json``; nothing trains on them.
- usgan's form: `Trainer` with the default recipe, ``--stage2 off --max-minutes M``, on the
  rest, as ``usgan train`` runs it (``OUT/seedS/NET``; a stopped run resumes). Its checkpoints
  (every 100 steps, the trainer's default) give the points of the curve.
- the plain form: pytorch/examples' DCGAN (the ``dcgan`` networks at their defaults: nc 1,
  nz 100, ngf = ndf = 64), fp32 eager, contiguous NCHW, `PaperStep` (BCE, Adam 2e-4
  (0.5, 0.999)), batch 16, the same training images at 64 px, a fresh shuffle every epoch,
  for M minutes of its own clock.
- ``--set KEY=VALUE`` (levers): training options over the default recipe for usgan's forms,
  e.g. ``--set diffaugment_p=0.5`` or ``--set stage1_config.upsample=bilinear``; a lever's
  rows go in their own ``--out`` and are compared with the default's by seed.
- scoring: N samples, upsampled bilinearly to the held-out images' size (256 px), KID
  (unbiased) and FID against the held-out images, whose Inception features are computed once.
  The training images themselves (at 64 px, upsampled alike) are scored once too: what a G
  that reproduced its training set would get, the floor of every form.

Every finished row lands in ``OUT/quality.json`` at once, so a stopped bench continues where it
stopped when run again with the same settings. A row of usgan's form whose run was trained with
another recipe than today's (the default changed since), or whose network was built with other
defaults than the network has today, is not reused: it moves to the result's ``superseded``
list, its run is moved aside, and the form trains again.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from usgan.core.data import load_dataset, load_index, split_document, write_split
from usgan.core.data.splits import load_split
from usgan.core.errors import ConfigError
from usgan.core.evaluation import Extractor, TensorImages, from_features, upsample
from usgan.core.factory import create_discriminator, create_generator, get_spec
from usgan.core.io import read_json, write_json
from usgan.core.run import RunDir
from usgan.core.runtime import set_threads
from usgan.core.serialization import load_network, read_arch
from usgan.core.stage import Stage
from usgan.core.synth import sample_chain
from usgan.core.train.checkpoint import list_checkpoints, load_checkpoint, prune
from usgan.core.train.options import TrainOptions, differences
from usgan.core.train.trainer import Trainer

from .machine import machine_info, software_versions
from .metrics import NO_WEIGHTS, find_weights
from .training import STAGE1_NETS, PaperStep

PLAIN = "plain-dcgan"
SIZE = 256  # the size every form is scored at (the held-out images' size)
PLAIN_BATCH = 16
# What the bench itself sets for usgan's forms: not a lever (``--set``).
BENCH_SETS = frozenset({"stage1", "stage2", "data", "classes", "data_options", "seed",
                        "max_minutes", "keep_checkpoints", "prune_checkpoints", "quiet",
                        "log_every", "threads", "recipe", "stage1_from"})


@dataclass(frozen=True)
class QualitySettings:
    """What ``usgan bench quality`` was asked to do."""

    data: str
    cls: str
    out: Path
    minutes: float = 8.0
    nets: tuple[str, ...] = STAGE1_NETS
    plain: bool = True
    seeds: tuple[int, ...] = (0,)
    curve: tuple[float, ...] = (2.0, 4.0)  # minutes scored before the last, every form
    samples: int = 400
    held_out: float = 0.25
    bins: str | None = None
    inception_weights: str | None = None
    threads: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # --set: levers over the recipe

    @property
    def forms(self) -> tuple[str, ...]:
        """What trains, in order: usgan's networks, then the plain DCGAN."""
        return (*self.nets, *((PLAIN,) if self.plain else ()))

    def check(self) -> None:
        """One-line errors for values that cannot work."""
        if not self.minutes > 0:
            raise ConfigError(f"--minutes must be more than 0, got {self.minutes}")
        if self.samples < 2:
            raise ConfigError(f"--samples must be at least 2 (KID and FID), got {self.samples}")
        if not 0 < self.held_out < 1:
            raise ConfigError(f"--held-out must be in (0, 1), got {self.held_out}")
        bad = [m for m in self.curve if not 0 < m < self.minutes]
        if bad:
            raise ConfigError(f"--curve {bad[0]:g}: points must be in (0, --minutes "
                              f"{self.minutes:g})")
        for net in self.nets:
            get_spec(net)  # an unknown network is an UnknownNameError listing the known ones
        if not self.forms:
            raise ConfigError("nothing to run: give --nets or leave the plain DCGAN on")
        if self.options and self.nets:
            TrainOptions.from_given({"stage1": self.nets[0], **self.options}, "--set")


def parse_sets(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items (``--set``) as training options: VALUE is JSON when it parses
    (``0.5``, ``true``, ``["cutout"]``), else a string; ``a.b=v`` sets key ``b`` of dict
    option ``a``. KEY must be a `TrainOptions` field the bench does not set itself."""
    known = {f.name for f in fields(TrainOptions)} - BENCH_SETS
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        top, dot, sub = key.strip().partition(".")
        if not sep or not top:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        if top not in known:
            raise ConfigError(f"--set {item!r}: {top!r} is not a training option the bench "
                              f"lets you set; choose from {', '.join(sorted(known))}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if dot:
            out.setdefault(top, {})[sub] = value
        else:
            out[top] = value
    return out


# --------------------------------------------------------------------------- the data
def data_label(spec: str) -> str:
    """A short name of the data: the folder's name (with its parent's for ``train``, ``test``
    or ``val``), or the spec itself (``phantom:n=40``)."""
    path = Path(spec)
    if path.name in ("train", "test", "val") and path.parent.name:
        return f"{path.parent.name}-{path.name}"
    return path.name or spec


def held_out_split(s: QualitySettings) -> Path:
    """``OUT/split.json``: the held-out share of the class (made once, then reused)."""
    path = s.out / "split.json"
    if path.is_file():
        return path
    index = load_index(s.data, classes=[s.cls], bins=s.bins)
    items = index.items
    doc = split_document(s.data, index.class_names, [it.id for it in items],
                         [it.label for it in items], [str(it.subject) for it in items],
                         index.has_subjects, max(1, round(len(items) * s.held_out)), 1, 0)
    doc["fingerprint"] = index.fingerprint
    return write_split(doc, path)


def images(s: QualitySettings, split: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images at 64 px (the plain form's) and the held-out ones at `SIZE`."""
    ds = load_dataset(s.data, classes=[s.cls], bins=s.bins)
    train, test = load_split(split, ds, 0)
    size = get_spec("dcgan").defaults["size"]
    return ds.subset(train).at_size(size), ds.subset(test).at_size(SIZE)


class Scorer:
    """KID and FID of generated images, upsampled to `SIZE`, against the held-out images."""

    def __init__(self, weights: Path, real: torch.Tensor) -> None:
        self.extractor = Extractor.create(["fid", "kid"], weights=weights)
        self.real = self.extractor.features(TensorImages(real))
        self.n_real = len(real)

    def __call__(self, fake: torch.Tensor) -> dict[str, float | None]:
        feats = self.extractor.features(TensorImages(upsample(fake, SIZE)))
        got = from_features(self.extractor, feats, self.real, ["fid", "kid"])
        return {"kid": got["kid"].value, "kid_std": got["kid"].std, "fid": got["fid"].value}


# ------------------------------------------------------------------------- the forms
def usgan_options(s: QualitySettings, net: str, seed: int, split: Path) -> TrainOptions:
    """What usgan's form of ``net`` trains with: today's default recipe and the ``--set``s."""
    return TrainOptions.from_given({
        "stage1": net, "stage2": None, "data": s.data, "classes": [s.cls],
        "data_options": {"split": str(split), "bins": s.bins}, "seed": seed,
        "max_minutes": s.minutes, "keep_checkpoints": 1_000_000, "prune_checkpoints": False,
        "quiet": True, "log_every": 100, "threads": s.threads, **s.options}, "--set")


def recipe_changes(run: RunDir, opts: TrainOptions) -> list[str]:
    """How ``run`` (when there is one) was trained otherwise than ``opts`` would train it
    (Stage-II's options aside: the bench trains Stage-I only); empty when it was not."""
    if not run.config_path.is_file():
        return []
    saved = TrainOptions.from_json(run.read_config()["options"], str(run.config_path))
    return [d for d in differences(saved.to_json(), opts.to_json())
            if not d.startswith("stage2")] + network_changes(run, opts)


def network_changes(run: RunDir, opts: TrainOptions) -> list[str]:
    """How the Stage-I network that ``run`` trained differs from the one ``opts`` builds today
    (a network's defaults may change between versions); empty while it has no generator."""
    path = run.weights(opts.classes[0], Stage.ONE, "generator")
    if not path.is_file():
        return []
    now = get_spec(opts.stage1).resolve(opts.stage1_config)
    return [f"{opts.stage1} {d}" for d in differences(read_arch(path)["config"], now)]


def set_aside(run: RunDir, changes: list[str], echo: Callable[[str], None]) -> None:
    """Move a run of another recipe aside (never deleted), so the form trains again."""
    aside = run.root.with_name(f"{run.root.name}.superseded-{time.strftime('%Y%m%d-%H%M%S')}")
    run.root.rename(aside)
    echo(f"{run.root} was trained with another recipe ({'; '.join(changes)}): moved aside "
         f"to {aside}, training again")


def train_usgan(s: QualitySettings, net: str, seed: int, split: Path,
                echo: Callable[[str], None]) -> RunDir:
    """usgan's default Stage-I of ``net`` for ``--max-minutes``, every checkpoint kept; a run
    there of another recipe is moved aside first."""
    run = RunDir(s.out / f"seed{seed}" / net)
    opts = usgan_options(s, net, seed, split)
    if changes := recipe_changes(run, opts):
        set_aside(run, changes, echo)
    resume = run.config_path.is_file()
    echo(f"{net} seed {seed}: {'resuming' if resume else 'training'} {run.root} "
         f"({s.minutes:g} min)")
    return Trainer(opts, run.root, resume=resume, echo=echo).train()


def usgan_points(s: QualitySettings, run: RunDir, score: Callable[[torch.Tensor], dict]
                 ) -> list[dict[str, Any]]:
    """The run's curve (the checkpoint before the last that is nearest each ``--curve``
    minute) and its final weights, scored; then its checkpoints are pruned to the last, as
    the trainer does."""
    ckpt_dir = run.checkpoints(s.cls, 1)
    config = run.read_config()
    ema = bool(config["options"].get("ema"))
    final = load_network(run.generator_path(s.cls, 1, ema=ema)).eval()
    phase = config["phases"][f"{s.cls}/stage1"]
    marks = [(float(c["elapsed"]), int(c["step"]), p)
             for p, c in ((p, load_checkpoint(p)) for p in list_checkpoints(ckpt_dir))
             if int(c["step"]) < int(phase["steps"])]
    points = []
    for minute in s.curve:
        if marks:
            seconds, step, path = min(marks, key=lambda m: abs(m[0] - minute * 60))
            ckpt = load_checkpoint(path)
            net = copy.deepcopy(final)
            net.load_state_dict(ckpt["ema"] if ema and ckpt.get("ema") else ckpt["g"])
            points.append(_point(seconds, step, net.eval(), s.samples, score))
    points.append(_point(float(phase["seconds"]), int(phase["steps"]), final, s.samples, score))
    prune(ckpt_dir, 1)
    return points


def train_plain(s: QualitySettings, seed: int, train: torch.Tensor,
                score: Callable[[torch.Tensor], dict],
                clock: Callable[[], float] = time.perf_counter) -> list[dict[str, Any]]:
    """The plain DCGAN for ``--minutes`` of ``clock``; G is copied at each ``--curve``
    minute, and all copies are scored after training."""
    torch.manual_seed(seed)
    g, d = create_generator("dcgan").train(), create_discriminator("dcgan").train()
    real = train.float().div(127.5).sub(1)
    size = min(PLAIN_BATCH, len(real))
    step = PaperStep(g, d, g, real[:size])
    order = torch.Generator().manual_seed(seed)
    todo, snaps, steps, elapsed = list(s.curve), [], 0, 0.0
    started = clock()
    while elapsed < s.minutes * 60:
        for batch in torch.randperm(len(real), generator=order).split(size):
            if len(batch) < size:  # a short last batch is dropped (the labels' shape)
                continue
            step(real[batch])
            steps += 1
            elapsed = clock() - started
            if todo and elapsed >= todo[0] * 60:
                todo.pop(0)
                snaps.append((elapsed, steps, copy.deepcopy(g.state_dict())))
            if elapsed >= s.minutes * 60:
                break
    snaps.append((elapsed, steps, copy.deepcopy(g.state_dict())))  # not g's own tensors
    points = []
    for seconds, n, state in snaps:
        g.load_state_dict(state)
        points.append(_point(seconds, n, g.eval(), s.samples, score))
    return points


def _point(seconds: float, steps: int, g: nn.Module, n: int,
           score: Callable[[torch.Tensor], dict]) -> dict[str, Any]:
    return {"minutes": round(seconds / 60, 3), "steps": steps,
            **score(sample_chain([g], n, seed=0))}


# ---------------------------------------------------------------------------- the run
def run(s: QualitySettings, command: str, echo: Callable[[str], None] = print
        ) -> dict[str, Any]:
    """Train and score every form and seed not yet in ``OUT/quality.json``; the result."""
    s.check()
    weights = find_weights(s.inception_weights)
    if weights is None:
        raise ConfigError(f"usgan bench quality scores with Inception: {NO_WEIGHTS}")
    set_threads(s.threads)
    s.out.mkdir(parents=True, exist_ok=True)
    split = held_out_split(s)
    train, test = images(s, split)
    result = _load_or_start(s, command, len(train), len(test))
    supersede(s, result, split)
    score = Scorer(weights, test)
    if "train_images" not in result:  # the floor: G that reproduces its training images
        result["train_images"] = score(train)
        write_json(s.out / "quality.json", result)
    for seed in s.seeds:
        for form in s.forms:
            if any(r["form"] == form and r["seed"] == seed for r in result["rows"]):
                continue
            t0 = time.perf_counter()
            if form == PLAIN:
                echo(f"{PLAIN} seed {seed}: training ({s.minutes:g} min)")
                points = train_plain(s, seed, train, score)
            else:
                points = usgan_points(s, train_usgan(s, form, seed, split, echo), score)
            result["rows"].append({"form": form, "seed": seed, "points": points,
                                   "wall_minutes": round((time.perf_counter() - t0) / 60, 2)})
            write_json(s.out / "quality.json", result)
            echo(f"{form} seed {seed}: KID {points[-1]['kid']:.3f} after "
                 f"{points[-1]['steps']} steps")
    return result


def supersede(s: QualitySettings, result: dict[str, Any], split: Path) -> None:
    """Move the rows of usgan's forms whose run was trained with another recipe than today's
    (the default changed since) to ``result["superseded"]``: they train again (their runs are
    set aside then). The plain DCGAN's rows stay: no recipe touches them."""
    for row in list(result["rows"]):
        if row["form"] != PLAIN and recipe_changes(
                RunDir(s.out / f"seed{row['seed']}" / row["form"]),
                usgan_options(s, row["form"], row["seed"], split)):
            result["rows"].remove(row)
            result.setdefault("superseded", []).append(row)


def _load_or_start(s: QualitySettings, command: str, n_train: int, n_test: int
                   ) -> dict[str, Any]:
    """The rows already in ``OUT/quality.json`` when it was made with these settings."""
    settings = json.loads(json.dumps(asdict(s), default=str))
    path = s.out / "quality.json"
    if path.is_file():
        old = read_json(path, what="quality result")
        kept = {k: old.get("settings", {}).get(k, {} if k == "options" else None)
                for k in ("minutes", "samples", "options")}
        if kept == {k: settings[k] for k in kept}:
            old["settings"], old["command"] = settings, command
            return old
        raise ConfigError(f"{path} holds a bench with other --minutes, --samples or --set; "
                          "give another --out")
    return {"command": command, "settings": settings, "n_train": n_train, "n_held_out": n_test,
            "size": SIZE, "date": dt.datetime.now(dt.timezone.utc).astimezone()
            .isoformat(timespec="seconds"), "threads": torch.get_num_threads(),
            "machine": machine_info(torch.device("cpu")), "versions": software_versions(),
            "rows": []}

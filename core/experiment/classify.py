"""The classification experiment of Che et al. (Table 2): a timm classifier trained on real
images, on real + synthetic images, with classic augmentation, and on synthetic images only,
over repeated subject-level splits, tested on the real test images.

Synthetic images come from `SyntheticSource` objects that the caller builds (the CLI opens
SOURCEs with ``usgan.zoo``; core never imports it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Dataset, load_split, make_splits
from ..data.preprocess import resize_batch
from ..errors import ConfigError, DataError
from .backbone import check_backbone, check_weights, make_model
from .report import classification_metrics, summarize

Sampler = Callable[[int, str, int], torch.Tensor]  # (n, class, seed) -> uint8 [n, 1, H, W]
Progress = Callable[[str, int, int], None]  # (label, done, total)
REAL, AUG = "real only", "real + classic augmentation"


@dataclass(frozen=True)
class Preset:
    """Training settings; ``per_class`` None: twice the largest real training class.
    ``steps``, when set, replaces ``epochs``: every configuration takes that many optimizer
    steps, so a larger training set is not also more training. ``balance``: the real-only
    sets see every class equally often (the smaller classes repeated), as the topped-up
    real + synthetic sets do, so a synthetic row does not win by balance alone."""

    size: int
    epochs: int
    batch: int
    per_class: int | None
    repeats: int
    lr: float = 1e-3
    steps: int | None = None
    balance: bool = True

    def steps_for(self, n: int) -> int:
        """Optimizer steps for a training set of ``n`` images."""
        return self.steps if self.steps is not None else self.epochs * math.ceil(n / self.batch)


PRESETS = {
    "fast": Preset(size=64, epochs=15, batch=32, per_class=None, repeats=2),
    "paper": Preset(size=224, epochs=30, batch=16, per_class=500, repeats=5),
}


@dataclass
class SyntheticSource:
    """A named image generator; ``classes`` None when unknown (then not checked)."""

    name: str
    sample: Sampler
    classes: list[str] | None = None


@dataclass
class ClassifyOptions:
    """What `run_classify` does; ``repeats``/``test_per_class`` None: preset / data decide."""

    preset: str = "fast"
    backbone: str = "efficientnet_b0"
    pretrained: bool = False
    backbone_weights: Path | None = None
    seed: int = 0
    repeats: int | None = None
    test_per_class: int | None = None
    split_file: Path | None = None
    epochs: int | None = None
    steps: int | None = None  # the same optimizer steps for every configuration
    balance: bool | None = None  # None: the preset's (class-balanced real-only sets)
    device: str = "cpu"  # auto, cpu, cuda or cuda:N
    baselines: bool = True  # train "real only" and "real + classic augmentation"
    synthetic_only: bool = True  # and "synthetic only" per source

    def settings(self) -> Preset:
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; one of {', '.join(PRESETS)}")
        if self.epochs is not None and self.steps is not None:
            raise ConfigError("--epochs and --steps both set the training length; give one")
        for name, value in (("epochs", self.epochs), ("steps", self.steps)):
            if value is not None and value < 1:
                raise ConfigError(f"--{name} must be at least 1, got {value}")
        p = PRESETS[self.preset]
        if self.epochs is not None:
            p = replace(p, epochs=self.epochs)
        if self.balance is not None:
            p = replace(p, balance=self.balance)
        return replace(p, steps=self.steps) if self.steps is not None else p


def source_from(name: str, obj: Any) -> SyntheticSource:
    """A `SyntheticSource` from a Synthesizer-like object (``.sample``, ``.classes``) or a
    callable ``(n, cls, seed) -> uint8 images``."""
    if hasattr(obj, "sample") and hasattr(obj, "classes"):
        return SyntheticSource(name, lambda n, c, s: obj.sample(n, cls=c, seed=s),
                               list(obj.classes))
    if callable(obj):
        return SyntheticSource(name, obj)
    raise ConfigError(f"synthetic source {name!r} is neither a Synthesizer nor a callable")


def check_sources(sources: Sequence[SyntheticSource], classes: Sequence[str]) -> None:
    """Every source makes every class of the data, else a one-line `ConfigError`."""
    for src in sources:
        missing = [c for c in classes if src.classes is not None and c not in src.classes]
        if missing:
            raise ConfigError(f"synthetic source {src.name} has no {', '.join(missing)} class "
                              f"(it has {', '.join(src.classes or [])}); the data needs "
                              f"{', '.join(classes)}")


# ----------------------------------------------------------------------------- training


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Classic augmentation of a float batch in [-1, 1]: horizontal flip, rotation up to 10°,
    translation up to 5%, brightness ±0.1 and contrast ×[0.9, 1.1]."""
    n = x.shape[0]
    u = torch.rand(n, 6, generator=gen)
    x = torch.where((u[:, 0] < 0.5).view(n, 1, 1, 1), x.flip(-1), x)
    ang = (u[:, 1] - 0.5) * 2 * math.radians(10)
    cos, sin = ang.cos(), ang.sin()
    theta = torch.stack([torch.stack([cos, -sin, (u[:, 2] - 0.5) * 0.1], 1),
                         torch.stack([sin, cos, (u[:, 3] - 0.5) * 0.1], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1
    contrast = 0.9 + 0.2 * u[:, 4].view(n, 1, 1, 1)
    bright = (u[:, 5] - 0.5).view(n, 1, 1, 1) * 0.2
    return ((x - x.mean(dim=(1, 2, 3), keepdim=True)) * contrast
            + x.mean(dim=(1, 2, 3), keepdim=True) + bright).clamp(-1, 1)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 1, H, W] -> float in [-1, 1]."""
    return images.float().div(127.5).sub(1)


def train_classifier(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, p: Preset,
                     seed: int, use_aug: bool, tick: Callable[[], None]) -> nn.Module:
    """Adam + cross-entropy for ``p.steps`` steps, else ``p.epochs``, on the model's device;
    data order and augmentation seeded (drawn on the CPU, so the same on any device)."""
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    model.train()
    for idx in _batches(len(labels), p, gen):
        x = to_float(images[idx])
        x = (augment(x, gen) if use_aug else x).to(device)
        loss = F.cross_entropy(model(x), labels[idx].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        tick()
    return model.eval()


def _batches(n: int, p: Preset, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches of reshuffled passes over ``n`` images: ``p.epochs`` passes, or as many
    as ``p.steps`` batches take. A last batch of one is skipped (batch norm needs two)."""
    if n < 2:
        return
    made = 0
    for _ in range(p.epochs if p.steps is None else p.steps):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, p.batch):
            idx = order[i:i + p.batch]
            if len(idx) < 2:
                continue
            yield idx
            made += 1
            if made == p.steps:
                return


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch: int = 64) -> list[int]:
    """Predicted class indices."""
    device = next(model.parameters()).device
    return [int(k) for i in range(0, len(images), batch)
            for k in model(to_float(images[i:i + batch]).to(device)).argmax(1).cpu()]


# ----------------------------------------------------------------------------- protocol


def default_test_per_class(ds: Dataset) -> int:
    """The paper's 70 test images per class, or 20% of the smallest class when that is less."""
    return max(1, min(70, int(0.2 * min(ds.class_counts().values()))))


def build_splits(ds: Dataset, opts: ClassifyOptions, p: Preset, test: Dataset | None = None
                 ) -> tuple[list[tuple[list[int], list[int]]], dict[str, Any]]:
    """(train, test) index lists per repeat, and how they were made. With a separate ``test``
    set every repeat trains on all of ``ds`` and tests on all of ``test`` (indices into it);
    a split file with fewer splits than ``opts.repeats`` is cycled (the seed differs)."""
    repeats = opts.repeats or p.repeats
    if test is not None:
        _check_test_set(ds, test)
        return ([(list(range(len(ds))), list(range(len(test))))] * repeats,
                {"test_data": test.spec})
    if opts.split_file is not None:
        from ..data import read_split

        n = len(read_split(opts.split_file)["repeats"])
        made = [load_split(opts.split_file, ds, r) for r in range(n)]
        for train, held in made:
            _check_split(ds, train, held, None)
        count = opts.repeats or n
        return [made[r % n] for r in range(count)], {"from": str(opts.split_file)}
    tpc = opts.test_per_class or default_test_per_class(ds)
    names = [ds.class_names[k] for k in ds.labels.tolist()]
    reps = make_splits(ds.ids, names, ds.subjects, ds.class_names, tpc, repeats, opts.seed)
    pos = {i: k for k, i in enumerate(ds.ids)}
    splits = [([pos[i] for i in r["train"]], [pos[i] for i in r["test"]]) for r in reps]
    for train, test in splits:
        _check_split(ds, train, test, tpc)
    return splits, {"test_per_class": tpc, "seed": opts.seed}


def _check_test_set(ds: Dataset, test: Dataset) -> None:
    """The separate test set has the training data's classes, in the same order."""
    if list(test.class_names) != list(ds.class_names):
        raise DataError(f"the test data {test.spec} has classes {', '.join(test.class_names)}; "
                        f"the training data has {', '.join(ds.class_names)} (give the same "
                        "--classes/--bins to both)")


def _check_split(ds: Dataset, train: list[int], test: list[int], tpc: int | None) -> None:
    """Every class has training and test images, else a one-line `DataError`."""
    for k, c in enumerate(ds.class_names):
        n_train, n_test = (int((ds.labels[idx] == k).sum()) for idx in (train, test))
        if n_train == 0 or n_test == 0:
            how = f"with --test-per-class {tpc}" if tpc else "in the split file"
            raise DataError(f"class {c!r}: too few images for the split ({n_train} train, "
                            f"{n_test} test {how}; whole subjects go to one side); use more "
                            "data or another --test-per-class")


def _synthetic(src: SyntheticSource, counts: Sequence[int], classes: Sequence[str],
               size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``counts[k]`` images of each class from ``src`` at ``size``, with their labels."""
    imgs, labs = [], []
    for k, (c, n) in enumerate(zip(classes, counts, strict=True)):
        if n > 0:
            imgs.append(resize_batch(src.sample(n, c, seed * 1000 + k), size))
            labs.append(torch.full((n,), k, dtype=torch.long))
    if not imgs:
        return torch.zeros(0, 1, size, size, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    return torch.cat(imgs), torch.cat(labs)


def balanced(idx: Sequence[int], labels: torch.Tensor) -> list[int]:
    """``idx`` grouped by class (in order of first appearance), each class's images cycled
    up to the largest class's count."""
    by_class: dict[int, list[int]] = {}
    for i in idx:
        by_class.setdefault(int(labels[i]), []).append(i)
    most = max((len(v) for v in by_class.values()), default=0)
    return [v[j % len(v)] for v in by_class.values() for j in range(most)]


def training_sets(ds: Dataset, train: list[int], sources: Sequence[SyntheticSource], p: Preset,
                  seed: int, opts: ClassifyOptions | None = None
                  ) -> dict[str, tuple[torch.Tensor, torch.Tensor, bool]]:
    """Configuration -> (uint8 images, labels, augment?) for one split."""
    opts = opts or ClassifyOptions()
    images = ds.at_size(p.size)
    x, y = images[train], ds.labels[train]
    have = [int((y == k).sum()) for k in range(len(ds.class_names))]
    per_class = p.per_class or 2 * max(have)
    real = balanced(train, ds.labels) if p.balance else train
    rx, ry = images[real], ds.labels[real]
    sets = {REAL: (rx, ry, False), AUG: (rx, ry, True)} if opts.baselines else {}
    for src in sources:
        sx, sy = _synthetic(src, [max(0, per_class - h) for h in have], ds.class_names,
                            p.size, seed)
        sets[f"real + synthetic ({src.name})"] = (torch.cat([x, sx]), torch.cat([y, sy]), False)
        if opts.synthetic_only:
            ox, oy = _synthetic(src, [per_class] * len(have), ds.class_names, p.size,
                                seed + 7919)
            sets[f"synthetic only ({src.name})"] = (ox, oy, False)
    return sets


def run_classify(ds: Dataset, sources: Sequence[SyntheticSource], opts: ClassifyOptions,
                 progress: Progress | None = None, test: Dataset | None = None
                 ) -> dict[str, Any]:
    """Run every configuration on every split (tested on ``test`` when given, else on the
    split's held-out part of ``ds``); returns the JSON-able results."""
    p = opts.settings()
    check_backbone(opts.backbone)
    check_sources(sources, ds.class_names)
    if not opts.baselines and not sources:
        raise ConfigError("nothing to train: no baselines and no synthetic source")
    if opts.backbone_weights is not None:
        check_weights(Path(opts.backbone_weights))
    from ..runtime import resolve_device

    device = resolve_device(opts.device)
    splits, split_info = build_splits(ds, opts, p, test)
    tds = test if test is not None else ds
    per_split: dict[str, list[dict[str, Any]]] = {}
    init = ""
    for r, (train, held) in enumerate(splits):
        seed = repeat_seed(opts.seed, r)
        for name, (x, y, aug) in training_sets(ds, train, sources, p, seed, opts).items():
            label = f"{name} · split {r + 1}/{len(splits)}"
            model, init = make_model(opts.backbone, len(ds.class_names), seed,
                                     opts.pretrained, opts.backbone_weights)
            model.to(device)
            tick = _ticker(progress, label, p.steps_for(len(y)))
            train_classifier(model, x, y, p, seed, aug, tick)
            pred = predict(model, tds.at_size(p.size)[held])
            m = classification_metrics(tds.labels[held].tolist(), pred, len(ds.class_names))
            per_split.setdefault(name, []).append({**m, "split": r, "train_images": len(y),
                                                   "test_images": len(held)})
    return _results(ds, opts, p, splits, split_info, per_split, init, tds)


def repeat_seed(seed: int, r: int) -> int:
    """The classifier seed of repeat ``r``, the same in every configuration: rows pair up."""
    return seed * 100 + r


def _ticker(progress: Progress | None, label: str, total: int) -> Callable[[], None]:
    done = [0]
    if progress:
        progress(label, 0, total)

    def tick() -> None:
        done[0] += 1
        if progress:
            progress(label, done[0], total)
    return tick


def _results(ds: Dataset, opts: ClassifyOptions, p: Preset, splits: list[Any],
             split_info: dict[str, Any], per_split: dict[str, list[dict[str, Any]]],
             init: str, tds: Dataset) -> dict[str, Any]:
    test_counts = [int((tds.labels[te] == k).sum()) for k in range(len(ds.class_names))
                   for te in [splits[0][1]]]
    return {
        "data": ds.spec,
        "classes": ds.class_counts(),
        "splits": {"count": len(splits), **split_info, "test_images_per_class": test_counts,
                   "level": "subject" if ds.has_subjects else "image (no subject ids)"},
        "preset": {"name": opts.preset, **asdict(p)},
        "backbone": opts.backbone,
        "init": init,
        "seed": opts.seed,
        "per_split": per_split,
        "summary": summarize(per_split, REAL),
    }

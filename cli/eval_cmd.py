"""``usgan eval``: FID / KID / IS / precision-recall of generated images against real ones."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from usgan.core.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FLOOR = "training images"  # the --floor row: the split's training images as the fakes


def floor_name(px: int | None) -> str:
    """The source name of a --floor row: the training images at the scoring size (None), or
    at ``px`` (--floor-at) and upsampled to it."""
    return FLOOR if px is None else f"{FLOOR} at {px} px, upsampled"


def _plain_folder(text: str) -> list[str] | None:
    """The image files of a folder that holds images directly (no class subfolders, not a
    run directory), else None; images of different sizes are refused, saying which."""
    from collections import Counter

    from PIL import Image

    path = Path(text)
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    files = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        if not any(p.is_dir() for p in path.iterdir()):
            found = len(list(path.iterdir()))
            raise DataError(f"{path} holds no PNG/JPEG images and no usgan run ({found} other "
                            "entries); give a folder of images, a run directory or a zoo name")
        return None
    sizes: Counter[str] = Counter()
    for f in files:
        try:
            with Image.open(f) as img:
                sizes[f"{img.width}x{img.height}"] += 1
        except OSError as err:
            raise DataError(f"{f} is not a readable image ({err})") from None
    if len(sizes) > 1:
        found = ", ".join(f"{s} ({n})" for s, n in sizes.most_common())
        raise DataError(f"{path}: the images must all have one size; found {found}")
    return files


def _fake_sets(source: str, classes: list[str], n: int, seed: int,
               stage: int | None = None, size: int | None = None) -> dict[str, Any]:
    """Class -> torch-fidelity input for SOURCE: a plain folder as it is, or N images per
    class generated from a run directory / zoo name (no PNGs written) by its last stage or
    ``stage``, upsampled bilinearly to ``size`` when given (`evaluation.upsample`)."""
    from torch_fidelity.datasets import ImagesPathDataset

    import usgan
    from usgan.core.evaluation import TensorImages, upsample

    files = _plain_folder(source)
    if files is not None:
        if len(classes) > 1:
            raise DataError(f"{source} is a folder of images of one class; give one --class")
        if size is not None:
            raise DataError(f"--size is for generated images; {source} is a folder of "
                            "images, scored as they are")
        return {classes[0] if classes else "": ImagesPathDataset(files)}
    synth = usgan.load(source, precision="fp32")  # scores independent of hardware
    wanted = classes or synth.classes
    missing = [c for c in wanted if c not in synth.classes]
    if missing:
        raise DataError(f"{source} has no GAN for class {missing[0]!r}; it has "
                        f"{', '.join(synth.classes)}")
    out = {c: synth.sample(n, cls=c, seed=seed, stage=stage) for c in wanted}
    own = next(iter(out.values())).shape[-1] if out else size
    if size is not None and own is not None and size < own:
        raise DataError(f"--size {size} is smaller than {source}'s {own}-px images; give "
                        f"{own} or more (images are only upsampled)")
    return {c: TensorImages(upsample(x, size) if size and size != own else x)
            for c, x in out.items()}


def _real_set(real: str, cls: str, size: int, bins: str | None = None,
              split: Path | None = None, seen_at: int | None = None
              ) -> tuple[Any, str | None, Any]:
    """The real images of ``cls`` at ``size``, the key of their cached features, and the
    images the GAN trained on when they differ (None: the same). ``bins`` turns graded folders
    into classes, as in training; with ``split`` the real images are its held-out (test)
    images of repeat 0 and the trained-on ones its training images (with ``seen_at``: at
    that size first, then upsampled to ``size``, as a Stage-I of that size is scored)."""
    from torch_fidelity.datasets import ImagesPathDataset

    from usgan.core.data import load_dataset, load_split, read_split
    from usgan.core.evaluation import TensorImages, real_key, upsample

    files = _plain_folder(real)
    if files is not None:
        if split is not None:
            raise DataError(f"--split needs --real to be a data spec, not a plain folder "
                            f"({real})")
        return ImagesPathDataset(files), None, None
    if split is None:
        ds = load_dataset(real, classes=[cls] if cls else None, bins=bins, min_classes=1)
        images = ds.images if size == ds.size else ds.at_size(size)
        return TensorImages(images), real_key(ds.fingerprint, cls, size), None
    ds = load_dataset(real, classes=read_split(split).get("classes"), bins=bins, min_classes=1)
    train, test = load_split(split, ds, 0)
    mine = {i for i, label in enumerate(ds.labels.tolist())
            if not cls or ds.class_names[label] == cls}
    held, seen = (ds.subset([i for i in part if i in mine]) for part in (test, train))
    digest = hashlib.sha256(split.read_bytes()).hexdigest()[:16]
    return (TensorImages(held.at_size(size)),
            real_key(f"{ds.fingerprint}|split {digest} test", cls, size),
            TensorImages(upsample(seen.at_size(seen_at), size) if seen_at
                         else seen.at_size(size)))


BINS = click.option("--bins", default=None,
                    help="Grade bins of --real, as the run was trained with (docs/data.md).")


@click.command("eval")
@click.option("--real", required=True, help="Data spec or a plain folder of real images.")
@click.option("--fake", "fakes", multiple=True, metavar="SOURCE",
              help="A plain folder of images, a run directory or a zoo name (repeatable).")
@click.option("--class", "classes", multiple=True, help="Classes to evaluate (default: all).")
@click.option("--n", "n", type=int, default=400, show_default=True,
              help="Images generated per class (the paper: 400).")
@click.option("--metrics", default="fid,kid", show_default=True, help="Of fid,kid,is,prc.")
@click.option("--inception-weights", default=None, metavar="PATH",
              help="Offline Inception weights (else $USGAN_INCEPTION_WEIGHTS, else download).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None)
@click.option("--markdown", type=click.Path(path_type=Path), default=None,
              help="Also write a Markdown table in the layout of the paper's Table 1.")
@click.option("--audit", is_flag=True,
              help="Add the memorization audit (pixels and Inception features) per class.")
@click.option("--stage", type=click.IntRange(1, 2), default=None,
              help="Generate with this stage of a two-stage run (default: its last).")
@click.option("--size", type=click.IntRange(8), default=None,
              help="Score at this size: generated images upsampled bilinearly to it (a "
                   "Stage-I at its Stage-II's size), the real ones resized (default: the "
                   "generated images' own size).")
@click.option("--split", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Score against the held-out (test) images of this split file (usgan data "
                   "split; repeat 0) only; --audit then checks the training images.")
@click.option("--floor", is_flag=True,
              help=f"With --split: also score the split's training images against its "
                   f"held-out ones, as the source {FLOOR!r}: what a generator that "
                   "reproduced its training set would score (at --size, else the first "
                   "--fake's size).")
@click.option("--floor-at", "floor_at", multiple=True, type=click.IntRange(8), metavar="PX",
              help="With --floor: also the training images resized to PX and upsampled "
                   "bilinearly to the scoring size, as a PX-px Stage-I is scored there (the "
                   "best such a Stage-I can score; repeatable).")
@BINS
def eval_cmd(real: str, fakes: tuple[str, ...], classes: tuple[str, ...], n: int, metrics: str,
             inception_weights: str | None, seed: int, json_out: Path | None,
             markdown: Path | None, audit: bool, stage: int | None, size: int | None,
             split: Path | None, floor: bool, floor_at: tuple[int, ...], bins: str | None
             ) -> None:
    """Image-quality metrics of each --fake against --real, per class (torch-fidelity)."""
    from usgan.core.evaluation import Extractor, check_counts, evaluate, weights_path
    from usgan.core.io import write_atomic, write_json
    from usgan.core.run import RunDir

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    if n < 2:
        raise DataError(f"--n must be at least 2, got {n}")
    _check_floor(fakes, floor, split, size, floor_at)
    weights = weights_path(inception_weights)
    sets = {source: _fake_sets(source, list(classes), n, seed, stage, size) for source in fakes}
    reals = {(source, cls): _real_set(real, cls, int(fake[0].shape[-1]), bins, split)
             for source, per_class in sets.items() for cls, fake in per_class.items()}
    if floor and split is not None:
        at = size or int(next(iter(next(iter(sets.values())).values()))[0].shape[-1])
        wanted = list(classes) or _split_classes(split)
        if any(px > at for px in floor_at):
            raise DataError(f"--floor-at {max(floor_at)} is larger than the {at}-px scoring "
                            "size; give at most --size")
        for px in (None, *floor_at):
            name = floor_name(px)
            reals.update({(name, c): _real_set(real, c, at, bins, split, px) for c in wanted})
            sets[name] = {cls: reals[(name, cls)][2] for cls in wanted}
    floors = {floor_name(px) for px in (None, *floor_at)} if floor else set()
    for (source, cls), (real_set, _, _) in reals.items():
        check_counts(names, sets[source][cls], real_set)
    # after the inputs are known good; the audit's feature space is FID's layer
    extractor = Extractor.create([*names, "fid"] if audit else names, weights=weights)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for source in sets:
        results[source] = {}
        for cls, fake in sets[source].items():
            real_set, key, trained_on = reals[(source, cls)]
            audited = audit and source not in floors  # training images are not audited
            results[source][cls or "all"] = evaluate(extractor, fake, real_set, names, key,
                                                     audited, trained_on)
        if stage is None and source not in floors:  # eval.json: the run's final model
            _record(RunDir(Path(source)), results[source], extractor, real, size, split)
    _print(results)
    doc = {"real": real, "split": str(split) if split else None, "extractor": extractor.name,
           "weights": str(extractor.weights) if extractor.weights else "downloaded",
           "seed": seed, "results": results}
    if json_out:
        write_json(json_out, doc)
    if markdown:
        write_atomic(markdown, table1(results))


def _check_floor(fakes: tuple[str, ...], floor: bool, split: Path | None,
                 size: int | None, floor_at: tuple[int, ...] = ()) -> None:
    """What --floor needs, said before anything is loaded: --split (whose training images it
    scores), and --size when there is no --fake to take the size from."""
    if floor_at and not floor:
        raise DataError("--floor-at adds rows to --floor's; give --floor too")
    if not fakes and not floor:
        raise DataError("give --fake SOURCE (a run directory, a zoo name or a folder of "
                        "images), or --floor with --split")
    if floor and split is None:
        raise DataError("--floor scores the training images of a split against its held-out "
                        "ones; give --split FILE (usgan data split)")
    if floor and not fakes and size is None:
        raise DataError("--floor without --fake needs --size (the size to score at)")


def _split_classes(split: Path) -> list[str]:
    """The classes of the --floor row when --class names none: the split's."""
    from usgan.core.data import read_split

    named = read_split(split).get("classes")
    if not named:
        raise DataError(f"{split} names no classes; give --class for --floor")
    return list(named)


def _record(run: Any, result: dict[str, Any], extractor: Any, real: str,
            size: int | None, split: Path | None = None) -> None:
    """A run directory given as a path keeps its latest evaluation (eval.json) for its model
    card (zoo names and hf-hub: sources are not paths, so a pulled copy is never written);
    ``size``: the --size it was scored at (None: the images' own); ``split``: the split file
    whose held-out images were the real ones (None: all of --real)."""
    from usgan.core.io import write_json

    if run.exists():
        write_json(run.eval_path, {"real": real, "split": str(split) if split else None,
                                   "extractor": extractor.name, "size": size,
                                   "results": result})


def _metric_keys(row: dict[str, Any]) -> list[str]:
    """The metric columns of a result row (not the counts, not the audit)."""
    return [k for k, v in row.items() if isinstance(v, dict) and "value" in v]


def _fmt(m: dict[str, Any]) -> str:
    if m.get("value") is None:
        return "n/a"
    v = f"{m['value']:.4g}"
    return v + (f" ± {m['std']:.2g}" if m.get("std") is not None else "")


def _print(results: dict[str, dict[str, dict[str, Any]]]) -> None:
    from usgan.core.spectrum import SpectrumReport

    console = Console()
    for source, per_class in results.items():
        table = Table(title=f"usgan eval: {source}")
        table.add_column("class")
        keys = _metric_keys(next(iter(per_class.values())))
        for k in (*keys, "n_fake", "n_real"):
            table.add_column(k, justify="right")
        for cls, row in per_class.items():
            table.add_row(cls, *(_fmt(row[k]) for k in keys), str(row["n_fake"]),
                          str(row["n_real"]))
        console.print(table)
        for cls, row in per_class.items():
            for k in keys:
                if row[k].get("unavailable"):
                    console.print(f"{cls} {k}: unavailable: {row[k]['unavailable']}",
                                  markup=False)
            for r in row.get("diversity", []):
                console.print(f"{cls} diversity, {r['space']}: {r['ratio']:.2f} of real "
                              f"(mean pairwise distance {r['fake']:.4g} vs {r['real']:.4g})",
                              markup=False)
            if "spectrum" in row:
                bands = SpectrumReport(**row["spectrum"]).bands.items()
                console.print(f"{cls} power by scale, generated / real: "
                              + ", ".join(f"{p} {r:.2g}" for p, r in bands), markup=False)
            for r in row.get("audit", []):
                console.print(f"{cls} audit, {r['space']}: copy rate {r['copy_rate']:.1%}",
                              markup=False)


def table1(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Rows = models, columns = each metric per class (the paper's Table 1 layout)."""
    first = next(iter(results.values()))
    classes = list(first)
    keys = _metric_keys(first[classes[0]])
    head = ["model", *(f"{k.upper()} {c}" for k in keys for c in classes)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for source, per_class in results.items():
        cells = [_fmt(per_class.get(c, {}).get(k, {})) for k in keys for c in classes]
        lines.append("| " + " | ".join([f"`{source}`", *cells]) + " |")
    return "\n".join(lines) + "\n"


@click.command("audit")
@click.option("--real", required=True, help="The training data (spec) the GAN was trained on.")
@click.option("--fake", required=True, metavar="SOURCE",
              help="A run directory, a zoo name or a plain folder of generated images.")
@click.option("--class", "cls", required=True, help="The class to audit.")
@click.option("--n", "n", type=int, default=400, show_default=True)
@click.option("--size", type=int, default=64, show_default=True, help="Pixel-space size.")
@click.option("--inception-weights", default=None, metavar="PATH",
              help="Also audit in Inception feature space (offline weights).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for audit.json and closest-pairs.png (created; never overwritten).")
@BINS
def audit_cmd(real: str, fake: str, cls: str, n: int, size: int,
              inception_weights: str | None, seed: int, out: Path, bins: str | None) -> None:
    """Memorization audit: how close is each generated image to its nearest training image?"""

    from usgan.core.audit import audit_images, pairs_image
    from usgan.core.evaluation import Extractor, TensorImages, stack_images, weights_path
    from usgan.core.io import write_image, write_json

    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} exists and is not empty; choose a new --out")
    fake_set = _fake_sets(fake, [cls], n, seed)
    fakes = stack_images(next(iter(fake_set.values())))
    reals = stack_images(_real_set(real, cls, int(fakes.shape[-1]), bins)[0])
    weights = weights_path(inception_weights)
    feats = None
    if weights is not None:
        ex = Extractor.create(["fid"], weights=weights)
        layer = ex.layers["fid"]
        f, r = (ex.features(TensorImages(x))[layer] for x in (fakes, reals))
        feats = (f, r, f"{ex.name} {layer}")
    reports = audit_images(fakes, reals, size, feats)
    write_json(out / "audit.json", {"real": real, "fake": fake, "class": cls,
                                    "n_fake": len(fakes), "n_real": len(reals),
                                    "spaces": [r.as_json() for r in reports]})
    grid = pairs_image(fakes, reals, reports[-1])
    write_image(out / "closest-pairs.png", grid[:1])
    for r in reports:
        click.echo(f"{r.space}: copy rate {r.copy_rate:.1%} (threshold {r.threshold:.4g}, the "
                   f"5% quantile of training-vs-training distances); median distance to the "
                   f"nearest training image {r.median_distance:.4g} (training-vs-training "
                   f"{r.real_median_distance:.4g})")
    click.echo(f"wrote {out / 'audit.json'} and {out / 'closest-pairs.png'}")

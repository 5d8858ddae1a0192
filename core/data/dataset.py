"""`Dataset` (preprocessed uint8 tensors plus labels, subjects and ids) and `load_dataset`."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError, UnknownNameError
from . import cache, phantom, preprocess
from .sources import SourceIndex, decode_noted, kind_of, load_index, one_line_errors

STAGE2_SIZE = 256
STAGE1_SIZE = 64


@dataclass
class Dataset:
    """Preprocessed grayscale images ``[N, 1, size, size]`` (uint8) with their labels.

    ``labels`` index ``class_names``; ``ids`` are stable item ids (used in split files);
    ``subjects`` one per item (the item's own id when the source has no subject ids).
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    subjects: list[str]
    ids: list[str]
    meta: list[dict[str, Any]]
    fingerprint: str
    spec: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    has_subjects: bool = True
    _sized: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def size(self) -> int:
        """Image side in pixels."""
        return int(self.images.shape[-1])

    def at_size(self, size: int) -> torch.Tensor:
        """The same crops resized to ``size`` (antialiased), uint8 ``[N, 1, size, size]``."""
        if size not in self._sized:
            self._sized[size] = preprocess.resize_batch(self.images, size)
        return self._sized[size]

    def subset(self, indices: Sequence[int] | torch.Tensor) -> Dataset:
        """The items at ``indices`` (ints or a boolean mask), same class names. A contiguous
        run of indices (a class: loaders keep each class together) shares the images' memory
        instead of copying them, so training holds one copy of the dataset."""
        idx = torch.as_tensor(indices)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        idx = idx.long()
        keep = idx.tolist()
        run = bool(keep) and keep == list(range(keep[0], keep[0] + len(keep)))
        pick = slice(keep[0], keep[0] + len(keep)) if run else idx
        return Dataset(
            images=self.images[pick],
            labels=self.labels[pick],
            class_names=list(self.class_names),
            subjects=[self.subjects[i] for i in keep],
            ids=[self.ids[i] for i in keep],
            meta=[self.meta[i] for i in keep],
            fingerprint=self.fingerprint,
            spec=self.spec,
            skipped=list(self.skipped),
            has_subjects=self.has_subjects,
        )

    def of_class(self, name: str) -> Dataset:
        """The items of class ``name``."""
        if name not in self.class_names:
            raise UnknownNameError("class", name, self.class_names)
        return self.subset(self.labels == self.class_names.index(name))

    def class_counts(self) -> dict[str, int]:
        """Images per class, in class order."""
        counts = Counter(self.labels.tolist())
        return {c: counts.get(i, 0) for i, c in enumerate(self.class_names)}

    def subject_counts(self) -> dict[str, int]:
        """Distinct subjects per class."""
        subj: dict[str, set[str]] = {c: set() for c in self.class_names}
        for lab, s in zip(self.labels.tolist(), self.subjects, strict=True):
            subj[self.class_names[lab]].add(s)
        return {c: len(v) for c, v in subj.items()}

    def skipped_counts(self) -> dict[str, int]:
        """How many files were skipped, per reason (bad-file reasons grouped as 'bad')."""
        return dict(Counter("bad" if r.startswith("bad:") else r for _, r in self.skipped))

    def converted_counts(self) -> dict[str, int]:
        """How many images were converted to load, per conversion (e.g. "palette to gray")."""
        return dict(Counter(n for m in self.meta for n in m.get("converted", ())))

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (what ``usgan data info`` prints)."""
        src = [m.get("source_size") for m in self.meta if m.get("source_size")]
        return {
            "spec": self.spec,
            "images": len(self),
            "classes": self.class_counts(),
            "subjects": self.subject_counts(),
            "subject_ids": "given" if self.has_subjects else "none (each image its own subject)",
            "size": [self.size, self.size],
            "source_sizes": {
                "min": [min(w for w, _ in src), min(h for _, h in src)] if src else None,
                "max": [max(w for w, _ in src), max(h for _, h in src)] if src else None,
            },
            "skipped": self.skipped_counts(),
            "converted": self.converted_counts(),
            "fingerprint": self.fingerprint,
        }


def _key(index: SourceIndex, crop: preprocess.Box | None, skip_bad: bool, size: int) -> str:
    blob = json.dumps(
        {
            "v": [preprocess.VERSION, phantom.VERSION],
            "kind": index.spec.kind,
            "options": sorted(index.spec.options.items()),
            "source": index.fingerprint,
            "crop": crop,
            "skip_bad": skip_bad,
            "size": size,
        }
    )
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def _build(
    index: SourceIndex,
    crop: preprocess.Box | None,
    skip_bad: bool,
    size: int,
    progress: Callable[[int, int], None] | None,
) -> Dataset:
    items, skipped = index.items, list(index.skipped)
    n = len(items)
    keep, metas = [], []
    out = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    kind = kind_of(index.spec)
    images = kind.pixels(index) if kind.pixels is not None else None
    for i, it in enumerate(items):
        meta = dict(it.meta)
        notes: list[str] = []
        try:
            if images is not None:
                gray = images[i]
            else:
                gray, notes = decode_noted(it)
            h, w = gray.shape
            if crop is not None:
                x, y, cw, ch = crop
                if x + cw > w or y + ch > h:
                    raise DataError(
                        f"{it.path or it.id}: --crop {x},{y},{cw},{ch} does not fit "
                        f"in the {w}x{h} image"
                    )
                box = crop
            elif not kind.detect_sector:
                box = (0, 0, w, h)  # e.g. simulated images, already cropped to the sector
            else:
                box = preprocess.detect_sector(gray) or (0, 0, w, h)
            if min(box[2], box[3]) < preprocess.MIN_SIZE:
                raise DataError(
                    f"{it.path or it.id}: the crop {box[2]}x{box[3]} is smaller than "
                    f"{preprocess.MIN_SIZE} px; give --crop x,y,w,h"
                )
        except DataError as err:
            if not skip_bad:
                raise
            skipped.append((it.id, f"bad: {err}"))
            continue
        out[len(keep), 0] = torch.from_numpy(preprocess.crop_and_resize(gray, box, size))
        meta["crop"] = list(box)
        if notes:
            meta["converted"] = notes
        if it.path is not None or it.array is not None:
            meta["source_size"] = [w, h]
        if it.path is not None:
            meta["path"] = str(it.path)
        keep.append(it)
        metas.append(meta)
        if progress is not None:
            progress(i + 1, n)
    if not keep:
        raise DataError(f"{index.spec.text}: no usable images (all {n} were skipped as bad)")
    rank = {c: i for i, c in enumerate(index.class_names)}
    return Dataset(
        images=out[: len(keep)].clone(),
        labels=torch.tensor([rank[it.label] for it in keep]),
        class_names=list(index.class_names),
        subjects=[str(it.subject) for it in keep],
        ids=[it.id for it in keep],
        meta=metas,
        fingerprint="",
        spec=index.spec.text,
        skipped=skipped,
        has_subjects=index.has_subjects,
    )


@one_line_errors
def load_dataset(
    spec: str = "phantom",
    classes: Sequence[str] | None = None,
    crop: preprocess.Box | str | None = None,
    skip_bad: bool = False,
    bins: str | Sequence[Any] | None = None,
    cache_dir: Path | str | None = None,
    size: int = STAGE2_SIZE,
    *,
    use_cache: bool = True,
    min_classes: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Load, preprocess (sector crop, grayscale, resize) and cache the images of ``spec``.

    ``classes`` selects and orders classes; ``crop`` (``x,y,w,h``) replaces sector detection;
    ``skip_bad`` skips unreadable or too small images (listed in ``Dataset.skipped``) instead of
    failing; ``bins`` turns numeric grades into classes (see `parse_bins`); the cache lives in
    ``cache_dir`` (default `cache.default_cache_dir`).
    """
    if isinstance(crop, str):
        try:
            crop = preprocess.parse_crop(crop)
        except ValueError as err:
            raise DataError(f"--crop: {err}") from None
    if isinstance(classes, str):
        classes = [c for c in classes.split(",") if c.strip()]
    if size < preprocess.MIN_SIZE:
        raise DataError(f"size {size} is smaller than {preprocess.MIN_SIZE}")
    index = load_index(spec, classes=classes, bins=bins, skip_bad=skip_bad, min_classes=min_classes)
    crop_t = tuple(int(v) for v in crop) if crop is not None else None
    key = _key(index, crop_t, skip_bad, size)  # type: ignore[arg-type]
    path = cache.cache_path(Path(cache_dir) if cache_dir else cache.default_cache_dir(), key)
    hit = cache.read(path) if use_cache else None
    if hit is not None:
        tensors, m = hit
        ds = Dataset(
            images=tensors["images"],
            labels=tensors["labels"],
            class_names=m["class_names"],
            subjects=m["subjects"],
            ids=m["ids"],
            meta=m["meta"],
            fingerprint=key,
            spec=index.spec.text,
            skipped=[tuple(s) for s in m["skipped"]],  # type: ignore[misc]
            has_subjects=m["has_subjects"],
        )
        return ds
    ds = _build(index, crop_t, skip_bad, size, progress)  # type: ignore[arg-type]
    ds.fingerprint = key
    if use_cache:
        cache.write(
            path,
            {"images": ds.images, "labels": ds.labels},
            {
                "class_names": ds.class_names,
                "subjects": ds.subjects,
                "ids": ds.ids,
                "meta": ds.meta,
                "skipped": ds.skipped,
                "has_subjects": ds.has_subjects,
            },
        )
    return ds

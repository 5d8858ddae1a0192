"""Subject-level train/test splits, stored as plain JSON lists of item ids.

The paper's protocol (the default): per class, whole subjects are drawn at random into the test
set until it holds ``test_per_class`` images (70), repeated 5 times with different draws; no
subject is in both train and test within a repeat.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..io import FileFormatError, read_json, write_atomic

FORMAT = "usgan-split"
VERSION = 1


def make_splits(
    ids: Sequence[str],
    labels: Sequence[str],
    subjects: Sequence[str],
    class_names: Sequence[str],
    test_per_class: int = 70,
    repeats: int = 5,
    seed: int = 0,
) -> list[dict[str, list[str]]]:
    """``repeats`` subject-disjoint ``{"train": ids, "test": ids}`` splits.

    Per class, subjects are shuffled and added to the test set while the class's test count
    stays at most ``test_per_class`` (so it is exact when subject sizes allow).
    """
    if test_per_class < 1 or repeats < 1:
        raise DataError("--test-per-class and --repeats must be at least 1")
    by_subject: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(subjects):
        by_subject[s].append(i)
    # A subject belongs to its most frequent class (ties: class order).
    order = {c: k for k, c in enumerate(class_names)}
    home: dict[str, list[str]] = defaultdict(list)
    for s, idx in by_subject.items():
        counts = Counter(labels[i] for i in idx)
        best = min(counts, key=lambda c: (-counts[c], order.get(c, 0)))
        home[best].append(s)
    totals = Counter(labels)
    for c in class_names:
        if totals[c] <= test_per_class or len(home[c]) < 2:
            raise DataError(
                f"class {c!r} has {totals[c]} images from {len(home[c])} subjects; "
                f"--test-per-class {test_per_class} leaves none for training; use a smaller "
                "--test-per-class"
            )
    out = []
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        test: set[str] = set()
        for c in class_names:
            subs = sorted(home[c])
            count = 0
            for k in rng.permutation(len(subs)):
                n_c = sum(1 for i in by_subject[subs[k]] if labels[i] == c)
                if count + n_c <= test_per_class:
                    test.add(subs[k])
                    count += n_c
                if count == test_per_class:
                    break
            if len(test & set(subs)) == len(subs):
                raise DataError(
                    f"class {c!r}: every subject went to the test set; use a smaller "
                    "--test-per-class"
                )
            if count == 0:
                smallest = min(sum(1 for i in by_subject[s] if labels[i] == c) for s in subs)
                raise DataError(
                    f"class {c!r}: no subject fits in --test-per-class {test_per_class} (the "
                    f"smallest has {smallest} images of it); use a larger --test-per-class"
                )
        out.append(
            {
                "train": [ids[i] for i in range(len(ids)) if subjects[i] not in test],
                "test": [ids[i] for i in range(len(ids)) if subjects[i] in test],
            }
        )
    return out


def split_document(
    spec: str,
    class_names: Sequence[str],
    ids: Sequence[str],
    labels: Sequence[str],
    subjects: Sequence[str],
    has_subjects: bool,
    test_per_class: int = 70,
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """The JSON document of a split file (see docs/data.md)."""
    label_of = dict(zip(ids, labels, strict=True))
    reps = make_splits(ids, labels, subjects, class_names, test_per_class, repeats, seed)
    for rep in reps:
        rep["counts"] = {  # type: ignore[assignment]
            part: dict(Counter(label_of[i] for i in rep[part])) for part in ("train", "test")
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec,
        "classes": list(class_names),
        "test_per_class": test_per_class,
        "seed": seed,
        "subject_ids": "given" if has_subjects else "none (each image its own subject)",
        "n_items": len(ids),
        "repeats": reps,
    }


def write_split(doc: dict[str, Any], out: Path, force: bool = False) -> Path:
    """Write ``doc`` to ``out``; an existing file is an error unless ``force``."""
    out = Path(out)
    if out.exists() and not force:
        raise DataError(f"{out} exists; pass --force to overwrite it")
    try:  # indent 1, keys in document order: the layout shown in docs/data.md
        return write_atomic(out, json.dumps(doc, indent=1) + "\n")
    except FileFormatError as err:
        raise DataError(str(err)) from None


def read_split(path: Path | str) -> dict[str, Any]:
    """Read and check the shape of a split file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file {path} does not exist; make one with 'usgan data split'")
    try:
        doc = read_json(path, what="split file")
    except FileFormatError as err:
        raise DataError(str(err)) from None
    reps = doc.get("repeats") if isinstance(doc, dict) else None
    if (
        not isinstance(reps, list)
        or not reps
        or not all(
            isinstance(r, dict)
            and isinstance(r.get("train"), list)
            and isinstance(r.get("test"), list)
            for r in reps
        )
    ):
        raise DataError(
            f"{path} is not a usgan split file (expected 'repeats': a list of "
            "{'train': [ids], 'test': [ids]})"
        )
    for k, rep in enumerate(reps):
        for side in ("train", "test"):
            bad = next((i for i in rep[side] if not isinstance(i, str)), None)
            if bad is not None:
                raise DataError(f"{path}: repeat {k}, {side}: the ids must be text (the "
                                f"paths 'usgan data split' writes), found {json.dumps(bad)[:60]}")
    return doc


def load_split(path: Path | str, ds: Any, repeat: int = 0) -> tuple[list[int], list[int]]:
    """Train and test indices into ``ds`` (a `Dataset`) of repeat ``repeat`` of a split file.

    The split must match the data: every item of ``ds`` in exactly one of train/test, every id
    of the split in ``ds`` (ids that ``ds`` skipped as bad are dropped), and no subject on both
    sides. Anything else is a `DataError` saying what differs.
    """
    doc = read_split(path)
    reps = doc["repeats"]
    if not 0 <= repeat < len(reps):
        raise DataError(f"{path} has repeats 0..{len(reps) - 1}; --repeat {repeat} is not one")
    rep = reps[repeat]
    pos = {i: k for k, i in enumerate(ds.ids)}
    skipped = {p for p, _ in ds.skipped}
    train, test = rep["train"], rep["test"]
    both = set(train) & set(test)
    if both:
        raise DataError(
            f"{path}: repeat {repeat} has {len(both)} id(s) in both train and test "
            f"(e.g. {sorted(both)[0]!r})"
        )
    unknown = [i for i in [*train, *test] if i not in pos and i not in skipped]
    if unknown:
        raise DataError(
            f"split file {path} does not match the data {ds.spec}: {len(unknown)} id(s) are not "
            f"in it (e.g. {unknown[0]!r}); make a new split with 'usgan data split'"
        )
    missing = set(ds.ids) - set(train) - set(test)
    if missing:
        raise DataError(
            f"split file {path} does not match the data {ds.spec}: {len(missing)} item(s) are in "
            f"neither train nor test (e.g. {sorted(missing)[0]!r}); the data changed since the "
            "split was made; make a new split with 'usgan data split'"
        )
    tr = [pos[i] for i in train if i in pos]
    te = [pos[i] for i in test if i in pos]
    leak = {ds.subjects[k] for k in tr} & {ds.subjects[k] for k in te}
    if leak:
        raise DataError(
            f"split file {path}: subject {sorted(leak)[0]!r} is in both train and "
            f"test of repeat {repeat}; make a new split with 'usgan data split'"
        )
    return tr, te

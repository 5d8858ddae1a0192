"""The loaders on the real data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from usgan.core.data import detect_sector, load_dataset, load_index, split_document, to_gray
from usgan.core.data import phantom as ph
from usgan.core.data.preprocess import crop_and_resize
from usgan.core.data.stats import image_stats


def test_busi_rgb_with_marks(shared_data: Path, tmp_path: Path) -> None:
    ds = load_dataset(str(shared_data / "busi-256"), cache_dir=tmp_path)
    assert ds.class_counts() == {"benign": 350, "malignant": 168, "normal": 106}
    assert ds.skipped_counts() == {}  # PROVENANCE.txt, SHA256SUMS: ignored quietly
    assert ds.images.shape == (624, 1, 256, 256)
    areas = [m["crop"][2] * m["crop"][3] / 256**2 for m in ds.meta]
    assert np.median(areas) > 0.9  # already cropped scans: the detected box is ~ the image


def test_sfibai_grades_binned(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "sfibai-liver-fibrosis-us" / "train"
    ds = load_dataset(str(root), bins="1.0", cache_dir=tmp_path)
    assert ds.class_counts() == {"lt1.0": 135, "ge1.0": 315}
    sizes = [tuple(m["source_size"]) for m in ds.meta]
    assert len(set(sizes)) > 50 and ds.images.shape[1:] == (1, 256, 256)
    named = load_index(str(root), bins="f0:0,f1:1.0,f2:2.0")
    assert named.class_names == ["f0", "f1", "f2"]


def test_byra_screen_captures_sector_crop(shared_data: Path) -> None:
    for f in sorted((shared_data / "byra-nafld" / "partial-lcti" / "images").glob("*.jpeg")):
        gray = to_gray(Image.open(f))
        x, y, w, h = detect_sector(gray)
        # The sector spans x ~ 34..602, y ~ 8..367 of the 636x434 capture; the colour bar
        # (x > 605), the ECG trace and heart rate text (y > 370) are outside the box.
        assert abs(x - 34) <= 6 and abs(y - 8) <= 8, (f.name, x, y)
        assert 590 <= x + w <= 606 and 355 <= y + h <= 372, (f.name, x + w, y + h)


def test_rois28_subject_split(shared_data: Path, tmp_path: Path, usgan_cli) -> None:
    csv = shared_data / "byra-nafld" / "rois28-viana" / "labels.csv"
    idx = load_index(f"{csv}:subject=byra_id")
    assert idx.has_subjects and idx.class_names == ["0", "1"]
    assert len({it.subject for it in idx.items}) == 55
    items = idx.items
    doc = split_document(
        str(csv),
        idx.class_names,
        [i.id for i in items],
        [i.label for i in items],
        [i.subject for i in items],
        True,
    )
    subj = {i.id: i.subject for i in items}
    for rep in doc["repeats"]:
        assert rep["counts"]["test"] == {"0": 70, "1": 70}
        assert not {subj[i] for i in rep["train"]} & {subj[i] for i in rep["test"]}
    out = tmp_path / "s.json"
    r = usgan_cli("data", "split", f"{csv}:subject=byra_id", "--seed", "3", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["subject_ids"] == "given"
    r = usgan_cli("data", "info", f"{csv}:subject=byra_id")  # 28x28 patches: too small
    assert r.returncode == 2 and "at least 64 px" in r.stderr


def _real_stats(shared_data: Path) -> list[dict[str, float]]:
    files = sorted((shared_data / "byra-nafld" / "partial-lcti" / "images").glob("*.jpeg"))
    files += sorted((shared_data / "sfibai-liver-fibrosis-us" / "train").glob("*/*.jpg"))[::45]
    out = []
    for f in files:
        g = to_gray(Image.open(f))
        box = detect_sector(g) or (0, 0, g.shape[1], g.shape[0])
        out.append(image_stats(crop_and_resize(g, box, 256)))
    return out


def test_phantom_statistics_plausible(shared_data: Path) -> None:
    real = _real_stats(shared_data)
    sim = [image_stats(im[0].numpy()) for g in (0.0, 1.0) for im in ph.simulate(10, g, seed=4)]
    for key in ("mean", "snr"):
        lo, hi = min(r[key] for r in real), max(r[key] for r in real)
        vals = [s[key] for s in sim]
        assert lo <= np.mean(vals) <= hi, (key, lo, np.mean(vals), hi)
        assert lo * 0.8 <= min(vals) and max(vals) <= hi * 1.2, (key, lo, vals, hi)

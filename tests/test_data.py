"""The data layer: specs, loaders, preprocessing, cache, splits, phantom and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from usgan.core.data import (
    detect_sector,
    load_dataset,
    load_index,
    load_split,
    parse_bins,
    parse_spec,
    split_document,
    write_split,
)
from usgan.core.data import phantom as ph
from usgan.core.data.stats import summarize
from usgan.core.errors import DataError, UnknownNameError, UsganError

RNG = np.random.default_rng(0)


def scan(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A fake screen capture: a bright speckled rectangle 'sector' on black, plus thin text."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.uint8)
    img[10 : h - 10, 20 : w - 20] = rng.integers(40, 200, (h - 20, w - 40))
    img[2, 2:18] = 255  # a thin 'text' line outside the sector
    return img


def write_folder(root: Path, classes=("healthy", "nafld"), n: int = 3) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(scan(seed=i)).save(root / c / f"{i}.png")
    return root


def write_mat(path: Path, n_subjects: int = 4, frames: int = 2, drop: str | None = None) -> Path:
    fields = [f for f in ("id", "class", "fat", "images") if f != drop]
    data = np.empty((1, n_subjects), dtype=[(f, "O") for f in fields])
    for i in range(n_subjects):
        values = {
            "id": i + 1,
            "class": i % 2,
            "fat": 3.0 + 20 * (i % 2),
            "images": np.stack([scan(seed=i * 10 + k) for k in range(frames)]),
        }
        for f in fields:
            data[0, i][f] = values[f]
    scipy.io.savemat(path, {"data": data})
    return path


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


# -- specs --------------------------------------------------------------------------------------


def test_parse_spec(tmp_path: Path) -> None:
    s = parse_spec("phantom:n=200,seed=3")
    assert (s.kind, s.options) == ("phantom", {"n": "200", "seed": "3"})
    write_folder(tmp_path / "f")
    assert parse_spec(str(tmp_path / "f")).kind == "folder"
    with pytest.raises(UnknownNameError, match="unknown option of a phantom"):
        parse_spec("phantom:nn=3")
    with pytest.raises(DataError, match="does not exist"):
        parse_spec(str(tmp_path / "missing"))


def test_parse_bins() -> None:
    assert parse_bins("1.0") == [("lt1.0", float("-inf")), ("ge1.0", 1.0)]
    assert [n for n, _ in parse_bins("1,2")] == ["lt1", "1-2", "ge2"]
    assert parse_bins("f1:1.0,f0:0") == [("f0", 0.0), ("f1", 1.0)]
    with pytest.raises(DataError, match="not understood"):
        parse_bins("abc")


# -- phantom ------------------------------------------------------------------------------------


def test_phantom_dataset_api(cache: Path) -> None:
    ds = load_dataset("phantom:n=12,frames=4,size=64", cache_dir=cache)
    assert ds.images.shape == (24, 1, 256, 256) and ds.images.dtype == torch.uint8
    assert ds.labels.dtype == torch.long and ds.class_names == ["healthy", "steatosis"]
    assert len(ds.subjects) == len(ds.ids) == len(ds.meta) == 24
    assert len(set(ds.subjects)) == 6 and ds.ids[0] == "healthy-001/01"
    assert ds.at_size(64).shape == (24, 1, 64, 64) and ds.at_size(64).dtype == torch.uint8
    assert len(ds.of_class("steatosis")) == 12
    sub = ds.subset([0, 13])
    assert sub.ids == [ds.ids[0], ds.ids[13]] and sub.labels.tolist() == [0, 1]
    with pytest.raises(UnknownNameError):
        ds.of_class("nafld")
    assert load_dataset(
        "phantom:n=12,frames=4,size=64", classes=["steatosis", "healthy"], cache_dir=cache
    ).class_names == ["steatosis", "healthy"]


def test_phantom_deterministic_and_classes_differ() -> None:
    a = ph.simulate(6, grade=0.0, seed=1, size=128, frames=3)
    assert torch.equal(a, ph.simulate(6, grade=0.0, seed=1, size=128, frames=3))
    assert not torch.equal(a, ph.simulate(6, grade=0.0, seed=2, size=128, frames=3))
    h, s = (
        summarize(ph.simulate(6, 0.0, seed=0, size=128)),
        summarize(ph.simulate(6, 1.0, seed=0, size=128)),
    )
    assert s["near"][0] > h["near"][0] + 15  # steatosis: brighter parenchyma
    assert s["depth_slope"][0] < h["depth_slope"][0] - 15  # and stronger attenuation
    corner = a[:, 0, -1, 0].float()
    assert corner.max() == 0  # black outside the sector


# -- folders, formats ---------------------------------------------------------------------------


def test_folder_formats_hidden_and_sector_crop(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "data"
    (root / "a" / "sub").mkdir(parents=True)
    (root / "b").mkdir()
    g = scan()
    Image.fromarray(g).save(root / "a" / "gray8.png")
    Image.fromarray(g.astype(np.uint16) * 257).save(root / "a" / "gray16.png")
    rgb = np.stack([g, g, g], -1)
    Image.fromarray(rgb).save(root / "a" / "sub" / "rgb.jpg", quality=95)
    Image.fromarray(np.dstack([rgb, np.full_like(g, 128)])).save(root / "b" / "rgba.png")
    Image.fromarray(rgb).save(root / "b" / "rgb.bmp")
    Image.fromarray(g).save(root / "b" / "g.tiff")
    (root / "b" / ".DS_Store").write_bytes(b"junk")
    (root / "b" / "notes.txt").write_text("hello")
    (root / "README").write_text("x")
    ds = load_dataset(str(root), cache_dir=cache)
    assert ds.class_counts() == {"a": 3, "b": 3}
    assert "a/sub/rgb.jpg" in ds.ids
    assert ds.skipped_counts() == {"hidden": 1, "not an image": 1}  # README: ignored quietly
    assert not ds.has_subjects and ds.subjects == ds.ids
    crops = {tuple(m["crop"]) for m in ds.meta}
    assert crops == {(20, 10, 88, 76)}  # the sector, without the thin 'text' line
    i8, i16 = ds.ids.index("a/gray8.png"), ds.ids.index("a/gray16.png")
    assert torch.equal(ds.images[i8], ds.images[i16])


def test_detect_sector_ignores_overlays() -> None:
    img = scan(200, 300)
    img[150:190, 5:15] = 230  # a colour bar (small solid block)
    img[5:195:3, 10] = 255  # depth ticks
    assert detect_sector(img) == (20, 10, 260, 180)
    assert detect_sector(np.zeros((100, 100), np.uint8)) is None


def test_crop_override(tmp_path: Path, cache: Path) -> None:
    root = write_folder(tmp_path / "d")
    ds = load_dataset(str(root), crop="0,0,100,80", cache_dir=cache)
    assert {tuple(m["crop"]) for m in ds.meta} == {(0, 0, 100, 80)}
    with pytest.raises(DataError, match="does not fit"):
        load_dataset(str(root), crop="50,0,100,80", cache_dir=cache)
    with pytest.raises(DataError, match="four integers"):
        load_dataset(str(root), crop="1,2,3", cache_dir=cache)


def test_cache_hit_and_invalidation(tmp_path: Path, cache: Path) -> None:
    root = write_folder(tmp_path / "d")
    a = load_dataset(str(root), cache_dir=cache)
    files = list(cache.glob("*.safetensors"))
    assert len(files) == 1 and files[0].stem == a.fingerprint
    b = load_dataset(str(root), cache_dir=cache)
    assert b.fingerprint == a.fingerprint and torch.equal(a.images, b.images) and b.ids == a.ids
    Image.fromarray(scan(seed=99)).save(root / "healthy" / "0.png")
    c = load_dataset(str(root), cache_dir=cache)
    assert c.fingerprint != a.fingerprint and not torch.equal(c.images, a.images)
    assert load_dataset(str(root), size=128, cache_dir=cache).images.shape[-1] == 128


def test_bins_on_grade_folders(tmp_path: Path, cache: Path) -> None:
    root = write_folder(tmp_path / "g", classes=("0.2", "0.8", "1.0", "2.5"), n=1)
    ds = load_dataset(str(root), bins="1.0", cache_dir=cache)
    assert ds.class_names == ["lt1.0", "ge1.0"] and ds.class_counts() == {"lt1.0": 2, "ge1.0": 2}
    assert sorted(m["grade"] for m in ds.meta) == [0.2, 0.8, 1.0, 2.5]
    ds = load_dataset(str(root), bins="mild:0.5,severe:2", cache_dir=cache)
    assert ds.class_counts() == {"mild": 2, "severe": 1}
    assert ("g/0.2/0.png" not in ds.ids) and any("below the lowest bin" in r for _, r in ds.skipped)


def test_csv_manifest_with_subjects(tmp_path: Path, cache: Path) -> None:
    root = write_folder(tmp_path / "d", n=4)
    rows = ["file,class,patient,extra"]
    rows += [f"{c}/{i}.png,{c},{c}{i // 2},x{i}" for c in ("healthy", "nafld") for i in range(4)]
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(str(root / "m.csv"), cache_dir=cache)
    assert ds.has_subjects and len(set(ds.subjects)) == 4 and ds.meta[0]["extra"] == "x0"
    (root / "n.csv").write_text(
        "img,cls,who\n"
        + "\n".join(f"{c}/{i}.png,{c},{i}" for c in ("healthy", "nafld") for i in range(4))
        + "\n"
    )
    ds = load_dataset(str(root / "n.csv") + ":path=img,label=cls,subject=who", cache_dir=cache)
    assert ds.subjects[:2] == ["0", "1"]


def test_mat_file(tmp_path: Path, cache: Path) -> None:
    path = write_mat(tmp_path / "dataset_liver_bmodes_steatosis_assessment_IJCARS.mat")
    ds = load_dataset(str(path), cache_dir=cache)
    assert ds.class_names == ["healthy", "nafld"] and len(ds) == 8
    assert ds.ids[:2] == ["1/1", "1/2"] and ds.subjects[:2] == ["1", "1"]
    assert ds.meta[-1]["fat"] == 23.0 and ds.meta[0]["subject_id"] == 1


def test_mat_v73_hdf5(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w") as f:
        grp = f.create_group("data")
        refs = {k: [] for k in ("id", "class", "fat", "images")}
        for i in range(4):
            for k, v in (
                ("id", [[i + 1.0]]),
                ("class", [[i % 2 * 1.0]]),
                ("fat", [[5.0]]),
                ("images", np.stack([scan(seed=i)] * 2).T),
            ):
                refs[k].append(f.create_dataset(f"#refs#/{k}{i}", data=np.asarray(v)).ref)
        for k, r in refs.items():
            grp.create_dataset(k, data=np.array(r, dtype=h5py.ref_dtype).reshape(-1, 1))
    ds = load_dataset(str(path), cache_dir=cache)
    assert len(ds) == 8 and ds.class_counts() == {"healthy": 4, "nafld": 4}
    assert {tuple(m["source_size"]) for m in ds.meta} == {(128, 96)}


# -- splits -------------------------------------------------------------------------------------


def test_subject_level_splits(tmp_path: Path, cache: Path) -> None:
    idx = load_index("phantom:n=30,frames=5,size=64")
    items = idx.items
    doc = split_document(
        "phantom:n=30,frames=5,size=64",
        idx.class_names,
        [i.id for i in items],
        [i.label for i in items],
        [i.subject for i in items],
        True,
        test_per_class=10,
        repeats=3,
        seed=1,
    )
    assert len(doc["repeats"]) == 3
    subj = {i.id: i.subject for i in items}
    tests = []
    for rep in doc["repeats"]:
        assert rep["counts"]["test"] == {"healthy": 10, "steatosis": 10}
        assert not {subj[i] for i in rep["train"]} & {subj[i] for i in rep["test"]}
        tests.append(tuple(rep["test"]))
    assert len(set(tests)) > 1
    out = write_split(doc, tmp_path / "s.json")
    with pytest.raises(DataError, match="--force"):
        write_split(doc, out)
    ds = load_dataset("phantom:n=30,frames=5,size=64", cache_dir=cache)
    tr, te = load_split(out, ds, repeat=2)
    assert len(tr) == 40 and len(te) == 20
    other = load_dataset("phantom:n=25,frames=5,size=64", cache_dir=cache)
    with pytest.raises(DataError, match="does not match the data"):
        load_split(out, other)
    with pytest.raises(DataError, match=r"repeats 0\.\.2"):
        load_split(out, ds, repeat=3)


def test_split_too_few_images() -> None:
    idx = load_index("phantom:n=20")
    items = idx.items
    with pytest.raises(DataError, match="leaves none for training"):
        split_document(
            "p",
            idx.class_names,
            [i.id for i in items],
            [i.label for i in items],
            [i.subject for i in items],
            True,
            test_per_class=70,
        )


# -- bad input ----------------------------------------------------------------------------------


def test_bad_inputs(tmp_path: Path, cache: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="is empty"):
        load_dataset(str(empty), cache_dir=cache)
    one = write_folder(tmp_path / "one", classes=("healthy",))
    with pytest.raises(DataError, match=r"has 1 class .*did you mean"):
        load_dataset(str(one), cache_dir=cache)


@pytest.mark.parametrize("kind", ["truncated", "zero", "garbage", "small"])
def test_bad_image_named_and_skippable(tmp_path: Path, cache: Path, kind: str) -> None:
    root = write_folder(tmp_path / "d")
    bad = root / "nafld" / "bad.png"
    if kind == "truncated":
        Image.fromarray(scan()).save(bad)
        bad.write_bytes(bad.read_bytes()[:200])
    elif kind == "zero":
        bad.write_bytes(b"")
    elif kind == "garbage":
        bad.write_bytes(b"not a png at all" * 10)
    else:
        Image.fromarray(scan(40, 50)).save(bad)
    message = {
        "truncated": "truncated or corrupt",
        "zero": r"empty \(0 bytes\)",
        "garbage": "not a readable image",
        "small": "at least 64 px",
    }[kind]
    with pytest.raises(DataError, match=message) as err:
        load_dataset(str(root), cache_dir=cache)
    assert "bad.png" in str(err.value)
    ds = load_dataset(str(root), skip_bad=True, cache_dir=cache)
    assert "nafld/bad.png" not in ds.ids and ds.skipped_counts() == {"bad": 1}


def test_bad_mat_and_csv(tmp_path: Path, cache: Path) -> None:
    path = write_mat(tmp_path / "x.mat", drop="fat")
    with pytest.raises(DataError, match="no field 'fat'"):
        load_dataset(str(path), cache_dir=cache)
    scipy.io.savemat(tmp_path / "y.mat", {"other": np.zeros(3)})
    with pytest.raises(DataError, match="no variable 'data'"):
        load_dataset(str(tmp_path / "y.mat"), cache_dir=cache)
    root = write_folder(tmp_path / "d")
    (root / "a.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(DataError, match="no path column"):
        load_dataset(str(root / "a.csv"), cache_dir=cache)
    (root / "b.csv").write_text("path,label\nhealthy/0.png,h\nnafld/9.png,n\nnafld/0.png,n\n")
    with pytest.raises(DataError, match=r"do not exist .*nafld/9\.png"):
        load_dataset(str(root / "b.csv"), cache_dir=cache)
    assert len(load_dataset(str(root / "b.csv"), skip_bad=True, cache_dir=cache)) == 2
    with pytest.raises(UnknownNameError, match="did you mean 'nafld'"):
        load_dataset(str(root), classes=["nafd"], cache_dir=cache)


def test_errors_are_usgan_errors() -> None:
    assert issubclass(DataError, UsganError)
    assert json.loads(json.dumps(load_index("phantom:n=2").class_names)) == ["healthy", "steatosis"]


def test_a_class_shares_the_dataset_memory(cache: Path) -> None:
    """Training takes one class at a time (`of_class`): a view of the loaded images, not a
    second copy; a scattered subset is a copy with the same items."""
    ds = load_dataset("phantom:n=4", cache_dir=cache)
    for name in ds.class_names:
        part = ds.of_class(name)
        assert part.images.untyped_storage().data_ptr() == ds.images.untyped_storage().data_ptr()
        assert part.class_counts()[name] == len(part.ids) == 4 == len(part.images)
    picked = ds.subset([0, 5])
    assert picked.images.untyped_storage().data_ptr() != ds.images.untyped_storage().data_ptr()
    assert torch.equal(picked.images, ds.images[[0, 5]]) and picked.ids == [ds.ids[0], ds.ids[5]]

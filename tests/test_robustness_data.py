"""Bad and odd data input, one table row per case, built in a tmp folder (docs/data.md,
"Bad input"): one error line naming the file and the problem, or it loads and says how it was
converted. A few rows also run through the installed ``usgan`` command."""

from __future__ import annotations

import builtins
import json
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner
from conftest import run_usgan
from PIL import Image
from test_data import scan

from usgan.core.data import Dataset, detect_sector, load_dataset, load_index, load_split, preprocess
from usgan.core.errors import UsganError
from usgan.core.names import safe_name

Build = Callable[[Path, pytest.MonkeyPatch], tuple[str, str]]  # -> (spec, what errors name)
NOTE_EXT = "format differs from extension (read by content)"
ODD = {"16-bit scaled to 8-bit": 1, "RGBA/colour to gray": 4, "palette to gray": 1, NOTE_EXT: 1,
       "EXIF rotation applied": 1, "1-bit to gray": 1, "float to 8-bit": 1,
       "first frame of a multi-frame file": 1}
NOT_DATA = ("SHA256SUMS", "README", "README.md", "PROVENANCE.txt", "LICENSE", "notes.txt",
            "info.json", "labels.csv")
LINKS = (("self", "self"), ("..", "up"), ("gone.png", "broken.png"))  # loop, loop, broken


def png(path: Path, img: np.ndarray | Image.Image | None = None, **save: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(scan()) if img is None else img
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(path, **save)
    return path


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def with_file(name: str, make: Callable[[Path], Any], n: int = 2, good: Any = None) -> Build:
    """A folder healthy/ + nafld/ of ``n`` good images each, then ``make(nafld / name)``."""

    def build(tmp: Path, mp: pytest.MonkeyPatch) -> tuple[str, str]:
        for c in ("healthy", "nafld"):
            for i in range(n):
                png(tmp / "d" / c / f"{i}.png", scan(seed=i) if good is None else good)
        make(tmp / "d" / "nafld" / name)
        return str(tmp / "d"), name

    return build


def truncated(path: Path, fmt: str = "PNG") -> None:
    png(path, scan(), format=fmt)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def declared(path: Path, w: int, h: int) -> None:
    """A tiny PNG whose header declares ``w`` x ``h`` (IHDR patched, CRC fixed)."""
    b = bytearray(png(path, np.zeros((64, 64), np.uint8)).read_bytes())
    b[16:24] = w.to_bytes(4, "big") + h.to_bytes(4, "big")
    b[29:33] = zlib.crc32(bytes(b[12:29])).to_bytes(4, "big")
    path.write_bytes(bytes(b))


def odd_formats(d: Path) -> None:
    g = scan()
    rgb, exif = np.stack([g, g, g], -1), Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    png(d / "g16.png", g.astype(np.uint16) * 257)
    png(d / "rgba.png", np.dstack([rgb, np.full_like(g, 200)]))
    png(d / "pal.png", Image.fromarray(rgb).convert("P"))
    png(d / "g.tif", g)
    png(d / "c.bmp", rgb)
    png(d / "c.jpg", rgb, quality=95)
    png(d / "rot.jpg", g, exif=exif, quality=95)
    png(d / "png-named.jpg", g, format="PNG")
    png(d / "bits.tif", g > 50)
    png(d / "float.tif", g.astype(np.float32))
    png(d / "cmyk.jpg", Image.fromarray(rgb).convert("CMYK"))
    png(d / "pages.tif", g, save_all=True, append_images=[Image.fromarray(g)])


def unreadable(tmp: Path, mp: pytest.MonkeyPatch) -> tuple[str, str]:
    spec, name = with_file("locked.png", png)(tmp, mp)
    bad, real = str(Path(spec) / "nafld" / name), builtins.open

    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == bad:
            raise PermissionError(13, "Permission denied", bad)
        return real(file, *args, **kwargs)

    mp.setattr(builtins, "open", fake_open)
    return spec, name


def mat_v5(**change: Any) -> Build:
    """A Byra-layout v5 .mat of 2 subjects; ``change``: fields of subject 1, or
    ``variable``/``drop``/``empty``."""

    def build(tmp: Path, mp: pytest.MonkeyPatch) -> tuple[str, str]:
        fields = [f for f in ("id", "class", "fat", "images") if f != change.get("drop")]
        data = np.empty((1, 0 if change.get("empty") else 2), dtype=[(f, "O") for f in fields])
        for i in range(data.shape[1]):
            values = {"id": i + 1, "class": i, "fat": 5.0, "images": np.stack([scan(seed=i)] * 2)}
            values.update({k: v for k, v in change.items() if k in values and i == 0})
            for f in fields:
                data[0, i][f] = values[f]
        scipy.io.savemat(tmp / "byra.mat", {change.get("variable", "data"): data})
        return str(tmp / "byra.mat"), "byra.mat"

    return build


def mat_v73(bomb: bool = False, one: bool = False, damage: bool = False) -> Build:
    """A Byra-layout v7.3 (HDF5) .mat: a struct array of 2 subjects, or a 1x1 struct."""

    def build(tmp: Path, mp: pytest.MonkeyPatch) -> tuple[str, str]:
        path = tmp / "v73.mat"
        with h5py.File(path, "w", userblock_size=512) as f:
            grp = f.create_group("data")
            refs: dict[str, list[Any]] = {k: [] for k in ("id", "class", "fat", "images")}
            for i in range(1 if one else 2):
                for k, v in (("id", i + 1.0), ("class", float(i)), ("fat", 5.0)):
                    d = grp if one else f.create_group(f"#refs#/{k}{i}")
                    refs[k].append(d.create_dataset(k, data=np.array([[v]])).ref)
                d = grp if one else f.create_group(f"#refs#/images{i}")
                if bomb and i == 0:  # declares 10 frames of 30000 x 30000, almost no disk
                    im = d.create_dataset("images", shape=(30000, 30000, 10), dtype="u1",
                                          chunks=(1000, 1000, 1), compression="gzip")
                else:
                    im = d.create_dataset("images", data=np.stack([scan(seed=i)] * 2).T)
                refs["images"].append(im.ref)
            for k, r in refs.items():
                if not one:
                    grp.create_dataset(k, data=np.array(r, dtype=h5py.ref_dtype).reshape(-1, 1))
        if damage:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return str(path), "v73.mat"

    return build


GOOD_ROWS = "path,label\nhealthy/0.png,healthy\nhealthy/1.png,healthy\nnafld/0.png,nafld\n"


def manifest(text: str | bytes) -> Build:
    """Good images plus a manifest ``m.csv`` beside them (``{root}``: the tmp folder)."""

    def build(tmp: Path, mp: pytest.MonkeyPatch) -> tuple[str, str]:
        spec, _ = with_file("../../outside.png", png)(tmp, mp)
        raw = text.encode() if isinstance(text, str) else text
        write(Path(spec) / "m.csv", raw.replace(b"{root}", str(tmp).encode()))
        return str(Path(spec) / "m.csv"), "m.csv"

    return build


def row5(line: str) -> Build:
    """The good manifest plus ``line`` (line 5 of the CSV)."""
    return manifest(GOOD_ROWS + line + "\n")


@dataclass
class Row:
    id: str
    build: Build
    error: str | None = None  # regex the one-line message must match
    check: Callable[[Dataset], Any] | None = None  # for inputs that load
    kw: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    api: str = "dataset"  # or "index": load_index only
    names: str | None = None  # what the message must name, instead of the built file


def skipped(**want: int) -> Callable[[Dataset], bool]:
    return lambda ds: ds.skipped_counts() == {k.replace("_", " "): v for k, v in want.items()}


def odd_formats_check(ds: Dataset) -> None:
    assert len(ds) == 14 and ds.skipped == [] and ds.converted_counts() == ODD

    rot = ds.meta[ds.ids.index("nafld/rot.jpg")]
    assert rot["source_size"] == [96, 128] and rot["converted"] == ["EXIF rotation applied"]


LIMIT, SKIP, INDEX = "USGAN_MAX_IMAGE_PIXELS", {"skip_bad": True}, "index"
ROWS = [
    # images in class folders
    Row("truncated-png", with_file("bad.png", truncated), r"is truncated or corrupt"),
    Row("truncated-jpeg", with_file("bad.jpg", lambda p: truncated(p, "JPEG")),
        r"is truncated or corrupt"),
    Row("zero-bytes", with_file("bad.png", lambda p: write(p, b"")), r"is empty \(0 bytes\)"),
    Row("text-as-png", with_file("bad.png", lambda p: write(p, "hello\n" * 20)),
        r"is not a readable image"),
    Row("one-pixel-high", with_file("thin.png", lambda p: png(p, np.zeros((1, 200), np.uint8))),
        r"is 200x1; images must be at least 64 px on each side"),
    Row("below-min-size", with_file("small.png", lambda p: png(p, scan(63, 100))),
        r"is 100x63; images must be at least 64 px"),
    Row("skip-bad-reports", with_file("bad.png", truncated), check=skipped(bad=1), kw=SKIP),
    Row("odd-formats-load", with_file("", odd_formats, n=1), check=odd_formats_check),
    Row("png-named-jpg", with_file("x.jpg", lambda p: png(p, format="PNG")),
        check=lambda ds: ds.converted_counts() == {NOTE_EXT: 1}),
    Row("decompression-bomb", with_file("bomb.png", lambda p: declared(p, 13000, 13000)),
        r"declares 13000x13000 pixels \(169,000,000\), more than the limit of 40,000,000; "
        r"refused before decoding"),
    Row("limit-from-env", with_file("big.png", png, n=1, good=np.full((64, 64), 99, np.uint8)),
        r"big\.png declares 128x96 pixels \(12,288\), more than the limit of 5,000",
        env={LIMIT: "5000"}),
    Row("limit-env-invalid", with_file("x.png", png), r"USGAN_MAX_IMAGE_PIXELS='lots' is not a "
        r"pixel count", env={LIMIT: "lots"}, names=LIMIT),
    Row("pil-bomb-error", with_file("bomb.png", lambda p: declared(p, 20000, 20000)),
        r"is too large to decode \(.*decompression bomb", env={LIMIT: "1000000000000"}),
    Row("symlink-loops", with_file("", lambda d: [os.symlink(a, d / b) for a, b in LINKS]),
        check=skipped(symlink_loop=2, broken_symlink=1)),
    Row("unreadable-file", unreadable, r"locked\.png: cannot read the file \(Permission denied\)"),
    Row("unreadable-skipped", unreadable, check=skipped(bad=1), kw=SKIP),
    Row("not-data-beside-classes", with_file("", lambda d: [write(d.parent / n, "x") for n in
        NOT_DATA] + [png(d.parent / "loose.png")]),
        check=skipped(image_outside_the_class_subfolders=1)),
    # .mat files
    Row("mat-text", lambda t, mp: (str(write(t / "x.mat", "not a mat file\n" * 20)), "x.mat"),
        r"is not a readable MATLAB file"),
    Row("mat-wrong-variable", mat_v5(variable="dataset"), r"has no variable 'data' \(found: "
        r"dataset\); expected the Byra et al\. layout"),
    Row("mat-missing-field", mat_v5(drop="fat"), r"struct 'data' has no field 'fat'"),
    Row("mat-string-id", mat_v5(id="abc"), r"entry 1 of struct 'data': field 'id' is text "
        r"'abc'; expected a number"),
    Row("mat-images-1d", mat_v5(images=np.arange(100, dtype=np.uint8)),  # MATLAB: 1 x 100
        r"byra\.mat, subject 1 frame 1 is 100x1; images must be at least 64 px"),
    Row("mat-images-4d", mat_v5(images=np.zeros((2, 2, 70, 80), np.uint8)),
        r"entry 1 of struct 'data': images have shape \(2, 2, 70, 80\); expected frames"),
    Row("mat-images-text", mat_v5(images="abc"), r"entry 1 of struct 'data': images are text, "
        r"not numbers"),
    Row("mat-same-id-twice", mat_v5(id=2), r"entry 2 of struct 'data': id 2 was already used by "
        r"entry 1"),
    Row("mat-double-frames", mat_v5(images=np.stack([scan()] * 2) * 1.5),
        check=lambda ds: ds.converted_counts() == {"non-uint8 array clipped to 8-bit": 2}),
    Row("mat-empty-struct", mat_v5(empty=True), r"struct 'data' is empty"),
    Row("mat-cell-images", mat_v5(images=np.array([None, *map(scan, [96] * 3)], object)[1:]),
        check=lambda ds: len(ds) == 5 and ds.ids[:3] == ["1/1", "1/2", "1/3"]),
    Row("mat-v73-loads", mat_v73(), check=lambda ds: len(ds) == 4),
    Row("mat-v73-1x1-struct", mat_v73(one=True), check=lambda ds: len(ds) == 2,
        kw={"min_classes": 1}),
    Row("mat-v73-damaged", mat_v73(damage=True), r"is a damaged MATLAB v7\.3 \(HDF5\) file"),
    Row("mat-v73-bomb", mat_v73(bomb=True), r"entry 1 of struct 'data' declares "
        r"30000x30000 pixels .*refused before decoding"),
    # CSV manifests
    Row("csv-missing-columns", manifest("file_name,grade\na.png,1\n"), r"no path column"),
    Row("csv-missing-files", row5("nafld/9.png,nafld"),
        r"1 listed file\(s\) do not exist \(first: line 5, 'nafld/9\.png'\)"),
    Row("csv-duplicate-rows", row5("./nafld/0.png,nafld"),
        r"line 5 lists './nafld/0\.png' a second time \(first on line 4\)"),
    Row("csv-dotdot-path", row5("../outside.png,nafld"),  # a labels folder beside the images
        check=lambda ds: len(ds) == 4 and "../outside.png" in ds.ids),
    Row("csv-absolute-outside", row5("{root}/outside.png,nafld"),  # a cluster's storage
        check=lambda ds: len(ds) == 4),
    Row("csv-label-not-in-classes", manifest(GOOD_ROWS), r"unknown class in .*m\.csv 'nafd'; "
        r"known: healthy, nafld \(did you mean 'nafld'\?\)", kw={"classes": ["healthy", "nafd"]}),
    Row("csv-bom", manifest(b"\xef\xbb\xbf" + GOOD_ROWS.encode()), check=lambda ds: len(ds) == 3),
    Row("csv-semicolons", manifest(GOOD_ROWS.replace(",", ";")),
        check=lambda ds: ds.class_counts() == {"healthy": 2, "nafld": 1}),
    Row("csv-tabs", manifest(GOOD_ROWS.replace(",", "\t")), check=lambda ds: len(ds) == 3),
    Row("csv-bad-utf8", manifest(b"path,label\nhealthy/0.png,healthy\nnafld/0.png,caf\xe9\n"),
        r"line 3 is not UTF-8 text \(byte 0xe9\); save the CSV as UTF-8"),
    Row("csv-oversized-field", row5('"' + "x" * 200_000 + '",a'),
        r"line 5 is not valid CSV \(field larger than field limit"),
    # class labels become folder names
    Row("label-dotdot", row5("nafld/1.png,.."), r"m\.csv, line 5: class label '\.\.' is not "
        r"allowed \('\.' and '\.\.' are not names\)", api=INDEX),
    Row("label-slash", row5("nafld/1.png,a/b"),
        r"m\.csv, line 5: class label 'a/b' is not allowed \(it contains '/'\)", api=INDEX),
    Row("label-backslash", row5("nafld/1.png,a\\b"), r"line 5: class label 'a\\\\b' is not",
        api=INDEX),
    Row("label-control", row5("nafld/1.png,a\x07b"),
        r"line 5: class label 'a\\x07b' is not allowed \(it contains a control character",
        api=INDEX),
    Row("label-leading-dot", row5("nafld/1.png,.x"),
        r"line 5: class label '\.x' is not allowed \(it starts with '\.'\)", api=INDEX),
    Row("label-too-long", with_file("", lambda d: png(d.parent / ("g" * 65) / "0.png")),
        r"class label 'g{65}' is not allowed \(it is 65 characters long\); names become folder "
        r"and file names: at most 64", api=INDEX, names="g" * 65),
    Row("label-control-folder", with_file("", lambda d: png(d.parent / "bad\x07name" / "0.png")),
        r"bad\\x07name: class label 'bad\\x07name' is not allowed \(it contains a control",
        api=INDEX, names="bad\\x07name"),
    Row("label-empty", row5("nafld/1.png, "), r"line 5 has an empty label", api=INDEX),
    Row("label-fine-characters", row5('nafld/1.png,"Grade (2)+, x_y-z.1"'),
        check=lambda ds: "Grade (2)+, x_y-z.1" in ds.class_names),
    Row("bins-bad-name", with_file("x.png", png), r"--bins 'a/b:0,c:1': class name 'a/b' is not "
        r"allowed", kw={"bins": "a/b:0,c:1"}, api=INDEX, names="--bins"),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_table(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, name = row.build(tmp_path, monkeypatch)
    for k, v in row.env.items():
        monkeypatch.setenv(k, v)
    def load() -> Any:
        if row.api == INDEX:
            return load_index(spec, **row.kw)
        return load_dataset(spec, cache_dir=tmp_path / "c", **row.kw)

    if row.error is None:
        assert row.check is not None and row.check(load()) is not False
        return
    with pytest.raises(UsganError) as err:
        load()
    msg = str(err.value)
    assert re.search(row.error, msg), msg
    assert (row.names or name) in msg, (row.names or name, msg)
    assert "\n" not in msg and msg.isprintable(), msg


CLI_ROWS = ["truncated-png", "decompression-bomb", "csv-missing-files", "mat-v73-damaged",
            "label-slash"]


@pytest.mark.parametrize("row_id", CLI_ROWS)
def test_bad_input_cli(row_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the installed command: exit 2, one line ``usgan: error: ...``, no traceback."""
    row = next(r for r in ROWS if r.id == row_id)
    spec, name = row.build(tmp_path, monkeypatch)
    r = run_usgan("data", "info", spec, env={"USGAN_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("usgan: error: "), r.stderr
    assert "Traceback" not in r.stderr and name in r.stderr
    assert re.search(row.error or "", lines[0]), lines[0]


def test_info_says_what_was_converted_and_skipped(tmp_path: Path) -> None:
    from usgan.cli.main import cli

    root = Path(with_file("", odd_formats, n=1)(tmp_path, pytest.MonkeyPatch())[0])
    os.symlink("loop", root / "nafld" / "loop")
    truncated(root / "nafld" / "cut.png")
    env = {"USGAN_CACHE": str(tmp_path / "cache"), "COLUMNS": "500"}
    r = CliRunner().invoke(cli, ["data", "info", str(root), "--skip-bad"], env=env)
    assert r.exit_code == 0, r.output
    assert "skipped: 1 symlink loop, 1 bad" in r.stdout
    assert "skipped nafld/loop: symlink loop" in r.stdout
    assert re.search(r"skipped nafld/cut\.png: .*cut\.png is truncated or corrupt", r.stdout)
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("converted: "))
    assert set(line[len("converted: "):].split(", ")) == {f"{k}: {n}" for k, n in ODD.items()}
    r = CliRunner().invoke(cli, ["data", "info", str(root), "--skip-bad", "--json"], env=env)
    assert json.loads(r.stdout)["converted"]["palette to gray"] == 1


def test_non_utf8_and_space_names_survive_json(tmp_path: Path) -> None:
    from usgan.cli.main import cli

    root, cache, out = tmp_path / "d", tmp_path / "cache", tmp_path / "s.json"
    for c in ("healthy", "nafld"):
        for i in range(4):
            png(root / c / os.fsdecode(f"{c} {i} ".encode() + b"\xff.png"), scan(seed=i))
    ds = load_dataset(str(root), cache_dir=cache)
    assert len(ds) == 8 and "healthy/healthy 0 \udcff.png" in ds.ids
    again = load_dataset(str(root), cache_dir=cache)  # from the cache (JSON metadata)
    assert again.ids == ds.ids and again.fingerprint == ds.fingerprint
    r = CliRunner().invoke(cli, ["data", "split", str(root), "--test-per-class", "2", "--out",
                                 str(out)], env={"USGAN_CACHE": str(cache)})
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())["repeats"][0]
    assert set(rep["train"] + rep["test"]) == set(ds.ids)
    train, test = load_split(out, ds)
    assert len(train) == 4 and len(test) == 4


def test_safe_name_contract() -> None:
    assert safe_name("Grade (2)+, x_y-z.1", "run name") == "Grade (2)+, x_y-z.1"
    for bad in ("", " ", ".", "..", "a/b", "a\\b", "a\0b", "a\nb", ".x", "x" * 65, "\udcff"):
        with pytest.raises(UsganError, match="run name"):
            safe_name(bad, "run name")


def test_detect_sector_downscales_large_images(monkeypatch: pytest.MonkeyPatch) -> None:
    img = scan(200, 300)
    assert detect_sector(img) == (20, 10, 260, 180)
    monkeypatch.setattr(preprocess, "DETECT_PIXELS", 10_000)  # factor 3 for 60,000 pixels
    x, y, w, h = detect_sector(img)
    assert max(abs(x - 20), abs(y - 10), abs(x + w - 280), abs(y + h - 190)) <= 6

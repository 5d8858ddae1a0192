"""``usgan data info / preview / split`` end to end (subprocess), including bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_data import write_folder


def _env(tmp_path: Path) -> dict[str, str]:
    return {"USGAN_CACHE": str(tmp_path / "cache")}


@pytest.fixture
def inproc(tmp_path: Path):
    """Run ``usgan`` in this process (fast); returns (exit code, stdout, stderr)."""
    from usgan.cli.main import cli

    def run(*args: str) -> tuple[int, str, str]:
        r = CliRunner().invoke(cli, list(args), env=_env(tmp_path))
        return r.exit_code, r.stdout, r.stderr

    return run


def test_info_phantom_fresh_machine(tmp_path: Path, usgan_cli, inproc) -> None:
    r = usgan_cli("data", "info", "phantom:n=10,frames=5", "--json", env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["classes"] == {"healthy": 10, "steatosis": 10}
    assert info["subjects"] == {"healthy": 2, "steatosis": 2}
    assert list((tmp_path / "cache" / "data").glob("*.safetensors"))
    code, out, _ = inproc("data", "info", "phantom:n=10,frames=5")  # table, from the cache
    assert code == 0 and "steatosis" in out and "subject ids: given" in out
    assert out.splitlines()[0] == "usgan data: phantom:n=10,frames=5"  # not inside the table


def test_preview_and_no_overwrite(tmp_path: Path, inproc) -> None:
    out = tmp_path / "grid.png"
    args = ("data", "preview", "phantom:n=4", "--per-class", "4", "--out", str(out))
    code, _, err = inproc(*args)
    assert code == 0, err
    assert Image.open(out).size == (4 * 258 + 2, 2 * 258 + 2)
    code, _, err = inproc(*args)
    assert code == 2 and "--force" in err and "Traceback" not in err
    assert inproc(*args, "--force")[0] == 0


def test_split_cli(tmp_path: Path, inproc) -> None:
    out = tmp_path / "splits.json"
    code, _, err = inproc("data", "split", "phantom", "--out", str(out))
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert len(doc["repeats"]) == 5 and doc["test_per_class"] == 70
    assert doc["repeats"][0]["counts"]["test"] == {"healthy": 70, "steatosis": 70}
    code, _, err = inproc("data", "split", "phantom", "--out", str(out))
    assert code == 2 and "exists; pass --force" in err
    root = write_folder(tmp_path / "d", n=5)
    code, stdout, _ = inproc(
        "data", "split", str(root), "--test-per-class", "2", "--out", str(tmp_path / "f.json")
    )
    assert code == 0 and "each image is its own subject" in stdout


def test_bad_input_one_line(tmp_path: Path, usgan_cli, inproc) -> None:
    root = write_folder(tmp_path / "d")
    (root / "nafld" / "zero.png").write_bytes(b"")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["data", "info", str(tmp_path / "nope")], "does not exist"),
        (["data", "info", str(empty)], "is empty"),
        (["data", "info", str(root)], "zero.png is empty (0 bytes)"),
        (["data", "info", str(root), "--crop", "1,2"], "four integers"),
        (["data", "info", "phantom:n=2", "--classes", "healty"], "did you mean 'healthy'"),
    ]
    for args, message in cases:
        code, _, err = inproc(*args)
        assert code == 2, (args, err)
        assert err.startswith("usgan: error: ") and message in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    r = usgan_cli(*cases[0][0], env=_env(tmp_path))  # the installed command, once
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and cases[0][1] in r.stderr
    code, out, _ = inproc("data", "info", str(root), "--skip-bad")
    assert code == 0 and "zero.png" in out and "1 bad" in out


def test_info_grayscale_rgba_16bit(tmp_path: Path, inproc) -> None:
    root = write_folder(tmp_path / "d", n=1)
    g = np.asarray(Image.open(root / "healthy" / "0.png"))
    Image.fromarray(np.dstack([g, g, g, g])).save(root / "nafld" / "rgba.png")
    Image.fromarray(g.astype(np.uint16) * 257).save(root / "nafld" / "g16.tif")
    code, out, err = inproc("data", "info", str(root), "--json")
    assert code == 0, err
    assert json.loads(out)["classes"] == {"healthy": 1, "nafld": 3}

"""The zoo against a Hub-protocol server on loopback (tests/hubserver.py), with the real
huggingface_hub client: build (tiny) -> push -> list -> pull by name -> sample, offline use,
tampered files, missing repos and revisions, pickle files, an unreachable endpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_usgan
from hubserver import HubServer

from usgan.zoo.entries import builtin_entries

TOKEN = "hf_zoo_test_token"
ORG = "testorg"
ENTRY = "dcgan-stage2"
TINY = ["--stage1-config", "g_width=4,d_width=4",
        "--stage2-config", "width=4,d_width=4,max_width=8"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    with HubServer(tmp_path_factory.mktemp("hub"), token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def env(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What every usgan subprocess of this module gets: the loopback Hub and its own caches."""
    base = tmp_path_factory.getbasetemp()
    return {"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": TOKEN,
            "HF_HUB_CACHE": str(tmp_path_factory.mktemp("hf-cache")),
            "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_OFFLINE": "0", "USGAN_CACHE": str(base / "usgan-cache")}


def usgan(env: dict[str, str], *args: str, **extra: str):  # type: ignore[no-untyped-def]
    return run_usgan(*args, env={**env, **extra})


@pytest.fixture(scope="module")
def built(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``usgan zoo build --only dcgan-stage2 --push-org testorg`` (a tiny run)."""
    out = tmp_path_factory.mktemp("zoo-build")
    r = usgan(env, "zoo", "build", "--only", ENTRY, "--data", "phantom:n=8",
              "--classes", "healthy", "--max-steps", "1", "--batch-size", "4", "--quiet",
              "--out", str(out), "--push-org", ORG, *TINY)
    assert r.returncode == 0, r.stderr
    config = json.loads((out / ENTRY / "config.json").read_text())
    assert config["options"]["recipe"] == "paper"  # the paper's Table 1, unless --recipe
    return out / "index.json"


def test_zoo_list_shows_the_six_entries_honestly() -> None:
    r = run_usgan("zoo", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"dcgan", "dcgan-stage2", "dcgan-sn", "dcgan-sn-stage2", "dcgan-sn-sa",
                         "dcgan-sn-sa-stage2"}
    assert {row["status"] for row in rows.values()} == {"not published"}
    table = run_usgan("zoo", "list", env={"COLUMNS": "80"}).stdout
    assert "…" not in table and max(len(line) for line in table.splitlines()) <= 80
    assert "dcgan-sn-sa-stage2" in table and "not published" in table
    assert rows["dcgan-sn-stage2"]["stage2"] == "stack" and rows["dcgan-sn"]["stage2"] is None
    assert len(builtin_entries()) == 6


def test_pulling_an_unpublished_entry_says_how_to_publish_it() -> None:
    r = run_usgan("zoo", "pull", "dcgan-sn-stage2")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "has not been published yet; build it with 'usgan zoo build" in r.stderr


def test_round_trip_build_push_list_pull_sample(env: dict[str, str], built: Path,
                                                tmp_path: Path) -> None:
    (row,) = json.loads(built.read_text())
    assert row["repo"] == f"{ORG}/{ENTRY}" and len(row["revision"]) == 40
    run_dir = built.parent / ENTRY
    assert set(row["sha256"]) == {p.relative_to(run_dir).as_posix()
                                  for p in run_dir.glob("*/stage*/*.safetensors")}
    index = {"USGAN_ZOO_INDEX": str(built)}
    listed = {r["name"]: r for r in json.loads(usgan(env, "zoo", "list", "--json",
                                                     **index).stdout)}
    assert listed[ENTRY]["status"] == "published" and listed[ENTRY]["classes"] == ["healthy"]
    r = usgan(env, "zoo", "pull", ENTRY, **index)
    assert r.returncode == 0, r.stderr
    pulled = Path(r.stdout.strip().splitlines()[-1])
    assert pulled.is_dir() and str(pulled).startswith(env["HF_HUB_CACHE"])
    assert row["revision"] in str(pulled)  # the pinned revision, not whatever main is now
    assert not list(pulled.rglob("checkpoints/*")), "checkpoints are never published"
    # Sampling by name gives the images the run directory gives.
    for source, out in ((ENTRY, tmp_path / "by-name"), (str(run_dir), tmp_path / "by-dir")):
        r = usgan(env, "sample", source, "--class", "healthy", "-n", "3", "--out", str(out),
                  **index)
        assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "by-dir").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "by-name").iterdir())
    for name in names:
        assert (tmp_path / "by-name" / name).read_bytes() == \
            (tmp_path / "by-dir" / name).read_bytes()
    # The card on the Hub is the run's model card.
    info = usgan(env, "zoo", "info", ENTRY, **index)
    assert info.returncode == 0 and "healthy/stage2/generator.safetensors" in info.stdout


def test_pull_offline_from_the_cache(env: dict[str, str], built: Path, hub: HubServer,
                                    tmp_path: Path) -> None:
    index = {"USGAN_ZOO_INDEX": str(built)}
    assert usgan(env, "zoo", "pull", ENTRY, **index).returncode == 0
    unpinned = {**env, "HF_HUB_CACHE": str(tmp_path / "unpinned")}  # hf-hub: follows main
    assert usgan(unpinned, "zoo", "pull", f"hf-hub:{ORG}/{ENTRY}").returncode == 0
    hub.stop()
    try:
        r = usgan(env, "zoo", "pull", ENTRY, "--offline", **index)
        assert r.returncode == 0, r.stderr
        r = usgan(unpinned, "zoo", "pull", f"hf-hub:{ORG}/{ENTRY}", "--offline")
        assert r.returncode == 0, r.stderr
        r = usgan(env, "zoo", "pull", ENTRY, **index, HF_HUB_OFFLINE="1")
        assert r.returncode == 0, r.stderr
        r = usgan(env, "zoo", "pull", ENTRY, **index)  # online, server down: fast, one line
        assert r.returncode == 2 and "cannot reach the Hub at" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    finally:
        hub.start()


def test_a_tampered_file_is_refused(env: dict[str, str], built: Path, hub: HubServer,
                                    tmp_path: Path) -> None:
    (row,) = json.loads(built.read_text())
    target = "healthy/stage2/generator.safetensors"
    original = (built.parent / ENTRY / target).read_bytes()
    hub.tamper(row["repo"], target, original[:-8] + b"\0" * 8)
    fresh = {**env, "HF_HUB_CACHE": str(tmp_path / "fresh-cache")}
    r = usgan(fresh, "zoo", "pull", ENTRY, USGAN_ZOO_INDEX=str(built))
    assert r.returncode == 2, r.stdout
    assert f"{target} has sha256" in r.stderr and "refusing to load it" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("source, needle", [
    ("hf-hub:nobody/nothing", "no repo nobody/nothing on"),
    (f"hf-hub:{ORG}/{ENTRY}@{'0' * 40}", "no such revision"),
])
def test_missing_repo_and_revision(env: dict[str, str], built: Path, source: str,
                                   needle: str) -> None:
    r = usgan(env, "zoo", "pull", source)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_repo_with_pickle_files_is_refused(env: dict[str, str], hub: HubServer,
                                            tmp_path: Path) -> None:
    from huggingface_hub import HfApi

    folder = tmp_path / "repo"
    (folder / "healthy" / "stage1").mkdir(parents=True)
    (folder / "config.json").write_text('{"options": {}}')
    (folder / "healthy" / "stage1" / "generator.bin").write_bytes(b"\x80\x04pickle")
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    api.create_repo(f"{ORG}/pickled", exist_ok=True)
    api.upload_folder(repo_id=f"{ORG}/pickled", folder_path=folder)
    r = usgan(env, "zoo", "pull", f"hf-hub:{ORG}/pickled")
    assert r.returncode == 2 and "holds pickle files (healthy/stage1/generator.bin)" in r.stderr


def test_push_prints_the_revision_and_index_line(env: dict[str, str], built: Path) -> None:
    run_dir = built.parent / ENTRY
    r = usgan(env, "zoo", "push", str(run_dir), "--repo", f"{ORG}/again", "--name", "mine")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("index line: "))
    row = json.loads(line[len("index line: "):])
    assert row["name"] == "mine" and row["repo"] == f"{ORG}/again" and len(row["revision"]) == 40
    assert row["sha256"] == json.loads(built.read_text())[0]["sha256"]  # weights as they are


def test_python_load_by_hub_source(env: dict[str, str], built: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import usgan

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    synth = usgan.load(f"hf-hub:{ORG}/{ENTRY}")
    assert synth.sample(2, cls="healthy").shape == (2, 1, 256, 256)
    assert os.environ["HF_ENDPOINT"].startswith("http://127.0.0.1:")


def test_unreachable_endpoint_fails_fast_in_one_line(tmp_path: Path) -> None:
    r = run_usgan("zoo", "pull", "hf-hub:someone/model", "--endpoint", "http://127.0.0.1:9",
                  env={"HF_HUB_CACHE": str(tmp_path)})
    assert r.returncode == 2 and "cannot reach the Hub at http://127.0.0.1:9" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

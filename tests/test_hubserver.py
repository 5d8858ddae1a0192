"""The test Hub server (``hubserver``) against the real ``huggingface_hub`` client."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubserver import HubServer
from hubserver_store import card_data
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    ModelCardData,
    constants,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

TOKEN = "hf_test_token"
README = "---\nlicense: apache-2.0\nlibrary_name: usgan\ntags:\n- gan\n- ultrasound\n---\n# Card\n"
WEIGHTS = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "  # a few bytes, binary


def git_sha1(data: bytes) -> str:
    """What git (and the Hub) call a regular file's oid."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(scope="module", autouse=True)
def client_settings() -> Iterator[None]:
    """No telemetry, no Xet, not offline, for this module only. huggingface_hub reads these
    variables once, at import, so its constants are set too (that is all the variables do)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        mp.setenv("HF_HUB_DISABLE_XET", "1")
        mp.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        mp.setattr(constants, "HF_HUB_DISABLE_XET", True)
        mp.setattr(constants, "HF_HUB_OFFLINE", False)
        yield


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    """One server with a token for the whole module."""
    with HubServer(tmp_path_factory.mktemp("hub"), token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def api(hub: HubServer) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


@pytest.fixture(scope="module")
def model(api: HfApi, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``me/model``: one upload_folder commit, then a second commit changing config.json."""
    folder = tmp_path_factory.mktemp("upload")
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "config.json").write_text('{"version": 1}')
    (folder / "README.md").write_text(README)
    (folder / "a" / "b" / "weights.safetensors").write_bytes(WEIGHTS)
    api.create_repo("me/model")
    first = api.upload_folder(repo_id="me/model", folder_path=folder, commit_message="first")
    second = api.upload_file(path_or_fileobj=b'{"version": 2}', path_in_repo="config.json",
                             repo_id="me/model", commit_message="second")
    return {"first": first.oid, "second": second.oid}


def download(hub: HubServer, cache: Path, filename: str, repo_id: str = "me/model",
             **kwargs: Any) -> bytes:
    path = hf_hub_download(repo_id, filename, endpoint=hub.endpoint, token=TOKEN,
                           cache_dir=cache, **kwargs)
    return Path(path).read_bytes()


def test_create_repo(api: HfApi, hub: HubServer) -> None:
    url = api.create_repo("me/fresh")
    assert (url.repo_id, url.repo_type, url.endpoint) == ("me/fresh", "model", hub.endpoint)
    assert api.create_repo("me/fresh", exist_ok=True).repo_id == "me/fresh"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo("me/fresh")
    assert err.value.response.status_code == 409
    assert api.create_repo("plain").repo_id == "hubuser/plain"  # no namespace: the token's user
    assert api.whoami()["name"] == "hubuser"
    # Like the Hub: a new repo holds one system commit with .gitattributes.
    assert api.list_repo_files("me/fresh") == [".gitattributes"]
    commits = api.list_repo_commits("me/fresh")
    assert [(c.title, c.authors) for c in commits] == [("initial commit", ["system"])]
    assert ("POST", "/api/repos/create") in hub.requests


def test_upload_folder_and_model_info(api: HfApi, model: dict[str, Any]) -> None:
    info = api.model_info("me/model")
    assert info.sha == model["second"] and info.id == "me/model"
    assert [s.rfilename for s in info.siblings] == [
        ".gitattributes", "README.md", "a/b/weights.safetensors", "config.json"]
    assert all(s.size is None for s in info.siblings)
    assert info.card_data is not None and info.card_data.license == "apache-2.0"
    assert info.card_data.tags == ["gan", "ultrasound"] and "gan" in info.tags
    sizes = {s.rfilename: (s.size, s.blob_id, s.lfs)
             for s in api.model_info("me/model", files_metadata=True).siblings}
    assert sizes["a/b/weights.safetensors"] == (len(WEIGHTS), git_sha1(WEIGHTS), None)
    assert sizes["config.json"] == (14, git_sha1(b'{"version": 2}'), None)
    assert api.model_info("me/model", revision=model["first"]).sha == model["first"]
    assert api.list_repo_files("me/model") == [
        ".gitattributes", "README.md", "a/b/weights.safetensors", "config.json"]
    top = {e.path: type(e).__name__ for e in api.list_repo_tree("me/model")}
    assert top == {".gitattributes": "RepoFile", "README.md": "RepoFile", "a": "RepoFolder",
                   "config.json": "RepoFile"}
    assert [e.path for e in api.list_repo_tree("me/model", "a", recursive=True)] == [
        "a/b", "a/b/weights.safetensors"]
    found = api.get_paths_info("me/model", ["config.json", "a", "missing"], expand=True)
    assert [e.path for e in found] == ["config.json", "a"]
    assert found[0].last_commit is not None and found[0].last_commit.oid == model["second"]
    assert found[1].last_commit is not None and found[1].last_commit.oid == model["first"]


def test_commits_and_refs(api: HfApi, model: dict[str, Any]) -> None:
    commits = api.list_repo_commits("me/model")
    assert [c.commit_id for c in commits[:2]] == [model["second"], model["first"]]
    assert [c.title for c in commits] == ["second", "first", "initial commit"]
    assert len({c.commit_id for c in commits}) == 3
    refs = api.list_repo_refs("me/model")
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", model["second"])]


def test_download_at_main_and_at_a_pinned_commit(hub: HubServer, model: dict[str, Any],
                                                 tmp_path: Path) -> None:
    assert download(hub, tmp_path, "config.json") == b'{"version": 2}'
    assert download(hub, tmp_path, "config.json", revision=model["first"]) == b'{"version": 1}'
    assert download(hub, tmp_path, "a/b/weights.safetensors") == WEIGHTS
    head = [r for r in hub.requests if r[0] == "HEAD"][-1]
    assert head == ("HEAD", "/me/model/resolve/main/a/b/weights.safetensors")


def test_resolve_headers_and_ranges(hub: HubServer, model: dict[str, Any]) -> None:
    url = f"{hub.endpoint}/me/model/resolve/main/a/b/weights.safetensors"
    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as resp:
        assert resp.headers["ETag"] == f'"{git_sha1(WEIGHTS)}"'
        assert resp.headers["X-Repo-Commit"] == model["second"]
        assert resp.headers["Content-Length"] == str(len(WEIGHTS))
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=2-5"})) as r:
        assert r.status == 206 and r.read() == WEIGHTS[2:6]
        assert r.headers["Content-Range"] == f"bytes 2-5/{len(WEIGHTS)}"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=-3"})) as r:
        assert r.read() == WEIGHTS[-3:]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=999-"}))
    assert err.value.code == 416


def test_snapshot_download_with_allow_patterns(hub: HubServer, model: dict[str, Any],
                                               tmp_path: Path) -> None:
    folder = Path(snapshot_download("me/model", endpoint=hub.endpoint, token=TOKEN,
                                    cache_dir=tmp_path, allow_patterns=["*.json", "a/**"]))
    assert folder.name == model["second"]
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["a/b/weights.safetensors", "config.json"]


def test_errors_map_to_the_client_exceptions(hub: HubServer, api: HfApi, model: dict[str, Any],
                                            tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("me/nothing")
    with pytest.raises(RepositoryNotFoundError):
        download(hub, tmp_path, "config.json", repo_id="me/nothing")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("me/model", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        download(hub, tmp_path, "config.json", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        download(hub, tmp_path, "config.json", revision="0" * 40)
    with pytest.raises(EntryNotFoundError):
        download(hub, tmp_path, "missing.json")
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree("me/model", "missing"))


def test_private_repos_need_the_token(hub: HubServer, api: HfApi, tmp_path: Path) -> None:
    api.create_repo("me/secret", private=True)
    api.upload_file(path_or_fileobj=b"hidden", path_in_repo="x.txt", repo_id="me/secret")
    assert api.model_info("me/secret").private is True
    anonymous = HfApi(endpoint=hub.endpoint, token=False)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.model_info("me/secret")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("me/secret", "x.txt", endpoint=hub.endpoint, token=False,
                        cache_dir=tmp_path)
    assert anonymous.model_info("me/model").id == "me/model"  # public: fine without a token
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=hub.endpoint, token="wrong").model_info("me/model")
    assert err.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError):
        anonymous.create_repo("me/nope")
    assert download(hub, tmp_path, "x.txt", repo_id="me/secret") == b"hidden"


def test_offline_after_the_server_stops(tmp_path: Path) -> None:
    server = HubServer(tmp_path / "repos", token=TOKEN)
    endpoint = server.start()
    api = HfApi(endpoint=endpoint, token=TOKEN)
    api.create_repo("me/offline")
    api.upload_file(path_or_fileobj=b"cached", path_in_repo="f.txt", repo_id="me/offline")
    cache = tmp_path / "cache"
    first = hf_hub_download("me/offline", "f.txt", endpoint=endpoint, token=TOKEN,
                            cache_dir=cache)
    server.stop()
    with pytest.raises(urllib.error.URLError):  # really down, keep-alive connections too
        urllib.request.urlopen(f"{endpoint}/api/models/me/offline", timeout=5)
    again = hf_hub_download("me/offline", "f.txt", endpoint=endpoint, token=TOKEN,
                            cache_dir=cache, local_files_only=True)
    assert again == first and Path(again).read_bytes() == b"cached"
    # Online mode with the server down: the HEAD fails to connect, the cache answers.
    assert hf_hub_download("me/offline", "f.txt", endpoint=endpoint, token=TOKEN,
                           cache_dir=cache) == first
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download("me/offline", "other.txt", endpoint=endpoint, token=TOKEN,
                        cache_dir=cache, local_files_only=True)
    # The repos live on disk: a new server on the same root serves them again.
    second = HubServer(tmp_path / "repos", token=TOKEN)
    try:
        endpoint = second.start()
        assert HfApi(endpoint=endpoint, token=TOKEN).list_repo_files("me/offline") == [
            ".gitattributes", "f.txt"]
    finally:
        second.stop()


def test_tamper_keeps_the_recorded_etag(hub: HubServer, api: HfApi, tmp_path: Path) -> None:
    api.create_repo("me/tampered")
    good = b"good weights"
    api.upload_file(path_or_fileobj=good, path_in_repo="w.safetensors", repo_id="me/tampered")
    hub.tamper("me/tampered", "w.safetensors", b"evil weights!")
    path = hf_hub_download("me/tampered", "w.safetensors", endpoint=hub.endpoint, token=TOKEN,
                           cache_dir=tmp_path)
    data = Path(path).read_bytes()
    assert data == b"evil weights!"
    assert Path(path).resolve().name == git_sha1(good)  # the client stored it under the etag
    (sibling,) = [s for s in api.model_info("me/tampered", files_metadata=True).siblings
                  if s.rfilename == "w.safetensors"]
    assert sibling.blob_id == git_sha1(good) != git_sha1(data)
    assert hashlib.sha256(data).hexdigest() != hashlib.sha256(good).hexdigest()


def test_bin_files_are_accepted(api: HfApi) -> None:
    api.create_repo("me/pickled")
    api.upload_file(path_or_fileobj=b"\x80\x04pickle", path_in_repo="model.bin",
                    repo_id="me/pickled")
    assert "model.bin" in api.list_repo_files("me/pickled")
    (entry,) = api.get_paths_info("me/pickled", "model.bin")
    assert entry.lfs is None and entry.size == 8
    # Same bytes again: preupload reports the remote oid, the client skips the empty commit.
    before = api.model_info("me/pickled").sha
    again = api.upload_file(path_or_fileobj=b"\x80\x04pickle", path_in_repo="model.bin",
                            repo_id="me/pickled")
    assert again.oid == before == api.model_info("me/pickled").sha


def test_datasets_and_pagination(hub: HubServer, api: HfApi, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    api.create_repo("me/data", repo_type="dataset")
    ops = [CommitOperationAdd(f"part-{i}.csv", f"row {i}\n".encode()) for i in range(5)]
    api.create_commit("me/data", ops, commit_message="rows", repo_type="dataset")
    path = hf_hub_download("me/data", "part-3.csv", repo_type="dataset", endpoint=hub.endpoint,
                           token=TOKEN, cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"row 3\n"
    assert ("HEAD", "/datasets/me/data/resolve/main/part-3.csv") in hub.requests
    for i in range(3):
        api.upload_file(path_or_fileobj=b"%d" % i, path_in_repo="n.txt", repo_id="me/data",
                        repo_type="dataset", commit_message=f"n={i}")
    monkeypatch.setitem(hub.page_sizes, "tree", 2)
    monkeypatch.setitem(hub.page_sizes, "commits", 2)
    files = api.list_repo_files("me/data", repo_type="dataset")
    assert files == [".gitattributes", "n.txt", *[f"part-{i}.csv" for i in range(5)]]
    assert hub.requests.count(("GET", "/api/datasets/me/data/tree/main")) == 4  # 7 files, 2/page
    commits = api.list_repo_commits("me/data", repo_type="dataset")
    assert [c.title for c in commits] == ["n=2", "n=1", "n=0", "rows", "initial commit"]
    assert hub.requests.count(("GET", "/api/datasets/me/data/commits/main")) == 3


def test_gitignore_rules_drop_files_from_uploads(api: HfApi, tmp_path: Path) -> None:
    api.create_repo("me/ignoring")
    api.upload_file(path_or_fileobj=b"*.log\nscratch/\n", path_in_repo=".gitignore",
                    repo_id="me/ignoring")
    (tmp_path / "scratch").mkdir()
    for name in ("keep.txt", "run.log", "scratch/tmp.txt"):
        (tmp_path / name).write_text(name)
    api.upload_folder(repo_id="me/ignoring", folder_path=tmp_path)
    assert api.list_repo_files("me/ignoring") == [".gitattributes", ".gitignore", "keep.txt"]


def test_card_data_parses_model_cards_as_pyyaml_does() -> None:
    yaml = pytest.importorskip("yaml")
    card = ModelCardData(license="apache-2.0", library_name="usgan", tags=["gan", "ultrasound"],
                         pipeline_tag="unconditional-image-generation", datasets=["me/data"])
    extra = {"description": "a long text " * 12, "quoted": "a: b # c", "multi": "l1\nl2\n\nl4",
             "nested": {"k": [1, 2.5, {"z": None}], "empty": [], "e": {}}, "version": "007",
             "unicode": "échographie", "lists": [[1, 2], {"a": "b"}], "flag": True,
             "model-index": [{"name": "m", "results": [{"metrics": [{"type": "fid",
                                                                      "value": 12.3}]}]}]}
    for options in ({}, {"allow_unicode": True}, {"default_flow_style": None}, {"width": 30}):
        body = yaml.dump({**card.to_dict(), **extra}, sort_keys=False, **options)
        assert card_data(f"---\n{body}---\n# Card\n") == yaml.safe_load(body), options
    literal = "code: |\n  def f():\n      return 1\n\n  x = 2\nfolded: >-\n  a\n  b\n\n  c\n"
    assert card_data(f"---\n{literal}---\n") == yaml.safe_load(literal)
    assert card_data("# no front matter\n") is None
    assert card_data("---\nnot closed: like the client, no front matter\n") is None
    for bad in ("---\na: b\n c: d\n---\n", "---\n- a list\n---\n", "---\na:\tb\n\tc: d\n---\n"):
        with pytest.raises(ValueError):
            card_data(bad)


def test_deletes_branches_tags_and_parent_checks(hub: HubServer, api: HfApi,
                                                tmp_path: Path) -> None:
    api.create_repo("me/edits")
    base = api.create_commit("me/edits", [CommitOperationAdd("d/x.txt", b"x"),
                                          CommitOperationAdd("y.txt", b"y")], commit_message="add")
    api.create_tag("me/edits", tag="v1")
    api.create_branch("me/edits", branch="dev/one")
    api.create_commit("me/edits", [CommitOperationDelete("d/")], commit_message="rm folder")
    assert api.list_repo_files("me/edits") == [".gitattributes", "y.txt"]
    assert api.list_repo_files("me/edits", revision="refs/heads/main") == [".gitattributes",
                                                                           "y.txt"]
    assert download(hub, tmp_path, "d/x.txt", repo_id="me/edits", revision="v1") == b"x"
    assert "d/x.txt" in api.list_repo_files("me/edits", revision="dev/one")
    assert [e.path for e in api.list_repo_tree("me/edits", "d", revision="dev/one")] == ["d/x.txt"]
    refs = api.list_repo_refs("me/edits")
    assert {t.name: t.target_commit for t in refs.tags} == {"v1": base.oid}
    with pytest.raises(HfHubHTTPError) as err:  # main moved on since `base`
        api.create_commit("me/edits", [CommitOperationAdd("z.txt", b"z")],
                          commit_message="stale", parent_commit=base.oid)
    assert err.value.response.status_code == 412
    with pytest.raises(EntryNotFoundError):
        api.delete_file("nothing.txt", "me/edits")
    with pytest.raises(ValueError, match="Invalid metadata"):  # validate-yaml says 400
        api.upload_file(path_or_fileobj=b"---\n- not a mapping\n---\n", path_in_repo="README.md",
                        repo_id="me/edits")
    api.delete_tag("me/edits", tag="v1")
    api.delete_branch("me/edits", branch="dev/one")
    assert [b.name for b in api.list_repo_refs("me/edits").branches] == ["main"]

"""The Hugging Face Hub side of the zoo: pull a repo laid out as a usgan run, push a run.

Everything goes through huggingface_hub's own client (`snapshot_download`, `HfApi`); no HTTP
is written here. The endpoint, token, cache folder and offline mode are read when a call is
made (`HubSettings.resolve`) and passed explicitly, because the client reads its environment
variables only once, at import.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from usgan.core.errors import UsganError
from usgan.core.io import PICKLE_SUFFIXES, sha256_file
from usgan.core.run import CARD, CHECKPOINTS, CONFIG, CURVES, EVAL, METRICS, SAMPLES, RunDir

PUBLIC_HUB = "https://huggingface.co"
# What a published run holds (checkpoints and training state stay home).
PUBLISHED = [CONFIG, CARD, EVAL, METRICS, CURVES, f"{SAMPLES}/*.png", "*/stage1/*.safetensors",
             "*/stage2/*.safetensors"]
NOT_PUBLISHED = [f"{CHECKPOINTS}/**", ".*", "**/.*", "*.tmp-*"]


class HubError(UsganError):
    """The Hub could not be reached, or what it holds is not what was asked for."""


@dataclass(frozen=True)
class HubSettings:
    """Endpoint, token, cache folder and offline mode of one call."""

    endpoint: str
    token: str | None
    cache_dir: Path | None
    offline: bool

    @classmethod
    def resolve(cls, endpoint: str | None = None, token: str | None = None,
                cache_dir: str | Path | None = None, offline: bool | None = None) -> HubSettings:
        """Arguments first, then HF_ENDPOINT / HF_TOKEN / HF_HUB_CACHE / HF_HUB_OFFLINE."""
        env = os.environ
        if offline is None:
            offline = env.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
        cache = cache_dir or env.get("HF_HUB_CACHE") or None
        return cls(endpoint=(endpoint or env.get("HF_ENDPOINT") or PUBLIC_HUB).rstrip("/"),
                   token=token or env.get("HF_TOKEN") or None,
                   cache_dir=Path(cache) if cache else None, offline=bool(offline))

    def api(self) -> HfApi:
        return HfApi(endpoint=self.endpoint, token=self.token)


def check_reachable(settings: HubSettings, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when the endpoint cannot be reached (the client would retry
    for about 23 s, printing a line each time)."""
    url = urlparse(settings.endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return
    except OSError as err:
        raise HubError(
            f"cannot reach the Hub at {settings.endpoint} ({err.strerror or err}); check the "
            "network or HF_ENDPOINT, or use --offline (HF_HUB_OFFLINE=1) for a model already "
            "in the cache"
        ) from None


def weight_digests(run: RunDir) -> dict[str, str]:
    """sha256 of every weight file of a run, by path inside it."""
    return {p.relative_to(run.root).as_posix(): sha256_file(p)
            for p in sorted(run.root.glob("*/stage*/*.safetensors"))}


def _pickles(paths: list[str]) -> list[str]:
    return [p for p in paths if Path(p).suffix.lower() in PICKLE_SUFFIXES]


def _refuse_pickles(where: str, paths: list[str]) -> None:
    bad = _pickles(paths)
    if bad:
        raise HubError(f"{where} holds pickle files ({', '.join(bad[:3])}); usgan loads only "
                       "safetensors, because unpickling a file can run any code in it")


@contextlib.contextmanager
def _answers(where: str, settings: HubSettings) -> Iterator[None]:
    """The client's errors about ``where`` as one `HubError` line each."""
    try:
        yield
    except RepositoryNotFoundError:
        raise HubError(f"no repo {where.split('@')[0]} on {settings.endpoint} (or it is "
                       "private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise HubError(f"{where}: no such revision on {settings.endpoint}") from None
    except EntryNotFoundError as err:
        raise HubError(f"{where}: a file is missing on the Hub ({err})") from None
    except (LocalEntryNotFoundError, FileNotFoundError):
        cache = f" {settings.cache_dir}" if settings.cache_dir else ""
        raise HubError(f"{where} is not in the Hugging Face cache{cache}; run once without "
                       "--offline to download it") from None
    except HfHubHTTPError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HubError(f"the Hub at {settings.endpoint} refused {where}: {first}") from None


def repo_files(repo: str, revision: str | None, settings: HubSettings
               ) -> list[tuple[str, int]]:
    """(path, size) of every file of ``repo`` at ``revision``."""
    check_reachable(settings)
    with _answers(f"{repo}@{revision or 'main'}", settings):
        info = settings.api().model_info(repo, revision=revision, files_metadata=True)
    return [(s.rfilename, int(s.size or 0)) for s in info.siblings or []]


def pull(repo: str, revision: str | None, settings: HubSettings,
         sha256: Mapping[str, str] | None = None) -> Path:
    """Download (or find in the cache) ``repo`` at ``revision``; returns the local run folder.

    With ``sha256`` every listed file must have that digest, else nothing is loaded.
    """
    where = f"{repo}@{revision or 'main'}"
    with _answers(where, settings):
        if not settings.offline:
            check_reachable(settings)
            info = settings.api().model_info(repo, revision=revision)
            _refuse_pickles(f"Hub repo {where}", [s.rfilename for s in info.siblings or []])
        # By the name asked for (a branch, a tag or a commit), not the commit it resolved to:
        # the client then records the name in its cache (refs/main), so the same pull works
        # --offline later. The download is checked again below, whatever main is by then.
        local = Path(snapshot_download(
            repo, revision=revision, cache_dir=settings.cache_dir, endpoint=settings.endpoint,
            token=settings.token, local_files_only=settings.offline,
            allow_patterns=PUBLISHED, ignore_patterns=NOT_PUBLISHED))
    _refuse_pickles(f"the download of {where}", [
        p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()])
    _verify(local, where, sha256 or {})
    if not RunDir(local).exists():
        raise HubError(f"{where} is not laid out as a usgan run (no config.json)")
    return local


def _verify(local: Path, where: str, sha256: Mapping[str, str]) -> None:
    for rel, want in sorted(sha256.items()):
        path = local / rel
        if not path.is_file():
            raise HubError(f"{where}: {rel} is missing; the zoo index lists it")
        got = sha256_file(path)
        if got != want:
            raise HubError(
                f"{where}: {rel} has sha256 {got[:16]}..., the zoo index says {want[:16]}...: "
                "the file is not the published one; refusing to load it (nothing was deleted; "
                "'hf cache delete' removes the cached copy)"
            )


@dataclass(frozen=True)
class PushResult:
    """Where a pushed run went: repo, pinned revision and the sha256 of every weight file."""

    repo: str
    revision: str
    sha256: dict[str, str]
    url: str


def push(run: RunDir, repo: str, settings: HubSettings, private: bool = False,
         tag: str | None = None) -> PushResult:
    """Upload a finished run (weights as they are, never re-saved; no checkpoints)."""
    if not run.is_finished():
        raise HubError(f"{run.root} is not a finished run; finish it (usgan train --resume) "
                       "before pushing")
    _refuse_pickles(str(run.root), [p.relative_to(run.root).as_posix()
                                    for p in run.root.rglob("*") if p.is_file()])
    if settings.offline:
        raise HubError("cannot push with --offline / HF_HUB_OFFLINE=1")
    check_reachable(settings)
    api = settings.api()
    with _answers(repo, settings):
        api.create_repo(repo, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo, folder_path=run.root, allow_patterns=PUBLISHED,
                          ignore_patterns=NOT_PUBLISHED,
                          commit_message=f"usgan: {run.root.name}")
        revision = api.model_info(repo).sha or ""  # after the push (it may be several commits)
        if tag:
            api.create_tag(repo, tag=tag, revision=revision)
    return PushResult(repo, revision, weight_digests(run), f"{settings.endpoint}/{repo}")

"""SOURCE: the one way to name a model. A run directory, a zoo name or a Hub repo.

    runs/mine                      a run directory (any existing path)
    dcgan-sn-stage2                a zoo entry (usgan zoo list)
    dcgan-sn-stage2.busi           the same architecture, weights trained on other data (a tag)
    hf-hub:owner/name[@revision]   any Hub repo laid out as a usgan run

`parse_source` says which; `resolve` turns any of them into a local run directory. Every
command and API that takes a SOURCE (``usgan.load``, ``usgan sample``, ``--stage1-from``,
evaluation) goes through `resolve`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from usgan.core.errors import UsganError
from usgan.core.io import FileFormatError, user_path
from usgan.core.run import RunDir

from .hub import HubSettings, pull
from .index import PUBLISHED, get_index

HUB_PREFIX = "hf-hub:"
_ZOO_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9_-]*)?$")
_HUB_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_REVISION = re.compile(r"^[\w./-]+$")


class SourceError(UsganError):
    """A SOURCE that names nothing usable."""


@dataclass(frozen=True)
class Source:
    """A parsed SOURCE: ``kind`` is "path", "zoo" or "hub"."""

    text: str
    kind: str
    path: Path | None = None
    name: str = ""  # zoo: entry name
    tag: str = ""  # zoo: variant after the dot
    repo: str = ""  # hub: owner/name
    revision: str | None = None  # hub: branch, tag or commit


def parse_source(text: str | Path) -> Source:
    """What ``text`` names; an unusable string is a one-line `SourceError`."""
    raw = str(text).strip()
    if not raw:
        raise SourceError("empty SOURCE; give a run directory, a zoo name or hf-hub:owner/name")
    try:
        path = user_path(raw, "SOURCE")
    except FileFormatError as err:
        raise SourceError(str(err)) from None
    if isinstance(text, Path) or path.exists():
        return Source(raw, "path", path=path)
    if raw.startswith(HUB_PREFIX):
        repo, _, revision = raw[len(HUB_PREFIX):].partition("@")
        if not _HUB_REPO.match(repo) or (revision and not _REVISION.match(revision)):
            raise SourceError(f"{raw!r} is not a Hub source; expected hf-hub:owner/name or "
                              "hf-hub:owner/name@revision")
        return Source(raw, "hub", repo=repo, revision=revision or None)
    if _ZOO_NAME.match(raw):
        name, _, tag = raw.partition(".")
        return Source(raw, "zoo", name=name, tag=tag)
    return Source(raw, "path", path=path)


def resolve(text: str | Path, settings: HubSettings | None = None) -> Path:
    """The local run directory that ``text`` names: a zoo entry or a Hub repo is pulled
    (or found in the Hugging Face cache) first."""
    source = parse_source(text)
    if source.kind == "path":
        assert source.path is not None
        if not source.path.exists():
            raise SourceError(f"{source.text}: no such run directory")
        if not RunDir(source.path).exists():
            raise SourceError(f"{source.text} is not a usgan run (no config.json); give a "
                              "folder written by 'usgan train'")
        return source.path
    settings = settings or HubSettings.resolve()
    if source.kind == "hub":
        return pull(source.repo, source.revision, settings)
    entry = get_index().get(source.text)
    if entry.status != PUBLISHED:
        raise SourceError(
            f"zoo entry {entry.name!r} has not been published yet; build it with 'usgan zoo "
            f"build --only {entry.name} --data SPEC --out DIR' and publish it with 'usgan zoo "
            "push' (docs/zoo.md), or give a run directory"
        )
    return pull(entry.repo, entry.revision, settings, entry.sha256)

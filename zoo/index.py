"""The zoo index: named pretrained models, each a Hub repo laid out as a usgan run.

Entries come through the ``register_zoo_entries`` hook, from the built-in index
(`usgan.zoo.entries`, the six configurations of the paper's Table 1) and from any plugin, so
an organisation can publish its own zoo. A name may carry a variant tag after a dot
(``dcgan-sn-stage2.busi``): the same architecture, weights trained on other data.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from usgan.core.errors import ConfigError, DuplicateNameError, PluginError, UnknownNameError
from usgan.core.io import FileFormatError, read_json, write_json
from usgan.core.plugin_manager import call_each, get_plugins

INDEX_ENV = "USGAN_ZOO_INDEX"  # index files (JSON lists of entries), separated by os.pathsep

PUBLISHED, NOT_PUBLISHED = "published", "not published"


@dataclass(frozen=True)
class ZooEntry:
    """One pretrained model: where it lives on the Hub and what it is.

    ``revision`` pins a commit and ``sha256`` holds the digest of every weight file
    (``<class>/<stage>/generator.safetensors`` ...); an entry without them has never been
    published and says so.
    """

    name: str  # "dcgan-sn-stage2" or, with a variant tag, "dcgan-sn-stage2.busi"
    stage1: str
    stage2: str | None
    repo: str  # owner/name on the Hub
    revision: str | None = None
    sha256: dict[str, str] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    data: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    plugin: str = ""  # filled in by the index

    @property
    def status(self) -> str:
        return PUBLISHED if self.revision and self.sha256 else NOT_PUBLISHED

    def row(self) -> dict[str, Any]:
        """A JSON row (``usgan zoo list --json``): `index_row` plus where it came from and its
        status."""
        return {**asdict(self), "status": self.status}

    def index_row(self) -> dict[str, Any]:
        """The entry as a zoo index file holds it (`write_index`, `ZooIndex.load_file`)."""
        out = asdict(self)
        out.pop("plugin")
        return out

    @classmethod
    def from_run(cls, run: Any, name: str, repo: str, revision: str | None,
                 sha256: Mapping[str, str]) -> ZooEntry:
        """The entry of a pushed run directory (a `RunDir`): its networks, classes and data
        from its config.json."""
        config = run.read_config()
        return cls(name=name, stage1=config["stage1"]["name"],
                   stage2=(config.get("stage2") or {}).get("name"), repo=repo,
                   revision=revision, sha256=dict(sha256), classes=list(run.classes),
                   data=(config.get("data") or {}).get("spec", ""))


def write_index(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write a zoo index file (a JSON list of entries, as `ZooIndex.load_file` reads); two
    entries of one name are a `ConfigError` naming it, since a pull takes one by name."""
    twice = [name for name, n in Counter(r["name"] for r in rows).items() if n > 1]
    if twice:
        raise ConfigError(f"{path}: two entries are named {twice[0]!r}; the names in a zoo "
                          "index must differ (usgan zoo pull takes one by name)")
    return write_json(path, [dict(r) for r in rows])  # rows: ZooEntry.index_row()


class ZooIndex:
    """Names -> `ZooEntry`."""

    def __init__(self) -> None:
        self._entries: dict[str, ZooEntry] = {}

    def add(self, entry: ZooEntry, plugin: str = "") -> None:
        if not isinstance(entry, ZooEntry):
            raise PluginError(f"plugin {plugin!r} registered {entry!r}; expected a ZooEntry")
        old = self._entries.get(entry.name)
        if old is not None:
            raise DuplicateNameError(
                f"zoo name {entry.name!r} is registered twice: by plugin {old.plugin!r} and by "
                f"plugin {plugin!r}; uninstall one or exclude it with USGAN_LOAD_PLUGINS")
        self._entries[entry.name] = ZooEntry(**{**asdict(entry), "plugin": plugin})

    def load_file(self, path: Path) -> None:
        """Entries from a JSON index file (as ``usgan zoo build`` writes); they replace
        entries of the same name (the file is the newer word on them)."""
        rows = read_json(path, "zoo index")
        names = {f.name for f in fields(ZooEntry)} - {"plugin"}
        if not isinstance(rows, list) or not all(
                isinstance(r, dict) and {"name", "stage1", "repo"} <= r.keys() for r in rows):
            raise FileFormatError(f"{path}: a zoo index is a JSON list of entries with at "
                                  "least name, stage1 and repo")
        for row in rows:
            try:
                entry = ZooEntry(**{k: v for k, v in row.items() if k in names})
            except TypeError as err:
                raise FileFormatError(f"{path}: entry {row.get('name')!r}: {err}") from None
            self._entries[entry.name] = replace(entry, plugin=str(path))

    def get(self, name: str) -> ZooEntry:
        """The entry called ``name``; unknown names list the known ones."""
        if name not in self._entries:
            raise UnknownNameError("zoo name", name, self._entries)
        return self._entries[name]

    def __iter__(self) -> Iterator[ZooEntry]:
        return iter(self._entries[n] for n in sorted(self._entries))

    def __contains__(self, name: object) -> bool:
        return name in self._entries


_INDEX: dict[str, ZooIndex] = {}


def get_index() -> ZooIndex:
    """The process-wide zoo index (built from every plugin's hook on first use)."""
    if "index" not in _INDEX:
        index = ZooIndex()
        call_each(get_plugins(), "register_zoo_entries",
                  lambda name, info: {"register": lambda e, name=name: index.add(e, name)})
        for path in filter(None, os.environ.get(INDEX_ENV, "").split(os.pathsep)):
            index.load_file(Path(path))
        _INDEX["index"] = index
    return _INDEX["index"]

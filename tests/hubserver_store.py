"""On-disk repository store behind ``hubserver``: git-style commits, refs, blobs.

Layout: ``root/{kind}s/{namespace}/{name}/`` holds ``meta.json`` (visibility, branches,
tags), ``commits/{sha}.json`` (a flat ``path -> {oid, size}`` tree, parents, message,
author, date) and ``objects/`` (file bytes, named by git blob sha1). Blob, tree and commit
ids are computed as git computes them, so they look and behave like the Hub's.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

KINDS = ("model", "dataset", "space")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# Written by the Hub into every new repo's first commit (this list is our own, shorter one).
GITATTRIBUTES = "".join(
    f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n"
    for ext in ("bin", "ckpt", "gz", "h5", "onnx", "pt", "pth", "safetensors", "tar", "zip")
)


class HubError(Exception):
    """An HTTP error as the Hub reports it: status, ``X-Error-Code`` and message."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}


def iso_now() -> str:
    """The current UTC time in the Hub's format (``2024-01-31T12:00:00.000Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_sha(data: bytes) -> str:
    """The git blob id of ``data`` (the Hub's ``oid`` and ``ETag`` for regular files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def tree_oids(tree: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Git tree ids of every folder of a flat ``path -> entry`` tree (``""`` is the root)."""
    kids: dict[str, dict[str, str | None]] = {"": {}}  # folder -> name -> blob oid (None: folder)
    for path, entry in tree.items():
        parts = path.split("/")
        for i in range(1, len(parts)):
            kids.setdefault("/".join(parts[: i - 1]), {})[parts[i - 1]] = None
            kids.setdefault("/".join(parts[:i]), {})
        kids.setdefault("/".join(parts[:-1]), {})[parts[-1]] = entry["oid"]
    oids: dict[str, str] = {}
    for folder in sorted(kids, key=lambda f: -(f.count("/") + 1 if f else 0)):
        body = b""
        names = kids[folder]
        for name in sorted(names, key=lambda n: n + "/" if names[n] is None else n):
            sub = f"{folder}/{name}" if folder else name
            mode, oid = ("40000", oids[sub]) if names[name] is None else ("100644", names[name])
            body += f"{mode} {name}".encode() + b"\0" + bytes.fromhex(str(oid))
        oids[folder] = hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()
    return oids


def gitignored(rules: str, path: str) -> bool:
    """Whether ``.gitignore`` ``rules`` ignore ``path`` (globs, ``!``, ``dir/``, anchors)."""
    ignored, parts = False, path.split("/")
    for line in rules.splitlines():
        pat = line.strip()
        if not pat or pat.startswith("#"):
            continue
        negate, pat = pat.startswith("!"), pat.lstrip("!")
        dir_only, pat = pat.endswith("/"), pat.rstrip("/")
        anchored, pat = "/" in pat, pat.lstrip("/")
        for i in range(len(parts)):
            if dir_only and i == len(parts) - 1:
                continue
            target = "/".join(parts[: i + 1]) if anchored else parts[i]
            if fnmatch.fnmatchcase(target, pat):
                ignored = not negate
                break
    return ignored


class Store:
    """Repositories under ``root``; thread-safe for one process (one lock for writes)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.lock = threading.RLock()

    # -- repos ---------------------------------------------------------------------------
    def path(self, kind: str, repo_id: str) -> Path:
        """Folder of a repo; a 404 ``RepoNotFound`` for a malformed id."""
        parts = repo_id.split("/")
        if kind not in KINDS or len(parts) != 2 or not all(NAME_RE.match(p) for p in parts):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return self.root / f"{kind}s" / parts[0] / parts[1]

    def exists(self, kind: str, repo_id: str) -> bool:
        """Whether the repo exists."""
        try:
            return (self.path(kind, repo_id) / "meta.json").is_file()
        except HubError:
            return False

    def meta(self, kind: str, repo_id: str) -> dict[str, Any]:
        """``meta.json`` of an existing repo, else a 404 ``RepoNotFound``."""
        if not self.exists(kind, repo_id):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return _read_json(self.path(kind, repo_id) / "meta.json")

    def save_meta(self, kind: str, repo_id: str, meta: dict[str, Any]) -> None:
        """Replace ``meta.json`` atomically."""
        _write_json(self.path(kind, repo_id) / "meta.json", meta)

    def create(self, kind: str, repo_id: str, private: bool) -> dict[str, Any]:
        """Create a repo whose ``main`` holds the Hub's system commit of ``.gitattributes``."""
        with self.lock:
            if self.exists(kind, repo_id):
                raise HubError(409, f"You already created this {kind} repo")
            try:
                folder = self.path(kind, repo_id)
            except HubError:
                raise HubError(400, f"Invalid repo name: {repo_id}") from None
            meta = {"id": uuid.uuid4().hex[:24], "private": private, "createdAt": iso_now(),
                    "heads": {}, "tags": {}}
            (folder / "commits").mkdir(parents=True, exist_ok=True)
            (folder / "objects").mkdir(exist_ok=True)
            self.save_meta(kind, repo_id, meta)
            ops = [("file", ".gitattributes", GITATTRIBUTES.encode())]
            self.commit(kind, repo_id, "main", ops, "initial commit", "", "system", create=True)
            return self.meta(kind, repo_id)

    def delete(self, kind: str, repo_id: str) -> None:
        """Delete a repo and everything in it."""
        with self.lock:
            self.meta(kind, repo_id)
            folder = self.path(kind, repo_id)
            for sub in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
                sub.rmdir() if sub.is_dir() else sub.unlink()
            folder.rmdir()

    # -- revisions -----------------------------------------------------------------------
    def resolve(self, kind: str, repo_id: str, rev: str) -> str:
        """Commit sha of a branch, tag (``refs/...`` spellings too) or (abbreviated) sha."""
        meta = self.meta(kind, repo_id)
        for prefix, refs in (("", meta["heads"]), ("refs/heads/", meta["heads"]),
                             ("", meta["tags"]), ("refs/tags/", meta["tags"])):
            if rev.startswith(prefix) and rev[len(prefix):] in refs:
                return refs[rev[len(prefix):]]
        if re.fullmatch(r"[0-9a-f]{7,40}", rev):
            found = [p.stem for p in (self.path(kind, repo_id) / "commits").glob(f"{rev}*.json")]
            if len(found) == 1:
                return found[0]
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def branch(self, kind: str, repo_id: str, rev: str) -> str:
        """The branch a commit to ``rev`` moves; 404 if absent, 400 for a tag or a sha."""
        heads = self.meta(kind, repo_id)["heads"]
        name = rev.removeprefix("refs/heads/")
        if name in heads:
            return name
        self.resolve(kind, repo_id, rev)  # 404 RevisionNotFound when it is nothing at all
        raise HubError(400, f"Invalid revision {rev!r}: commits can only be made to a branch")

    def load(self, kind: str, repo_id: str, sha: str) -> dict[str, Any]:
        """A commit record: ``tree``, ``parents``, ``title``, ``message``, ``author``, ``date``."""
        return _read_json(self.path(kind, repo_id) / "commits" / f"{sha}.json")

    def history(self, kind: str, repo_id: str, sha: str) -> list[tuple[str, dict[str, Any]]]:
        """``(sha, commit)`` from ``sha`` back to the first commit, along first parents."""
        out: list[tuple[str, dict[str, Any]]] = []
        current: str | None = sha
        while current:
            commit = self.load(kind, repo_id, current)
            out.append((current, commit))
            current = commit["parents"][0] if commit["parents"] else None
        return out

    def last_commits(self, kind: str, repo_id: str, sha: str,
                     paths: list[str]) -> dict[str, dict[str, str]]:
        """For each file or folder path, ``{id, title, date}`` of the last commit touching it."""
        def under(tree: dict[str, Any], path: str) -> dict[str, str]:
            return {p: e["oid"] for p, e in tree.items() if p == path or p.startswith(path + "/")}

        found: dict[str, dict[str, str]] = {}
        history = self.history(kind, repo_id, sha)
        for i, (csha, commit) in enumerate(history):
            parent = history[i + 1][1]["tree"] if i + 1 < len(history) else {}
            for path in paths:
                if path not in found and under(commit["tree"], path) != under(parent, path):
                    found[path] = {"id": csha, "title": commit["title"], "date": commit["date"]}
        return found

    # -- content ---------------------------------------------------------------------------
    def read(self, kind: str, repo_id: str, entry: dict[str, Any]) -> bytes:
        """The stored bytes of a tree entry (what a download returns)."""
        return (self.path(kind, repo_id) / "objects" / entry.get("blob", entry["oid"])).read_bytes()

    def commit(self, kind: str, repo_id: str, branch: str, ops: list[tuple[Any, ...]],
               title: str, message: str, author: str, parent: str | None = None,
               create: bool = False) -> str:
        """Apply ``ops`` (``("file", path, bytes)``, ``("deletedFile"|"deletedFolder", path)``)
        on top of ``branch``, move it to the new commit and return the commit's sha."""
        with self.lock:
            meta = self.meta(kind, repo_id)
            head = meta["heads"].get(branch)
            if head is None and not create:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            if parent is not None and head is not None and not head.startswith(parent):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            tree = dict(self.load(kind, repo_id, head)["tree"]) if head else {}
            folder = self.path(kind, repo_id)
            for op in ops:
                path = op[1].strip("/") if op[0] == "deletedFolder" else op[1]
                if op[0] == "file":
                    oid = git_blob_sha(op[2])
                    blob = folder / "objects" / oid
                    if not blob.exists():
                        _write_bytes(blob, op[2])
                    tree[path] = {"oid": oid, "size": len(op[2])}
                elif op[0] == "deletedFile" and path in tree:
                    del tree[path]
                elif op[0] == "deletedFolder" and any(p.startswith(path + "/") for p in tree):
                    tree = {p: e for p, e in tree.items() if not p.startswith(path + "/")}
                else:
                    raise HubError(404, f"A file with this name doesn't exist: {path}",
                                   "EntryNotFound")
            folders = {p.rsplit("/", 1)[0] for p in tree if "/" in p}
            folders |= {f.rsplit("/", i)[0] for f in folders for i in range(f.count("/") + 1)}
            if clash := sorted(folders & set(tree)):
                raise HubError(400, f"A file and a folder cannot share a path: {clash[0]}")
            parents = [head] if head else []
            when = iso_now()
            sig = f"{author} <{author}@users.noreply.hub> {int(time.time())} +0000"
            text = "".join(f"parent {p}\n" for p in parents)
            text = (f"tree {tree_oids(tree)['']}\n{text}author {sig}\ncommitter {sig}\n\n"
                    f"{title}\n\n{message}".rstrip("\n") + "\n")
            sha = hashlib.sha1(b"commit %d\0" % len(text.encode()) + text.encode()).hexdigest()
            record = {"tree": tree, "parents": parents, "title": title, "message": message,
                      "author": author, "date": when}
            _write_json(folder / "commits" / f"{sha}.json", record)
            meta["heads"][branch] = sha
            self.save_meta(kind, repo_id, meta)
            return sha

    def tamper(self, kind: str, repo_id: str, path: str, data: bytes, rev: str = "main") -> None:
        """Serve ``data`` for ``path`` at ``rev`` while every record (oid, size, commit sha)
        stays as it was: a storage corruption the client can only catch by hashing."""
        with self.lock:
            sha = self.resolve(kind, repo_id, rev)
            commit = self.load(kind, repo_id, sha)
            if path not in commit["tree"]:
                raise KeyError(f"{repo_id}@{rev} has no file {path!r}")
            name = "tampered-" + hashlib.sha1(data).hexdigest()
            _write_bytes(self.path(kind, repo_id) / "objects" / name, data)
            commit["tree"][path]["blob"] = name
            _write_json(self.path(kind, repo_id) / "commits" / f"{sha}.json", commit)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_json(path: Path, value: Any) -> None:
    _write_bytes(path, json.dumps(value, indent=1, sort_keys=True).encode())


# -- YAML front matter (the subset model cards use) -----------------------------------------
Line = tuple[int, str, str, int]  # indent, text without comment, raw line, blank lines before
FRONT_MATTER_RE = re.compile(r"^\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", re.DOTALL)


def card_data(readme: str) -> dict[str, Any] | None:
    """The YAML front matter of a README as a dict; None when absent (or, as for the client,
    not closed by a ``---`` line); ValueError when it is not a valid mapping."""
    match = FRONT_MATTER_RE.match(readme)
    if match is None:
        return None
    value = parse_yaml(match.group(1))
    if value is not None and not isinstance(value, dict):
        raise ValueError("YAML front matter must be a mapping")
    return value


def parse_yaml(text: str) -> Any:
    """Block mappings and sequences, flow ``[...]``/``{...}``, scalars, ``|``/``>`` blocks."""
    lines: list[Line] = []
    blanks = 0  # blank lines before a line: they are newlines in folded scalars
    for raw in text.splitlines():
        body = _strip_comment(raw).rstrip()
        if not body.strip():
            blanks += 1
            continue
        lead = body[: len(body) - len(body.lstrip())]
        if "\t" in lead:
            raise ValueError(f"tab in indentation: {raw!r}")
        lines.append((len(lead), body.strip(), raw, blanks))
        blanks = 0
    if not lines:
        return None
    value, end = _block(lines, 0, lines[0][0])
    if end != len(lines):
        raise ValueError(f"bad indentation: {lines[end][2]!r}")
    return value


def _block(lines: list[Line], i: int, indent: int) -> tuple[Any, int]:
    seq = lines[i][1] == "-" or lines[i][1].startswith("- ")
    out: Any = [] if seq else {}
    while i < len(lines) and lines[i][0] == indent:
        text = lines[i][1]
        if seq != (text == "-" or text.startswith("- ")):
            break  # a sequence may sit at its key's indent: the mapping goes on after it
        if seq:
            item = text[1:].strip()
            if item and (_split_key(item) or item == "-" or item.startswith("- ")):  # nested
                lines[i] = (indent + len(text) - len(item), item, *lines[i][2:])
                value, i = _block(lines, i, lines[i][0])
            else:
                value, i = _value(lines, i, indent, item)
            out.append(value)
            continue
        split = _split_key(text)
        if split is None:
            raise ValueError(f"expected 'key: value': {lines[i][2]!r}")
        out[split[0]], i = _value(lines, i, indent, split[1])
    return out, i


def _value(lines: list[Line], i: int, indent: int, rest: str) -> tuple[Any, int]:
    j = i + 1
    while rest and j < len(lines) and lines[j][0] > indent:  # continuation lines
        j += 1
    more = lines[i + 1:j]
    if rest[:1] in ("|", ">"):
        base = more[0][0] if more else 0
        parts = [(line[2][base:].rstrip(), line[3]) for line in more]
        return _fold(parts, literal=rest[0] == "|") + ("" if "-" in rest else "\n"), j
    if rest[:1] not in ("'", '"', "[", "{") and any(_split_key(m[1]) for m in more):
        raise ValueError(f"mapping values are not allowed here: {more[0][2]!r}")
    if rest:
        return _scalar(_fold([(rest, 0), *((line[1], line[3]) for line in more)], False)), j
    nxt = lines[j] if j < len(lines) else None
    if nxt and (nxt[0] > indent or (nxt[0] == indent and nxt[1].startswith("-"))):
        return _block(lines, j, nxt[0])
    return None, j


def _fold(parts: list[tuple[str, int]], literal: bool) -> str:
    """Join lines: a line break is a space (a newline if ``literal``), a blank line a newline;
    in a double-quoted scalar, a line ending in an escaping backslash joins without a space."""
    out = parts[0][0] if parts else ""
    for text, blanks in parts[1:]:
        if out.startswith('"') and (len(out) - len(out.rstrip("\\"))) % 2:
            out = out[:-1] + text
        else:
            out += ("\n" * (blanks + 1) if literal else "\n" * blanks or " ") + text
    return out


_ESCAPES = dict(zip("0abtnvfre \"/\\N_LP\t", "\0\a\b\t\n\v\f\r\x1b \"/\\\x85\xa0\u2028\u2029\t",
                    strict=True))


def _unescape(body: str) -> str:
    """The value of a YAML double-quoted scalar's inside (``\\n``, ``\\xE9``, ``\\u00e9``...)."""
    out, i = [], 0
    while i < len(body):
        if body[i] != "\\":
            out.append(body[i])
            i += 1
        elif body[i + 1] in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[body[i + 1]]
            out.append(chr(int(body[i + 2:i + 2 + width], 16)))
            i += 2 + width
        else:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
    return "".join(out)


def _split_key(text: str) -> tuple[str, str] | None:
    if text[:1] in "[{":
        return None
    match = re.match(r"""^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^:#]+?)\s*:(?:\s+(.*))?$""", text)
    return None if match is None else (str(_scalar(match.group(1))), match.group(2) or "")


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'" and (i == 0 or line[i - 1] in " [{,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _split_flow(text: str) -> list[str]:
    items, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [item for item in items if item]


def _scalar(text: str) -> Any:
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(item) for item in _split_flow(text[1:-1])]
    if text.startswith("{") and text.endswith("}"):
        pairs = [_split_key(item) or (item, "") for item in _split_flow(text[1:-1])]
        return {key: _scalar(value) if value else None for key, value in pairs}
    if len(text) > 1 and text[0] == text[-1] == '"':
        return _unescape(text[1:-1])
    if len(text) > 1 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "~"):
        return None
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", text):
        return float(text)
    return text

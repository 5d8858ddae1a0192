"""A small Hugging Face Hub-compatible HTTP server for tests (standard library only).

It speaks the protocol the real ``huggingface_hub`` client speaks (written from that
client's source): repo creation, info, tree, refs, commits, paths-info, preupload, ndjson
commits, ``/resolve`` downloads with ``ETag``/``X-Repo-Commit``/``Range``, and the
``X-Error-Code`` errors the client turns into ``RepositoryNotFoundError``,
``RevisionNotFoundError`` and ``EntryNotFoundError``. Repos live on disk under ``root``
(see ``hubserver_store``), so a new server on the same root serves the same repos.

Deliberate limits: preupload answers ``uploadMode: "regular"`` for every file (no LFS/Xet
services exist here), so files never carry ``lfs`` metadata; no pull requests; one user.
"""

from __future__ import annotations

import base64
import html
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, NoReturn
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

try:
    from hubserver_store import KINDS, SHA_RE, HubError, Store, card_data, gitignored, tree_oids
except ImportError:  # imported as ``tests.hubserver``
    from .hubserver_store import KINDS, SHA_RE, HubError, Store, card_data, gitignored, tree_oids

Reply = tuple[int, Any, dict[str, str]]


class HubServer:
    """Serve the repos under ``root`` on ``127.0.0.1``.

    With ``token`` set, requests must send ``Authorization: Bearer <token>`` to write or to
    see private repos (anonymous: 401 ``RepoNotFound``; a wrong token: 401 on any route, as
    on the Hub). Without it, anyone may do anything. ``requests`` logs ``(method, path)``
    (path without the query string, as sent, percent-encoding kept). Listings are paged
    with ``Link: <...>; rel="next"`` like the Hub's, ``page_sizes`` entries at a time.
    """

    def __init__(self, root: Path, token: str | None = None, *, user: str = "hubuser") -> None:
        self.root = Path(root)
        self.token = token
        self.user = user
        self.store = Store(self.root)
        self.endpoint = ""
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self.page_sizes = {"tree": 1000, "expanded": 50, "commits": 50}  # the Hub's

    def start(self) -> str:
        """Start serving in a daemon thread (the previous port again after ``stop``, when
        free); return the endpoint ``http://127.0.0.1:PORT``."""
        if self._server is not None:
            return self.endpoint
        handler = type("Handler", (_Handler,), {"hub": self})
        try:
            server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        except OSError:
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self._port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hubserver", daemon=True)
        self._server = server
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections (clients then see it down)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tamper(self, repo_id: str, path: str, data: bytes, *, repo_type: str = "model",
               revision: str = "main") -> None:
        """Make downloads of ``path`` at ``revision`` return ``data``, keeping its recorded
        oid/``ETag``, size and the commit sha: only a client-side hash check can tell."""
        self.store.tamper(repo_type, repo_id, path, data, revision)

    def repo_url(self, kind: str, repo_id: str) -> str:
        """The web URL of a repo, as the Hub spells it."""
        return f"{self.endpoint}/{'' if kind == 'model' else kind + 's/'}{repo_id}"


class _Handler(BaseHTTPRequestHandler):
    hub: ClassVar[HubServer]
    protocol_version = "HTTP/1.1"
    server_version = "hubserver/1"
    timeout = 60

    # -- plumbing ----------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._conns.add(self.connection)

    def finish(self) -> None:
        with self.hub._lock:
            self.hub._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the ``requests`` list is the log."""

    def _dispatch(self) -> None:
        method, url = self.command, urlsplit(self.path)
        with self.hub._lock:
            self.hub.requests.append((method, url.path))
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.body = self._read_body()
        try:
            seg = [unquote(s) for s in url.path.split("/")]
            status, payload, headers = self._route(method, seg)
        except HubError as err:
            headers = {**err.headers, "X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            status, payload = err.status, {"error": err.message}
        except Exception as err:  # a server bug: say what it was
            status, payload, headers = 500, {"error": f"{type(err).__name__}: {err}"}, {}
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        if not isinstance(payload, bytes):
            headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        for key, value in headers.items():
            self.send_header(key, value.encode("ascii", "backslashreplace").decode())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            raise HubError(400, "Request body is not valid JSON") from None

    def _flag(self, name: str) -> bool:
        return self.query.get(name, ["false"])[-1].lower() in ("1", "true")

    # -- auth --------------------------------------------------------------------------------
    def _user(self) -> str | None:
        """The caller: the hub's user, or None when anonymous (401 for a wrong token)."""
        if self.hub.token is None:
            return self.hub.user
        auth = self.headers.get("Authorization")
        if auth is None:
            return None
        if auth != f"Bearer {self.hub.token}":
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.hub.user

    def _access(self, kind: str, repo_id: str, write: bool = False) -> dict[str, Any]:
        """The repo's meta if the caller may read it (and write, if asked)."""
        user = self._user()
        meta = self.hub.store.meta(kind, repo_id) if self.hub.store.exists(kind, repo_id) else None
        if meta is None or (meta["private"] and user is None):
            self._no_repo()
        if write and user is None:
            raise HubError(401, "Invalid username or password.")
        return meta

    def _no_repo(self) -> NoReturn:
        """The Hub's answer for a repo that is missing or hidden: 401 if anonymous, else 404."""
        raise HubError(401 if self._user() is None else 404, "Repository not found",
                       "RepoNotFound")

    # -- routing -----------------------------------------------------------------------------
    def _route(self, method: str, seg: list[str]) -> Reply:
        seg = seg[1:]
        if seg[:1] == ["api"]:
            return self._api(method, seg[1:])
        kind = "model"
        if seg[:1] in (["datasets"], ["spaces"]):
            kind, seg = seg[0][:-1], seg[1:]
        if len(seg) >= 5 and seg[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(kind, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]))
        if len(seg) >= 4 and seg[1] == "resolve":  # a one-part repo id ("gpt2"): none here
            self._no_repo()
        raise HubError(404, "Not Found")

    def _api(self, method: str, seg: list[str]) -> Reply:
        simple = {("GET", "whoami-v2"): self._whoami, ("POST", "validate-yaml"): self._validate,
                  ("POST", "repos/create"): self._create, ("DELETE", "repos/delete"): self._delete}
        if (method, "/".join(seg)) in simple:
            return simple[method, "/".join(seg)]()
        if len(seg) < 2 or seg[0] not in ("models", "datasets", "spaces"):
            raise HubError(404, "Not Found")
        if len(seg) == 2:  # a one-part repo id ("gpt2"): none here
            self._no_repo()
        kind, repo_id = seg[0][:-1], f"{seg[1]}/{seg[2]}"
        action, rest = (seg[3] if len(seg) > 3 else ""), seg[4:]
        routes = {("GET", ""): self._info, ("GET", "revision"): self._info,
                  ("GET", "tree"): self._tree, ("GET", "refs"): self._refs,
                  ("GET", "commits"): self._commits, ("POST", "paths-info"): self._paths_info,
                  ("POST", "preupload"): self._preupload, ("POST", "commit"): self._commit,
                  ("POST", "branch"): self._ref_edit, ("DELETE", "branch"): self._ref_edit,
                  ("POST", "tag"): self._ref_edit, ("DELETE", "tag"): self._ref_edit}
        if (method, action) not in routes or (action == "" and rest):
            self._access(kind, repo_id)  # RepoNotFound first, e.g. for "gpt2/revision/main"
            raise HubError(404, "Not Found")
        self.action, self.rest = action, rest  # the client sends a revision as one segment
        return routes[method, action](kind, repo_id, "/".join(rest))

    # -- account and repos -------------------------------------------------------------------
    def _whoami(self) -> Reply:
        user = self._user()
        if user is None or "Authorization" not in self.headers:
            raise HubError(401, "Invalid username or password.")
        return 200, {"type": "user", "id": "0" * 24, "name": user, "fullname": user,
                     "email": None, "emailVerified": False, "isPro": False, "orgs": [],
                     "auth": {"type": "access_token",
                              "accessToken": {"displayName": "hubserver", "role": "write"}}}, {}

    def _validate(self) -> Reply:
        try:
            card_data(str(self._json().get("content", "")))
        except ValueError as err:
            return 400, {"errors": [{"message": str(err)}], "warnings": []}, {}
        return 200, {"errors": [], "warnings": []}, {}

    def _create(self) -> Reply:
        user = self._user()
        if user is None:
            raise HubError(401, "Invalid username or password.")
        body = self._json()
        kind = body.get("type") or "model"
        if kind not in KINDS or not body.get("name"):
            raise HubError(400, f"Invalid repo type or name: {kind!r} {body.get('name')!r}")
        repo_id = f"{body.get('organization') or user}/{body['name']}"
        private = (body["visibility"] == "private") if body.get("visibility") else bool(
            body.get("private"))
        url = self.hub.repo_url(kind, repo_id)
        try:
            meta = self.hub.store.create(kind, repo_id, private)
        except HubError as err:
            if err.status != 409:
                raise
            return 409, {"error": err.message, "url": url}, {"X-Error-Message": err.message}
        return 200, {"url": url, "name": repo_id, "id": meta["id"]}, {}

    def _delete(self) -> Reply:
        body = self._json()
        kind = body.get("type") or "model"
        repo_id = f"{body.get('organization') or self._user()}/{body.get('name')}"
        self._access(kind, repo_id, write=True)
        self.hub.store.delete(kind, repo_id)
        return 200, {}, {}

    # -- reading -----------------------------------------------------------------------------
    def _snapshot(self, kind: str, repo_id: str, rev: str) -> tuple[str, dict[str, Any]]:
        """``(sha, tree)`` at a revision the caller may read."""
        self._access(kind, repo_id)
        sha = self.hub.store.resolve(kind, repo_id, rev or "main")
        return sha, self.hub.store.load(kind, repo_id, sha)["tree"]

    def _text(self, kind: str, repo_id: str, tree: dict[str, Any], path: str) -> str | None:
        """A file of a tree as text; None when absent."""
        entry = tree.get(path)
        return None if entry is None else self.hub.store.read(kind, repo_id, entry).decode(
            errors="replace")

    def _info(self, kind: str, repo_id: str, rev: str) -> Reply:
        meta = self._access(kind, repo_id)
        sha, tree = self._snapshot(kind, repo_id, rev)
        commit = self.hub.store.load(kind, repo_id, sha)
        blobs = self._flag("blobs")
        info: dict[str, Any] = {
            "_id": meta["id"], "id": repo_id, "author": repo_id.split("/")[0], "sha": sha,
            "lastModified": commit["date"], "createdAt": meta["createdAt"],
            "private": meta["private"], "disabled": False, "gated": False, "downloads": 0,
            "likes": 0, "tags": [], "spaces": [],
            "usedStorage": sum(e["size"] for e in tree.values()),
            "siblings": [{"rfilename": p, **({"size": e["size"], "blobId": e["oid"]} if blobs
                                            else {})} for p, e in sorted(tree.items())]}
        if kind == "model":
            info["modelId"] = repo_id
        try:
            card = card_data(self._text(kind, repo_id, tree, "README.md") or "") or {}
        except ValueError:  # the Hub refuses such cards at upload; cardData is left out
            card = {}
        if card:  # what the Hub derives from the card: cardData, library_name, tags...
            info.update({k: card[k] for k in ("library_name", "pipeline_tag")
                         if isinstance(card.get(k), str)}, cardData=card)
            tags = card["tags"] if isinstance(card.get("tags"), list) else []
            license_tag = [f"license:{card['license']}"] if card.get("license") else []
            info["tags"] = list(dict.fromkeys(
                [*filter(None, [info.get("library_name")]), *map(str, tags), *license_tag]))
        expand = self.query.get("expand", []) + self.query.get("expand[]", [])
        if expand:
            info = {k: v for k, v in info.items() if k in {"_id", "id", *expand}}
        return 200, info, {}

    def _entries(self, tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Tree entries by path, as the Hub lists them: folders first, then files."""
        out = {p: {"type": "file", "oid": e["oid"], "size": e["size"], "path": p}
               for p, e in tree.items()}
        out.update({p: {"type": "directory", "oid": oid, "size": 0, "path": p}
                    for p, oid in tree_oids(tree).items() if p})
        return dict(sorted(out.items(), key=lambda kv: (kv[1]["type"] == "file", kv[0])))

    def _expand(self, kind: str, repo_id: str, sha: str, entries: list[dict[str, Any]]) -> None:
        last = self.hub.store.last_commits(kind, repo_id, sha, [e["path"] for e in entries])
        for entry in entries:
            entry["lastCommit"] = last.get(entry["path"])

    def _tree(self, kind: str, repo_id: str, _: str) -> Reply:
        rev, path = (self.rest or [""])[0], "/".join(self.rest[1:])
        sha, tree = self._snapshot(kind, repo_id, rev)
        entries, path = self._entries(tree), path.strip("/")
        if path and entries.get(path, {}).get("type") != "directory":
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        prefix, recursive = (path + "/" if path else ""), self._flag("recursive")
        listed = [e for p, e in entries.items()
                  if p.startswith(prefix) and (recursive or "/" not in p[len(prefix):])]
        expand = self._flag("expand")
        start = int(self.query.get("cursor", ["0"])[-1] or 0)
        size = self.hub.page_sizes["expanded" if expand else "tree"]
        page = listed[start:start + size]
        if expand:
            self._expand(kind, repo_id, sha, page)
        return 200, page, self._next_link(start + size, len(listed))

    def _next_link(self, start: int, total: int) -> dict[str, str]:
        if start >= total:
            return {}
        query = {**self.query, "cursor": [str(start)]}
        url = f"{self.hub.endpoint}{urlsplit(self.path).path}?{urlencode(query, doseq=True)}"
        return {"Link": f'<{url}>; rel="next"'}

    def _paths_info(self, kind: str, repo_id: str, rev: str) -> Reply:
        sha, tree = self._snapshot(kind, repo_id, rev)
        if self.headers.get("Content-Type", "").startswith("application/json"):
            body = self._json()
            paths, expand = body.get("paths", []), bool(body.get("expand"))
        else:
            form = parse_qs(self.body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = form.get("expand", ["false"])[-1].lower() in ("1", "true")
        entries = self._entries(tree)
        found = [entries[p.strip("/")] for p in dict.fromkeys(paths) if p.strip("/") in entries]
        if expand:
            self._expand(kind, repo_id, sha, found)
        return 200, found, {}

    def _refs(self, kind: str, repo_id: str, _: str) -> Reply:
        meta = self._access(kind, repo_id)

        def refs(group: str, prefix: str) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"refs/{prefix}/{n}", "targetCommit": s}
                    for n, s in sorted(meta[group].items())]

        out: dict[str, Any] = {"branches": refs("heads", "heads"), "converts": [],
                               "tags": refs("tags", "tags")}
        if self._flag("include_prs"):
            out["pullRequests"] = []
        return 200, out, {}

    def _commits(self, kind: str, repo_id: str, rev: str) -> Reply:
        sha, _ = self._snapshot(kind, repo_id, rev)
        formatted = "formatted" in self.query.get("expand[]", []) + self.query.get("expand", [])
        items = []
        for csha, c in self.hub.store.history(kind, repo_id, sha):
            item = {"id": csha, "title": c["title"], "message": c["message"], "date": c["date"],
                    "authors": [{"user": c["author"], "avatar": None}]}
            if formatted:
                item["formatted"] = {"title": html.escape(c["title"]),
                                     "message": html.escape(c["message"])}
            items.append(item)
        start, size = int(self.query.get("cursor", ["0"])[-1] or 0), self.hub.page_sizes["commits"]
        return 200, items[start:start + size], self._next_link(start + size, len(items))

    def _resolve(self, kind: str, repo_id: str, rev: str, path: str) -> Reply:
        sha, tree = self._snapshot(kind, repo_id, rev)
        if path not in tree:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
        data = self.hub.store.read(kind, repo_id, tree[path])
        text = b"\0" not in data[:8000]
        headers = {"ETag": f'"{tree[path]["oid"]}"', "X-Repo-Commit": sha, "Accept-Ranges": "bytes",
                   "Content-Type": "text/plain; charset=utf-8" if text else
                   "application/octet-stream"}
        span = _byte_range(self.headers.get("Range"), len(data))
        if span is None:
            return 200, data, headers
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{len(data)}"
        return 206, data[span[0]:span[1] + 1], headers

    # -- writing -----------------------------------------------------------------------------
    def _preupload(self, kind: str, repo_id: str, rev: str) -> Reply:
        self._access(kind, repo_id, write=True)
        sha, tree = self._snapshot(kind, repo_id, rev)
        body = self._json()
        rules = body.get("gitIgnore")
        if rules is None:
            rules = self._text(kind, repo_id, tree, ".gitignore")
        files = [{"path": f["path"], "uploadMode": "regular",
                  "shouldIgnore": bool(rules) and gitignored(rules, f["path"]),
                  "oid": tree[f["path"]]["oid"] if f["path"] in tree else None}
                 for f in body.get("files", [])]
        return 200, {"files": files, "commitOid": sha}, {}

    def _commit(self, kind: str, repo_id: str, rev: str) -> Reply:
        self._access(kind, repo_id, write=True)
        if self._flag("create_pr"):
            raise HubError(400, "create_pr is not supported by this server")
        branch = self.hub.store.branch(kind, repo_id, rev or "main")
        header, ops = None, []
        try:
            for item in map(json.loads, filter(bytes.strip, self.body.splitlines())):
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    data = (base64.b64decode(value["content"], validate=True)
                            if value.get("encoding", "base64") == "base64"
                            else value["content"].encode())
                    ops.append(("file", _repo_path(value["path"]), data))
                elif key in ("deletedFile", "deletedFolder"):
                    ops.append((key, _repo_path(value["path"].rstrip("/"))))
                else:
                    raise HubError(400, f"Unsupported commit operation {key!r} (this server "
                                        "has no LFS storage: preupload always says 'regular')")
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise HubError(400, f"Malformed commit payload: {err!r}") from None
        if not header or not header.get("summary"):
            raise HubError(400, "The commit needs a header line with a summary")
        sha = self.hub.store.commit(kind, repo_id, branch, ops, header["summary"],
                                    header.get("description") or "", self._user() or self.hub.user,
                                    header.get("parentCommit"))
        return 200, {"success": True, "commitOid": sha, "hookOutput": "", "pullRequestUrl": None,
                     "commitUrl": f"{self.hub.repo_url(kind, repo_id)}/commit/{sha}"}, {}

    def _ref_edit(self, kind: str, repo_id: str, name: str) -> Reply:
        """Create (POST) or delete (DELETE) a branch or a tag."""
        self._access(kind, repo_id, write=True)
        store, body = self.hub.store, self._json()
        group, target = ("heads" if self.action == "branch" else "tags"), ""
        if self.command == "POST" and group == "tags":
            target, name = store.resolve(kind, repo_id, name or "main"), str(body.get("tag", ""))
        elif self.command == "POST":
            target = store.resolve(kind, repo_id, body.get("startingPoint") or "main")
        if not re.fullmatch(r"[\w.-]+(/[\w.-]+)*", name) or ".." in name or SHA_RE.match(name):
            raise HubError(400, f"Invalid reference name: {name!r}")
        with store.lock:
            meta = store.meta(kind, repo_id)
            if self.command == "DELETE":
                if name not in meta[group]:
                    raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
                if group == "heads" and name == "main":
                    raise HubError(403, "Cannot delete the default branch")
                del meta[group][name]
            elif name in meta["heads"] or name in meta["tags"]:
                raise HubError(409, f"Reference already exists: {name}")
            else:
                meta[group][name] = target
            store.save_meta(kind, repo_id, meta)
        return 200, {}, {}


def _repo_path(path: str) -> str:
    """A path in a repo, or a 400 for absolute, ``..``, empty parts or ``.git``."""
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive ``(first, last)`` of a single ``bytes=`` range; None to send everything."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if match is None or not (match[1] or match[2]):
        return None
    if match[1]:
        first = int(match[1])
        last = min(int(match[2]), size - 1) if match[2] else size - 1
        if match[2] and int(match[2]) < first:
            return None
    else:
        first, last = max(size - int(match[2]), 0), size - 1
        if int(match[2]) == 0:
            first = size
    if first >= size:
        raise HubError(416, "Range Not Satisfiable", headers={"Content-Range": f"bytes */{size}"})
    return first, last


def main() -> None:
    """Serve ROOT on loopback until interrupted: ``python tests/hubserver.py ROOT [--port N]``
    (docs/results.md publishes the reproduction's weights to it)."""
    import argparse
    import time

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    hub = HubServer(args.root)
    hub._port = args.port
    print(hub.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()


if __name__ == "__main__":
    main()

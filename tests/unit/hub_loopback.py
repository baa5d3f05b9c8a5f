"""A loopback Hugging Face Hub serving dataset repos in the Hub's real formats, for end-to-end loads.

:class:`HubLoopback` is the research tools' :class:`Loopback` (canned replies per path)
that also answers ``HEAD`` as the Hub does (the ``GET`` status and headers, no body) and
gives unrouted repo paths the Hub's 404s (``X-Error-Code``: ``RepoNotFound``,
``RevisionNotFound`` or ``EntryNotFound``). :meth:`HubLoopback.dataset` serves one
dataset repo at its commits, which is what ``huggingface_hub`` and ``datasets.load_dataset``
read (datasets 5.x / huggingface_hub 2.x)::

    GET  /api/datasets/{id}/revision/{rev}          repo info, with the commit ``sha`` of ``rev``
    GET  /api/datasets/{id}/refs                    branches, converts and tags
    GET  /api/datasets/{id}/tree/{rev}[/{dir}]      one folder's entries (type, oid, size, path)
    HEAD /datasets/{id}/resolve/{rev}/{file}        X-Repo-Commit, ETag (the git blob id), Content-Length
    GET  /datasets/{id}/resolve/{rev}/{file}        the file (whole: this server ignores Range)

:func:`use_hub` points both libraries at the server (``HF_ENDPOINT`` and the constants
they read it into at import) with their caches under a temporary folder, online and
without a token::

    with HubLoopback() as hub:
        hub.dataset("org/tiny", {SHA: {"data/train.jsonl": b'{"a": 1}\\n'}}, branches={"main": SHA})
        use_hub(monkeypatch, hub.url, tmp_path / "hf")
        datasets.load_dataset("org/tiny", split="train")
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from test_tools_loopback import Loopback, Reply, Seen

_API = re.compile(r"^/api/datasets/([^/]+/[^/]+)/(revision|tree|refs)(?:/([^/]+))?(/.*)?$")
_RESOLVE = re.compile(r"^/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


def blob_id(data: bytes) -> str:
    """The git blob id of a file: the Hub's ``oid`` and ``ETag`` of a file kept in git (not LFS)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _not_found(code: str, message: str, commit: str | None = None) -> Reply:
    headers = {"X-Error-Code": code, "X-Error-Message": message}
    if commit:
        headers["X-Repo-Commit"] = commit
    return Reply({"error": message}, status=404, headers=headers)


class HubLoopback(Loopback):
    """A :class:`Loopback` that answers ``HEAD`` and the Hub's 404s for the repos it serves."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: dict[str, dict[str, str]] = {}  # repo id -> {branch, tag or sha (quoted): commit}
        loop, base = self, self._server.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                loop._route_missing(urlsplit(self.path).path)
                super().do_GET()

            def do_HEAD(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                loop.seen.append(Seen("HEAD", parts.path, parse_qs(parts.query), dict(self.headers.items())))
                loop._route_missing(parts.path)
                queue = loop.routes.get(parts.path)
                reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else Reply("", status=404)
                body = reply.body if isinstance(reply.body, bytes) else \
                    reply.body.encode() if isinstance(reply.body, str) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Length", str(len(body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()

        self._server.RequestHandlerClass = Handler

    def _route_missing(self, path: str) -> None:
        """Queues the Hub's 404 for a repo path nothing was queued for."""
        if path in self.routes:
            return
        api, resolve = _API.match(path), _RESOLVE.match(path)
        if not (api or resolve):
            return
        repo, rev = (api.group(1), api.group(3)) if api else (resolve.group(1), resolve.group(2))
        if repo not in self.refs:
            reply = _not_found("RepoNotFound", "Repository not found")
        elif rev is not None and rev not in self.refs[repo]:
            reply = _not_found("RevisionNotFound", f"Invalid rev id: {rev}")
        else:
            reply = _not_found("EntryNotFound", "Entry not found", self.refs[repo].get(rev or "main"))
        self.routes.setdefault(path, [reply])

    def dataset(self, repo_id: str, commits: dict[str, dict[str, bytes]], branches: dict[str, str],
                tags: dict[str, str] | None = None) -> None:
        """Serves the dataset repo ``repo_id``: ``{commit sha: {path: content}}``; branches and tags name commits."""
        tags = tags or {}
        names = {**{sha: sha for sha in commits}, **branches, **tags}
        self.refs[repo_id] = {quote(name, safe=""): sha for name, sha in names.items()}
        self.reply(f"/api/datasets/{repo_id}/refs", {
            "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in branches.items()],
            "converts": [],
            "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in tags.items()]})
        org = repo_id.split("/")[0]
        for rev, sha in self.refs[repo_id].items():
            files = commits[sha]
            self.reply(f"/api/datasets/{repo_id}/revision/{rev}", {
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id, "author": org, "sha": sha,
                "lastModified": "2025-01-02T03:04:05.000Z", "private": False, "gated": False, "disabled": False,
                "downloads": 0, "likes": 0, "tags": ["format:json", "size_categories:n<1K"],
                "createdAt": "2025-01-01T00:00:00.000Z", "usedStorage": sum(len(b) for b in files.values()),
                "siblings": [{"rfilename": path} for path in sorted(files)]})
            folders: dict[str, list[dict[str, Any]]] = {"": []}
            for path, data in sorted(files.items()):
                self.reply(f"/datasets/{repo_id}/resolve/{rev}/{quote(path)}", data,
                           headers={"X-Repo-Commit": sha, "ETag": f'"{blob_id(data)}"', "Accept-Ranges": "bytes"})
                *dirs, _ = path.split("/")
                for depth in range(len(dirs)):
                    parent, folder = "/".join(dirs[:depth]), "/".join(dirs[:depth + 1])
                    if folder not in folders:
                        folders[folder] = []
                        folders[parent].append({"type": "directory", "oid": blob_id(folder.encode()), "size": 0,
                                                "path": folder})
                folders["/".join(dirs)].append({"type": "file", "oid": blob_id(data), "size": len(data),
                                                "path": path})
            for folder, entries in folders.items():
                self.reply(f"/api/datasets/{repo_id}/tree/{rev}" + (f"/{quote(folder)}" if folder else ""), entries)


def use_hub(monkeypatch: pytest.MonkeyPatch, url: str, home: Path, offline: bool = False) -> None:
    """Points huggingface_hub and datasets at ``url``, with every cache under ``home``, no token, online or not."""
    import datasets.config
    from huggingface_hub import constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    resolve = url + "/{repo_id}/resolve/{revision}/{filename}"
    for name, value in {"ENDPOINT": url, "HUGGINGFACE_CO_URL_TEMPLATE": resolve, "HF_HUB_OFFLINE": offline,
                        "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_TOKEN_PATH": str(home / "token"),
                        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens")}.items():
        monkeypatch.setattr(constants, name, value)
    downloads = home / "datasets" / datasets.config.DOWNLOADED_DATASETS_DIR
    for name, value in {"HF_ENDPOINT": url, "HUB_DATASETS_URL": url + "/datasets/{repo_id}/resolve/{revision}/{path}",
                        "HF_HUB_OFFLINE": offline, "HF_DATASETS_OFFLINE": offline, "HF_CACHE_HOME": str(home),
                        "HF_DATASETS_CACHE": home / "datasets", "HF_MODULES_CACHE": home / "modules",
                        "DOWNLOADED_DATASETS_PATH": downloads,
                        "EXTRACTED_DATASETS_PATH": downloads / datasets.config.EXTRACTED_DATASETS_DIR}.items():
        monkeypatch.setattr(datasets.config, name, value)

"""GitHub code search and file reading through the REST API.

    gh = GitHubClient(HttpClient("github", cache, headers=github_headers(token)))
    hits = gh.search_code("GRPOTrainer reward_funcs", language="python")
    text = gh.read_file("huggingface/trl", "trl/trainer/grpo_trainer.py", start_line=1, max_lines=80)

The token (``GITHUB_TOKEN``, optional; GitHub's code search requires one) travels only
in the session's ``Authorization`` header: it is never part of a cache key, a message
or a result. The base URL is ``INTERN_GITHUB_URL`` (see :mod:`intern.tools.research`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from intern.errors import ToolError
from intern.tools.http_client import HttpClient

__all__ = ["DEFAULT_GITHUB_URL", "CodeHit", "GitHubClient", "github_headers"]

DEFAULT_GITHUB_URL = "https://api.github.com"
_REPO_RE = re.compile(r"^[\w.-]+/[\w.-]+$")


def github_headers(token: str | None) -> dict[str, str]:
    """The headers GitHub's REST API expects, with the token when there is one."""
    headers = {"Accept": "application/vnd.github.text-match+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


@dataclass(frozen=True)
class CodeHit:
    """A file matching a code search.

    Attributes:
        repo: ``owner/name``; cite the file as ``github:<repo>/<path>``.
        path: The file's path in the repository.
        url: The file's page on GitHub.
        fragments: The matching snippets GitHub returned (text-match), if any.
    """

    repo: str
    path: str
    url: str
    fragments: list[str]


class GitHubClient:
    """GitHub's REST API: code search and repository contents.

    Args:
        http: The HTTP client, with :func:`github_headers` in its session headers.
        base_url: The API root.
    """

    def __init__(self, http: HttpClient, base_url: str = DEFAULT_GITHUB_URL):
        self.http = http
        self.base_url = base_url.rstrip("/")

    def _get_json(self, url: str, params: dict[str, Any]) -> Any:
        try:
            return self.http.get_json(url, params)
        except ToolError as exc:
            if exc.kind == "http_error" and ": HTTP 401 " in exc.message:
                raise ToolError(f"{exc.message}; set GITHUB_TOKEN (GitHub's code search needs a token)",
                                "http_error") from exc
            raise

    def search_code(self, query: str, language: str | None = None, repo: str | None = None,
                    limit: int = 10) -> list[CodeHit]:
        """Searches code on GitHub, e.g. example training scripts; returns files with matching snippets.

        Args:
            query: Code keywords, e.g. 'GRPOTrainer reward_funcs'.
            language: Only files in this language, e.g. 'python'.
            repo: Only this repository, 'owner/name'.
            limit: How many files to return (1-30).
        """
        if not 1 <= limit <= 30:
            raise ToolError(f"limit must be between 1 and 30, got {limit}", "invalid_arguments")
        if repo is not None and not _REPO_RE.match(repo):
            raise ToolError(f"repo must look like 'owner/name', got {repo!r}", "invalid_arguments")
        qualifiers = ([f"language:{language}"] if language else []) + ([f"repo:{repo}"] if repo else [])
        q = " ".join([query.strip(), *qualifiers])
        body = self._get_json(f"{self.base_url}/search/code", {"q": q, "per_page": limit})
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise ToolError("GitHub's code search reply has no 'items' list", "bad_response")
        hits = []
        for item in body["items"][:limit]:
            try:
                hits.append(CodeHit(repo=item["repository"]["full_name"], path=item["path"], url=item["html_url"],
                                    fragments=[m.get("fragment", "") for m in item.get("text_matches") or []][:3]))
            except (KeyError, TypeError) as exc:
                raise ToolError(f"GitHub's code search reply has a malformed item (missing {exc})",
                                "bad_response") from exc
        return hits

    def read_file(self, repo: str, path: str, ref: str | None = None, start_line: int = 1,
                  max_lines: int = 200) -> str:
        """Reads a file (or lists a directory) from a GitHub repository, with line numbers.

        Args:
            repo: The repository, 'owner/name'.
            path: The file or directory path in the repository, e.g. 'examples/scripts/sft.py'.
            ref: A branch, tag or commit; default: the default branch.
            start_line: The first line to show (1-based).
            max_lines: How many lines to show (1-1000).
        """
        if not _REPO_RE.match(repo):
            raise ToolError(f"repo must look like 'owner/name', got {repo!r}", "invalid_arguments")
        if start_line < 1 or not 1 <= max_lines <= 1000:
            raise ToolError("start_line must be >= 1 and max_lines between 1 and 1000", "invalid_arguments")
        url = f"{self.base_url}/repos/{repo}/contents/{path.strip('/')}"
        body = self._get_json(url, {"ref": ref})
        if isinstance(body, list):  # a directory
            entries = [f"{e.get('type', '?'):4} {e.get('path', '?')}" for e in body if isinstance(e, dict)]
            return f"directory {repo}/{path} ({len(entries)} entries)\n" + "\n".join(entries)
        if not isinstance(body, dict) or body.get("type") != "file":
            kind = body.get("type") if isinstance(body, dict) else type(body).__name__
            raise ToolError(f"{repo}/{path} is a {kind}, not a file or directory", "bad_response")
        text = self._content(body, repo, path)
        lines = text.splitlines()
        shown = lines[start_line - 1:start_line - 1 + max_lines]
        width = len(str(start_line + len(shown)))
        header = (f"{repo}/{path}" + (f"@{ref}" if ref else "") +
                  f" lines {start_line}-{start_line + len(shown) - 1} of {len(lines)}")
        if start_line - 1 + len(shown) < len(lines):
            header += f" (more: start_line={start_line + len(shown)})"
        return header + "\n" + "\n".join(f"{start_line + i:>{width}}| {line}" for i, line in enumerate(shown))

    def _content(self, body: dict[str, Any], repo: str, path: str) -> str:
        if body.get("encoding") == "base64" and isinstance(body.get("content"), str):
            try:
                raw = base64.b64decode(body["content"], validate=False)
            except (binascii.Error, ValueError) as exc:
                raise ToolError(f"GitHub returned undecodable content for {repo}/{path}", "bad_response") from exc
        elif body.get("download_url"):  # files over 1 MB come without content
            return self.http.get(body["download_url"]).text
        else:
            raise ToolError(f"GitHub returned no content for {repo}/{path}", "bad_response")
        if b"\x00" in raw[:8000]:
            raise ToolError(f"{repo}/{path} is a binary file ({len(raw)} bytes)", "bad_response")
        return raw.decode("utf-8", errors="replace")

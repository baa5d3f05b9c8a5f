"""Hugging Face documentation: search (``/api/docs/search``) and fetch pages as markdown.

The Hub's docs search returns excerpts ``{text, product, heading1, heading2,
source_page_url, source_page_title}``; every docs page is also served as markdown at
``<endpoint>/docs/<product>/<page>.md``::

    docs = HfDocsClient(HttpClient("hf-docs", cache))
    hits = docs.search("completion only loss", product="trl")
    page = docs.fetch("trl/sft_trainer", section="Train on completions only")

The endpoint is ``HF_ENDPOINT`` (see :mod:`intern.tools.research`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

from intern.errors import ToolError
from intern.tools.http_client import HttpClient
from intern.tools.hub import DEFAULT_HF_ENDPOINT

__all__ = ["DocHit", "HfDocsClient", "markdown_section"]

_EXCERPT_CHARS = 500
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*)$")


@dataclass(frozen=True)
class DocHit:
    """One excerpt of the documentation.

    Attributes:
        product: The library, e.g. ``trl``.
        page: The page title.
        heading: The section the excerpt is from.
        url: The page URL (with the section anchor); pass its path to the fetch tool.
        excerpt: The matching text (cut to 500 characters).
    """

    product: str
    page: str
    heading: str
    url: str
    excerpt: str


def markdown_section(markdown: str, heading: str) -> str | None:
    """The section of a markdown page whose heading contains ``heading`` (case-insensitive).

    The section runs to the next heading of the same or a higher level. None when no
    heading matches.
    """
    lines = markdown.splitlines()
    needle = heading.strip().lower()
    for i, line in enumerate(lines):
        match = _HEADING_RE.match(line)
        if match and needle in match.group(2).lower():
            level = len(match.group(1))
            end = next((j for j in range(i + 1, len(lines))
                        if (m := _HEADING_RE.match(lines[j])) and len(m.group(1)) <= level), len(lines))
            return "\n".join(lines[i:end])
    return None


class HfDocsClient:
    """Search and fetch the Hugging Face library docs (transformers, trl, peft, datasets, ...).

    Args:
        http: The HTTP client.
        endpoint: The Hub root URL.
    """

    def __init__(self, http: HttpClient, endpoint: str = DEFAULT_HF_ENDPOINT):
        self.http = http
        self.endpoint = endpoint.rstrip("/")

    def search(self, query: str, product: str | None = None, limit: int = 8) -> list[DocHit]:
        """Searches the Hugging Face library docs (trl, transformers, peft, datasets, accelerate...).

        Args:
            query: What to look for, e.g. 'GRPOTrainer reward function signature'.
            product: Only this library's docs, e.g. 'trl'.
            limit: How many excerpts to return (1-30).
        """
        if len(query.strip()) < 3:
            raise ToolError("the query needs at least 3 characters", "invalid_arguments")
        if not 1 <= limit <= 30:
            raise ToolError(f"limit must be between 1 and 30, got {limit}", "invalid_arguments")
        body = self.http.get_json(f"{self.endpoint}/api/docs/search", {"q": query.strip().lower(),
                                                                        "product": product})
        if not isinstance(body, list):
            raise ToolError(f"the docs search returned a {type(body).__name__}, not a list of excerpts",
                            "bad_response")
        hits = []
        for item in body[:limit]:
            if not isinstance(item, dict) or "text" not in item or "source_page_url" not in item:
                raise ToolError("the docs search returned an excerpt without text or source_page_url",
                                "bad_response")
            text = " ".join(re.sub(r"<[^>]*>", "", str(item["text"])).split())
            hits.append(DocHit(product=str(item.get("product", "")),
                               page=str(item.get("heading1") or item.get("source_page_title") or ""),
                               heading=str(item.get("heading2") or ""), url=str(item["source_page_url"]),
                               excerpt=text[:_EXCERPT_CHARS] + ("..." if len(text) > _EXCERPT_CHARS else "")))
        return hits

    def fetch(self, page: str, section: str | None = None) -> str:
        """Fetches a Hugging Face docs page as markdown, whole or one section.

        Args:
            page: The page, e.g. 'trl/sft_trainer', or its URL from a search result.
            section: Only the section whose heading contains this text, e.g. 'Dataset format'.
        """
        path = urlparse(page).path if "://" in page else page
        path = path.split("#")[0].strip("/").removeprefix("docs/").removesuffix(".md")
        if not path or "/" not in path or ".." in path:
            raise ToolError(f"'{page}' is not a docs page; expected '<library>/<page>', e.g. 'trl/sft_trainer'",
                            "invalid_arguments")
        text = self.http.get(f"{self.endpoint}/docs/{path}.md").text
        if section is None:
            return text
        part = markdown_section(text, section)
        if part is None:
            headings = [m.group(2) for line in text.splitlines() if (m := _HEADING_RE.match(line))]
            raise ToolError(f"docs page {path} has no section matching '{section}'; its headings: "
                            f"{'; '.join(headings[:30])}", "not_found")
        return part

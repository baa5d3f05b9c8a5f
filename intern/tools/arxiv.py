"""arXiv search and paper details through the arXiv API (``/api/query``, an Atom feed).

    client = ArxivClient(HttpClient("arxiv", cache), base_url="https://export.arxiv.org/api")
    papers = client.search("group relative policy optimization", max_results=5)
    paper = client.paper("2402.03300")

A free-text query becomes an AND of ``all:`` terms; a query that already uses arXiv's
field prefixes (``ti:``, ``au:``, ``abs:``, ``cat:``, ``all:``...) is passed through.
The base URL comes from ``INTERN_ARXIV_URL`` (see :mod:`intern.tools.research`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

from intern.errors import ToolError
from intern.tools.http_client import HttpClient

__all__ = ["DEFAULT_ARXIV_URL", "ArxivClient", "ArxivPaper", "normalize_arxiv_id", "parse_feed"]

DEFAULT_ARXIV_URL = "https://export.arxiv.org/api"
_NS = {"a": "http://www.w3.org/2005/Atom", "arxiv": "http://arxiv.org/schemas/atom",
       "os": "http://a9.com/-/spec/opensearch/1.1/"}
_ID_RE = re.compile(r"(\d{4}\.\d{4,5}|[a-z][a-z.-]*(?:\.[A-Z]{2})?/\d{7})(v\d+)?")
_FIELD_RE = re.compile(r"\b(ti|au|abs|co|jr|cat|rn|id|all):")


@dataclass(frozen=True)
class ArxivPaper:
    """One arXiv paper.

    Attributes:
        id: The arXiv id without version (``2402.03300``); cite it as ``arxiv:<id>``.
        version: The version of this record (``v3``).
        title: The title, whitespace collapsed.
        authors: Author names in order.
        summary: The abstract.
        published: First-version date (``YYYY-MM-DD``).
        updated: This version's date.
        primary_category: E.g. ``cs.CL``.
        categories: All categories.
        url: The abstract page.
        pdf_url: The PDF link.
        doi: The DOI when the authors gave one.
        comment: The authors' comment (pages, venue), if any.
    """

    id: str
    version: str
    title: str
    authors: list[str]
    summary: str
    published: str
    updated: str
    primary_category: str
    categories: list[str]
    url: str
    pdf_url: str
    doi: str | None = None
    comment: str | None = None


def normalize_arxiv_id(ref: str, version: bool = True) -> str:
    """The bare arXiv id from an id, ``arXiv:`` reference or arxiv.org URL.

    Args:
        ref: E.g. ``2402.03300v2``, ``arXiv:2106.09685`` or ``https://arxiv.org/abs/2402.03300``.
        version: Keep a version suffix (``v2``) when the reference has one.

    Raises:
        ToolError: ``kind="invalid_arguments"`` when no arXiv id is recognizable.
    """
    match = _ID_RE.search(ref.strip())
    if not match:
        raise ToolError(f"'{ref}' is not an arXiv id; expected e.g. '2402.03300' or 'arXiv:2106.09685v2'",
                        "invalid_arguments")
    return match.group(0) if version else match.group(1)


def _text(node: ET.Element | None) -> str:
    return " ".join((node.text or "").split()) if node is not None else ""


def parse_feed(xml_text: str) -> tuple[int, list[ArxivPaper]]:
    """Parses an arXiv API Atom feed.

    Args:
        xml_text: The response body.

    Returns:
        ``(total_results, papers)``.

    Raises:
        ToolError: ``bad_response`` for a body that is not an Atom feed; ``invalid_arguments``
            for arXiv's error entry (a malformed query or id).
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ToolError(f"arXiv returned a body that is not XML ({exc}); first bytes: {xml_text[:80]!r}",
                        "bad_response") from exc
    if root.tag != f"{{{_NS['a']}}}feed":
        raise ToolError(f"arXiv returned XML that is not an Atom feed (root <{root.tag}>)", "bad_response")
    total = int(_text(root.find("os:totalResults", _NS)) or 0)
    papers = []
    for entry in root.findall("a:entry", _NS):
        entry_id = _text(entry.find("a:id", _NS))
        if "/api/errors" in entry_id:
            raise ToolError(f"arXiv rejected the request: {_text(entry.find('a:summary', _NS))}",
                            "invalid_arguments")
        match = _ID_RE.search(entry_id.split("/abs/")[-1])
        if not match:
            raise ToolError(f"arXiv entry has an unrecognizable id {entry_id!r}", "bad_response")
        links = {link.get("title") or link.get("rel"): link.get("href", "") for link in entry.findall("a:link", _NS)}
        primary = entry.find("arxiv:primary_category", _NS)
        papers.append(ArxivPaper(
            id=match.group(1), version=match.group(2) or "",
            title=_text(entry.find("a:title", _NS)),
            authors=[_text(a.find("a:name", _NS)) for a in entry.findall("a:author", _NS)],
            summary=_text(entry.find("a:summary", _NS)),
            published=_text(entry.find("a:published", _NS))[:10],
            updated=_text(entry.find("a:updated", _NS))[:10],
            primary_category=primary.get("term", "") if primary is not None else "",
            categories=[c.get("term", "") for c in entry.findall("a:category", _NS)],
            url=links.get("alternate", entry_id), pdf_url=links.get("pdf", ""),
            doi=_text(entry.find("arxiv:doi", _NS)) or None,
            comment=_text(entry.find("arxiv:comment", _NS)) or None,
        ))
    return total, papers


class ArxivClient:
    """The arXiv API.

    Args:
        http: The HTTP client (its service name is used in messages).
        base_url: The API root; ``/query`` is appended.
    """

    def __init__(self, http: HttpClient, base_url: str = DEFAULT_ARXIV_URL):
        self.http = http
        self.base_url = base_url.rstrip("/")

    def search(self, query: str, max_results: int = 10,
               sort_by: Literal["relevance", "lastUpdatedDate", "submittedDate"] = "relevance") -> list[ArxivPaper]:
        """Searches arXiv papers; returns id, title, authors, date, categories and abstract of each.

        Args:
            query: Keywords (all must match), or an arXiv query with field prefixes such as
                'ti:GRPO AND cat:cs.LG'.
            max_results: How many papers to return (1-50).
            sort_by: 'relevance', 'lastUpdatedDate' or 'submittedDate' (newest first).
        """
        if not query.strip():
            raise ToolError("the query is empty; give keywords such as 'LoRA fine-tuning'", "invalid_arguments")
        if not 1 <= max_results <= 50:
            raise ToolError(f"max_results must be between 1 and 50, got {max_results}", "invalid_arguments")
        if not _FIELD_RE.search(query):
            query = " AND ".join(f"all:{word}" for word in re.findall(r"[\w.-]+", query))
        text = self.http.get(f"{self.base_url}/query", {
            "search_query": query, "start": 0, "max_results": max_results,
            "sortBy": sort_by, "sortOrder": "descending"}).text
        return parse_feed(text)[1]

    def paper(self, arxiv_id: str) -> ArxivPaper:
        """Gets one arXiv paper's details (title, authors, abstract, dates, categories, links).

        Args:
            arxiv_id: An arXiv id ('2402.03300'), an 'arXiv:' reference or an arxiv.org URL.
        """
        bare = normalize_arxiv_id(arxiv_id)
        _, papers = parse_feed(self.http.get(f"{self.base_url}/query", {"id_list": bare}).text)
        if not papers:
            raise ToolError(f"arXiv has no paper with id {bare}", "not_found")
        return papers[0]

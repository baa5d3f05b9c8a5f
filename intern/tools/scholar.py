"""The citation graph: what a paper cites and what cites it (Semantic Scholar Graph API).

    s2 = ScholarClient(HttpClient("semantic-scholar", cache))
    s2.references("2402.03300")     # papers DeepSeekMath cites
    s2.citations("arXiv:2106.09685", limit=20)   # papers citing LoRA

Paper references: an arXiv id (``2402.03300`` or ``arXiv:...``), ``DOI:...``,
``CorpusId:...`` or a 40-hex Semantic Scholar id. The base URL is ``INTERN_S2_URL``; an
API key (``S2_API_KEY``, optional) goes in the ``x-api-key`` header (see
:mod:`intern.tools.research`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from intern.errors import ToolError
from intern.tools.arxiv import normalize_arxiv_id
from intern.tools.http_client import HttpClient

__all__ = ["DEFAULT_S2_URL", "LinkedPaper", "ScholarClient", "s2_paper_id"]

DEFAULT_S2_URL = "https://api.semanticscholar.org/graph/v1"
_FIELDS = "paperId,title,year,authors,citationCount,externalIds,venue"
_PREFIXED = re.compile(r"^(DOI|CorpusId|ARXIV|arXiv|MAG|ACL|PMID|PMCID|URL):", re.I)


@dataclass(frozen=True)
class LinkedPaper:
    """A paper on one end of a citation.

    Attributes:
        title: The title.
        year: Publication year, if known.
        authors: Author names (the first five).
        citation_count: How often it is cited, if known.
        arxiv_id: Its arXiv id, if it has one; cite it as ``arxiv:<id>``.
        doi: Its DOI, if it has one.
        s2_id: The Semantic Scholar id (None for a reference S2 could not resolve).
        venue: Where it appeared, if known.
    """

    title: str
    year: int | None
    authors: list[str]
    citation_count: int | None
    arxiv_id: str | None
    doi: str | None
    s2_id: str | None
    venue: str | None = None


def s2_paper_id(ref: str) -> str:
    """The Graph API's paper id for a reference (arXiv ids get the ``arXiv:`` prefix).

    Raises:
        ToolError: ``kind="invalid_arguments"`` for an empty reference.
    """
    ref = ref.strip()
    if not ref:
        raise ToolError("the paper reference is empty; give an arXiv id, 'DOI:...' or an S2 id", "invalid_arguments")
    if re.fullmatch(r"[0-9a-f]{40}", ref) or (_PREFIXED.match(ref) and not ref.lower().startswith("arxiv:")):
        return ref
    return f"arXiv:{normalize_arxiv_id(ref, version=False)}"


def _linked(paper: Any) -> LinkedPaper:
    if not isinstance(paper, dict):
        raise ToolError("Semantic Scholar returned a citation entry without a paper object", "bad_response")
    ids = paper.get("externalIds") or {}
    return LinkedPaper(
        title=" ".join(str(paper.get("title") or "").split()), year=paper.get("year"),
        authors=[a.get("name", "") for a in (paper.get("authors") or [])[:5] if isinstance(a, dict)],
        citation_count=paper.get("citationCount"), arxiv_id=ids.get("ArXiv"), doi=ids.get("DOI"),
        s2_id=paper.get("paperId"), venue=paper.get("venue") or None)


class ScholarClient:
    """The Semantic Scholar Graph API.

    Args:
        http: The HTTP client (an ``x-api-key`` header in it raises the rate limit).
        base_url: The Graph API root (``.../graph/v1``).
    """

    def __init__(self, http: HttpClient, base_url: str = DEFAULT_S2_URL):
        self.http = http
        self.base_url = base_url.rstrip("/")

    def _edges(self, paper: str, edge: str, side: str, limit: int) -> list[LinkedPaper]:
        if not 1 <= limit <= 100:
            raise ToolError(f"limit must be between 1 and 100, got {limit}", "invalid_arguments")
        body = self.http.get_json(f"{self.base_url}/paper/{s2_paper_id(paper)}/{edge}",
                                  {"fields": _FIELDS, "limit": limit, "offset": 0})
        if not isinstance(body, dict) or "data" not in body or not isinstance(body["data"], list | None):
            raise ToolError(f"Semantic Scholar's /{edge} reply has no 'data' list", "bad_response")
        out = []
        for entry in body.get("data") or []:
            if not isinstance(entry, dict) or side not in entry:
                raise ToolError(f"Semantic Scholar's /{edge} reply has an entry without '{side}'", "bad_response")
            out.append(_linked(entry[side]))
        return out

    def references(self, paper: str, limit: int = 20) -> list[LinkedPaper]:
        """Lists the papers a paper cites (its references), with year, authors and citation counts.

        Args:
            paper: The paper: an arXiv id such as '2402.03300', 'DOI:10.xxx/yyy' or a Semantic Scholar id.
            limit: How many references to return (1-100).
        """
        return self._edges(paper, "references", "citedPaper", limit)

    def citations(self, paper: str, limit: int = 20) -> list[LinkedPaper]:
        """Lists papers that cite a paper (newer work building on it), with year, authors and citation counts.

        Args:
            paper: The paper: an arXiv id such as '2106.09685', 'DOI:10.xxx/yyy' or a Semantic Scholar id.
            limit: How many citing papers to return (1-100).
        """
        return self._edges(paper, "citations", "citingPaper", limit)

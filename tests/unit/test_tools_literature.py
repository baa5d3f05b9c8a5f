"""arXiv, Hugging Face Papers and Semantic Scholar clients: what they read out of real-format replies."""

from __future__ import annotations

import pytest
from test_tools_loopback import Loopback
from test_tools_services import (
    ARXIV_EMPTY,
    ARXIV_ERROR,
    ARXIV_FEED,
    HF_PAPER,
    HF_PAPERS_SEARCH,
    S2_CITATIONS,
    S2_REFERENCES,
)

from intern.errors import ToolError
from intern.tools.arxiv import ArxivClient, normalize_arxiv_id
from intern.tools.http_client import DiskCache, HttpClient
from intern.tools.hub import HubClient
from intern.tools.scholar import ScholarClient, s2_paper_id


@pytest.fixture
def server():
    with Loopback() as loop:
        yield loop


def _http(tmp_path, name: str = "svc", **kw) -> HttpClient:
    return HttpClient(name, DiskCache(tmp_path / "cache"), timeout=10.0, **kw)


def test_arxiv_search_parses_the_atom_feed_and_builds_the_query(server, tmp_path):
    server.reply("/api/query", ARXIV_FEED)
    papers = ArxivClient(_http(tmp_path), server.url + "/api").search("group relative policy", max_results=2)
    (paper,) = papers
    assert paper.id == "2402.03300" and paper.version == "v3"
    assert paper.title == "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models"
    assert paper.authors == ["Zhihong Shao", "Peiyi Wang", "Qihao Zhu"]
    assert paper.summary.startswith("Mathematical reasoning poses") and "\n" not in paper.summary
    assert (paper.published, paper.updated) == ("2024-02-05", "2024-04-27")
    assert paper.primary_category == "cs.CL" and paper.categories == ["cs.CL", "cs.AI", "cs.LG"]
    assert paper.url == "http://arxiv.org/abs/2402.03300v3" and paper.pdf_url == "http://arxiv.org/pdf/2402.03300v3"
    assert paper.comment == "Work in progress" and paper.doi is None
    query = server.hits("/api/query")[0].query
    assert query["search_query"] == ["all:group AND all:relative AND all:policy"]
    assert query["max_results"] == ["2"] and query["sortBy"] == ["relevance"]


def test_arxiv_field_queries_pass_through(server, tmp_path):
    server.reply("/api/query", ARXIV_FEED)
    ArxivClient(_http(tmp_path), server.url + "/api").search("ti:GRPO AND cat:cs.LG")
    assert server.seen[0].query["search_query"] == ["ti:GRPO AND cat:cs.LG"]


def test_arxiv_paper_by_id_url_or_ref(server, tmp_path):
    server.reply("/api/query", ARXIV_FEED)
    client = ArxivClient(_http(tmp_path), server.url + "/api")
    assert client.paper("https://arxiv.org/abs/2402.03300v3").id == "2402.03300"
    assert server.seen[0].query["id_list"] == ["2402.03300v3"]
    assert normalize_arxiv_id("arXiv:2106.09685v2", version=False) == "2106.09685"
    assert normalize_arxiv_id("hep-th/9901001v1") == "hep-th/9901001v1"
    with pytest.raises(ToolError, match="not an arXiv id") as info:
        client.paper("deepseekmath")
    assert info.value.kind == "invalid_arguments"


def test_arxiv_unknown_id_and_error_entries(server, tmp_path):
    server.reply("/api/query", ARXIV_EMPTY)
    server.reply("/api/query", ARXIV_ERROR)
    server.reply("/api/query", ARXIV_ERROR, status=400)
    client = ArxivClient(_http(tmp_path), server.url + "/api")
    with pytest.raises(ToolError, match="no paper with id 2402.99999") as info:
        client.paper("2402.99999")
    assert info.value.kind == "not_found"
    with pytest.raises(ToolError, match="incorrect id format") as info:
        client.paper("2402.03301")
    assert info.value.kind == "invalid_arguments"
    with pytest.raises(ToolError, match="HTTP 400.*incorrect id format for 2402.0330x") as info:
        client.paper("2402.03302")
    assert info.value.kind == "http_error"


def test_arxiv_argument_bounds(tmp_path):
    client = ArxivClient(_http(tmp_path, offline=True))
    for bad in ({"query": " "}, {"query": "x", "max_results": 0}, {"query": "x", "max_results": 51}):
        with pytest.raises(ToolError) as info:
            client.search(**bad)
        assert info.value.kind == "invalid_arguments"


def test_hf_papers_search_and_details(server, tmp_path):
    server.reply("/api/papers/search", HF_PAPERS_SEARCH)
    server.reply("/api/papers/2402.03300", HF_PAPER)
    hub = HubClient(_http(tmp_path), server.url)
    (hit,) = hub.search_papers("grpo", limit=3)
    assert hit.id == "2402.03300" and hit.authors == ["Zhihong Shao", "Peiyi Wang"]
    assert hit.title.startswith("DeepSeekMath") and hit.upvotes == 142 and hit.published == "2024-02-05"
    assert server.hits("/api/papers/search")[0].query == {"q": ["grpo"], "limit": ["3"]}
    paper = hub.paper("arXiv:2402.03300v3")
    assert paper.github_repo == "https://github.com/deepseek-ai/DeepSeek-Math"
    assert paper.linked_models == ["deepseek-ai/deepseek-math-7b-rl"] and paper.linked_datasets == ["openai/gsm8k"]
    assert paper.ai_summary == "GRPO improves math reasoning."


def test_semantic_scholar_references_and_citations(server, tmp_path):
    server.reply("/graph/v1/paper/arXiv:2402.03300/references", S2_REFERENCES)
    server.reply("/graph/v1/paper/arXiv:2402.03300/citations", S2_CITATIONS)
    s2 = ScholarClient(_http(tmp_path, headers={"x-api-key": "s2-secret"}), server.url + "/graph/v1")
    ppo, unresolved = s2.references("https://arxiv.org/abs/2402.03300v3", limit=5)
    assert (ppo.title, ppo.year, ppo.arxiv_id, ppo.citation_count) == (
        "Proximal Policy Optimization Algorithms", 2017, "1707.06347", 15000)
    assert ppo.authors == ["John Schulman"] and ppo.s2_id == "dac3a172b504f4e33c029655e9befb3386e5f63a"
    assert unresolved.s2_id is None and unresolved.arxiv_id is None and unresolved.title == "An unresolved reference"
    seen = server.hits("/graph/v1/paper/arXiv:2402.03300/references")[0]
    assert seen.query["limit"] == ["5"] and "externalIds" in seen.query["fields"][0]
    assert seen.headers["x-api-key"] == "s2-secret"
    (r1,) = s2.citations("2402.03300")
    assert r1.arxiv_id == "2501.12948" and r1.doi == "10.48550/arXiv.2501.12948"


def test_s2_paper_ids():
    assert s2_paper_id("2402.03300v2") == "arXiv:2402.03300"
    assert s2_paper_id("DOI:10.1145/1553374.1553380") == "DOI:10.1145/1553374.1553380"
    assert s2_paper_id("CorpusId:28695052") == "CorpusId:28695052"
    assert s2_paper_id("dac3a172b504f4e33c029655e9befb3386e5f63a") == "dac3a172b504f4e33c029655e9befb3386e5f63a"
    with pytest.raises(ToolError):
        s2_paper_id(" ")

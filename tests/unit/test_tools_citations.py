"""Source ids and the citation ledger: which ids each research tool's real-format reply vouches for."""

from __future__ import annotations

import pytest
from test_tools_loopback import Loopback
from test_tools_services import MATRIX, make_config

from intern.tools.citations import (
    CitationLedger,
    citation_problems,
    describe_source,
    normalize_source,
    verified_sources,
)
from intern.tools.research import researcher_registry


def test_normalize_source():
    assert normalize_source(" arXiv:2402.03300v3 ") == "arxiv:2402.03300"
    assert normalize_source("DOI:10.1145/1553374.1553380") == "doi:10.1145/1553374.1553380"
    assert normalize_source("HF-Dataset:openai/gsm8k") == "hf-dataset:openai/gsm8k"
    for bad in ("2402.03300", "arxiv:", "arxiv:deepseekmath", "paper:123", "", "recipe"):
        assert normalize_source(bad) is None, bad


# tool -> the ids its reply in test_tools_services.MATRIX names
EXPECTED = {
    "arxiv_search": {"arxiv:2402.03300"},
    "arxiv_paper": {"arxiv:2402.03300"},
    "hf_papers_search": {"arxiv:2402.03300"},
    "hf_paper": {"arxiv:2402.03300", "hf-model:deepseek-ai/deepseek-math-7b-rl", "hf-dataset:openai/gsm8k"},
    "paper_references": {"arxiv:1707.06347", "s2:dac3a172b504f4e33c029655e9befb3386e5f63a"},
    "paper_citations": {"arxiv:2501.12948", "s2:34b0c8e3a6a8f2c5d4c7d6b2e0f3e1a9b8c7d6e5",
                        "doi:10.48550/arxiv.2501.12948"},
    "hub_search_models": {"hf-model:Qwen/Qwen2.5-0.5B-Instruct"},
    "hub_search_datasets": {"hf-dataset:openai/gsm8k"},
    "inspect_dataset": {"hf-dataset:openai/gsm8k"},
    "github_code_search": {"github:huggingface/trl/trl/trainer/grpo_trainer.py"},
    "github_read_file": {"github:huggingface/trl/examples/scripts/sft.py"},
    "hf_docs_search": {"hf-docs:trl/sft_trainer"},
    "hf_docs_fetch": {"hf-docs:trl/sft_trainer"},
}


@pytest.mark.parametrize("name", list(MATRIX))
def test_each_tool_vouches_for_the_ids_its_reply_names(tmp_path, name):
    args, _, routes = MATRIX[name]
    with Loopback() as server:
        for path, body in routes.items():
            server.reply(path, body)
        ledger = CitationLedger(researcher_registry(make_config(server, tmp_path)))
        assert ledger.call(name, args).ok
    assert set(ledger.seen) == EXPECTED[name]
    assert ledger.found(name) == list(ledger.seen) and all(v["tool"] == name for v in ledger.seen.values())


def test_failures_are_recorded_and_vouch_for_nothing(tmp_path):
    with Loopback() as server:
        ledger = CitationLedger(researcher_registry(make_config(server, tmp_path, offline=True)))
        ledger.call("arxiv_search", {"query": "grpo"})
        ledger.call("search_recipes", {"query": "grpo verifiable rewards", "limit": 1})
    assert ledger.failures() == {"arxiv_search": "unreachable"}
    assert "unreachable" in ledger.calls[0].error and ledger.found("arxiv_search") == []
    # a library note vouches for itself and for the papers it cites
    assert {"recipe:grpo-verifiable-rewards", "arxiv:2402.03300"} <= set(ledger.seen)


def test_problems_and_verified_sources():
    seen = {"arxiv:2402.03300": {"title": "DeepSeekMath", "tool": "arxiv_search"}}
    hyps = [{"sources": ["arXiv:2402.03300v2", "recipe:curriculum", "branch:i1-b0"]},
            {"sources": ["arxiv:1707.06347", "recipe:nope", "branch:i9-b9", "gsm8k"]}]
    problems = citation_problems(hyps, seen, branches=["i1-b0"])
    assert [p.split(":")[0] for p in problems] == [f"- at hypotheses/1/sources/{j}" for j in range(4)]
    assert "did not appear" in problems[0] and "found: arxiv:2402.03300" in problems[0]
    assert "not in the recipe library" in problems[1] and "not an earlier branch" in problems[2]
    assert "not a source id" in problems[3] and "arxiv:<id>" in problems[3]
    kept, dropped = verified_sources(["arXiv:2402.03300v2", "arxiv:2402.03300", "gsm8k", "recipe:curriculum"], seen)
    assert kept == ["arxiv:2402.03300", "recipe:curriculum"] and dropped == ["gsm8k"]
    assert describe_source("arxiv:2402.03300", seen) == {"title": "DeepSeekMath", "found_by": "arxiv_search"}
    assert describe_source("recipe:curriculum", {})["found_by"] == "recipe library"
    assert describe_source("branch:i1-b0", {})["found_by"] == "earlier iteration"

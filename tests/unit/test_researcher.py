"""The researcher role cites what its tools found: online the papers and datasets, offline the recipes.

``Researcher.propose`` runs for real (its agent loop, the real research tools and HTTP
clients, the citation checks) against loopback services that speak the real formats:
arXiv Atom and Hub JSON from :class:`Loopback`, and, for the LLM brain, a scripted
OpenAI-compatible chat server (``tests/llm_server.py``). The services are found through the
environment variables a user would set (``INTERN_ARXIV_URL``, ``HF_ENDPOINT``, ...). No Ray,
no model weights.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from llm_server import LLMServer, call, finish, reply
from test_tools_loopback import Loopback
from test_tools_services import ARXIV_FEED, HUB_DATASETS

from actors.researcher import Researcher, research_queries
from intern.events import read_events
from intern.report import write_report
from intern.resolve import load_config

TINY = Path(__file__).parents[1] / "integration" / "tiny.yaml"
FOUND = ["arxiv:2402.03300", "hf-dataset:openai/gsm8k"]


def _point_services_at(monkeypatch, url: str, tmp_path: Path) -> None:
    """The research services' environment, as a user would set it, all on ``url``."""
    for var, path in (("HF_ENDPOINT", "/hf"), ("INTERN_ARXIV_URL", "/arxiv"), ("INTERN_S2_URL", "/s2"),
                      ("INTERN_GITHUB_URL", "/gh"), ("INTERN_DATASETS_SERVER_URL", "/dsv")):
        monkeypatch.setenv(var, url + path)
    monkeypatch.setenv("INTERN_CACHE", str(tmp_path / "cache"))  # a fresh cache: every answer is the server's
    monkeypatch.setenv("INTERN_HTTP_TIMEOUT", "5")
    monkeypatch.delenv("INTERN_OFFLINE", raising=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _propose(tmp_path: Path, *overrides: str, findings: list | None = None) -> tuple[list[dict], list[dict]]:
    cfg = load_config(TINY, [f"output_dir={tmp_path}", *overrides])
    run_dir = tmp_path / "run"
    hypotheses = Researcher(cfg, str(run_dir), "r1").propose(1, findings or [])
    return hypotheses, read_events(run_dir / "events.jsonl")


def _of(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["event"] == kind]


@pytest.fixture
def services(monkeypatch, tmp_path):
    with Loopback() as server:
        _point_services_at(monkeypatch, server.url, tmp_path)
        yield server


def test_playbook_online_cites_the_papers_and_datasets_it_found(services, tmp_path):
    services.reply("/arxiv/query", ARXIV_FEED)
    services.reply("/hf/api/datasets", HUB_DATASETS)
    hypotheses, events = _propose(tmp_path)
    assert len(hypotheses) == 2
    for h in hypotheses:
        assert h["sources"][0].startswith("recipe:"), "the recipe the move follows comes first"
        assert h["sources"][-2:] == FOUND, h["sources"]
        assert "DeepSeekMath" in h["rationale"] and "hf-dataset:openai/gsm8k" in h["rationale"]
    # the searches asked about the task: the benchmark's domain and the training method
    assert services.hits("/arxiv/query")[0].query["search_query"] == [
        "all:math AND all:word AND all:problems AND all:fine-tuning"]
    assert services.hits("/hf/api/datasets")[0].query["search"] == ["gsm8k"]
    (event,) = _of(events, "hypotheses")
    assert event["hypotheses"] == hypotheses
    assert event["sources"]["arxiv:2402.03300"] == {
        "title": "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models",
        "found_by": "arxiv_search"}
    assert event["sources"]["hf-dataset:openai/gsm8k"]["found_by"] == "hub_search_datasets"
    assert event["sources"]["recipe:sft-task-format"]["title"]
    assert not _of(events, "research_fallback") and not _of(events, "sources_dropped")
    calls = [e["tool"] for e in _of(events, "tool_call")]
    assert calls == ["search_recipes", "arxiv_search", "hub_search_datasets"]


def test_the_report_lists_each_hypothesis_sources(services, tmp_path):
    services.reply("/arxiv/query", ARXIV_FEED)
    services.reply("/hf/api/datasets", HUB_DATASETS)
    hypotheses, _ = _propose(tmp_path)
    text = write_report(tmp_path / "run").read_text()
    lines = [line for line in text.splitlines() if line.strip().startswith("- Sources:")]
    assert len(lines) == len(hypotheses)
    for line, h in zip(lines, hypotheses, strict=True):
        assert all(f"`{s}`" in line for s in h["sources"])
        assert "`arxiv:2402.03300` (DeepSeekMath: Pushing the Limits" in line


@pytest.mark.parametrize("how", ["closed port", "INTERN_OFFLINE=1"])
def test_playbook_offline_cites_the_packaged_recipes_and_says_so(monkeypatch, tmp_path, how):
    _point_services_at(monkeypatch, f"http://127.0.0.1:{_closed_port()}", tmp_path)
    if how == "INTERN_OFFLINE=1":
        monkeypatch.setenv("INTERN_OFFLINE", "1")
    hypotheses, events = _propose(tmp_path)
    assert len(hypotheses) == 2
    assert all(h["sources"] and all(s.startswith("recipe:") for s in h["sources"]) for h in hypotheses)
    assert all("Offline fallback" in h["rationale"] and "recipe library only" in h["rationale"] for h in hypotheses)
    (fallback,) = _of(events, "research_fallback")
    assert fallback["failed"] == {"arxiv_search": "unreachable", "hub_search_datasets": "unreachable"}
    assert fallback["cited"] == [] and "unreachable" in fallback["message"]
    report = write_report(tmp_path / "run").read_text()
    assert "Research services unavailable (arxiv_search unreachable, hub_search_datasets unreachable)" in report


def test_playbook_with_one_service_down_cites_the_other(services, tmp_path):
    services.reply("/arxiv/query", ARXIV_FEED)
    services.reply("/hf/api/datasets", {"error": "Service Unavailable"}, status=503)
    hypotheses, events = _propose(tmp_path)
    assert all(h["sources"][-1] == "arxiv:2402.03300" and "hf-dataset:openai/gsm8k" not in h["sources"]
               for h in hypotheses)
    assert all("Not searched: hub_search_datasets http_error" in h["rationale"] for h in hypotheses)
    assert _of(events, "research_fallback")[0]["failed"] == {"hub_search_datasets": "http_error"}


def test_later_rounds_cite_the_branch_they_build_on(services, tmp_path):
    services.reply("/arxiv/query", ARXIV_FEED)
    services.reply("/hf/api/datasets", HUB_DATASETS)
    best = {"id": "i1-b0", "dev_score": 0.5, "checkpoint": "/ck/b0",
            "hypothesis": {"title": "Full SFT", "train": {"learning_rate": 1e-4, "lora": False},
                           "data": {"style": "worked"}}}
    cfg = load_config(TINY, [f"output_dir={tmp_path}"])
    hypotheses = Researcher(cfg, str(tmp_path / "run"), "r1").propose(2, [best])
    assert all(h["sources"] == ["recipe:curriculum", "branch:i1-b0", *FOUND] for h in hypotheses)


def test_research_queries_follow_the_benchmark_and_the_method():
    assert research_queries("wordproblems", "grpo") == ("math word problems reinforcement learning", "gsm8k")
    assert research_queries("humaneval", "sft") == ("code generation fine-tuning", "code")
    assert research_queries("gpqa_main", "sft")[0] == "multiple choice question answering fine-tuning"


# --- an LLM brain: the same checks hold whatever it cites ----------------------------------------

def _hypothesis(sources: list[str]) -> dict:
    return {"title": "GRPO on math word problems", "rationale": "DeepSeekMath shows GRPO improves math reasoning.",
            "train": {"learning_rate": 1e-5, "lora": False}, "data": {"style": "worked"}, "sources": sources}


def _propose_with_llm(monkeypatch, tmp_path, script: list) -> tuple[list[dict], list[dict], LLMServer]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    with LLMServer(script) as llm:
        hypotheses, events = _propose(tmp_path, "branches=1", "brain.kind=openai", "brain.model=scripted",
                                      f"brain.base_url={llm.base_url}", "brain.max_attempts=1")
    return hypotheses, events, llm


SEARCH = reply(tool_calls=[call("arxiv_search", {"query": "GRPO math", "max_results": 3})])


def test_llm_citing_what_it_found_is_accepted(services, monkeypatch, tmp_path):
    services.reply("/arxiv/query", ARXIV_FEED)
    script = [SEARCH, finish({"hypotheses": [_hypothesis(["arXiv:2402.03300v3", "recipe:grpo-verifiable-rewards"])]})]
    hypotheses, events, llm = _propose_with_llm(monkeypatch, tmp_path, script)
    assert llm.remaining == 0
    assert hypotheses[0]["sources"] == ["arxiv:2402.03300", "recipe:grpo-verifiable-rewards"]  # canonical ids
    assert not _of(events, "result_rejected") and not _of(events, "sources_dropped")
    assert _of(events, "hypotheses")[0]["sources"]["arxiv:2402.03300"]["found_by"] == "arxiv_search"


def test_llm_citing_what_it_never_saw_is_corrected_once(services, monkeypatch, tmp_path):
    services.reply("/arxiv/query", ARXIV_FEED)
    script = [SEARCH, finish({"hypotheses": [_hypothesis(["arxiv:2402.03300", "arxiv:2501.12948",
                                                          "recipe:no-such-note", "hf-dataset:openai/gsm8k"])]}),
              finish({"hypotheses": [_hypothesis(["arxiv:2402.03300", "recipe:grpo-verifiable-rewards"])]})]
    hypotheses, events, llm = _propose_with_llm(monkeypatch, tmp_path, script)
    assert hypotheses[0]["sources"] == ["arxiv:2402.03300", "recipe:grpo-verifiable-rewards"]
    correction = llm.requests[2]["body"]["messages"][-1]
    assert correction["role"] == "tool" and correction["content"].startswith("Error: the result was not accepted")
    text = correction["content"]
    assert "'arxiv:2501.12948' did not appear in any result your tools returned" in text
    assert "found: arxiv:2402.03300" in text and "'recipe:no-such-note' is not in the recipe library" in text
    assert "'hf-dataset:openai/gsm8k' did not appear" in text and "sources/0" not in text
    (rejected,) = _of(events, "result_rejected")
    assert len(rejected["problems"]) == 3
    assert not _of(events, "sources_dropped")


def test_llm_that_insists_on_unseen_ids_has_them_dropped(services, monkeypatch, tmp_path):
    services.reply("/arxiv/query", ARXIV_FEED)
    cited = ["arxiv:2402.03300", "s2:made-up-id", "not an id"]
    script = [SEARCH, finish({"hypotheses": [_hypothesis(cited)]}), finish({"hypotheses": [_hypothesis(cited)]})]
    hypotheses, events, llm = _propose_with_llm(monkeypatch, tmp_path, script)
    assert llm.remaining == 0
    assert hypotheses[0]["sources"] == ["arxiv:2402.03300"]
    (dropped,) = _of(events, "sources_dropped")
    assert dropped["dropped"] == {"i1-b0": ["s2:made-up-id", "not an id"]}
    assert "`s2:made-up-id`" in write_report(tmp_path / "run").read_text()

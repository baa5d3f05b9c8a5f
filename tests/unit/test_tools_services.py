"""Every research tool against loopback services that speak the real formats: success, 404, 429, timeout, garbage.

``SAMPLES`` holds replies shaped like the real services' (arXiv Atom, Hub JSON,
datasets-server, Semantic Scholar Graph API, GitHub REST, HF docs); the per-service
test modules import them. The matrix below drives each tool through the researcher's
registry, so the whole path (argument validation, client, HTTP layer, rendering) runs.
"""

from __future__ import annotations

import base64
import time

import pytest
from test_tools_loopback import Loopback

from intern.errors import ConfigError
from intern.tools.research import ResearchConfig, researcher_registry

ATOM_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?search_query%3Dall%3AGRPO%26id_list%3D%26start%3D0%26max_results%3D2" \
rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query: search_query=all:GRPO&amp;id_list=&amp;start=0&amp;max_results=2</title>
  <id>http://arxiv.org/api/cHxbiOdZaP56ODnBPIenZhzg5f8</id>
  <updated>2024-05-01T00:00:00-04:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{total}</opensearch:totalResults>
  <opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">0</opensearch:startIndex>
  <opensearch:itemsPerPage xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">2</opensearch:itemsPerPage>
"""
ATOM_ENTRY = """  <entry>
    <id>http://arxiv.org/abs/2402.03300v3</id>
    <updated>2024-04-27T15:25:53Z</updated>
    <published>2024-02-05T18:55:32Z</published>
    <title>DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language
  Models</title>
    <summary>  Mathematical reasoning poses a significant challenge for language models due to
its complex and structured nature. We introduce Group Relative Policy Optimization
(GRPO), a variant of Proximal Policy Optimization (PPO).
</summary>
    <author><name>Zhihong Shao</name></author>
    <author><name>Peiyi Wang</name></author>
    <author><name>Qihao Zhu</name></author>
    <arxiv:comment xmlns:arxiv="http://arxiv.org/schemas/atom">Work in progress</arxiv:comment>
    <link href="http://arxiv.org/abs/2402.03300v3" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2402.03300v3" rel="related" type="application/pdf"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="cs.CL" \
scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.AI" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
"""
ATOM_ERROR_ENTRY = """  <entry>
    <id>http://arxiv.org/api/errors#incorrect_id_format_for_2402.0330x</id>
    <title>Error</title>
    <summary>incorrect id format for 2402.0330x</summary>
    <updated>2024-05-01T00:00:00-04:00</updated>
    <link href="http://arxiv.org/api/errors#incorrect_id_format_for_2402.0330x" rel="alternate" type="text/html"/>
    <author><name>arXiv api core</name></author>
  </entry>
"""
ARXIV_FEED = ATOM_HEAD.format(total=1523) + ATOM_ENTRY + "</feed>\n"
ARXIV_EMPTY = ATOM_HEAD.format(total=0) + "</feed>\n"
ARXIV_ERROR = ATOM_HEAD.format(total=1) + ATOM_ERROR_ENTRY + "</feed>\n"

AUTHORS = [{"_id": "65c1a3f1e4e1c6d1a0b0c001", "name": "Zhihong Shao", "hidden": False},
           {"_id": "65c1a3f1e4e1c6d1a0b0c002", "name": "Peiyi Wang", "hidden": False}]
PAPER_CORE = {"id": "2402.03300", "authors": AUTHORS, "publishedAt": "2024-02-05T18:55:32.000Z",
              "title": "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models",
              "summary": "Mathematical reasoning poses a significant challenge ... GRPO ...", "upvotes": 142,
              "discussionId": "65c1a3f1e4e1c6d1a0b0c0ff", "ai_summary": "GRPO improves math reasoning.",
              "ai_keywords": ["GRPO", "PPO"]}
SUBMITTER = {"_id": "60f1abe7544c2adfd699860c", "avatarUrl": "https://cdn-avatars.huggingface.co/x.png",
             "isPro": False, "fullname": "AK", "user": "akhaliq", "type": "user"}
HF_PAPERS_SEARCH = [{"paper": dict(PAPER_CORE), "publishedAt": "2024-02-06T02:12:44.170Z",
                     "title": PAPER_CORE["title"], "summary": PAPER_CORE["summary"],
                     "thumbnail": "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2402.03300.png",
                     "numComments": 5, "submittedBy": SUBMITTER, "isAuthorParticipating": False}]
HF_PAPER = {**PAPER_CORE, "submittedOnDailyAt": "2024-02-06T02:12:44.170Z", "submittedOnDailyBy": SUBMITTER,
            "githubRepo": "https://github.com/deepseek-ai/DeepSeek-Math", "githubStars": 2100,
            "linkedModels": [{"id": "deepseek-ai/deepseek-math-7b-rl", "downloads": 9000, "likes": 80}],
            "numTotalModels": 1,
            "linkedDatasets": [{"id": "openai/gsm8k", "downloads": 400000, "likes": 700}], "numTotalDatasets": 1}
HUB_MODELS = [{"_id": "66e81cefd1b1391042d0e47e", "id": "Qwen/Qwen2.5-0.5B-Instruct", "likes": 412,
               "trendingScore": 5, "private": False, "downloads": 1234567,
               "tags": ["transformers", "safetensors", "qwen2", "text-generation", "conversational",
                        "base_model:Qwen/Qwen2.5-0.5B", "license:apache-2.0"],
               "pipeline_tag": "text-generation", "library_name": "transformers",
               "createdAt": "2024-09-16T11:55:40.000Z", "modelId": "Qwen/Qwen2.5-0.5B-Instruct"}]
HUB_DATASETS = [{"_id": "621ffdd236468d709f181d58", "id": "openai/gsm8k", "author": "openai",
                 "sha": "e53f048856ff4f594e959d75785d2c2d37b678ee", "lastModified": "2024-01-04T12:05:15.000Z",
                 "private": False, "gated": False, "disabled": False, "downloads": 412345, "likes": 712,
                 "tags": ["task_categories:text2text-generation", "language:en", "license:mit",
                          "size_categories:1K<n<10K", "format:parquet", "arxiv:2110.14168"],
                 "createdAt": "2022-03-02T23:29:22.000Z", "key": "",
                 "description": "GSM8K (Grade School Math 8K) is a dataset of 8.5K high quality linguistically "
                                "diverse grade school math word problems."}]
DSV_SPLITS = {"splits": [{"dataset": "openai/gsm8k", "config": "main", "split": "train"},
                         {"dataset": "openai/gsm8k", "config": "main", "split": "test"},
                         {"dataset": "openai/gsm8k", "config": "socratic", "split": "train"},
                         {"dataset": "openai/gsm8k", "config": "socratic", "split": "test"}],
              "pending": [], "failed": []}
DSV_INFO = {"dataset_info": {"description": "", "citation": "", "homepage": "", "license": "",
                             "features": {"question": {"dtype": "string", "_type": "Value"},
                                          "answer": {"dtype": "string", "_type": "Value"}},
                             "builder_name": "parquet", "dataset_name": "gsm8k", "config_name": "main",
                             "version": {"version_str": "0.0.0", "major": 0, "minor": 0, "patch": 0},
                             "splits": {"train": {"name": "train", "num_bytes": 3963202, "num_examples": 7473,
                                                  "dataset_name": None},
                                        "test": {"name": "test", "num_bytes": 713732, "num_examples": 1319,
                                                 "dataset_name": None}},
                             "download_size": 2725633, "dataset_size": 4676934},
            "partial": False}
DSV_FIRST_ROWS = {"dataset": "openai/gsm8k", "config": "main", "split": "train",
                  "features": [{"feature_idx": 0, "name": "question", "type": {"dtype": "string", "_type": "Value"}},
                               {"feature_idx": 1, "name": "answer", "type": {"dtype": "string", "_type": "Value"}}],
                  "rows": [{"row_idx": i, "row": {"question": f"Natalia sold clips to {i} friends...",
                                                  "answer": f"Natalia sold {i}... #### {i * 2}"},
                            "truncated_cells": []} for i in range(5)],
                  "truncated": False}
S2_REFERENCES = {"offset": 0, "next": 2, "data": [
    {"citedPaper": {"paperId": "dac3a172b504f4e33c029655e9befb3386e5f63a",
                    "externalIds": {"ArXiv": "1707.06347", "MAG": "2736601468", "DBLP": "journals/corr/SchulmanWDRK17",
                                    "CorpusId": 28695052},
                    "title": "Proximal Policy Optimization Algorithms", "venue": "arXiv.org", "year": 2017,
                    "citationCount": 15000, "authors": [{"authorId": "47971768", "name": "John Schulman"}]}},
    {"citedPaper": {"paperId": None, "externalIds": None, "title": "An unresolved reference", "venue": None,
                    "year": None, "citationCount": None, "authors": []}}]}
S2_CITATIONS = {"offset": 0, "data": [
    {"citingPaper": {"paperId": "34b0c8e3a6a8f2c5d4c7d6b2e0f3e1a9b8c7d6e5",
                     "externalIds": {"ArXiv": "2501.12948", "DOI": "10.48550/arXiv.2501.12948"},
                     "title": "DeepSeek-R1: Incentivizing Reasoning Capability in LLMs via Reinforcement Learning",
                     "venue": "arXiv.org", "year": 2025, "citationCount": 3000,
                     "authors": [{"authorId": "1", "name": "DeepSeek-AI"}]}}]}
GITHUB_SEARCH = {"total_count": 1, "incomplete_results": False, "items": [
    {"name": "grpo_trainer.py", "path": "trl/trainer/grpo_trainer.py", "sha": "8f2c0b1",
     "url": "https://api.github.com/repositories/250213286/contents/trl/trainer/grpo_trainer.py?ref=8f2c0b1",
     "git_url": "https://api.github.com/repositories/250213286/git/blobs/8f2c0b1",
     "html_url": "https://github.com/huggingface/trl/blob/8f2c0b1/trl/trainer/grpo_trainer.py",
     "repository": {"id": 250213286, "node_id": "MDEwOlJlcG9zaXRvcnkyNTAyMTMyODY=", "name": "trl",
                    "full_name": "huggingface/trl", "private": False,
                    "owner": {"login": "huggingface", "id": 25720743}, "html_url": "https://github.com/huggingface/trl"},
     "score": 1.0,
     "text_matches": [{"object_url": "https://api.github.com/repositories/250213286/contents/x",
                       "object_type": "FileContent", "property": "content",
                       "fragment": "class GRPOTrainer(Trainer):\n    def __init__(self, model, reward_funcs,",
                       "matches": [{"text": "reward_funcs", "indices": [50, 62]}]}]}]}
FILE_TEXT = "".join(f"line {i}\n" for i in range(1, 301))
GITHUB_FILE = {"type": "file", "encoding": "base64", "size": len(FILE_TEXT), "name": "sft.py",
               "path": "examples/scripts/sft.py",
               "content": "\n".join(base64.b64encode(FILE_TEXT.encode()).decode()[i:i + 60]
                                    for i in range(0, len(base64.b64encode(FILE_TEXT.encode())), 60)),
               "sha": "3d21ec5", "url": "https://api.github.com/repos/huggingface/trl/contents/examples/scripts/sft.py",
               "git_url": "https://api.github.com/repos/huggingface/trl/git/blobs/3d21ec5",
               "html_url": "https://github.com/huggingface/trl/blob/main/examples/scripts/sft.py",
               "download_url": "https://raw.githubusercontent.com/huggingface/trl/main/examples/scripts/sft.py",
               "_links": {"self": "https://api.github.com/repos/huggingface/trl/contents/examples/scripts/sft.py"}}
GITHUB_NOT_FOUND = {"message": "Not Found", "status": "404",
                    "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content"}
DOCS_SEARCH = [{"text": "To train on completions only, use a prompt-completion dataset; by default the loss is "
                        "computed on the completion only (<code>completion_only_loss=True</code>).",
                "product": "trl", "heading1": "SFT Trainer", "heading2": "Train on completions only",
                "source_page_url": "https://huggingface.co/docs/trl/sft_trainer#train-on-completions-only",
                "source_page_title": "SFT Trainer"}]
DOCS_PAGE = """# SFT Trainer

Supervised fine-tuning with TRL.

## Dataset format

Standard and conversational, language modeling or prompt-completion.

### Prompt-completion

Columns `prompt` and `completion`.

## Train on completions only

Set `completion_only_loss=True` (the default for prompt-completion data).

## Logged metrics
"""

# tool -> (args, path hit first, path -> good reply)
MATRIX: dict[str, tuple[dict, str, dict[str, object]]] = {
    "arxiv_search": ({"query": "grpo math"}, "/arxiv/query", {"/arxiv/query": ARXIV_FEED}),
    "arxiv_paper": ({"arxiv_id": "2402.03300"}, "/arxiv/query", {"/arxiv/query": ARXIV_FEED}),
    "hf_papers_search": ({"query": "grpo"}, "/hf/api/papers/search", {"/hf/api/papers/search": HF_PAPERS_SEARCH}),
    "hf_paper": ({"arxiv_id": "2402.03300"}, "/hf/api/papers/2402.03300", {"/hf/api/papers/2402.03300": HF_PAPER}),
    "paper_references": ({"paper": "2402.03300"}, "/s2/paper/arXiv:2402.03300/references",
                         {"/s2/paper/arXiv:2402.03300/references": S2_REFERENCES}),
    "paper_citations": ({"paper": "2402.03300"}, "/s2/paper/arXiv:2402.03300/citations",
                        {"/s2/paper/arXiv:2402.03300/citations": S2_CITATIONS}),
    "hub_search_models": ({"query": "qwen2.5"}, "/hf/api/models", {"/hf/api/models": HUB_MODELS}),
    "hub_search_datasets": ({"query": "gsm8k"}, "/hf/api/datasets", {"/hf/api/datasets": HUB_DATASETS}),
    "inspect_dataset": ({"dataset": "openai/gsm8k"}, "/dsv/splits",
                        {"/dsv/splits": DSV_SPLITS, "/dsv/info": DSV_INFO, "/dsv/first-rows": DSV_FIRST_ROWS}),
    "github_code_search": ({"query": "GRPOTrainer"}, "/gh/search/code", {"/gh/search/code": GITHUB_SEARCH}),
    "github_read_file": ({"repo": "huggingface/trl", "path": "examples/scripts/sft.py"},
                         "/gh/repos/huggingface/trl/contents/examples/scripts/sft.py",
                         {"/gh/repos/huggingface/trl/contents/examples/scripts/sft.py": GITHUB_FILE}),
    "hf_docs_search": ({"query": "completion only loss"}, "/hf/api/docs/search", {"/hf/api/docs/search": DOCS_SEARCH}),
    "hf_docs_fetch": ({"page": "trl/sft_trainer"}, "/hf/docs/trl/sft_trainer.md",
                      {"/hf/docs/trl/sft_trainer.md": DOCS_PAGE}),
}


def make_config(server: Loopback, tmp_path, **kw) -> ResearchConfig:
    """A config pointing every service at the loopback server, with a short timeout."""
    values = {"hf_endpoint": server.url + "/hf", "arxiv_url": server.url + "/arxiv", "s2_url": server.url + "/s2",
              "github_url": server.url + "/gh", "datasets_server_url": server.url + "/dsv",
              "cache_dir": tmp_path / "cache", "timeout_s": 10.0, "retries": 2, "max_wait_s": 2.0}
    return ResearchConfig(**{**values, **kw})


@pytest.fixture
def server():
    with Loopback() as loop:
        yield loop


@pytest.mark.parametrize("name", list(MATRIX))
def test_success(server, tmp_path, name):
    args, _, routes = MATRIX[name]
    for path, body in routes.items():
        server.reply(path, body)
    result = researcher_registry(make_config(server, tmp_path)).call(name, args)
    assert result.ok, result.text
    assert result.data and result.text


@pytest.mark.parametrize("name", list(MATRIX))
def test_404_is_not_found(server, tmp_path, name):
    args, first, _ = MATRIX[name]
    server.reply(first, {"error": "Not Found", "message": "Not Found"}, status=404)
    result = researcher_registry(make_config(server, tmp_path)).call(name, args)
    assert not result.ok and result.error_kind == "not_found", result.text
    assert "not found" in result.text.lower()


@pytest.mark.parametrize("name", list(MATRIX))
def test_429_then_success_is_retried(server, tmp_path, name):
    args, first, routes = MATRIX[name]
    server.reply(first, {"message": "Too Many Requests", "code": "429"}, status=429, headers={"Retry-After": "0"})
    for path, body in routes.items():
        server.reply(path, body)
    result = researcher_registry(make_config(server, tmp_path)).call(name, args)
    assert result.ok, result.text
    assert len(server.hits(first)) == 2


@pytest.mark.parametrize("name", list(MATRIX))
def test_429_exhausted_is_rate_limited(server, tmp_path, name):
    args, first, _ = MATRIX[name]
    server.reply(first, {"message": "Too Many Requests"}, status=429, headers={"Retry-After": "0"})
    result = researcher_registry(make_config(server, tmp_path, retries=1)).call(name, args)
    assert not result.ok and result.error_kind == "rate_limited", result.text
    assert len(server.hits(first)) == 2


@pytest.mark.parametrize("name", list(MATRIX))
def test_timeout_is_unreachable(server, tmp_path, name):
    args, first, routes = MATRIX[name]
    server.reply(first, routes[first], delay=3.0)
    start = time.monotonic()
    result = researcher_registry(make_config(server, tmp_path, timeout_s=0.2)).call(name, args)
    assert result.unreachable and "unreachable" in result.text, result.text
    assert time.monotonic() - start < 2.5  # gave up long before the reply


@pytest.mark.parametrize("name", [n for n in MATRIX if n != "hf_docs_fetch"])  # any text is markdown
def test_malformed_body_is_a_bad_response(server, tmp_path, name):
    args, first, _ = MATRIX[name]
    server.reply(first, "<html><body>Service Unavailable" if first.startswith("/arxiv") else '{"truncated": ',
                 content_type="application/json")
    result = researcher_registry(make_config(server, tmp_path)).call(name, args)
    assert not result.ok and result.error_kind == "bad_response", result.text


@pytest.mark.parametrize("name", [n for n in MATRIX if n not in ("arxiv_search", "arxiv_paper", "hf_docs_fetch")])
def test_json_of_the_wrong_shape_is_a_bad_response(server, tmp_path, name):
    args, first, _ = MATRIX[name]
    server.reply(first, {"unexpected": "shape"} if name != "github_read_file" else {"type": "submodule"})
    result = researcher_registry(make_config(server, tmp_path)).call(name, args)
    assert not result.ok and result.error_kind == "bad_response", result.text


def test_offline_every_network_tool_is_unreachable_and_the_library_answers(server, tmp_path):
    registry = researcher_registry(make_config(server, tmp_path, offline=True))
    for name, (args, _, _) in MATRIX.items():
        assert registry.call(name, args).unreachable, name
    assert not server.seen  # offline mode sends nothing
    fallback = registry.call("search_recipes", {"query": "GRPO verifiable rewards"})
    assert fallback.ok and fallback.data[0]["id"] == "recipe:grpo-verifiable-rewards"


def test_results_are_cached_across_registries(server, tmp_path):
    server.reply("/arxiv/query", ARXIV_FEED)
    researcher_registry(make_config(server, tmp_path)).call("arxiv_paper", {"arxiv_id": "2402.03300"})
    again = researcher_registry(make_config(server, tmp_path, offline=True)).call(
        "arxiv_paper", {"arxiv_id": "2402.03300"})
    assert again.ok and again.data.id == "2402.03300"
    assert len(server.hits("/arxiv/query")) == 1


def test_config_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1/hf")
    monkeypatch.setenv("INTERN_ARXIV_URL", "http://127.0.0.1:1/arxiv")
    monkeypatch.setenv("INTERN_S2_URL", "http://127.0.0.1:1/s2")
    monkeypatch.setenv("INTERN_GITHUB_URL", "http://127.0.0.1:1/gh")
    monkeypatch.setenv("INTERN_DATASETS_SERVER_URL", "http://127.0.0.1:1/dsv")
    monkeypatch.setenv("INTERN_CACHE", str(tmp_path))
    monkeypatch.setenv("INTERN_HTTP_TIMEOUT", "3")
    monkeypatch.setenv("INTERN_OFFLINE", "1")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret_value")
    config = ResearchConfig.from_env()
    assert (config.hf_endpoint, config.arxiv_url, config.s2_url, config.github_url, config.datasets_server_url) == (
        "http://127.0.0.1:1/hf", "http://127.0.0.1:1/arxiv", "http://127.0.0.1:1/s2", "http://127.0.0.1:1/gh",
        "http://127.0.0.1:1/dsv")
    assert config.cache_dir == tmp_path / "tools" and config.timeout_s == 3.0 and config.offline
    assert config.github_token == "ghp_secret_value" and "ghp_secret_value" not in repr(config)
    assert ResearchConfig.from_env(timeout_s=1.0).timeout_s == 1.0
    monkeypatch.setenv("INTERN_HTTP_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="INTERN_HTTP_TIMEOUT"):
        ResearchConfig.from_env()
    monkeypatch.setenv("INTERN_HTTP_TIMEOUT", "3")
    with pytest.raises(ConfigError, match="timeout"):
        ResearchConfig.from_env(timeout=3)


def test_every_schema_is_valid_openai_tools_format(server, tmp_path):
    schemas = researcher_registry(make_config(server, tmp_path)).schemas()
    assert len(schemas) == 15
    for entry in schemas:
        fn = entry["function"]
        assert entry["type"] == "function" and fn["description"] and fn["parameters"]["type"] == "object"
        for prop in fn["parameters"]["properties"].values():
            assert prop["description"] and ("type" in prop or "anyOf" in prop)

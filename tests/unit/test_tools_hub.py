"""Hub search, dataset inspection, HF docs and GitHub clients: what they read out of real-format replies."""

from __future__ import annotations

import base64

import pytest
from test_tools_loopback import Loopback
from test_tools_services import (
    DOCS_PAGE,
    DOCS_SEARCH,
    DSV_FIRST_ROWS,
    DSV_INFO,
    DSV_SPLITS,
    FILE_TEXT,
    GITHUB_FILE,
    GITHUB_NOT_FOUND,
    GITHUB_SEARCH,
    HUB_DATASETS,
    HUB_MODELS,
)

from intern.errors import ToolError
from intern.tools.datasets_server import DatasetViewerClient, feature_type
from intern.tools.github import GitHubClient, github_headers
from intern.tools.hf_docs import HfDocsClient
from intern.tools.http_client import DiskCache, HttpClient
from intern.tools.hub import HubClient


@pytest.fixture
def server():
    with Loopback() as loop:
        yield loop


def _http(tmp_path, **kw) -> HttpClient:
    return HttpClient("svc", DiskCache(tmp_path / "cache"), timeout=10.0, **kw)


def test_hub_model_and_dataset_search(server, tmp_path):
    server.reply("/api/models", HUB_MODELS)
    server.reply("/api/datasets", HUB_DATASETS)
    hub = HubClient(_http(tmp_path), server.url)
    (model,) = hub.search_models("qwen2.5", limit=5, task="text-generation")
    assert model.id == "Qwen/Qwen2.5-0.5B-Instruct" and model.downloads == 1234567
    assert model.pipeline_tag == "text-generation" and model.library == "transformers"
    assert "base_model:Qwen/Qwen2.5-0.5B" in model.tags and model.created_at == "2024-09-16"
    assert server.hits("/api/models")[0].query == {"search": ["qwen2.5"], "limit": ["5"], "sort": ["downloads"],
                                                   "direction": ["-1"], "pipeline_tag": ["text-generation"]}
    (ds,) = hub.search_datasets("gsm8k")
    assert ds.id == "openai/gsm8k" and ds.likes == 712 and ds.gated is False
    assert ds.description.startswith("GSM8K (Grade School Math 8K)")
    with pytest.raises(ToolError, match="limit"):
        hub.search_datasets("gsm8k", limit=0)


def test_dataset_inspection_picks_a_config_and_split(server, tmp_path):
    server.reply("/splits", DSV_SPLITS)
    server.reply("/info", DSV_INFO)
    server.reply("/first-rows", DSV_FIRST_ROWS)
    viewer = DatasetViewerClient(_http(tmp_path), server.url)
    preview = viewer.inspect("openai/gsm8k", rows=2)
    assert preview.splits == {"main": ["train", "test"], "socratic": ["train", "test"]}
    assert (preview.config, preview.split) == ("main", "train")
    assert preview.num_rows == {"train": 7473, "test": 1319}
    assert preview.features == {"question": "string", "answer": "string"}
    assert len(preview.rows) == 2 and preview.rows[1]["answer"].endswith("#### 2")
    assert server.hits("/first-rows")[0].query == {"dataset": ["openai/gsm8k"], "config": ["main"], "split": ["train"]}
    with pytest.raises(ToolError, match="no config 'nope'; configs: main, socratic") as info:
        viewer.inspect("openai/gsm8k", config="nope")
    assert info.value.kind == "not_found"
    with pytest.raises(ToolError, match="no split 'validation'"):
        viewer.inspect("openai/gsm8k", split="validation")


def test_dataset_inspection_survives_a_missing_info(server, tmp_path):
    server.reply("/splits", DSV_SPLITS)
    server.reply("/info", {"error": "The response is not ready yet."}, status=500)
    server.reply("/first-rows", {**DSV_FIRST_ROWS, "rows": [{"row_idx": 0, "row": {"question": "q" * 2000,
                                                                                 "answer": "a"}}]})
    preview = DatasetViewerClient(_http(tmp_path), server.url).inspect("openai/gsm8k", config="socratic")
    assert preview.num_rows is None and preview.config == "socratic"
    assert preview.rows[0]["question"].endswith("[1400 more characters]")


def test_feature_types():
    assert feature_type({"_type": "Sequence", "feature": {"dtype": "int64", "_type": "Value"}}) == "list[int64]"
    assert feature_type({"_type": "List", "feature": {"dtype": "string", "_type": "Value"}}) == "list[string]"
    assert feature_type([{"role": {"dtype": "string", "_type": "Value"},
                          "content": {"dtype": "string", "_type": "Value"}}]) == "list[{role: string, content: string}]"
    assert feature_type({"names": ["A", "B"], "_type": "ClassLabel"}) == "class_label['A', 'B']"


def test_hf_docs_search_and_fetch(server, tmp_path):
    server.reply("/api/docs/search", DOCS_SEARCH)
    server.reply("/docs/trl/sft_trainer.md", DOCS_PAGE, content_type="text/markdown")
    docs = HfDocsClient(_http(tmp_path), server.url)
    (hit,) = docs.search("Completion only loss", product="trl")
    assert server.seen[0].query == {"q": ["completion only loss"], "product": ["trl"]}
    assert (hit.product, hit.page, hit.heading) == ("trl", "SFT Trainer", "Train on completions only")
    assert "<code>" not in hit.excerpt and "completion_only_loss=True" in hit.excerpt
    assert docs.fetch(hit.url) == DOCS_PAGE
    section = docs.fetch("trl/sft_trainer", section="dataset format")
    assert section.startswith("## Dataset format") and "### Prompt-completion" in section
    assert "Train on completions only" not in section
    with pytest.raises(ToolError, match="no section matching 'rewards'.*Dataset format") as info:
        docs.fetch("trl/sft_trainer", section="rewards")
    assert info.value.kind == "not_found"
    with pytest.raises(ToolError, match="not a docs page"):
        docs.fetch("sft_trainer")


def test_github_code_search_sends_token_and_qualifiers(server, tmp_path):
    server.reply("/search/code", GITHUB_SEARCH)
    gh = GitHubClient(_http(tmp_path, headers=github_headers("ghp_token_value")), server.url)
    (hit,) = gh.search_code("GRPOTrainer reward_funcs", language="python", repo="huggingface/trl", limit=5)
    assert (hit.repo, hit.path) == ("huggingface/trl", "trl/trainer/grpo_trainer.py")
    assert "reward_funcs" in hit.fragments[0]
    seen = server.hits("/search/code")[0]
    assert seen.query == {"q": ["GRPOTrainer reward_funcs language:python repo:huggingface/trl"], "per_page": ["5"]}
    assert seen.headers["Authorization"] == "Bearer ghp_token_value"
    assert seen.headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_github_code_search_without_token_explains_401(server, tmp_path):
    server.reply("/search/code", {"message": "Requires authentication", "status": "401"}, status=401)
    with pytest.raises(ToolError, match="set GITHUB_TOKEN"):
        GitHubClient(_http(tmp_path, headers=github_headers(None)), server.url).search_code("x")
    assert "Authorization" not in server.seen[0].headers


def test_github_read_file_slices_with_line_numbers(server, tmp_path):
    path = "/repos/huggingface/trl/contents/examples/scripts/sft.py"
    server.reply(path, GITHUB_FILE)
    gh = GitHubClient(_http(tmp_path), server.url)
    text = gh.read_file("huggingface/trl", "examples/scripts/sft.py", ref="v0.19.0", start_line=10, max_lines=3)
    header, *lines = text.splitlines()
    assert header == "huggingface/trl/examples/scripts/sft.py@v0.19.0 lines 10-12 of 300 (more: start_line=13)"
    assert lines == ["10| line 10", "11| line 11", "12| line 12"]
    assert server.seen[0].query == {"ref": ["v0.19.0"]}


def test_github_directory_large_file_binary_and_404(server, tmp_path):
    server.reply("/repos/o/r/contents/examples", [
        {"type": "file", "name": "sft.py", "path": "examples/sft.py", "size": 10},
        {"type": "dir", "name": "scripts", "path": "examples/scripts", "size": 0}])
    server.reply("/repos/o/r/contents/big.txt", {**GITHUB_FILE, "content": "", "encoding": "none",
                                                 "download_url": server.url + "/raw/big.txt"})
    server.reply("/raw/big.txt", FILE_TEXT)
    png = base64.b64encode(b"\x89PNG\x00\x00").decode()
    server.reply("/repos/o/r/contents/logo.png", {**GITHUB_FILE, "content": png})
    server.reply("/repos/o/r/contents/missing.py", GITHUB_NOT_FOUND, status=404)
    gh = GitHubClient(_http(tmp_path), server.url)
    listing = gh.read_file("o/r", "examples")
    assert listing.splitlines() == ["directory o/r/examples (2 entries)", "file examples/sft.py",
                                    "dir  examples/scripts"]
    assert "lines 1-200 of 300" in gh.read_file("o/r", "big.txt")
    with pytest.raises(ToolError, match="binary") as info:
        gh.read_file("o/r", "logo.png")
    assert info.value.kind == "bad_response"
    with pytest.raises(ToolError, match=r"not found: .*missing.py \(Not Found\)") as info:
        gh.read_file("o/r", "missing.py")
    assert info.value.kind == "not_found"
    with pytest.raises(ToolError, match="owner/name"):
        gh.read_file("not-a-repo", "x.py")

"""The offline recipe library: every note well-formed and cited, the playbook's ids present, search ranks sensibly."""

from __future__ import annotations

import re

import pytest

from intern.errors import ToolError
from intern.llm.playbook import propose_hypotheses
from intern.tools.base import ToolRegistry
from intern.tools.knowledge import knowledge_tools, list_recipes, load_library, read_recipe, search_recipes

REQUIRED_IDS = {"recipe:sft-task-format", "recipe:full-vs-lora", "recipe:grpo-verifiable-rewards",
                "recipe:distillation", "recipe:data-mixing", "recipe:curriculum", "recipe:decontamination"}


def test_the_library_has_every_recipe_and_each_is_cited():
    notes = load_library()
    assert REQUIRED_IDS <= set(notes)
    for note in notes.values():
        assert note["title"] and len(note["summary"]) > 40 and note["body"].startswith("# ")
        assert len(note["citations"]) >= 2, note["id"]
        for cite in note["citations"]:
            assert cite["title"] and cite["authors"] and isinstance(cite["year"], int)
            if "arxiv" in cite:
                assert re.fullmatch(r"\d{4}\.\d{4,5}", cite["arxiv"]), cite
                assert 0 <= cite["year"] - (2000 + int(cite["arxiv"][:2])) <= 1, cite  # arXiv ids start with yymm


def test_the_notes_cite_the_papers_the_issue_names():
    arxiv = {c.get("arxiv") for n in load_library().values() for c in n["citations"]}
    assert {"2106.09685", "2402.03300"} <= arxiv  # Hu et al. 2021 (LoRA); Shao et al. 2024 (DeepSeekMath, GRPO)


def test_every_recipe_the_playbook_cites_exists():
    base = {"learning_rate": 1e-4, "max_steps": 10}
    first = propose_hypotheses(1, 4, [], base)
    best = {**first[0], "dev_score": 0.5, "checkpoint": "ckpt", "hypothesis": first[0]}
    later = propose_hypotheses(2, 2, [best], base)
    cited = {s for h in first + later for s in h["sources"] if s.startswith("recipe:")}
    assert cited and cited <= set(load_library())


@pytest.mark.parametrize("query, best", [
    ("lora learning rate", "recipe:full-vs-lora"),
    ("reinforcement learning with verifiable rewards for math", "recipe:grpo-verifiable-rewards"),
    ("GRPO", "recipe:grpo-verifiable-rewards"),
    ("teacher model synthetic solutions", "recipe:distillation"),
    ("benchmark contamination n-gram", "recipe:decontamination"),
    ("near-duplicate dedup", "recipe:decontamination"),
    ("curriculum easy to hard", "recipe:curriculum"),
    ("continue training from the best checkpoint", "recipe:curriculum"),
    ("data mixture ratio forgetting", "recipe:data-mixing"),
    ("supervised fine-tuning answer format", "recipe:sft-task-format"),
])
def test_search_ranks_the_right_note_first(query, best):
    hits = search_recipes(query)
    assert hits and hits[0]["id"] == best, [(h["id"], h["score"]) for h in hits]
    assert set(hits[0]) == {"id", "title", "summary", "citations", "score"}


def test_search_edges():
    assert search_recipes("zzzz qqqq") == []
    assert [h["id"] for h in search_recipes("", limit=3)] == [n["id"] for n in list_recipes()[:3]]
    with pytest.raises(ToolError, match="limit"):
        search_recipes("lora", limit=0)


def test_read_recipe_includes_the_references():
    text = read_recipe("recipe:full-vs-lora")
    assert "## Citations (recipe:full-vs-lora)" in text and "arXiv:2106.09685" in text
    assert read_recipe("curriculum").startswith("# Curriculum")
    with pytest.raises(ToolError, match="no recipe 'recipe:nope'; ids: ") as info:
        read_recipe("recipe:nope")
    assert info.value.kind == "not_found"


def test_as_tools():
    registry = ToolRegistry("researcher", knowledge_tools())
    hit = registry.call("search_recipes", {"query": "lora"})
    assert hit.ok and hit.data[0]["id"] == "recipe:full-vs-lora" and "Hu et al." in hit.text
    assert registry.call("read_recipe", {"recipe_id": "recipe:distillation"}).ok
    missing = registry.call("read_recipe", {"recipe_id": "nope"})
    assert not missing.ok and missing.error_kind == "not_found"

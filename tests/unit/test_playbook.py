"""The offline playbook brain: distinct, justified hypotheses; later rounds refine the best."""

from __future__ import annotations

from intern.config import TrainConfig
from intern.llm.playbook import propose_hypotheses

BASE = vars(TrainConfig())


def test_first_round_is_distinct_and_justified():
    hs = propose_hypotheses(1, 3, [], BASE)
    assert [h["id"] for h in hs] == ["i1-b0", "i1-b1", "i1-b2"]
    assert len({h["title"] for h in hs}) == 3
    assert len({repr((h["train"], h["data"])) for h in hs}) == 3, "each must change something"
    assert all(h["rationale"] and h["sources"] and h["init_from"] is None for h in hs)
    assert {h["train"]["lora"] for h in hs[:2]} == {True, False}  # full vs LoRA first


def test_more_branches_than_ideas_still_distinct():
    hs = propose_hypotheses(1, 6, [], BASE)
    assert len({repr((h["train"], h["data"])) for h in hs}) == 6


def test_later_round_continues_from_best_checkpoint():
    findings = [
        {"id": "i1-b0", "dev_score": 0.3, "checkpoint": "/ck/b0",
         "hypothesis": {"train": {"learning_rate": 1e-4, "lora": False}, "data": {"style": "worked"}}},
        {"id": "i1-b1", "dev_score": 0.6, "checkpoint": "/ck/b1",
         "hypothesis": {"train": {"learning_rate": 1e-3, "lora": True}, "data": {"style": "worked"}}},
        {"id": "i1-b2", "dev_score": None, "error": "boom", "checkpoint": None, "hypothesis": {}},
    ]
    hs = propose_hypotheses(2, 2, findings, BASE)
    assert [h["id"] for h in hs] == ["i2-b0", "i2-b1"]
    assert all(h["init_from"] == "/ck/b1" for h in hs)
    assert all(h["train"]["learning_rate"] < 1e-3 for h in hs)
    assert hs[0]["data"] != hs[1]["data"]


def test_sft_then_grpo_is_a_first_round_hypothesis_after_the_cheaper_rivals():
    hs = propose_hypotheses(1, 5, [], BASE)
    assert [h["train"].get("learning_rate") for h in hs[:3]] == [1e-4, 1e-3, 3e-5]
    grpo = hs[4]
    assert grpo["train"]["method"] == "sft_grpo"
    assert "recipe:grpo-verifiable-rewards" in grpo["sources"]


def test_third_branch_of_a_later_round_tries_grpo_from_the_best_sft_checkpoint():
    findings = [{"id": "i1-b0", "dev_score": 0.5, "checkpoint": "/ck/b0",
                 "hypothesis": {"train": {"learning_rate": 1e-4, "lora": False}, "data": {"style": "worked"}}}]
    hs = propose_hypotheses(2, 3, findings, BASE)
    assert hs[2]["train"]["method"] == "grpo" and hs[2]["init_from"] == "/ck/b0"


def test_on_cpus_the_playbook_proposes_no_grpo_of_its_own_but_honours_the_run_config():
    """intern bench grpo (docs/benchmarks.md): on the CPU, SFT -> GRPO lost to SFT alone with the same time."""
    first = propose_hypotheses(1, 5, [], BASE, gpu=False)
    assert not [h for h in first if "grpo" in str(h["train"].get("method", ""))]
    assert len({h["title"] for h in first}) == 5  # the slot goes to another SFT variant
    findings = [{"id": "i1-b0", "dev_score": 0.5, "checkpoint": "/ck/b0",
                 "hypothesis": {"train": {"learning_rate": 1e-4, "lora": False}, "data": {"style": "worked"}}}]
    later = propose_hypotheses(2, 3, findings, BASE, gpu=False)
    assert not [h for h in later if "grpo" in str(h["train"].get("method", ""))]
    asked = propose_hypotheses(1, 2, [], {**BASE, "method": "sft_grpo"}, gpu=False)
    assert all("then GRPO" in h["title"] for h in asked)


def test_titles_say_when_the_run_config_adds_grpo():
    hs = propose_hypotheses(1, 2, [], {**BASE, "method": "sft_grpo"})
    assert all("then GRPO" in h["title"] and "recipe:grpo-verifiable-rewards" in h["sources"] for h in hs)


def test_multiple_choice_trains_on_checked_targets_and_cites_why():
    from intern.tools.knowledge import read_recipe

    numeric, mcq = propose_hypotheses(1, 5, [], BASE), propose_hypotheses(1, 5, [], BASE, kind="mcq")
    for n, m in zip(numeric, mcq, strict=True):
        assert m["train"] == n["train"]
        if n["data"]["style"] == "worked":
            assert m["data"]["style"] == "checked" and "recipe:mcq-checked-targets" in m["sources"]
            assert "option-checking" in m["title"] and "checked" in m["rationale"]
        else:
            assert m["data"] == n["data"] and m["sources"] == n["sources"]
    assert "targets that check each option" in read_recipe("recipe:mcq-checked-targets")
    wide = propose_hypotheses(1, 7, [], BASE, kind="mcq")  # seed variants of the first idea keep its style
    assert wide[-1]["data"] == {"style": "checked", "seed_offset": 6}

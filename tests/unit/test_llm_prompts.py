"""Every shipped role prompt loads, renders strictly, and carries a usable result schema."""

from __future__ import annotations

import jsonschema
import pytest

from intern.llm.agent import finish_tool
from intern.llm.prompts import ROLES, PromptError, render_prompt, variables

VALUES = {"base_model": "bundled:smollm2-135m-instruct", "benchmark": "wordproblems",
          "budget": "300 tool calls, 1 h", "iteration": 2, "branches": 3, "findings": '[{"id": "i1-b0"}]',
          "hypothesis": '{"id": "i1-b0"}', "dataset": '{"path": "data.parquet"}', "model": "ckpt/final",
          "split": "dev"}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_renders_with_its_variables(role):
    needed = variables(role)
    assert {"base_model", "benchmark", "budget"} <= needed
    prompt = render_prompt(role, **{k: VALUES[k] for k in needed})
    assert "bundled:smollm2-135m-instruct" in prompt.system and "`finish`" in prompt.system
    assert "{{" not in prompt.system + prompt.task and prompt.task
    jsonschema.Draft202012Validator.check_schema(prompt.result_schema)
    assert finish_tool(prompt.result_schema)["function"]["parameters"] is prompt.result_schema


@pytest.mark.parametrize("role", ROLES)
def test_a_missing_variable_fails_loudly(role):
    values = {k: VALUES[k] for k in variables(role) - {"benchmark"}}
    with pytest.raises(PromptError, match=f"prompt '{role}' needs benchmark"):
        render_prompt(role, **values)


def test_unknown_role():
    with pytest.raises(PromptError, match="no prompt for role 'critic'"):
        render_prompt("critic")


def test_researcher_findings_switch_the_task():
    base = {k: VALUES[k] for k in variables("researcher")}
    assert "no results yet" in render_prompt("researcher", **{**base, "findings": ""}).task
    assert "i1-b0" in render_prompt("researcher", **base).task


def test_researcher_schema_accepts_a_playbook_hypothesis():
    from intern.llm.playbook import FIRST_ROUND

    schema = render_prompt("researcher", **{k: VALUES[k] for k in variables("researcher")}).result_schema
    jsonschema.validate({"hypotheses": [{**h, "init_from": None} for h in FIRST_ROUND]}, schema)

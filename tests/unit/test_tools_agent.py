"""The researcher's registry inside the real agent loop: online it cites what the services return, offline the library.

Both ends are loopback servers that speak the real protocols: a scripted OpenAI-compatible
chat server (``tests/llm_server.py``) drives the real ``OpenAIBrain`` and ``run_agent``;
the research services are :class:`Loopback` replaying arXiv Atom.
"""

from __future__ import annotations

import json

from llm_server import LLMServer, call, finish, reply
from test_tools_loopback import Loopback
from test_tools_services import ARXIV_FEED, make_config

from intern.llm.agent import run_agent
from intern.llm.openai_brain import OpenAIBrain
from intern.tools.research import researcher_registry

RESULT = {"type": "object", "required": ["sources"], "additionalProperties": False,
          "properties": {"sources": {"type": "array", "items": {"type": "string"}}}}


def _run(llm: LLMServer, registry) -> tuple:
    brain = OpenAIBrain(model="m", base_url=llm.base_url, api_key="sk-test-0123456789abcdef", max_attempts=1)
    result = run_agent(brain, "You are a researcher.", "Find how to post-train for math.", registry,
                       result_schema=RESULT, role="researcher", max_steps=5)
    tool_messages = [m for m in llm.requests[-1]["body"]["messages"] if m["role"] == "tool"]
    return result, tool_messages


def test_online_the_tool_text_carries_the_paper_ids(tmp_path):
    with Loopback() as services:
        services.reply("/arxiv/query", ARXIV_FEED)
        script = [reply(tool_calls=[call("arxiv_search", {"query": "GRPO math", "max_results": 3})]),
                  finish({"sources": ["arxiv:2402.03300"]})]
        with LLMServer(script) as llm:
            result, tool_messages = _run(llm, researcher_registry(make_config(services, tmp_path)))
    assert result.stopped_reason == "finished" and result.final == {"sources": ["arxiv:2402.03300"]}
    papers = json.loads(tool_messages[0]["content"])
    assert papers[0]["id"] == "2402.03300" and papers[0]["title"].startswith("DeepSeekMath")


def test_offline_the_model_is_told_and_falls_back_to_the_library(tmp_path):
    with Loopback() as services:
        script = [reply(tool_calls=[call("arxiv_search", {"query": "GRPO math"})]),
                  reply(tool_calls=[call("search_recipes", {"query": "GRPO math rewards"})]),
                  finish({"sources": ["recipe:grpo-verifiable-rewards"]})]
        with LLMServer(script) as llm:
            result, tool_messages = _run(llm, researcher_registry(make_config(services, tmp_path, offline=True)))
        assert not services.seen
    assert result.final == {"sources": ["recipe:grpo-verifiable-rewards"]}
    assert tool_messages[0]["content"].startswith("Error: 'arxiv_search' failed [unreachable]")
    recipes = json.loads(tool_messages[1]["content"])
    assert recipes[0]["id"] == "recipe:grpo-verifiable-rewards" and recipes[0]["citations"]

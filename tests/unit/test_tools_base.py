"""The tool contract: definition-time checks, argument validation, the registry, truncation."""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass
from typing import Literal

import pytest

from intern.errors import ToolError
from intern.tools.base import Tool, ToolRegistry, ToolResult, tool
from intern.tools.schema import parse_docstring


@dataclass(frozen=True)
class Hit:
    id: str
    score: float


def search(query: str, limit: int = 5, sort: Literal["new", "top"] = "top", tags: list[str] | None = None,
           threshold: float = 0.5) -> list[Hit]:
    """Searches the index.

    More detail on a second paragraph.

    Args:
        query: What to look for,
            continued on a second line.
        limit: How many hits.
        sort: Order of the hits.
        tags: Only hits with these tags.
        threshold: Minimum score.

    Returns:
        The hits.
    """
    return [Hit(f"{query}-{i}", threshold) for i in range(limit)]


def test_schema_comes_from_hints_and_docstring():
    t = Tool(search)
    schema = t.schema()
    assert schema["type"] == "function"
    fn = schema["function"]
    assert fn["name"] == "search"
    assert fn["description"] == "Searches the index. More detail on a second paragraph."
    props = fn["parameters"]["properties"]
    assert props["query"] == {"type": "string", "description": "What to look for, continued on a second line."}
    assert props["limit"] == {"type": "integer", "default": 5, "description": "How many hits."}
    assert props["sort"]["enum"] == ["new", "top"]
    assert props["tags"]["type"] == "array" and props["tags"]["items"] == {"type": "string"}
    assert props["threshold"]["type"] == "number"
    assert fn["parameters"]["required"] == ["query"]
    assert fn["parameters"]["additionalProperties"] is False
    assert t.output_type == list[Hit]
    json.dumps(schema)  # serializable as sent to the API


def test_bound_methods_drop_self():
    class Client:
        def get(self, key: str) -> str:
            """Gets a key.

            Args:
                key: The key.
            """
            return key.upper()

    t = Tool(Client().get, name="client_get")
    assert list(t.parameters["properties"]) == ["key"]
    assert t.run({"key": "a"}).text == "A"


@pytest.mark.parametrize("make, fragment", [
    (lambda: Tool(search, name="bad name!"), "tool name"),
    (lambda: Tool(search, name="9lives"), "tool name"),
])
def test_bad_names_fail_at_definition(make, fragment):
    with pytest.raises(ToolError, match=fragment) as info:
        make()
    assert info.value.kind == "definition"


def fn_no_doc(x: int) -> int:
    return x


def fn_untyped(x) -> int:  # noqa: ANN001 - the point of the test
    """Doubles.

    Args:
        x: A number.
    """
    return 2 * x


def fn_undocumented_param(x: int, y: int) -> int:
    """Adds.

    Args:
        x: A number.
    """
    return x + y


def fn_no_return(x: int):  # noqa: ANN202
    """Returns nothing typed.

    Args:
        x: A number.
    """


def fn_kwargs(**kw: int) -> int:
    """Takes anything.

    Args:
        kw: Anything.
    """
    return 0


def fn_unsupported(x: set[int]) -> int:
    """Takes a set.

    Args:
        x: A set.
    """
    return 0


def fn_extra_doc(x: int) -> int:
    """Documents a ghost.

    Args:
        x: A number.
        ghost: Not a parameter.
    """
    return x


@pytest.mark.parametrize("fn, fragment", [
    (fn_no_doc, "no description"),
    (fn_untyped, "add a type hint"),
    (fn_undocumented_param, "parameter 'y'.*Args"),
    (fn_no_return, "return type hint"),
    (fn_kwargs, r"\*args, \*\*kwargs"),
    (fn_unsupported, "not supported"),
    (fn_extra_doc, "ghost"),
])
def test_malformed_functions_fail_at_definition(fn, fragment):
    with pytest.raises(ToolError, match=fragment) as info:
        Tool(fn)
    assert info.value.kind == "definition"


@pytest.mark.parametrize("args, fragment", [
    ({"q": "x"}, "unknown argument.*'q'.*takes: query, limit\\?"),
    ({}, "missing required argument 'query'"),
    ({"query": 3}, "argument 'query' must be a string, got int 3"),
    ({"query": "x", "limit": "5"}, "argument 'limit' must be an integer, got str '5'"),
    ({"query": "x", "limit": True}, "argument 'limit' must be an integer, got bool"),
    ({"query": "x", "sort": "old"}, "argument 'sort' must be one of 'new', 'top'"),
    ({"query": "x", "tags": ["a", 2]}, r"argument 'tags\[1\]' must be a string"),
    ("not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
])
def test_bad_arguments_come_back_as_text(args, fragment):
    result = Tool(search).run(args)
    assert not result.ok and result.error_kind == "invalid_arguments" and result.data is None
    assert result.text.startswith("'search' failed [invalid_arguments]: ")
    assert re.search(fragment, result.text), result.text


def test_validate_arguments_fills_defaults_and_widens_ints_to_floats():
    args = Tool(search).validate_arguments({"query": "x", "threshold": 1})
    assert args == {"query": "x", "limit": 5, "sort": "top", "tags": None, "threshold": 1.0}
    assert isinstance(args["threshold"], float)
    assert Tool(search).validate_arguments({"query": "x", "tags": None})["tags"] is None


def test_run_returns_typed_data_and_json_text():
    result = Tool(search).run('{"query": "lora", "limit": 2}')
    assert result.ok and result.error_kind is None and not result.truncated
    assert result.data == [Hit("lora-0", 0.5), Hit("lora-1", 0.5)]
    assert json.loads(result.text) == [{"id": "lora-0", "score": 0.5}, {"id": "lora-1", "score": 0.5}]


def test_output_is_cut_to_the_budget_with_a_note():
    @tool(max_chars=100)
    def long(n: int) -> str:
        """Returns n characters.

        Args:
            n: How many.
        """
        return "x" * n

    short = long.run({"n": 100})
    assert short.text == "x" * 100 and not short.truncated
    cut = long.run({"n": 1000})
    assert cut.truncated and cut.text.startswith("x" * 100)
    assert "[output truncated: showing the first 100 of 1000 characters" in cut.text
    assert cut.data == "x" * 1000  # the typed result stays whole for Python callers


def test_registry_schemas_names_and_never_raising_call():
    @tool
    def boom(x: int) -> int:
        """Always fails.

        Args:
            x: Ignored.
        """
        raise RuntimeError("disk on fire")

    @tool
    def down(x: int) -> int:
        """A service that is down.

        Args:
            x: Ignored.
        """
        raise ToolError("example.org is unreachable: connection refused", "unreachable")

    reg = ToolRegistry("researcher", [Tool(search), boom, down])
    assert reg.names() == ["search", "boom", "down"] and "boom" in reg and len(reg) == 3
    assert [s["function"]["name"] for s in reg.schemas()] == ["search", "boom", "down"]
    crashed = reg.call("boom", {"x": 1})
    assert not crashed.ok and crashed.error_kind == "failed" and "RuntimeError: disk on fire" in crashed.text
    offline = reg.call("down", {"x": 1})
    assert offline.unreachable and "unreachable" in offline.text
    unknown = reg.call("nope", "{}")
    assert not unknown.ok and unknown.error_kind == "unknown_tool"
    assert "available: search, boom, down" in unknown.text
    with pytest.raises(ToolError, match="already registered"):
        reg.register(Tool(search))
    with pytest.raises(ToolError, match="register Tool objects"):
        reg.register(search)  # type: ignore[arg-type]


def test_results_and_errors_pickle():
    result = ToolResult("search", False, "error", error_kind="unreachable")
    assert pickle.loads(pickle.dumps(result)) == result
    err = pickle.loads(pickle.dumps(ToolError("gone", "unreachable")))
    assert err.kind == "unreachable" and str(err) == "gone"


def test_parse_docstring_stops_args_at_the_next_section():
    summary, args = parse_docstring(search.__doc__)
    assert summary.startswith("Searches the index.")
    assert set(args) == {"query", "limit", "sort", "tags", "threshold"}
    assert "hits." not in args["threshold"]

"""Citations the system vouches for: stable source ids, and a ledger of what a role's tools returned.

A hypothesis cites what it rests on in ``sources``, one stable id each:

    recipe:sft-task-format        a note of the packaged library (must exist in it)
    arxiv:2402.03300              an arXiv paper (a version suffix is dropped)
    s2:<paperId>  doi:<doi>       a paper from the citation graph
    hf-dataset:openai/gsm8k       a Hub dataset;  hf-model:<org/name>  a Hub model
    github:<owner/repo>/<path>    a file on GitHub;  hf-docs:<library>/<page>  a docs page
    branch:i1-b0                  an earlier branch of this run (its finding)

:class:`CitationLedger` wraps a role's tool registry and records the ids each successful
call returned (read from the typed results, not from the text); a non-recipe id is
vouched for only when this ledger saw it, so a role cannot cite a paper it never found::

    ledger = CitationLedger(researcher_registry())
    run_agent(brain, system, task, ledger, result_schema=schema)     # the loop calls ledger.call
    problems = citation_problems(result["hypotheses"], ledger.seen)  # [] when every id is vouched for
    kept, dropped = verified_sources(["arXiv:2402.03300v3", "arxiv:9999.99999"], ledger.seen)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from intern.errors import ToolError
from intern.tools.arxiv import ArxivPaper, normalize_arxiv_id
from intern.tools.base import ToolGate, ToolRegistry, ToolResult
from intern.tools.datasets_server import DatasetPreview
from intern.tools.github import CodeHit
from intern.tools.hf_docs import DocHit
from intern.tools.hub import DatasetHit, HubPaper, ModelHit
from intern.tools.knowledge import load_library
from intern.tools.scholar import LinkedPaper

__all__ = ["SCHEMES", "CitationLedger", "LedgerCall", "citation_problems", "describe_source", "normalize_source",
           "verified_sources"]

SCHEMES = ("recipe", "arxiv", "s2", "doi", "hf-dataset", "hf-model", "github", "hf-docs", "branch")
"""The source id prefixes a hypothesis may cite (see the module docstring)."""

HOW_TO_CITE = ("cite papers as arxiv:<id> (or s2:<paperId>, doi:<doi>), Hub datasets as hf-dataset:<org/name>, "
               "models as hf-model:<org/name>, library notes as recipe:<name>")


def normalize_source(ref: str) -> str | None:
    """The canonical form of a source id, or None when it is not one.

    The scheme is lower-cased, an arXiv id loses its version (``arXiv:2402.03300v3`` ->
    ``arxiv:2402.03300``), a DOI is lower-cased (DOIs are case-insensitive).

    Args:
        ref: A cited id as a role wrote it.
    """
    scheme, sep, value = str(ref).strip().partition(":")
    scheme, value = scheme.strip().lower(), value.strip()
    if not sep or not value or scheme not in SCHEMES:
        return None
    if scheme == "arxiv":
        try:
            value = normalize_arxiv_id(value, version=False)
        except ToolError:
            return None
    elif scheme == "doi":
        value = value.lower()
    return f"{scheme}:{value}"


def _docs_page(page: str) -> str:
    path = urlparse(page).path if "://" in page else page
    return path.split("#")[0].strip("/").removeprefix("docs/").removesuffix(".md")


def _found(value: Any) -> Iterator[tuple[str, str]]:
    """``(source id, title)`` of everything a tool's typed result names."""
    if isinstance(value, list | tuple):
        for item in value:
            yield from _found(item)
    elif isinstance(value, ArxivPaper | HubPaper):
        yield f"arxiv:{value.id}", value.title
        if isinstance(value, HubPaper):
            yield from ((f"hf-model:{m}", m) for m in value.linked_models)
            yield from ((f"hf-dataset:{d}", d) for d in value.linked_datasets)
    elif isinstance(value, LinkedPaper):
        for scheme, ident in (("arxiv", value.arxiv_id), ("s2", value.s2_id), ("doi", value.doi)):
            if ident:
                yield f"{scheme}:{ident}", value.title
    elif isinstance(value, ModelHit | DatasetHit):
        yield f"{'hf-model' if isinstance(value, ModelHit) else 'hf-dataset'}:{value.id}", value.id
    elif isinstance(value, DatasetPreview):
        yield f"hf-dataset:{value.dataset}", value.dataset
    elif isinstance(value, CodeHit):
        yield f"github:{value.repo}/{value.path}", value.url
    elif isinstance(value, DocHit):
        yield f"hf-docs:{_docs_page(value.url)}", f"{value.page}: {value.heading}".strip(": ")
    elif isinstance(value, Mapping) and str(value.get("id", "")).startswith("recipe:"):
        yield str(value["id"]), str(value.get("title", ""))
        yield from _cited_by_note(value.get("citations") or [])


def _cited_by_note(citations: Iterable[Any]) -> Iterator[tuple[str, str]]:
    for cite in citations:
        if isinstance(cite, Mapping):
            for scheme in ("arxiv", "doi"):
                if cite.get(scheme):
                    yield f"{scheme}:{cite[scheme]}", str(cite.get("title", ""))


def _found_by_call(name: str, args: Mapping[str, Any], data: Any) -> Iterator[tuple[str, str]]:
    """What one successful call returned; text results are identified by their arguments."""
    if name == "read_recipe":
        notes = load_library()
        note = notes.get(str(args.get("recipe_id"))) or notes.get(f"recipe:{args.get('recipe_id')}")
        if note is not None:
            yield note["id"], note["title"]
            yield from _cited_by_note(note["citations"])
    elif name == "github_read_file" and args.get("repo") and args.get("path"):
        yield f"github:{args['repo']}/{str(args['path']).strip('/')}", f"{args['repo']}/{args['path']}"
    elif name == "hf_docs_fetch" and args.get("page"):
        yield f"hf-docs:{_docs_page(str(args['page']))}", str(args["page"])
    else:
        yield from _found(data)


@dataclass(frozen=True)
class LedgerCall:
    """One tool call the ledger saw.

    Attributes:
        name: The tool.
        ok: Whether it succeeded.
        error_kind: On failure, the kind (``unreachable``, ``rate_limited``, ...).
        found: The source ids it returned, in the order returned (canonical form).
        error: On failure, the message the role saw.
    """

    name: str
    ok: bool
    error_kind: str | None
    found: list[str] = field(default_factory=list)
    error: str = ""


class CitationLedger:
    """A role's tool registry that remembers which source ids its results named.

    It has the registry's ``schemas``/``call`` interface, so the agent loop uses it in place
    of the registry.

    Args:
        registry: The role's tools.

    Attributes:
        calls: Every call, in order.
        seen: ``{source id: {"title", "tool"}}`` of every id a successful call returned.
    """

    def __init__(self, registry: ToolRegistry):
        self.registry = registry
        self.calls: list[LedgerCall] = []
        self.seen: dict[str, dict[str, str]] = {}

    def schemas(self) -> list[dict[str, Any]]:
        """The registry's OpenAI tool schemas."""
        return self.registry.schemas()

    def gate_of(self, name: str) -> ToolGate | None:
        """The registry's declaration of the sensitive action a call of ``name`` is."""
        return self.registry.gate_of(name)

    def call(self, name: str, args: Mapping[str, Any] | str | None = None) -> ToolResult:
        """Runs the tool through the registry and records the ids its result names."""
        result = self.registry.call(name, args)
        found: list[str] = []
        if result.ok:
            for ident, title in _found_by_call(name, args if isinstance(args, Mapping) else {}, result.data):
                if (canonical := normalize_source(ident)) is None:
                    continue
                found.append(canonical)
                self.seen.setdefault(canonical, {"title": " ".join(title.split())[:200], "tool": name})
        self.calls.append(LedgerCall(name, result.ok, result.error_kind, list(dict.fromkeys(found)),
                                     "" if result.ok else result.text))
        return result

    def failures(self) -> dict[str, str]:
        """``{tool: error kind}`` of the calls that failed (the last failure of each tool)."""
        return {c.name: c.error_kind or "failed" for c in self.calls if not c.ok}

    def found(self, name: str) -> list[str]:
        """The ids the successful calls of tool ``name`` returned, in order, without repeats."""
        return list(dict.fromkeys(i for c in self.calls if c.name == name and c.ok for i in c.found))


def _problem(source: Any, seen: Mapping[str, Any], branches: Iterable[str]) -> str | None:
    """Why ``source`` is not vouched for, or None when it is."""
    canonical = normalize_source(source) if isinstance(source, str) else None
    if canonical is None:
        return f"{source!r} is not a source id: {HOW_TO_CITE}"
    scheme, _, value = canonical.partition(":")
    if scheme == "recipe":
        if canonical not in load_library():
            return f"{source!r} is not in the recipe library (ids: {', '.join(load_library())})"
        return None
    if scheme == "branch":
        known = set(branches)
        if value not in known:
            return f"{source!r} is not an earlier branch of this run (branches: {', '.join(sorted(known)) or 'none'})"
        return None
    if canonical not in seen:
        shown = ", ".join(list(seen)[:12]) or "none: your research tools returned no ids"
        return (f"{source!r} did not appear in any result your tools returned in this turn; cite only what your "
                f"tools found (found: {shown}), search for it first, or leave it out")
    return None


def citation_problems(hypotheses: Iterable[Mapping[str, Any]], seen: Mapping[str, Any],
                      branches: Iterable[str] = ()) -> list[str]:
    """What is wrong with the hypotheses' citations, phrased for the role; [] when all are vouched for.

    Args:
        hypotheses: Each with a ``sources`` list.
        seen: The ids the role's tools returned (:attr:`CitationLedger.seen`).
        branches: Ids of earlier branches a ``branch:`` source may name.
    """
    branches = list(branches)
    return [f"- at hypotheses/{k}/sources/{j}: {why}"
            for k, h in enumerate(hypotheses) for j, s in enumerate(h.get("sources") or [])
            if (why := _problem(s, seen, branches)) is not None]


def verified_sources(sources: Iterable[Any], seen: Mapping[str, Any],
                     branches: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """``(kept, dropped)``: the vouched-for ids in canonical form without repeats, and the rest as given.

    Args:
        sources: A hypothesis's cited ids.
        seen: The ids the role's tools returned.
        branches: Ids of earlier branches a ``branch:`` source may name.
    """
    branches = list(branches)
    kept: list[str] = []
    dropped: list[str] = []
    for s in sources:
        if _problem(s, seen, branches) is None:
            kept.append(normalize_source(s) or s)
        else:
            dropped.append(s)
    return list(dict.fromkeys(kept)), dropped


def describe_source(source: str, seen: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """``{"title", "found_by"}`` of a vouched-for id, for events and the run report.

    Args:
        source: A canonical id (as :func:`verified_sources` keeps it).
        seen: The ids the role's tools returned, with their titles and tools.
    """
    if source in seen:
        return {"title": str(seen[source].get("title", "")), "found_by": str(seen[source].get("tool", ""))}
    if source.startswith("recipe:") and (note := load_library().get(source)) is not None:
        return {"title": note["title"], "found_by": "recipe library"}
    if source.startswith("branch:"):
        return {"title": f"the result of branch {source.removeprefix('branch:')}", "found_by": "earlier iteration"}
    return {"title": "", "found_by": "unknown"}

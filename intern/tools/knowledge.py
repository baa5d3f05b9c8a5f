"""Offline knowledge: the packaged library of post-training recipes, searchable without a network.

The researcher falls back to it when the network tools report ``unreachable``, so an
offline run still reasons from cited sources. Each note (``intern/tools/library/*.md``)
has an id such as ``recipe:sft-task-format``, a title, a summary, tags and citations to
real papers; the ids are what hypotheses cite in ``sources``::

    for hit in search_recipes("lora learning rate"):
        print(hit["id"], hit["title"], [c["title"] for c in hit["citations"]])
    note = read_recipe("recipe:full-vs-lora")     # the whole note, markdown

:func:`knowledge_tools` gives both as :class:`~intern.tools.base.Tool` objects.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

import yaml

from intern.errors import ToolError
from intern.tools.base import Tool

__all__ = ["knowledge_tools", "list_recipes", "load_library", "read_recipe", "search_recipes"]

_WORD_RE = re.compile(r"[a-z0-9]+")
_REQUIRED = ("id", "title", "summary", "citations")


def _stem(word: str) -> str:
    # Crude but enough for a few dozen notes: "rewards" ~ "reward", "mixing" ~ "mix".
    for suffix in ("ing", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in _WORD_RE.findall(text.lower())}


def _parse_note(name: str, text: str) -> dict[str, Any]:
    parts = text.split("---", 2)
    if len(parts) != 3 or parts[0].strip():
        raise ToolError(f"library note {name} must start with '---' YAML front matter '---'", "definition")
    meta = yaml.safe_load(parts[1]) or {}
    missing = [k for k in _REQUIRED if not meta.get(k)]
    if missing:
        raise ToolError(f"library note {name} lacks {missing} in its front matter", "definition")
    if not str(meta["id"]).startswith("recipe:"):
        raise ToolError(f"library note {name}: its id must start with 'recipe:', got {meta['id']!r}", "definition")
    for cite in meta["citations"]:
        if not isinstance(cite, dict) or not cite.get("title") or not (
                cite.get("arxiv") or cite.get("doi") or cite.get("url")):
            raise ToolError(f"library note {name}: every citation needs a title and an arxiv id, doi or url",
                            "definition")
    return {"id": str(meta["id"]), "title": str(meta["title"]), "summary": " ".join(str(meta["summary"]).split()),
            "tags": [str(t) for t in meta.get("tags") or []], "citations": list(meta["citations"]),
            "body": parts[2].strip(), "file": name}


@functools.cache
def load_library() -> dict[str, dict[str, Any]]:
    """Every note of the packaged library, by id (parsed once per process).

    Raises:
        ToolError: ``kind="definition"`` for a malformed note or a duplicate id.
    """
    notes: dict[str, dict[str, Any]] = {}
    for entry in sorted(resources.files("intern.tools.library").iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".md"):
            continue
        note = _parse_note(entry.name, entry.read_text(encoding="utf-8"))
        if note["id"] in notes:
            raise ToolError(f"library notes {notes[note['id']]['file']} and {entry.name} share id {note['id']}",
                            "definition")
        notes[note["id"]] = note
    return notes


def _public(note: dict[str, Any], score: float | None = None) -> dict[str, Any]:
    out = {"id": note["id"], "title": note["title"], "summary": note["summary"],
           "citations": [dict(c) for c in note["citations"]]}
    if score is not None:
        out["score"] = score
    return out


def list_recipes() -> list[dict[str, Any]]:
    """``{id, title, summary, citations}`` of every note, in file order."""
    return [_public(n) for n in load_library().values()]


def search_recipes(query: str, limit: int = 5) -> list[dict[str, Any]]:
    """Searches the offline library of post-training recipes (works without network); returns cited notes.

    Args:
        query: Topic keywords, e.g. 'lora learning rate' or 'reinforcement learning math rewards'.
        limit: How many notes to return (1-20).
    """
    if not 1 <= limit <= 20:
        raise ToolError(f"limit must be between 1 and 20, got {limit}", "invalid_arguments")
    wanted = _terms(query)
    if not wanted:
        return list_recipes()[:limit]
    scored = []
    for note in load_library().values():
        fields = [(3.0, _terms(note["id"] + " " + note["title"])), (2.0, _terms(" ".join(note["tags"]))),
                  (1.5, _terms(note["summary"])), (0.5, _terms(note["body"]))]
        score = sum(max((w for w, terms in fields if term in terms), default=0.0) for term in wanted)
        if score > 0:
            scored.append((score, note))
    scored.sort(key=lambda pair: -pair[0])
    return [_public(note, round(score, 2)) for score, note in scored[:limit]]


def read_recipe(recipe_id: str) -> str:
    """Reads one note of the offline recipe library in full (evidence, recipe, what to watch, citations).

    Args:
        recipe_id: The note's id, e.g. 'recipe:full-vs-lora'.
    """
    notes = load_library()
    note = notes.get(recipe_id) or notes.get(f"recipe:{recipe_id}")
    if note is None:
        raise ToolError(f"no recipe '{recipe_id}'; ids: {', '.join(notes)}", "not_found")
    refs = "\n".join(
        f"- {c.get('authors', '')} ({c.get('year', 'n.d.')}). {c['title']}. "
        + (f"arXiv:{c['arxiv']}" if c.get("arxiv") else f"doi:{c['doi']}" if c.get("doi") else c.get("url", ""))
        for c in note["citations"])
    return f"{note['body']}\n\n## Citations ({note['id']})\n{refs}"


def knowledge_tools() -> list[Tool]:
    """The library as tools: ``search_recipes`` and ``read_recipe``."""
    return [Tool(search_recipes), Tool(read_recipe, max_chars=8000)]

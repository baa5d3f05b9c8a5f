"""Tools the roles call: the tool contract, research clients, the sandbox, offline knowledge.

- :mod:`intern.tools.base` — ``Tool``, ``ToolRegistry``, ``ToolResult``, ``@tool`` (re-exported here).
- :mod:`intern.tools.research` — ``ResearchConfig``, ``research_tools``, ``researcher_registry``
  over the service clients (:mod:`~intern.tools.arxiv`, :mod:`~intern.tools.hub`,
  :mod:`~intern.tools.scholar`, :mod:`~intern.tools.datasets_server`,
  :mod:`~intern.tools.github`, :mod:`~intern.tools.hf_docs`), all on
  :mod:`~intern.tools.http_client` (timeouts, 429 retries, disk cache).
- :mod:`intern.tools.sandbox` — ``Sandbox`` for generated Python;
  :mod:`intern.tools.code_tools` — ``run_python`` for a role, in its own sandbox.
- :mod:`intern.tools.knowledge` — the packaged recipe library, ``search_recipes``.

    from intern.tools import ToolRegistry
    from intern.tools.research import ResearchConfig, researcher_registry
"""

from intern.tools.base import DEFAULT_MAX_CHARS, Tool, ToolRegistry, ToolResult, tool

__all__ = ["DEFAULT_MAX_CHARS", "Tool", "ToolRegistry", "ToolResult", "tool"]

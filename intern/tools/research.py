"""The researcher's tools, assembled: literature, citations, Hub, datasets, GitHub, docs, recipes.

    config = ResearchConfig.from_env(cache_dir=run_dir / "cache")
    registry = researcher_registry(config)
    registry.schemas()                                   # for an OpenAI-compatible brain
    result = registry.call("arxiv_search", {"query": "GRPO math"})
    if result.unreachable:                               # offline: fall back to the library
        result = registry.call("search_recipes", {"query": "GRPO math"})

Tools: ``arxiv_search``, ``arxiv_paper``, ``hf_papers_search``, ``hf_paper``,
``paper_references``, ``paper_citations``, ``hub_search_models``, ``hub_search_datasets``,
``inspect_dataset``, ``github_code_search``, ``github_read_file``, ``hf_docs_search``,
``hf_docs_fetch``, plus the offline ``search_recipes`` and ``read_recipe``
(:mod:`intern.tools.knowledge`). Each service lives in its own module
(:mod:`~intern.tools.arxiv`, :mod:`~intern.tools.hub`, :mod:`~intern.tools.scholar`,
:mod:`~intern.tools.datasets_server`, :mod:`~intern.tools.github`, :mod:`~intern.tools.hf_docs`).

Environment (read by :meth:`ResearchConfig.from_env`; explicit arguments win):

    HF_ENDPOINT                  Hub, HF Papers and HF docs root (https://huggingface.co)
    INTERN_ARXIV_URL             arXiv API root (https://export.arxiv.org/api)
    INTERN_S2_URL                Semantic Scholar Graph API root (https://api.semanticscholar.org/graph/v1)
    INTERN_GITHUB_URL            GitHub REST API root (https://api.github.com)
    INTERN_DATASETS_SERVER_URL   dataset viewer API root (https://datasets-server.huggingface.co)
    INTERN_CACHE                 cache root; responses go to $INTERN_CACHE/tools (~/.cache/intern/tools)
    INTERN_HTTP_TIMEOUT          seconds per request (15)
    INTERN_OFFLINE               1/true: make no request; tools answer from cache or report unreachable
    GITHUB_TOKEN                 optional GitHub token (code search needs one); never logged or cached
    HF_TOKEN                     optional Hub token (gated datasets in the viewer)
    S2_API_KEY                   optional Semantic Scholar key (higher rate limit)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from intern.env import env_flag
from intern.errors import ConfigError
from intern.models import cache_dir as intern_cache_dir
from intern.tools.arxiv import DEFAULT_ARXIV_URL, ArxivClient
from intern.tools.base import Tool, ToolRegistry
from intern.tools.datasets_server import DEFAULT_DATASETS_SERVER_URL, DatasetViewerClient
from intern.tools.github import DEFAULT_GITHUB_URL, GitHubClient, github_headers
from intern.tools.hf_docs import HfDocsClient
from intern.tools.http_client import DiskCache, HttpClient
from intern.tools.hub import DEFAULT_HF_ENDPOINT, HubClient
from intern.tools.knowledge import knowledge_tools
from intern.tools.scholar import DEFAULT_S2_URL, ScholarClient

__all__ = ["ResearchConfig", "research_tools", "researcher_registry"]

@dataclass(frozen=True)
class ResearchConfig:
    """Where the research services are and how to talk to them. Picklable (crosses actors).

    Attributes:
        hf_endpoint: Hub, HF Papers and docs root.
        arxiv_url: arXiv API root.
        s2_url: Semantic Scholar Graph API root.
        github_url: GitHub REST API root.
        datasets_server_url: Dataset viewer API root.
        cache_dir: Where responses are cached.
        cache_ttl_s: How long a cached response is fresh (0: always ask the service).
        timeout_s: Seconds per request.
        retries: Retries after a rate limit.
        max_wait_s: The longest Retry-After honored.
        offline: Make no request at all.
        github_token: Optional; kept out of repr so it never lands in a log.
        hf_token: Optional; kept out of repr.
        s2_api_key: Optional; kept out of repr.
    """

    hf_endpoint: str = DEFAULT_HF_ENDPOINT
    arxiv_url: str = DEFAULT_ARXIV_URL
    s2_url: str = DEFAULT_S2_URL
    github_url: str = DEFAULT_GITHUB_URL
    datasets_server_url: str = DEFAULT_DATASETS_SERVER_URL
    cache_dir: Path = field(default_factory=lambda: intern_cache_dir() / "tools")
    cache_ttl_s: float = 7 * 24 * 3600
    timeout_s: float = 15.0
    retries: int = 2
    max_wait_s: float = 10.0
    offline: bool = False
    github_token: str | None = field(default=None, repr=False)
    hf_token: str | None = field(default=None, repr=False)
    s2_api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, **overrides: object) -> ResearchConfig:
        """Reads the environment variables listed in the module docstring.

        Args:
            **overrides: Fields to set explicitly (they win over the environment).

        Raises:
            ConfigError: For an ``INTERN_HTTP_TIMEOUT`` that is not a positive number.
        """
        env = os.environ
        timeout = env.get("INTERN_HTTP_TIMEOUT", "15")
        try:
            timeout_s = float(timeout)
            if timeout_s <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError("INTERN_HTTP_TIMEOUT", f"must be a positive number of seconds, got {timeout!r}") \
                from None
        values: dict[str, object] = {
            "hf_endpoint": env.get("HF_ENDPOINT", DEFAULT_HF_ENDPOINT),
            "arxiv_url": env.get("INTERN_ARXIV_URL", DEFAULT_ARXIV_URL),
            "s2_url": env.get("INTERN_S2_URL", DEFAULT_S2_URL),
            "github_url": env.get("INTERN_GITHUB_URL", DEFAULT_GITHUB_URL),
            "datasets_server_url": env.get("INTERN_DATASETS_SERVER_URL", DEFAULT_DATASETS_SERVER_URL),
            "cache_dir": intern_cache_dir() / "tools",
            "timeout_s": timeout_s,
            "offline": env_flag("INTERN_OFFLINE", env),
            "github_token": env.get("GITHUB_TOKEN") or None,
            "hf_token": env.get("HF_TOKEN") or None,
            "s2_api_key": env.get("S2_API_KEY") or None,
        }
        unknown = set(overrides) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(sorted(unknown)[0], f"not a ResearchConfig field; fields: "
                              f"{', '.join(cls.__dataclass_fields__)}")
        values.update(overrides)
        values["cache_dir"] = Path(values["cache_dir"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def client(self, service: str, headers: dict[str, str] | None = None) -> HttpClient:
        """An HTTP client for one service with this config's cache, timeout and retry policy."""
        return HttpClient(service, DiskCache(self.cache_dir, self.cache_ttl_s), timeout=self.timeout_s,
                          retries=self.retries, max_wait_s=self.max_wait_s, headers=headers, offline=self.offline)


def research_tools(config: ResearchConfig | None = None) -> list[Tool]:
    """The network research tools, bound to clients built from ``config`` (default: the environment)."""
    config = config or ResearchConfig.from_env()
    hf_auth = {"Authorization": f"Bearer {config.hf_token}"} if config.hf_token else None
    arxiv = ArxivClient(config.client("arxiv"), config.arxiv_url)
    hub = HubClient(config.client("hub", hf_auth), config.hf_endpoint)
    s2 = ScholarClient(config.client("semantic-scholar", {"x-api-key": config.s2_api_key}
                                     if config.s2_api_key else None), config.s2_url)
    viewer = DatasetViewerClient(config.client("datasets-server", hf_auth), config.datasets_server_url)
    github = GitHubClient(config.client("github", github_headers(config.github_token)), config.github_url)
    docs = HfDocsClient(config.client("hf-docs"), config.hf_endpoint)
    return [
        Tool(arxiv.search, name="arxiv_search"),
        Tool(arxiv.paper, name="arxiv_paper"),
        Tool(hub.search_papers, name="hf_papers_search"),
        Tool(hub.paper, name="hf_paper"),
        Tool(s2.references, name="paper_references"),
        Tool(s2.citations, name="paper_citations"),
        Tool(hub.search_models, name="hub_search_models"),
        Tool(hub.search_datasets, name="hub_search_datasets"),
        Tool(viewer.inspect, name="inspect_dataset"),
        Tool(github.search_code, name="github_code_search"),
        Tool(github.read_file, name="github_read_file", max_chars=12000),
        Tool(docs.search, name="hf_docs_search"),
        Tool(docs.fetch, name="hf_docs_fetch", max_chars=12000),
    ]


def researcher_registry(config: ResearchConfig | None = None, extra: list[Tool] | None = None) -> ToolRegistry:
    """The researcher's registry: the network tools, the offline library, and ``extra``."""
    return ToolRegistry("researcher", [*research_tools(config), *knowledge_tools(), *(extra or [])])

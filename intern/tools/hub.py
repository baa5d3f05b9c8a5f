"""Hugging Face Hub search: models, datasets, and Hugging Face Papers.

The requests go to the Hub's REST API (``/api/models``, ``/api/datasets``,
``/api/papers/search``, ``/api/papers/{id}``) through :class:`~intern.tools.http_client.HttpClient`
(timeouts, bounded 429 retries, the disk cache), and each reply is parsed with
huggingface_hub's own ``ModelInfo`` / ``DatasetInfo`` / ``PaperInfo``, so the fields are
read exactly as ``HfApi.list_models`` etc. read them. ``HfApi`` itself is not called
because its shared HTTP session has no timeout and retries network errors for ~30 s,
so an offline run would stall instead of falling back::

    hub = HubClient(HttpClient("hub", cache), endpoint="https://huggingface.co")
    hub.search_datasets("gsm8k", limit=5)
    hub.paper("2402.03300").linked_datasets

The endpoint is ``HF_ENDPOINT`` (see :mod:`intern.tools.research`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from huggingface_hub.hf_api import DatasetInfo, ModelInfo, PaperInfo

from intern.errors import ToolError
from intern.tools.arxiv import normalize_arxiv_id
from intern.tools.http_client import HttpClient

__all__ = ["DEFAULT_HF_ENDPOINT", "DatasetHit", "HubClient", "HubPaper", "ModelHit"]

DEFAULT_HF_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class ModelHit:
    """A model repository on the Hub.

    Attributes:
        id: The repo id (``org/name``); cite it as ``hf-model:<id>``.
        downloads: Downloads over the last 30 days.
        likes: Likes.
        pipeline_tag: The task, e.g. ``text-generation``.
        library: The library, e.g. ``transformers``.
        tags: The repo's tags (licenses, datasets it was trained on, ``base_model:...``).
        created_at: Creation date (``YYYY-MM-DD``).
    """

    id: str
    downloads: int | None
    likes: int | None
    pipeline_tag: str | None
    library: str | None
    tags: list[str]
    created_at: str | None


@dataclass(frozen=True)
class DatasetHit:
    """A dataset repository on the Hub.

    Attributes:
        id: The repo id (``org/name``); cite it as ``hf-dataset:<id>``.
        downloads: Downloads over the last 30 days.
        likes: Likes.
        tags: The repo's tags (task, size category, license, format).
        gated: Whether access must be requested.
        description: The card's short description, when the Hub gives it.
    """

    id: str
    downloads: int | None
    likes: int | None
    tags: list[str]
    gated: bool | str | None
    description: str | None = None


@dataclass(frozen=True)
class HubPaper:
    """A paper page on Hugging Face Papers.

    Attributes:
        id: Its arXiv id; cite it as ``arxiv:<id>``.
        title: The title.
        authors: Author names.
        summary: The abstract.
        published: Publication date (``YYYY-MM-DD``).
        upvotes: Upvotes on the Hub.
        ai_summary: The Hub's one-line summary, if any.
        github_repo: The code repository, if linked.
        linked_models: Models that cite the paper (details only).
        linked_datasets: Datasets that cite the paper (details only).
    """

    id: str
    title: str
    authors: list[str]
    summary: str
    published: str | None
    upvotes: int | None
    ai_summary: str | None = None
    github_repo: str | None = None
    linked_models: list[str] = field(default_factory=list)
    linked_datasets: list[str] = field(default_factory=list)


def _date(value: Any) -> str | None:
    return value.date().isoformat() if value is not None else None


def _parse(kind: type, item: Any, what: str) -> Any:
    if not isinstance(item, dict):
        raise ToolError(f"the Hub returned a {type(item).__name__} where a {what} object was expected",
                        "bad_response")
    try:
        return kind(**item)
    except (KeyError, TypeError, ValueError) as exc:
        raise ToolError(f"the Hub returned a malformed {what} ({type(exc).__name__}: {exc})", "bad_response") from exc


def _list(body: Any, what: str) -> list[Any]:
    if not isinstance(body, list):
        raise ToolError(f"the Hub returned a {type(body).__name__} where a list of {what}s was expected",
                        "bad_response")
    return body


def _paper(info: PaperInfo) -> HubPaper:
    if not info.id or not info.title:
        raise ToolError("the Hub returned a paper without an id or a title", "bad_response")
    return HubPaper(
        id=str(info.id), title=" ".join((info.title or "").split()),
        authors=[a.name for a in info.authors or []], summary=" ".join((info.summary or "").split()),
        published=_date(info.published_at), upvotes=info.upvotes, ai_summary=info.ai_summary,
        github_repo=info.github_repo,
        linked_models=[m.id for m in info.linked_models or []],
        linked_datasets=[d.id for d in info.linked_datasets or []])


class HubClient:
    """Model, dataset and paper search on the Hub.

    Args:
        http: The HTTP client (send ``Authorization: Bearer <HF_TOKEN>`` in its headers
            to see gated or private repos).
        endpoint: The Hub root URL.
    """

    def __init__(self, http: HttpClient, endpoint: str = DEFAULT_HF_ENDPOINT):
        self.http = http
        self.endpoint = endpoint.rstrip("/")

    def search_models(self, query: str, limit: int = 10, task: str | None = None,
                      sort: Literal["downloads", "likes", "trendingScore", "createdAt"] = "downloads"
                      ) -> list[ModelHit]:
        """Searches models on the Hugging Face Hub by name; most downloaded first.

        Args:
            query: Part of the model name, e.g. 'Qwen2.5-0.5B' or 'smollm'.
            limit: How many models to return (1-50).
            task: Only models for this pipeline task, e.g. 'text-generation'.
            sort: 'downloads', 'likes', 'trendingScore' or 'createdAt'.
        """
        body = self.http.get_json(f"{self.endpoint}/api/models", {
            "search": query, "limit": _limit(limit), "sort": sort, "direction": -1, "pipeline_tag": task})
        hits = []
        for item in _list(body, "model"):
            info: ModelInfo = _parse(ModelInfo, item, "model")
            hits.append(ModelHit(id=info.id, downloads=info.downloads, likes=info.likes,
                                 pipeline_tag=info.pipeline_tag, library=info.library_name,
                                 tags=list(info.tags or []), created_at=_date(info.created_at)))
        return hits

    def search_datasets(self, query: str, limit: int = 10,
                        sort: Literal["downloads", "likes", "trendingScore", "createdAt"] = "downloads"
                        ) -> list[DatasetHit]:
        """Searches datasets on the Hugging Face Hub by name; most downloaded first.

        Args:
            query: Part of the dataset name, e.g. 'gsm8k' or 'math word problems'.
            limit: How many datasets to return (1-50).
            sort: 'downloads', 'likes', 'trendingScore' or 'createdAt'.
        """
        body = self.http.get_json(f"{self.endpoint}/api/datasets", {
            "search": query, "limit": _limit(limit), "sort": sort, "direction": -1})
        hits = []
        for item in _list(body, "dataset"):
            info: DatasetInfo = _parse(DatasetInfo, item, "dataset")
            description = getattr(info, "description", None)
            hits.append(DatasetHit(id=info.id, downloads=info.downloads, likes=info.likes,
                                   tags=list(info.tags or []), gated=info.gated,
                                   description=" ".join(description.split())[:500] if description else None))
        return hits

    def search_papers(self, query: str, limit: int = 10) -> list[HubPaper]:
        """Searches Hugging Face Papers (arXiv papers discussed on the Hub) by topic.

        Args:
            query: Keywords, e.g. 'GRPO verifiable rewards'.
            limit: How many papers to return (1-50).
        """
        body = self.http.get_json(f"{self.endpoint}/api/papers/search", {"q": query, "limit": _limit(limit)})
        return [_paper(_parse(PaperInfo, item, "paper")) for item in _list(body, "paper")[:limit]]

    def paper(self, arxiv_id: str) -> HubPaper:
        """Gets a paper's Hugging Face page: abstract, upvotes, code, and the models and datasets that cite it.

        Args:
            arxiv_id: The paper's arXiv id, e.g. '2402.03300'.
        """
        bare = normalize_arxiv_id(arxiv_id, version=False)
        return _paper(_parse(PaperInfo, self.http.get_json(f"{self.endpoint}/api/papers/{bare}"), "paper"))


def _limit(limit: int) -> int:
    if not 1 <= limit <= 50:
        raise ToolError(f"limit must be between 1 and 50, got {limit}", "invalid_arguments")
    return limit

"""Dataset inspection without downloading: the Hugging Face dataset viewer API (datasets-server).

Three endpoints, each a JSON reply: ``/splits`` (configs and splits), ``/info`` (features
and row counts per split) and ``/first-rows`` (features and the first rows of a split)::

    viewer = DatasetViewerClient(HttpClient("datasets-server", cache))
    preview = viewer.inspect("openai/gsm8k", rows=3)
    preview.features      # {"question": "string", "answer": "string"}
    preview.num_rows      # {"train": 7473, "test": 1319}

The base URL is ``INTERN_DATASETS_SERVER_URL`` (see :mod:`intern.tools.research`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from intern.errors import ToolError
from intern.tools.http_client import HttpClient

__all__ = ["DEFAULT_DATASETS_SERVER_URL", "DatasetPreview", "DatasetViewerClient", "feature_type"]

DEFAULT_DATASETS_SERVER_URL = "https://datasets-server.huggingface.co"
_CELL_CHARS = 600


@dataclass(frozen=True)
class DatasetPreview:
    """What a dataset looks like: its configs and splits, one split's columns and first rows.

    Attributes:
        dataset: The repo id; cite it as ``hf-dataset:<id>``.
        splits: ``{config: [split, ...]}`` for every config.
        config: The config previewed.
        split: The split previewed.
        num_rows: Rows per split of that config, when the viewer knows them.
        features: ``{column: type}`` (``string``, ``int64``, ``list[string]``, ...).
        rows: The first rows (long cells cut to 600 characters).
    """

    dataset: str
    splits: dict[str, list[str]]
    config: str
    split: str
    num_rows: dict[str, int] | None
    features: dict[str, str]
    rows: list[dict[str, Any]]


def feature_type(spec: Any) -> str:
    """A short type string for a ``datasets`` feature spec as the viewer serializes it.

    Args:
        spec: E.g. ``{"dtype": "string", "_type": "Value"}`` or ``{"_type": "Sequence", "feature": ...}``.
    """
    if isinstance(spec, list):  # the legacy list notation: [inner]
        return f"list[{feature_type(spec[0]) if spec else '?'}]"
    if not isinstance(spec, dict):
        return str(spec)
    kind = spec.get("_type")
    if kind == "Value":
        return str(spec.get("dtype", "?"))
    if kind == "ClassLabel":
        return f"class_label{spec.get('names', '')}"
    if kind in ("Sequence", "List", "LargeList"):
        return f"list[{feature_type(spec.get('feature'))}]"
    if kind is None:  # a struct: {field: spec}
        return "{" + ", ".join(f"{k}: {feature_type(v)}" for k, v in spec.items()) + "}"
    return str(kind)


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _CELL_CHARS:
        return value[:_CELL_CHARS] + f"... [{len(value) - _CELL_CHARS} more characters]"
    if isinstance(value, list):
        return [_cut(v) for v in value[:20]]
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    return value


def _field(body: Any, key: str, kind: type, endpoint: str) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get(key), kind):
        raise ToolError(f"the dataset viewer's {endpoint} reply has no '{key}' {kind.__name__}", "bad_response")
    return body[key]


class DatasetViewerClient:
    """The dataset viewer API.

    Args:
        http: The HTTP client (an HF token in its headers opens gated datasets).
        base_url: The API root.
    """

    def __init__(self, http: HttpClient, base_url: str = DEFAULT_DATASETS_SERVER_URL):
        self.http = http
        self.base_url = base_url.rstrip("/")

    def splits(self, dataset: str) -> dict[str, list[str]]:
        """``{config: [split, ...]}`` of a dataset."""
        body = self.http.get_json(f"{self.base_url}/splits", {"dataset": dataset})
        out: dict[str, list[str]] = {}
        for entry in _field(body, "splits", list, "/splits"):
            if not isinstance(entry, dict) or "config" not in entry or "split" not in entry:
                raise ToolError("the dataset viewer's /splits reply has an entry without config/split",
                                "bad_response")
            out.setdefault(entry["config"], []).append(entry["split"])
        if not out:
            raise ToolError(f"the dataset viewer lists no splits for {dataset} (it may still be processing it)",
                            "not_found")
        return out

    def num_rows(self, dataset: str, config: str) -> dict[str, int]:
        """Rows per split of one config (from ``/info``)."""
        body = self.http.get_json(f"{self.base_url}/info", {"dataset": dataset, "config": config})
        info = _field(body, "dataset_info", dict, "/info")
        splits = info.get("splits") or {}
        return {name: int(s.get("num_examples", 0)) for name, s in splits.items() if isinstance(s, dict)}

    def first_rows(self, dataset: str, config: str, split: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """``(features, rows)`` of the first rows of a split (from ``/first-rows``)."""
        body = self.http.get_json(f"{self.base_url}/first-rows", {"dataset": dataset, "config": config,
                                                                  "split": split})
        features = {f["name"]: feature_type(f.get("type")) for f in _field(body, "features", list, "/first-rows")
                    if isinstance(f, dict) and "name" in f}
        rows = [r["row"] for r in _field(body, "rows", list, "/first-rows") if isinstance(r, dict) and "row" in r]
        return features, rows

    def inspect(self, dataset: str, config: str | None = None, split: str | None = None,
                rows: int = 3) -> DatasetPreview:
        """Shows a Hub dataset's configs, splits, row counts, column types and first rows, without downloading it.

        Args:
            dataset: The dataset id, e.g. 'openai/gsm8k'.
            config: The config (subset) to preview; default: 'default' or the first one.
            split: The split to preview; default: 'train' or the first one.
            rows: How many sample rows to show (0-20).
        """
        if not 0 <= rows <= 20:
            raise ToolError(f"rows must be between 0 and 20, got {rows}", "invalid_arguments")
        splits = self.splits(dataset)
        if config is None:
            config = "default" if "default" in splits else next(iter(splits))
        if config not in splits:
            raise ToolError(f"{dataset} has no config '{config}'; configs: {', '.join(splits)}", "not_found")
        if split is None:
            split = "train" if "train" in splits[config] else splits[config][0]
        if split not in splits[config]:
            raise ToolError(f"{dataset}/{config} has no split '{split}'; splits: {', '.join(splits[config])}",
                            "not_found")
        try:
            counts: dict[str, int] | None = self.num_rows(dataset, config)
        except ToolError as exc:  # sizes are a nice-to-have; the preview still answers the question
            if exc.kind == "unreachable":
                raise
            counts = None
        features, sample = self.first_rows(dataset, config, split)
        return DatasetPreview(dataset=dataset, splits=splits, config=config, split=split, num_rows=counts,
                              features=features, rows=[_cut(r) for r in sample[:rows]])

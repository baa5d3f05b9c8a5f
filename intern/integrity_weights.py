"""The integrity gate's look at the artifacts themselves: is a trained checkpoint the base model, fine-tuned?

The records a run writes (``intern_train.json``) say which model each checkpoint was trained
from; :mod:`intern.integrity` follows them. This module checks that the weights agree with
them, reading the files, never the records::

    models = {"checkpoints/b0/final": {}, "checkpoints/b1/final": {"vocab_size": 49153}}  # -> declared changes
    check = check_weights(models, base, run_dir)   # {"name": "weights", "passed", "detail", "statistics", ...}
    check["statistics"]["checkpoints/b0/final"]["min_cosine"]   # 0.99998 for a short SFT

Three things are compared with the base model's:

- the architecture: ``config.json`` (every key but bookkeeping ones such as ``dtype`` or
  ``transformers_version``) and every parameter's name and shape, from the safetensors headers;
- the tokenizer: the same vocabulary (tokens, ids, merges, added tokens) and special tokens;
- the weights: for every tensor, its cosine similarity with the base's ``W0`` (the tensors as
  vectors). The statistic is the smallest over all tensors; a checkpoint passes when it is at least
  :data:`MIN_COSINE`. A fine-tune keeps every tensor pointing where the base's did: even a long run
  whose updates add up to twice a tensor's own norm (relative distance 2) keeps a cosine of ~0.45,
  while a tensor that does not descend from the base's (another seed, another layer's) is at chance,
  ~0.005 for the bundled model's matrices (docs/benchmarks.md). The smallest, not an average: a model
  with two layers exchanged is identical at the median and only its swapped tensors are at chance.
  The relative distance ``||W - W0|| / ||W0||`` is reported beside it (largest and median): it
  grows without bound with the summed learning rate (Adam moves each weight by about the learning
  rate a step, whatever its scale), so it says how far a run went, not whether it descends.

A change of vocabulary size is allowed only where a record of the checkpoint's chain declares
it (``declared_changes: {"vocab_size": N}`` in ``intern_train.json``); then the tokenizer may
differ, and the resized tensors are compared on the base's rows. No recipe of this project
changes the vocabulary today; one that does must declare it.

Every file is read once, one tensor at a time (:func:`weight_distances` streams the base and
all checkpoints together with safetensors ``safe_open``), so memory stays at two tensors.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from intern.errors import ModelError

__all__ = ["MIN_COSINE", "architecture_problems", "check_weights", "tensor_shapes", "tokenizer_identity",
           "weight_distances"]

#: The smallest per-tensor cosine with the base a descendant may have (docs/benchmarks.md, "Weight lineage";
#: `intern bench lineage`). Tensors that do not descend are at chance (|cos| <= ~1/sqrt(rows): 0.005 for the
#: bundled model's layers exchanged, 0.02 for tiny:llama's other seeds); a fine-tune's drift orthogonal to
#: its base keeps cos = 1/sqrt(1 + d^2) at relative distance d, so 0.2 allows d up to ~4.9 (a thousand-step
#: run of tiny:llama at lr 1e-4 reached 1.1) and stays 10x above chance.
MIN_COSINE = 0.2

# config.json keys that say how a model was saved, not what it is.
_BOOKKEEPING = frozenset({"_name_or_path", "_model_name_or_path", "_commit_hash", "transformers_version",
                          "torch_dtype", "dtype", "use_cache", "_attn_implementation_autoset"})
# tokenizer_config.json keys naming special tokens.
_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token",
                 "additional_special_tokens", "extra_special_tokens")
# Files that define a tokenizer's vocabulary when there is no tokenizer.json.
_VOCAB_FILES = ("vocab.json", "merges.txt", "tokenizer.model", "vocab.txt", "added_tokens.json")


def _config(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{root / 'config.json'} cannot be read ({e}); a checkpoint needs its config.json") from None


def _weight_files(root: Path) -> list[Path]:
    return sorted(root.glob("*.safetensors"))


def _header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    header.pop("__metadata__", None)
    return header


def tensor_shapes(root: str | Path) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, from the safetensors headers (no weights read).

    Raises:
        ModelError: When the directory has no safetensors weights, or a header is unreadable.
    """
    root = Path(root)
    files = _weight_files(root)
    if not files:
        raise ModelError(f"{root} has no *.safetensors weights: its weights cannot be checked (the recipes "
                         "export safetensors; convert other formats with save_pretrained)")
    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        try:
            shapes.update({k: tuple(v["shape"]) for k, v in _header(f).items()})
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelError(f"{f} is not a readable safetensors file ({e})") from None
    return shapes


def _vocab_rows(name: str, shape: tuple[int, ...], vocab_sizes: set[int]) -> bool:
    return len(shape) >= 1 and shape[0] in vocab_sizes and ("embed" in name or "lm_head" in name)


def architecture_problems(base_root: Path, root: Path, declared: dict[str, Any] | None = None) -> list[str]:
    """What differs between the architecture of ``root`` and the base's: config keys, parameter names and shapes.

    ``declared`` (the changes a record of the checkpoint's chain declares) may allow a new ``vocab_size``:
    then ``config.json``'s ``vocab_size`` and the vocabulary dimension of the embeddings may differ.
    """
    declared = declared or {}
    base_cfg, cfg = _config(base_root), _config(root)
    vocab = declared.get("vocab_size")
    ignored = _BOOKKEEPING | ({"vocab_size"} if vocab else set())
    keys = sorted((set(base_cfg) | set(cfg)) - ignored)
    changed = [k for k in keys if base_cfg.get(k) != cfg.get(k)]
    problems = []
    if changed:
        shown = ", ".join(f"{k}: {base_cfg.get(k)!r} -> {cfg.get(k)!r}" for k in changed[:4])
        problems.append(f"config.json differs from the base's in {len(changed)} key(s) ({shown}"
                        + (", ..." if len(changed) > 4 else "") + ")")
    if vocab and cfg.get("vocab_size") != vocab:
        problems.append(f"config.json's vocab_size is {cfg.get('vocab_size')}, not the {vocab} its record declares")
    base_shapes, shapes = tensor_shapes(base_root), tensor_shapes(root)
    missing, extra = sorted(base_shapes.keys() - shapes.keys()), sorted(shapes.keys() - base_shapes.keys())
    if missing or extra:
        problems.append(f"{len(missing)} of the base's parameters missing (e.g. {missing[:2]}), {len(extra)} "
                        f"parameters the base does not have (e.g. {extra[:2]})")
    resized = {base_cfg.get("vocab_size"), vocab} if vocab else set()
    other = [k for k in sorted(base_shapes.keys() & shapes.keys()) if base_shapes[k] != shapes[k]
             and not (_vocab_rows(k, shapes[k], resized) and shapes[k][1:] == base_shapes[k][1:]
                      and shapes[k][0] == vocab)]
    if other:
        problems.append(f"{len(other)} parameter(s) of another shape than the base's (e.g. {other[0]}: "
                        f"{list(base_shapes[other[0]])} -> {list(shapes[other[0]])})")
    return problems


def _content(token: Any) -> Any:
    return token.get("content") if isinstance(token, dict) else token


def tokenizer_identity(root: str | Path) -> dict[str, Any] | None:
    """What a tokenizer is, for comparison: a digest of its vocabulary and its special tokens (None: no tokenizer).

    The vocabulary is ``tokenizer.json``'s model (tokens, ids, merges) and added tokens, parsed so
    that formatting differences between two saves of one tokenizer do not count; without that
    file, the bytes of the slow tokenizers' vocabulary files.
    """
    root = Path(root)
    digest = hashlib.sha256()
    if (root / "tokenizer.json").is_file():
        data = json.loads((root / "tokenizer.json").read_text())
        model = data.get("model") or {}
        added = sorted((t.get("id"), t.get("content"), bool(t.get("special"))) for t in data.get("added_tokens") or [])
        digest.update(json.dumps([model.get("type"), sorted((model.get("vocab") or {}).items())
                                  if isinstance(model.get("vocab"), dict) else model.get("vocab"),
                                  model.get("merges"), added], sort_keys=True, default=str).encode())
        size = len(model.get("vocab") or []) + sum(1 for t in added if t[1] not in (model.get("vocab") or {}))
    else:
        files = [root / f for f in _VOCAB_FILES if (root / f).is_file()]
        if not files:
            return None
        for f in files:
            digest.update(f.name.encode() + f.read_bytes())
        size = None
    try:
        config = json.loads((root / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        config = {}
    special = {k: (sorted(map(str, map(_content, v))) if isinstance(v, list) else _content(v))
               for k in _SPECIAL_KEYS if (v := config.get(k))}
    return {"vocab_sha256": digest.hexdigest(), "vocab_size": size, "special_tokens": special}


def _tokenizer_problems(base: dict[str, Any] | None, ours: dict[str, Any] | None,
                        declared: dict[str, Any]) -> list[str]:
    if ours is None:
        return ["no tokenizer files (tokenizer.json or a vocabulary file): the recipes save the base's tokenizer"]
    if base is None or declared.get("vocab_size"):  # nothing to compare with, or a declared new vocabulary
        return []
    problems = []
    if ours["vocab_sha256"] != base["vocab_sha256"]:
        problems.append(f"its tokenizer's vocabulary is not the base's ({ours['vocab_size']} tokens, digest "
                        f"{ours['vocab_sha256'][:12]}; the base's: {base['vocab_size']}, {base['vocab_sha256'][:12]})")
    mine, theirs = dict(ours["special_tokens"]), base["special_tokens"]
    if "pad_token" not in theirs and mine.get("pad_token") == theirs.get("eos_token"):
        mine.pop("pad_token")  # the recipes pad with the end-of-sequence token when the base names no pad token
    if mine != theirs:
        changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        problems.append("its special tokens differ from the base's (" + ", ".join(
            f"{k}: {theirs.get(k)!r} -> {mine.get(k)!r}" for k in changed[:3]) + ")")
    return problems


def weight_distances(base_root: str | Path, roots: list[str | Path]) -> dict[str, Any]:
    """Per-tensor cosines with the base and relative distances ``||W - W0|| / ||W0||`` of each checkpoint.

    One pass: each base tensor is read once and compared with the same tensor of every checkpoint, so
    every file is read once whatever the number of checkpoints. Tensors are compared in float32; a
    tensor whose first dimension grew (a declared larger vocabulary) is compared on the base's rows.
    The architectures must already agree on the tensors' names (see :func:`architecture_problems`).

    Returns:
        ``{"per_model": {root: {"min_cosine", "cosine_tensor", "max_rel_distance", "tensor",
        "median_rel_distance", "global_rel_distance", "tensors"}}, "bytes_read", "seconds"}``: the
        smallest cosine and its tensor, the largest distance and its tensor, the median distance over
        tensors, and ``||all W - W0|| / ||all W0||`` (tensors whose base is all zeros are left out).
    """
    import torch
    from safetensors import safe_open

    start = time.time()
    base_root = Path(base_root)
    roots = [Path(r) for r in roots]
    where = {name: f for f in _weight_files(base_root) for name in _header(f)}
    files = [{name: f for f in _weight_files(r) for name in _header(f)} for r in roots]
    per: list[dict[str, float]] = [{} for _ in roots]
    cosines: list[dict[str, float]] = [{} for _ in roots]
    sums = [[0.0, 0.0] for _ in roots]  # sum ||W - W0||^2, sum ||W0||^2
    bytes_read = 0
    opened: dict[Path, Any] = {}

    def tensor(path: Path, name: str, *, own: bool = False):
        nonlocal bytes_read
        if path not in opened:
            opened[path] = safe_open(str(path), framework="pt")
        t = opened[path].get_tensor(name)
        bytes_read += t.numel() * t.element_size()
        return t.to(torch.float32, copy=own)  # ``own``: a copy the in-place difference below may overwrite

    try:
        for name in sorted(where):
            w0 = tensor(where[name], name)
            norm0 = float(torch.linalg.vector_norm(w0))
            for k, mapping in enumerate(files):
                if name not in mapping:
                    continue
                w = tensor(mapping[name], name, own=True)
                if w.shape != w0.shape and w.shape[1:] == w0.shape[1:] and w.shape[0] >= w0.shape[0]:
                    w = w[: w0.shape[0]]
                if w.shape != w0.shape:
                    continue  # reported by the architecture check
                norm = float(torch.linalg.vector_norm(w))
                delta = float(torch.linalg.vector_norm(w.sub_(w0)))  # in place: two tensors in memory, never three
                del w
                if norm0 > 0:
                    per[k][name] = delta / norm0
                    # <W, W0> from the three norms: no third tensor in memory
                    cosines[k][name] = ((norm**2 + norm0**2 - delta**2) / (2 * norm * norm0)) if norm > 0 else 0.0
                    sums[k][0] += delta**2
                    sums[k][1] += norm0**2
            del w0
    finally:
        opened.clear()
    out: dict[str, Any] = {}
    for root, distances, cos, (num, den) in zip(roots, per, cosines, sums, strict=True):
        if not distances:
            out[str(root)] = {"tensors": 0}
            continue
        top = max(distances, key=distances.__getitem__)
        least = min(cos, key=cos.__getitem__)
        out[str(root)] = {"min_cosine": round(cos[least], 6), "cosine_tensor": least,
                          "max_rel_distance": round(distances[top], 6), "tensor": top,
                          "median_rel_distance": round(statistics.median(distances.values()), 6),
                          "global_rel_distance": round(math.sqrt(num / den), 6) if den else None,
                          "tensors": len(distances)}
    return {"per_model": out, "bytes_read": bytes_read, "seconds": round(time.time() - start, 2)}


def check_weights(models: dict[str, dict[str, Any]], base: dict[str, Any], run_dir: str | Path | None = None, *,
                  threshold: float = MIN_COSINE) -> dict[str, Any]:
    """Whether every trained model directory in ``models`` is the base model's architecture, tokenizer and,
    every tensor at a cosine of at least ``threshold`` with the base's, weights.

    Args:
        models: Model directory -> the changes the records of its chain declare (``{"vocab_size": N}``
            or ``{}``), as :func:`intern.integrity.check_lineage` lists them under ``models``. A trainer
            checkpoint holding only a LoRA adapter has no full weights: it is skipped, and the final
            model that merges it is checked instead.
        base: The base model's fingerprint (:func:`intern.integrity.fingerprint`): its ``path``.
        run_dir: Paths in the detail are shown relative to it.
        threshold: The smallest per-tensor cosine with the base's tensor allowed.

    Returns:
        The check (``name`` ``weights``), with ``statistics`` (per model: the smallest per-tensor cosine
        and its tensor, the largest relative distance and its tensor, the median and the global one),
        ``threshold``, ``bytes_read`` and
        ``seconds``; ``checked`` is False when there was no trained model to check.
    """
    run_root = Path(run_dir).resolve() if run_dir else None

    def rel(path: Path) -> str:
        return str(path.relative_to(run_root)) if run_root and run_root in path.parents else str(path)

    base_root = Path(base["path"])
    problems: list[str] = []
    notes: list[str] = []
    comparable: list[Path] = []
    base_tokenizer = tokenizer_identity(base_root)
    for ref, declared in sorted(models.items()):
        path = Path(ref).resolve()
        if not _weight_files(path) and (path / "adapter_config.json").is_file():
            notes.append(f"{rel(path)}: a LoRA adapter checkpoint (checked through the model that merges it)")
            continue
        try:
            found = architecture_problems(base_root, path, declared)
        except ModelError as e:
            problems.append(f"{rel(path)}: {e}")
            continue
        tokenizer = tokenizer_identity(path)
        if tokenizer is not None or not (path / "trainer_state.json").is_file():  # a checkpoint-N may keep none
            found += _tokenizer_problems(base_tokenizer, tokenizer, declared)
        problems += [f"{rel(path)}: {p}" for p in found]
        if not any("parameters missing" in p or "config.json differs" in p for p in found):
            comparable.append(path)
    measured = weight_distances(base_root, comparable) if comparable else {"per_model": {}, "bytes_read": 0,
                                                                            "seconds": 0.0}
    stats: dict[str, Any] = {}
    for path in comparable:
        s = measured["per_model"][str(path)]
        stats[rel(path)] = s
        if s.get("min_cosine") is None:
            problems.append(f"{rel(path)}: no tensor could be compared with the base's")
        elif s["min_cosine"] < threshold:
            problems.append(f"{rel(path)}: its weights are not a fine-tune of the base model: tensor "
                            f"{s['cosine_tensor']} has a cosine of {s['min_cosine']:.3f} with the base's (a fine-tune "
                            f"stays at {threshold} or more, even far from its base; a tensor that does not descend "
                            f"from it is near 0; largest relative distance {s['max_rel_distance']:.3f})")
        else:
            notes.append(f"{rel(path)}: min cosine {s['min_cosine']:.4f} ({s['cosine_tensor']}) >= {threshold}, "
                         f"max relative distance {s['max_rel_distance']:.4f} ({s['tensor']})")
    problems = list(dict.fromkeys(problems))
    detail = "; ".join(notes) if not problems else "; ".join(problems) + (f" (found: {'; '.join(notes)})"
                                                                           if notes else "")
    if not models:
        detail = "no trained checkpoint to check"
    return {"name": "weights", "passed": not problems, "checked": bool(models), "detail": detail,
            "statistics": stats, "threshold": threshold, "bytes_read": measured["bytes_read"],
            "seconds": measured["seconds"]}

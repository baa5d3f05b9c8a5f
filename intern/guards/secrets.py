"""Keep secrets (API keys, Hub tokens) out of every message, event, log and report.

Two nets: well-known key formats (``sk-...``, ``hf_...``, ``ghp_...``, bearer headers)
are masked wherever they appear, and so are the exact values we were configured with
(registered explicitly, or found in environment variables named like a secret).

    register_secret(api_key)
    safe = redact(f"call failed: {error}")
    record = redact_obj({"args": args})
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"
# Values shorter than this are too common to mask safely ("1", "token", "true").
MIN_SECRET_LEN = 8
_SECRET_ENV_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)

KEY_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),               # OpenAI (sk-..., sk-proj-...)
    re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{16,}"),           # Anthropic
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),                  # Hugging Face
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),           # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),         # GitHub fine-grained tokens
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),                   # AWS access key ids
    re.compile(r"\bxox[baprs]-[A-Za-z0-9\-]{10,}"),        # Slack
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"),  # Authorization headers
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{8,}"),
)

_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a configured secret value so :func:`redact` masks it everywhere."""
    if value and len(value) >= MIN_SECRET_LEN:
        with _lock:
            _registered.add(value)


def known_secret_values() -> set[str]:
    """Registered values plus those of environment variables named like secrets."""
    env = {v for k, v in os.environ.items() if _SECRET_ENV_NAME.search(k) and len(v) >= MIN_SECRET_LEN}
    with _lock:
        return env | _registered


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known key formats and configured secret values masked.

    Args:
        text: any text that may reach a message, an event, a log or the report.
        secrets: extra values to mask, besides the registered and environment ones.
    """
    if not text:
        return text
    # Longest first, so a value containing another is masked whole.
    values = sorted({*known_secret_values(), *(s for s in secrets if s and len(s) >= MIN_SECRET_LEN)},
                    key=len, reverse=True)
    for value in values:
        text = text.replace(value, MASK)
    for pattern in KEY_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


def redact_obj(obj: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like structure with every string passed through :func:`redact`."""
    secrets = tuple(secrets)
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, dict):
        return {k: redact_obj(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_obj(v, secrets) for v in obj]
    return obj

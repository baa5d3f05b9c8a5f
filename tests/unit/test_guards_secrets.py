"""Secrets are masked in any text we write: known key formats and configured values."""

from __future__ import annotations

from intern.guards.secrets import MASK, redact, redact_obj, register_secret


def test_known_key_formats_are_masked():
    text = ("openai sk-proj-AbCdEf0123456789xyzXYZ hub hf_AbCdEfGhIjKlMnOpQrStUv01 "
            "gh ghp_AbCdEfGhIjKlMnOpQrStUv0123 aws AKIAABCDEFGHIJKLMNOP "
            "header 'Authorization: Bearer abc.def-ghi_jkl' json {\"api_key\": \"verysecretvalue\"}")
    out = redact(text)
    for secret in ("sk-proj-AbCd", "hf_AbCd", "ghp_AbCd", "AKIAABCD", "abc.def-ghi_jkl", "verysecretvalue"):
        assert secret not in out
    assert out.count(MASK) == 6 and "Bearer ***" in out and '"api_key": "***"' in out


def test_configured_and_environment_values_are_masked(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123456789abcdef01234567")
    register_secret("plain-looking-password-42")
    out = redact("w 0123456789abcdef0123456789abcdef01234567 p plain-looking-password-42 x extra-value-99",
                 secrets=["extra-value-99"])
    assert out == "w *** p *** x ***"


def test_ordinary_text_is_left_alone(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE_TOKEN", "token")  # too short to be a secret
    text = "commit 0123456789abcdef0123456789abcdef01234567, max_tokens: 4096, token budget 300 calls"
    assert redact(text) == text
    register_secret("short")
    assert redact("a short note") == "a short note"


def test_structures_are_redacted_recursively():
    data = {"args": {"key": "sk-AbCdEfGhIjKlMnOpQrSt"}, "list": ["hf_AbCdEfGhIjKlMnOpQrStUv01", 3], "n": 1.5}
    assert redact_obj(data) == {"args": {"key": MASK}, "list": [MASK, 3], "n": 1.5}

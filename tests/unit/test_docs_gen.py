"""The generated reference pages are current: docs/configuration.md and docs/architecture.md's event table
equal what ``python -m intern.docs_gen`` makes from the code (run it after changing a config field or an event)."""

from __future__ import annotations

import dataclasses

from intern import docs_gen
from intern.config import RunConfig, TrainConfig


def test_the_committed_reference_pages_equal_the_generated_ones():
    stale = [str(path) for path, text in docs_gen.generated().items() if path.read_text() != text]
    assert not stale, f"stale: {stale}; regenerate them with python -m intern.docs_gen"
    assert docs_gen.main(["--check"]) == 0


def test_the_config_reference_lists_every_key_with_its_default_and_rules():
    doc = docs_gen.config_reference()
    for section in ("train", "data", "eval", "budget", "brain", "approval", "tracking", "notify", "sandbox"):
        for f in dataclasses.fields(getattr(RunConfig(), section)):
            assert f"| `{section}.{f.name}` |" in doc, f"{section}.{f.name} missing"
    batch = next(f for f in dataclasses.fields(TrainConfig) if f.name == "batch_size")
    assert f"| `train.batch_size` | int | `{batch.default}` | must be >= 1 |" in doc  # the code's default, not a copy
    assert "| `cluster.roles.<role>.num_gpus` |" in doc and "one of `sft`, `grpo`, `sft_grpo`" in doc


def test_a_stale_page_is_reported(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "configuration.md"
    stale.write_text("# an old copy\n")
    monkeypatch.setattr(docs_gen, "CONFIG_DOC", stale)
    assert docs_gen.main(["--check"]) == 1
    assert "configuration.md is stale" in capsys.readouterr().err
    assert stale.read_text() == "# an old copy\n"  # --check writes nothing

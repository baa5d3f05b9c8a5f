"""The baseline evaluation is reused only for the same weights, items and settings."""

from __future__ import annotations

import shutil

from intern.evals import get_benchmark
from intern.evals.cache import evaluate_cached
from intern.evals.generate import evaluate_model
from intern.models import resolve_model


def test_the_same_model_and_items_reuse_the_score_and_anything_else_does_not(tmp_path):
    model = tmp_path / "base"
    shutil.copytree(resolve_model("tiny:llama"), model)
    bench, calls = get_benchmark("wordproblems"), []

    def compute(n=4):
        calls.append(n)
        return evaluate_model(model, bench, "test", n=n, batch_size=4, max_new_tokens=4).to_dict()

    def run(n=4, batch=4):
        return evaluate_cached(model, bench, "test", n=n, batch_size=batch, max_new_tokens=4,
                               compute=lambda: compute(n), cache=tmp_path / "cache")

    first, note = run()
    assert note is None and calls == [4]
    again, note = run()
    assert calls == [4] and note["file"].startswith(str(tmp_path / "cache")) and note["at"]
    assert again["item_scores"] == first["item_scores"] and again["score"] == first["score"]
    run(n=3)  # other items
    run(batch=2)  # other batching (padding changes the numerics)
    assert len(calls) == 3
    (model / "model.safetensors").write_bytes((model / "model.safetensors").read_bytes()[:-1] + b"\x01")
    _, note = run()  # other weights at the same path
    assert note is None and len(calls) == 4

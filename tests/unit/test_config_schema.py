"""What an LLM researcher may propose is exactly what the config accepts: the override schema comes from the
config's own field rules. Walks every field of the sections a hypothesis overrides."""

from __future__ import annotations

import dataclasses

import jsonschema
import pytest

from intern.config import DataConfig, TrainConfig, check_overrides
from intern.config_fields import check_fields, override_schema


def _probes(prop: dict) -> list:
    """Values around every bound and choice of one schema property (and a few of the wrong type)."""
    kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    if "enum" in prop:
        return [*prop["enum"], "not-a-choice", ""]
    out: list = [None] if "null" in kinds else []
    if "integer" in kinds:
        for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            if key in prop:
                out += [int(prop[key]) - 1, int(prop[key]), int(prop[key]) + 1]
        out += [0, 1, -5, 10_000]
    elif "number" in kinds:
        for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            if key in prop:
                out += [prop[key] - 1e-9, prop[key], prop[key] + 1e-9]
        out += [0.0, 1.0, -1.0, 2.5]
    elif "boolean" in kinds:
        out += [True, False]
    else:
        out += ["x"]
    return out


@pytest.mark.parametrize("cls", [TrainConfig, DataConfig])
def test_every_overridable_field_accepts_in_the_schema_exactly_what_the_config_accepts(cls):
    schema = override_schema(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert schema["properties"], cls
    walked = 0
    for name, prop in schema["properties"].items():
        for value in _probes(prop):
            in_schema = not list(jsonschema.Draft202012Validator({"type": "object", "properties": {name: prop}})
                                 .iter_errors({name: value}))
            if not in_schema:
                continue  # the wrong type for the field: the schema refuses, as the loader would
            in_config = not check_fields(dataclasses.replace(cls(), **{name: value}))
            assert in_schema == in_config, (cls.__name__, name, value)
            walked += 1
        for value in _probes(prop):  # values the config accepts are accepted by the schema
            if value is None and "null" not in str(prop["type"]):
                continue
            try:
                section = dataclasses.replace(cls(), **{name: value})
            except TypeError:
                continue
            if not check_fields(section) and isinstance(value, type(fields[name].default) | type(None)):
                errors = list(jsonschema.Draft202012Validator({"properties": {name: prop}}).iter_errors({name: value}))
                assert not errors, (cls.__name__, name, value, errors)
    assert walked > 3 * len(schema["properties"]) // 2


def test_run_level_settings_are_not_a_hypothesis_to_change():
    data = override_schema(DataConfig)["properties"]
    assert "rows" in data and "style" in data
    assert not {"decontam_ngram", "decontam_threshold", "dedup_threshold", "teacher_model"} & set(data)


def test_overrides_are_checked_across_fields_as_the_config_is():
    base = dataclasses.asdict(TrainConfig())
    assert check_overrides(TrainConfig, {**base, "num_generations": 4, "grpo_batch_size": 12}, "train.") == []
    problems = check_overrides(TrainConfig, {**base, "num_generations": 4, "grpo_batch_size": 10}, "train.")
    assert problems and "multiple of train.num_generations" in problems[0]
    assert check_overrides(TrainConfig, {**base, "temperature": 0}, "train.")  # the old schema let 0 through
    assert check_overrides(TrainConfig, {**base, "learning_rate": 1.5}, "train.")
    assert check_overrides(TrainConfig, {**base, "num_generations": 1}, "train.")
    assert check_overrides(TrainConfig, {**base, "bogus": 1}, "train.") == ["train.bogus: unknown key"]

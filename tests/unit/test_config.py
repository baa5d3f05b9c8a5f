"""Config loading: defaults, overrides, every shipped config file, and each kind of bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intern.cli import app
from intern.config import PROFILES_DIR, ClusterProfile, RunConfig
from intern.env import env_flag
from intern.errors import ConfigError
from intern.resolve import load_config

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_the_offline_demo():
    cfg = load_config()
    assert cfg.base_model == "bundled:smollm2-135m-instruct"
    assert cfg.benchmark == "wordproblems"
    assert cfg.branches >= 2
    assert isinstance(cfg.cluster, ClusterProfile) and cfg.cluster.name == "local"
    assert cfg.cluster.address is None


def test_dotted_overrides_are_typed():
    cfg = load_config(None, ["branches=3", "train.learning_rate=5e-5", "train.lora=true",
                             "eval.test_n=100"])
    assert cfg.branches == 3
    assert cfg.train.learning_rate == pytest.approx(5e-5)  # YAML reads 5e-5 as a string
    assert cfg.train.lora is True
    assert cfg.eval.test_n == 100


def test_yaml_file_then_overrides(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("branches: 4\ntrain:\n  max_steps: 7\n")
    cfg = load_config(p, ["train.max_steps=9"])
    assert cfg.branches == 4 and cfg.train.max_steps == 9


def test_a_cluster_override_edits_the_named_profile_not_replaces_it():
    """`--set cluster.roles.data_engineer.num_cpus=1` changes that role: the profile's other roles, its train
    settings and its source stay (it once replaced the profile by defaults, so the evaluator lost its CPU)."""
    local = load_config()
    cfg = load_config(None, ["cluster.roles.data_engineer.num_cpus=1"])
    assert cfg.cluster.roles["data_engineer"].num_cpus == 1
    assert cfg.cluster.roles["evaluator"] == local.cluster.roles["evaluator"]
    assert cfg.cluster.train == local.cluster.train and cfg.cluster.source == local.cluster.source
    h100 = load_config(None, ["cluster=h100", "cluster.num_cpus=4"])
    assert h100.cluster.name == "h100" and h100.cluster.num_cpus == 4
    assert h100.cluster.train.use_gpu == load_config(None, ["cluster=h100"]).cluster.train.use_gpu
    with pytest.raises(ConfigError, match="no cluster profile 'nope'"):
        load_config(None, ["cluster=nope", "cluster.num_cpus=2"])


@pytest.mark.parametrize("path", sorted(PROFILES_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_cluster_profile_loads(path):
    cfg = load_config(None, [f"cluster={path}"])
    assert isinstance(cfg.cluster, ClusterProfile)
    assert cfg.cluster.train.num_workers >= 1


#: Where the YAML files that are not run configs live: cluster profiles (above) and manifests, prompts, test data.
NOT_RUN_CONFIGS = ("clusters", "intern/llm/prompts", "tests/data", ".venv", ".git", "runs")


def _shipped_run_configs() -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(REPO):
        rel = Path(folder).relative_to(REPO).as_posix()
        dirs[:] = [d for d in dirs if f"{rel}/{d}".removeprefix("./") not in NOT_RUN_CONFIGS]
        found += [Path(folder) / f for f in files if f.endswith((".yaml", ".yml"))]
    return sorted(found)


def test_shipped_run_configs_load():
    paths = _shipped_run_configs()
    assert REPO / "tests" / "integration" / "tiny.yaml" in paths
    for path in paths:
        assert isinstance(load_config(path), RunConfig), path


def test_resolved_config_round_trips(tmp_path):
    import yaml

    from intern.config import save_config
    from intern.resolve import config_from_dict

    cfg = load_config(None, ["branches=3"])
    save_config(cfg, tmp_path / "config.yaml")
    again = config_from_dict(yaml.safe_load((tmp_path / "config.yaml").read_text()))
    assert again == cfg


@pytest.mark.parametrize("override,key", [
    ("brnches=2", "brnches"),
    ("train.lr=0.1", "train.lr"),
    ("branches=0", "branches"),
    ("branches=two", "branches"),
    ("train.learning_rate=-1e-4", "train.learning_rate"),
    ("train.learning_rate=fast", "train.learning_rate"),
    ("train.max_steps=0", "train.max_steps"),
    ("train.lora=maybe", "train.lora"),
    ("train.method=dpo", "train.method"),
    ("base_model=./no/such/model", "base_model"),
    ("base_model=/definitely/not/here", "base_model"),
    ("benchmark=nope", "benchmark"),
    ("cluster=nowhere", "cluster"),
    ("eval.test_n=0", "eval.test_n"),
    ("data.decontam_threshold=1.5", "data.decontam_threshold"),
    ("cluster.train.deepspeed=zero9", "cluster.train.deepspeed"),
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert err.value.key == key
    assert key in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("branches: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


@pytest.mark.parametrize("args,key", [
    (["--set", "branches=0"], "branches"),
    (["--set", "train.learning_rate=-1"], "train.learning_rate"),
    (["--set", "bogus=1"], "bogus"),
    (["--set", "base_model=./missing-model-dir"], "base_model"),
    (["--set", "train.max_steps=ten"], "train.max_steps"),
])
def test_cli_exits_2_with_one_line(args, key, tmp_path):
    result = CliRunner().invoke(app, ["run", "--output-dir", str(tmp_path), *args])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert key in lines[0] and lines[0].startswith("error: config error")
    assert not any(tmp_path.iterdir()), "nothing may be written before the config is valid"


def test_tracking_section_defaults_and_bad_values(tmp_path, monkeypatch):
    import sys

    tracking = load_config().tracking
    assert (tracking.backend, tracking.project, tracking.mode) == ("wandb", "intern", "auto")
    assert load_config(None, ["tracking.backend=none"]).tracking.backend == "none"
    for override, key, hint in [("tracking.backend=mlflow", "tracking.backend", "'wandb', 'trackio', 'none'"),
                                ("tracking.mode=sometimes", "tracking.mode", "offline unless a W&B key"),
                                ("tracking.project=team/intern", "tracking.project", "without /"),
                                ("tracking.entity=me", "tracking.entity", "unknown key")]:
        with pytest.raises(ConfigError) as e:
            load_config(None, [override])
        assert e.value.key == key and hint in e.value.message, e.value
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with pytest.raises(ConfigError, match="WANDB_API_KEY or run `wandb login`") as e:
        load_config(None, ["tracking.mode=online"])
    assert e.value.key == "tracking.mode"
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert load_config(None, ["tracking.mode=online"]).tracking.mode == "online"
    monkeypatch.setitem(sys.modules, "trackio", None)  # as if not installed
    with pytest.raises(ConfigError, match="pip install trackio") as e:
        load_config(None, ["tracking.backend=trackio"])
    assert e.value.key == "tracking.backend" and "tracking.backend=wandb" in e.value.message


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("TRUE", True), (" yes ", True), ("On", True),
                                                 ("0", False), ("false", False), ("", False), ("2", False)])
def test_env_flag_reads_true_words_in_any_case(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("INTERN_TEST_FLAG", value)
    assert env_flag("INTERN_TEST_FLAG") is expected
    assert env_flag("FLAG", {"FLAG": value}) is expected  # another environment, e.g. a role's
    monkeypatch.delenv("INTERN_TEST_FLAG")
    assert env_flag("INTERN_TEST_FLAG") is False
